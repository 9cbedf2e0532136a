"""The SSH parser on built traffic: banners, records, hassh, NEWKEYS, hostile input."""

from __future__ import annotations

import struct

import pytest

from ruleengine.applayer.ssh import SshParser, parse_config
from ruleengine.applayer.ssh.parser import (
    BANNER_DONE,
    BANNER_WAIT_EOL,
    FINISHED,
    IN_PROGRESS,
    parse_banner,
    split_line,
)

from .helpers import (
    CLIENT_LISTS,
    NEWKEYS,
    SERVER_LISTS,
    client_stream,
    expected_hassh,
    kexinit,
    kexinit_payload,
    packet,
    server_stream,
)

HASSH_ON, _ = parse_config({"hassh": "yes"})


def feed_split(data_c: bytes, data_s: bytes, cut_c: int, cut_s: int,
               settings=HASSH_ON) -> SshParser:
    p = SshParser(settings)
    p.feed(True, data_c[:cut_c])
    p.feed(False, data_s[:cut_s])
    p.feed(True, data_c[cut_c:])
    p.feed(False, data_s[cut_s:])
    return p


# -- banners ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("line", "proto", "software"), [
    (b"SSH-2.0-MySSHClient-0.5.1", b"2.0", b"MySSHClient-0.5.1"),
    (b"SSH-2.0-MySSHClient-0.5.1 some comments...", b"2.0", b"MySSHClient-0.5.1"),
    (b"SSH-1.99-PuTTY_2.123", b"1.99", b"PuTTY_2.123"),
    (b"SSH-Single-", b"Single", b""),
    (b"SSH-2.0-", b"2.0", b""),
    (b"SSH-2.0- leading space", b"2.0", b" leading space"),  # nom: is_not fails, rest
    (b"SSH-2.0 foo-bar", b"2.0 foo", b"bar"),
])
def test_parse_banner(line: bytes, proto: bytes, software: bytes) -> None:
    assert parse_banner(line) == (proto, software)


@pytest.mark.parametrize("line", [b"SSH-2.0 some comments...", b"SSH--x", b"ssh-2.0-x",
                                  b"HTTP/1.1 200", b"SSH"])
def test_invalid_banners(line: bytes) -> None:
    assert parse_banner(line) is None


def test_split_line_ends() -> None:
    assert split_line(b"SSH-Single\n") == (b"SSH-Single", b"")
    assert split_line(b"SSH-Double\r\nrest") == (b"SSH-Double", b"rest")
    assert split_line(b"SSH-Oops\rMore\r\n") == (b"SSH-Oops", b"More\r\n")
    assert split_line(b"SSH-Miss\r") is None  # a CR at the end waits
    assert split_line(b"\n") == (b"", b"")
    assert split_line(b"no end") is None


def test_banner_split_at_every_byte() -> None:
    line = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10\r\n"
    for cut in range(len(line) + 1):
        p = SshParser()
        p.feed(True, line[:cut])
        p.feed(True, line[cut:])
        side = p.tx.client
        assert (side.protover, side.swver, side.state) == (b"2.0", b"OpenSSH_9.2p1",
                                                           BANNER_DONE), cut
        assert p.tx.events == []


def test_invalid_banner_stops_the_direction() -> None:
    p = SshParser()
    p.feed(True, b"SSH-2.0 no dash\r\n" + kexinit(CLIENT_LISTS))
    assert p.tx.events == ["invalid_banner"]
    assert p.tx.client.failed and p.tx.client.protover == b""
    p.feed(True, b"SSH-2.0-late\r\n")  # nothing more is parsed on that side
    assert p.tx.client.protover == b""
    p.feed(False, b"SSH-2.0-server\r\n")  # the other side goes on
    assert p.tx.server.swver == b"server"


def test_line_before_banner_is_invalid_as_in_suricata() -> None:
    p = SshParser()
    p.feed(False, b"Welcome to my server\r\nSSH-2.0-x\r\n")
    assert p.tx.events == ["invalid_banner"]


def test_long_banner_line_is_parsed_with_an_event() -> None:
    line = b"SSH-2.0-" + b"A" * 300 + b" comment\r\n"
    p = SshParser()
    p.feed(True, line + kexinit(CLIENT_LISTS))
    assert p.tx.events == ["long_banner"]
    assert p.tx.client.swver == b"A" * 300
    assert p.tx.client.hassh  # records after the long line are parsed


def test_banner_without_newline_of_one_mib_is_bounded() -> None:
    p = SshParser(parse_config({"hassh": "yes", "max-banner-length": 1024})[0])
    blob = b"SSH-2.0-" + b"B" * (1 << 20)
    for i in range(0, len(blob), 1460):
        p.feed(True, blob[i : i + 1460])
        assert len(p._dirs[True].buf) < 256  # never more than the first 255 bytes kept
    side = p.tx.client
    assert side.state == BANNER_WAIT_EOL
    assert p.tx.events == ["long_banner"]
    assert side.protover == b"2.0" and 0 < len(side.swver) <= 1024
    # the line ends at last: the records after it are parsed
    p.feed(True, b"BBB\r\n" + kexinit(CLIENT_LISTS))
    assert side.state == BANNER_DONE
    assert side.hassh_string == expected_hassh(CLIENT_LISTS, True)[0].encode()


def test_one_mib_banner_in_one_chunk_keeps_at_most_the_cap() -> None:
    p = SshParser(parse_config({"max-banner-length": 512})[0])
    p.feed(False, b"SSH-2.0-" + b"C" * (1 << 20))
    assert p.tx.server.state == BANNER_WAIT_EOL and 400 < len(p.tx.server.swver) <= 512


def test_garbage_without_newline_is_an_invalid_banner() -> None:
    p = SshParser()
    p.feed(True, b"SSH-" + b"\x00" * 300)  # no dash in the first 256 bytes
    assert p.tx.events == ["invalid_banner"] and p.tx.client.failed


# -- records, hassh, NEWKEYS --------------------------------------------------------------------
def test_full_exchange_hassh_and_encrypted() -> None:
    p = feed_split(client_stream(), server_stream(), 0, 0)
    c_text, c_hash = expected_hassh(CLIENT_LISTS, True)
    s_text, s_hash = expected_hassh(SERVER_LISTS, False)
    assert p.tx.client.hassh_string.decode() == c_text and p.tx.client.hassh.decode() == c_hash
    assert p.tx.server.hassh_string.decode() == s_text and p.tx.server.hassh.decode() == s_hash
    assert p.tx.client.state == FINISHED and p.tx.server.state == FINISHED
    assert p.encrypted and p.tx.request_complete and p.tx.response_complete
    assert p.tx.events == []


def test_every_split_point_gives_the_same_result() -> None:
    data_c = client_stream(encrypted=b"\xde\xad" * 50)
    data_s = server_stream(encrypted=b"\xbe\xef" * 50)
    ref = feed_split(data_c, data_s, 0, 0)
    for cut in range(len(data_c) + 1):
        p = feed_split(data_c, data_s, cut, min(cut, len(data_s)))
        for side, want in ((p.tx.client, ref.tx.client), (p.tx.server, ref.tx.server)):
            assert (side.protover, side.swver, side.hassh, side.hassh_string, side.state) == \
                (want.protover, want.swver, want.hassh, want.hassh_string, want.state), cut
        assert p.tx.events == [] and p.encrypted, cut


def test_byte_by_byte() -> None:
    data = client_stream()
    p = SshParser(HASSH_ON)
    for i in range(len(data)):
        p.feed(True, data[i : i + 1])
    assert p.tx.client.hassh.decode() == expected_hassh(CLIENT_LISTS, True)[1]
    assert p.tx.client.state == FINISHED


def test_newkeys_one_side_is_not_encrypted() -> None:
    p = SshParser()
    p.feed(True, client_stream())
    p.feed(False, b"SSH-2.0-x\r\n" + kexinit(SERVER_LISTS))
    assert not p.encrypted
    assert p.tx.request_progress == BANNER_DONE  # Finished only once both are
    p.feed(False, NEWKEYS)
    assert p.encrypted and p.tx.request_progress == FINISHED


def test_newkeys_header_alone_finishes_the_side() -> None:
    """Suricata: the record header names NEWKEYS even if its body is still to come."""
    p = SshParser()
    p.feed(True, b"SSH-2.0-x\r\n" + NEWKEYS[:6])
    assert p.tx.client.state == FINISHED


def test_after_newkeys_nothing_is_parsed_or_kept() -> None:
    p = SshParser()
    p.feed(True, client_stream())
    before = list(p.tx.events)
    for _ in range(100):
        p.feed(True, b"\x00\x00\x00\x01" * 4096)  # would be invalid records
    assert p.tx.events == before and not p._dirs[True].buf


def test_hassh_disabled_skips_kexinit() -> None:
    p = feed_split(client_stream(), server_stream(), 0, 0, parse_config({"hassh": "no"})[0])
    assert p.tx.client.hassh == b"" and p.tx.server.hassh == b""
    assert p.encrypted


def test_hassh_auto_is_computed_for_rules() -> None:
    p = feed_split(client_stream(), server_stream(), 0, 0, parse_config({})[0])
    assert p.tx.client.hassh and not p.tx.log_hassh


def test_only_the_first_kexinit_counts() -> None:
    other = (b"diffie-hellman-group1-sha1", *CLIENT_LISTS[1:])
    p = SshParser()
    p.feed(True, b"SSH-2.0-x\r\n" + kexinit(CLIENT_LISTS) + kexinit(other))
    assert p.tx.client.hassh.decode() == expected_hassh(CLIENT_LISTS, True)[1]


# -- hostile input ------------------------------------------------------------------------------
def test_packet_length_zero_or_one_is_invalid_record() -> None:
    for length in (0, 1):
        p = SshParser()
        p.feed(True, b"SSH-2.0-x\r\n" + struct.pack(">IBB", length, 4, 20) + b"rest")
        assert p.tx.events == ["invalid_record"] and p.tx.client.failed


def test_huge_packet_length_is_skipped_not_buffered() -> None:
    p = SshParser(HASSH_ON)
    p.feed(True, b"SSH-2.0-x\r\n" + struct.pack(">IBB", 0xFFFFFFF0, 4, 94))
    for _ in range(200):
        p.feed(True, b"\xaa" * 65536)
    assert not p._dirs[True].buf and p._dirs[True].record_left > 0
    assert p.tx.events == []


def test_huge_kexinit_is_long_kex_record_and_skipped() -> None:
    p = SshParser(HASSH_ON)
    p.feed(True, b"SSH-2.0-x\r\n" + struct.pack(">IBB", 200000, 4, 20) + b"\x00" * 1000)
    assert p.tx.events == ["long_kex_record"]
    p.feed(True, b"\x00" * (200000 - 2 - 1000))  # the rest of the record
    p.feed(True, NEWKEYS)  # parsing resumes after it
    assert p.tx.client.state == FINISHED and p.tx.client.hassh == b""


@pytest.mark.parametrize("payload", [
    b"",  # no cookie
    b"\x00" * 16 + b"\xff\xff\xff\xff",  # a name-list longer than the record
    b"\x00" * 16 + b"\x00\x00\x00\x03abc",  # lists missing
    kexinit_payload(CLIENT_LISTS)[:-3],  # reserved field cut
    bytes(range(256)) * 4,
])
def test_garbage_kexinit_gives_no_hassh_and_no_exception(payload: bytes) -> None:
    p = SshParser(HASSH_ON)
    p.feed(True, b"SSH-2.0-x\r\n" + packet(20, payload, padding=0) + NEWKEYS)
    assert p.tx.client.hassh == b"" and p.tx.client.state == FINISHED
    assert p.internal_errors == 0


def test_kexinit_reassembled_across_many_segments() -> None:
    lists = (b"k" * 20000, *CLIENT_LISTS[1:])
    data = b"SSH-2.0-x\r\n" + kexinit(lists)
    p = SshParser(HASSH_ON)
    for i in range(0, len(data), 999):
        p.feed(True, data[i : i + 999])
    assert p.tx.client.hassh.decode() == expected_hassh(lists, True)[1]


def test_random_bytes_never_raise() -> None:
    import random

    rng = random.Random(7)
    for _ in range(300):
        p = SshParser(HASSH_ON)
        for direction in (True, False):
            head = b"SSH-2.0-x\r\n" if rng.random() < 0.7 else b""
            blob = head + bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 600)))
            i = 0
            while i < len(blob):
                n = rng.randrange(1, 50)
                p.feed(direction, blob[i : i + n])
                i += n
        p.close()
        assert p.internal_errors == 0
        assert set(p.tx.events) <= {"invalid_banner", "long_banner", "invalid_record",
                                    "long_kex_record"}


def test_close_completes_both_sides() -> None:
    p = SshParser()
    p.feed(True, b"SSH-2.0-x\r\n")
    assert p.tx.request_progress == BANNER_DONE and p.tx.response_progress == IN_PROGRESS
    p.close()
    assert p.tx.request_complete and p.tx.response_complete and not p.encrypted


def test_event_cap() -> None:
    p = SshParser(parse_config({"max-events": 1})[0])
    p.feed(True, b"x\n")
    p.feed(False, b"y\n")
    assert p.tx.events == ["invalid_banner"] and p.tx.events_dropped == 1
