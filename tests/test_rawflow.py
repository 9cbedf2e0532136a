"""The raw-frame flow reader: the tuple the decoder would find, on every link type, with
IPv4 options, IPv6 extension headers, fragments and ICMP errors; a symmetric flow hash
that spreads flows evenly and is the same in every process."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from capture_backends.pcap_file import PcapError, PcapFileBackend
from ruleengine.capture import (
    DLT_RAW_12,
    DLT_RAW_14,
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
)
from ruleengine.decode.decoder import Decoder
from ruleengine.rawflow import HEADROOM, flow_hash, frame_tuple, ip_offset, ip_tuple
from tests.shared import SV_CORPUS

REPO = Path(__file__).resolve().parents[1]
A4, B4 = socket.inet_aton("10.0.0.1"), socket.inet_aton("10.0.0.2")
A6 = socket.inet_pton(socket.AF_INET6, "fd00::1")
B6 = socket.inet_pton(socket.AF_INET6, "fd00::2")


def ipv4(src: bytes, dst: bytes, sport: int, dport: int, *, proto: int = 6, frag: int = 0,
         ident: int = 7, ihl: int = 5, payload: bytes = b"\0" * 16) -> bytes:
    options = b"\x01" * ((ihl - 5) * 4)
    l4 = struct.pack("!HH", sport, dport) + payload
    header = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, ihl * 4 + len(l4), ident, frag, 64,
                         proto, 0, src, dst)
    return header + options + l4


def ipv6(src: bytes, dst: bytes, sport: int, dport: int, nxt: int = 6,
         ext: bytes = b"") -> bytes:
    l4 = struct.pack("!HH", sport, dport) + b"\0" * 16
    return struct.pack("!IHBB", 6 << 28, len(ext) + len(l4), nxt, 64) + src + dst + ext + l4


def test_the_same_tuple_on_every_link_type() -> None:
    ip = ipv4(A4, B4, 1234, 80)
    want = (6, A4, B4, 1234, 80, b"")
    frames = {
        LINKTYPE_ETHERNET: b"\x02" * 12 + b"\x08\x00" + ip,
        LINKTYPE_LINUX_SLL: b"\0" * 14 + b"\x08\x00" + ip,
        LINKTYPE_LINUX_SLL2: b"\x08\x00" + b"\0" * 18 + ip,
        LINKTYPE_NULL: struct.pack("<I", 2) + ip,
        LINKTYPE_LOOP: struct.pack("!I", 2) + ip,
        LINKTYPE_RAW: ip, DLT_RAW_12: ip, DLT_RAW_14: ip,
    }
    for linktype, frame in frames.items():
        assert frame_tuple(linktype, frame) == want, linktype
        assert frame_tuple(linktype, memoryview(frame)) == want, linktype
    assert frame_tuple(147, ip) is None  # a link type nobody reads
    assert frame_tuple(LINKTYPE_LINUX_SLL, b"\0" * 14 + b"\x08\x06" + ip) is None  # ARP


def test_vlan_tags_up_to_the_decoders_limit() -> None:
    ip = ipv4(A4, B4, 1, 2)
    tags = [struct.pack("!HH", tpid, 5) for tpid in (0x8100, 0x88A8, 0x9100, 0x9200)]
    for n in range(4):
        frame = b"\x02" * 12 + b"".join(tags[:n]) + b"\x08\x00" + ip
        assert frame_tuple(LINKTYPE_ETHERNET, frame) == (6, A4, B4, 1, 2, b"")
    four = b"\x02" * 12 + b"".join(tags) + b"\x08\x00" + ip
    assert frame_tuple(LINKTYPE_ETHERNET, four) is None  # the decoder: too many layers
    assert ip_offset(LINKTYPE_ETHERNET, b"\x02" * 12 + tags[0]) == -1  # cut in the tag


def test_options_extension_headers_and_truncation() -> None:
    assert ip_tuple(ipv4(A4, B4, 1, 2, ihl=7), 0) == (6, A4, B4, 1, 2, b"")
    hop = bytes((43, 0)) + b"\0" * 6  # hop-by-hop, then routing
    routing = bytes((60, 1)) + b"\0" * 14
    dest = bytes((51, 0)) + b"\0" * 6
    ah = bytes((17, 1)) + b"\0" * 10
    assert ip_tuple(ipv6(A6, B6, 53, 9, nxt=0, ext=hop + routing + dest + ah), 0) == \
        (17, A6, B6, 53, 9, b"")
    assert ip_tuple(ipv6(A6, B6, 5, 6), 0) == (6, A6, B6, 5, 6, b"")
    assert ip_tuple(ipv4(A4, B4, 1, 2)[:22], 0) is None  # TCP without room for the ports
    assert ip_tuple(ipv4(A4, B4, 1, 2, proto=47)[:20], 0) == (47, A4, B4, 0, 0, b"")
    assert ip_tuple(ipv6(A6, B6, 5, 6)[:39], 0) is None
    assert ip_tuple(b"", 0) is None and ip_tuple(b"\x50" * 40, 0) is None


def test_fragments_carry_their_datagram_id() -> None:
    first = ipv4(A4, B4, 1, 2, proto=17, frag=0x2000, ident=0x1234)
    later = ipv4(A4, B4, 9, 9, proto=17, frag=0x0003, ident=0x1234)
    assert ip_tuple(first, 0) == (17, A4, B4, 1, 2, b"\x12\x34")
    assert ip_tuple(later, 0) == (17, A4, B4, 0, 0, b"\x12\x34")  # no ports in it
    assert ip_tuple(ipv4(A4, B4, 1, 2, frag=0x4000), 0) == (6, A4, B4, 1, 2, b"")  # DF only
    frag6 = struct.pack("!BBHI", 6, 0, 0x0001, 0xABCDEF01)  # offset 0, M: the first one
    assert ip_tuple(ipv6(A6, B6, 1, 2, nxt=44, ext=frag6), 0) == \
        (6, A6, B6, 1, 2, b"\xab\xcd\xef\x01")
    later6 = struct.pack("!BBHI", 6, 0, 0x0010, 0xABCDEF01)  # offset 2
    assert ip_tuple(ipv6(A6, B6, 1, 2, nxt=44, ext=later6), 0) == \
        (6, A6, B6, 0, 0, b"\xab\xcd\xef\x01")
    atomic = struct.pack("!BBHI", 6, 0, 0, 1)  # offset 0 and no M: not a fragment
    assert ip_tuple(ipv6(A6, B6, 1, 2, nxt=44, ext=atomic), 0) == (6, A6, B6, 1, 2, b"")


def test_icmp_errors_can_be_read_as_the_flow_they_quote() -> None:
    quoted = ipv4(A4, B4, 40000, 53, proto=17, payload=b"\0\0\0\0")
    error = ipv4(B4, A4, 0, 0, proto=1, payload=b"")[:20] + bytes((3, 3)) + b"\0" * 6 + quoted
    assert ip_tuple(error, 0, quote=True) == (17, A4, B4, 40000, 53, b"")
    assert ip_tuple(error, 0) == (1, B4, A4, 0, 0, b"")
    echo = error[:20] + bytes((8, 0)) + error[22:]
    assert ip_tuple(echo, 0, quote=True) == (1, B4, A4, 0, 0, b"")  # not an error
    quoted6 = ipv6(A6, B6, 40000, 443)[:44]
    error6 = ipv6(B6, A6, 0, 0, nxt=58)[:40] + bytes((1, 4)) + b"\0" * 6 + quoted6
    assert ip_tuple(error6, 0, quote=True) == (6, A6, B6, 40000, 443, b"")


def _decoder_tuple(linktype: int, decoder: Decoder, frame: bytes) -> object:
    pkt = decoder.decode(0.0, frame)
    if pkt is None or pkt.invalid or pkt.tunnel is not None or pkt.ip_version == 0:
        return None
    if pkt.icmp_emb is not None:
        src, dst, sport, dport, proto = pkt.icmp_emb
        return proto, src, dst, sport, dport
    ported = pkt.proto in (6, 17, 132)
    return (pkt.proto, pkt.src, pkt.dst, pkt.sport if ported else 0,
            pkt.dport if ported else 0)


def _captures() -> list[Path]:
    found = sorted(REPO.glob("tests/**/*.pcap"))
    if SV_CORPUS.is_dir():
        found += sorted(p for p in SV_CORPUS.rglob("*.pcap") if "_ext" not in p.parts)
    return found


def test_the_decoder_finds_the_same_tuple_in_every_capture() -> None:
    # every test capture and the suricata-verify corpus: wherever the decoder makes a
    # (non-tunnel, whole, valid) packet of a frame, the reader's tuple is the decoder's,
    # an ICMP error's being the flow it quotes (the flow table's icmp_emb)
    captures = _captures()
    compared = 0
    for path in captures:
        try:
            backend = PcapFileBackend(path)
        except PcapError:
            continue
        linktype = int(backend.linktype)
        if not Decoder.supports(linktype):
            continue
        decoder = Decoder(linktype, checksum_validation=False, defrag=False)
        for _ts, data, _id in backend.packets():
            frame = bytes(data)
            t = frame_tuple(linktype, frame)
            want = _decoder_tuple(linktype, decoder, frame)
            if want is None or (t is not None and t[5]):
                continue  # nothing to compare with, or a fragment (reassembled later)
            assert t is not None and t[:5] == want, f"{path}: {frame[:64].hex()}"
            compared += 1
        backend.close()
    assert compared > (2_000 if SV_CORPUS.is_dir() else 100)


def test_the_hash_is_symmetric_and_ignores_what_is_not_the_flow() -> None:
    fwd, rev = (6, A4, B4, 1234, 80, b""), (6, B4, A4, 80, 1234, b"")
    assert flow_hash(fwd) == flow_hash(rev)
    assert flow_hash((6, A6, B6, 1, 2, b"")) == flow_hash((6, B6, A6, 2, 1, b""))
    assert flow_hash(fwd) != flow_hash((17, A4, B4, 1234, 80, b""))
    assert flow_hash(fwd) != flow_hash((6, A4, B4, 1235, 80, b""))
    assert flow_hash(fwd, ports=False) == flow_hash((17, B4, A4, 9, 9, b""), ports=False)


def test_the_hash_is_the_same_in_every_process() -> None:
    # hunt shards on different hosts must agree: no salt (PYTHONHASHSEED), and the value
    # pinned, so a Python whose tuple hash differs is noticed here
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import socket;"
            "from ruleengine.rawflow import flow_hash;"
            "a, b = socket.inet_aton('10.0.0.1'), socket.inet_aton('10.0.0.2');"
            "print(flow_hash((6, a, b, 1234, 80, b'')), flow_hash((6, a, b, 0, 0, b''), False))")
    outs = {subprocess.run([sys.executable, "-c", code, str(REPO)], capture_output=True,
                           text=True, check=True, env={**os.environ, "PYTHONHASHSEED": seed}
                           ).stdout for seed in ("1", "2", "random")}
    assert outs == {f"{flow_hash((6, A4, B4, 1234, 80, b''))} "
                    f"{flow_hash((6, A4, B4, 0, 0, b''), False)}\n"}
    assert flow_hash((6, A4, B4, 1234, 80, b"")) == 4857665554558915510


def _flows() -> dict[str, list[tuple[int, bytes, bytes, int, int, bytes]]]:
    def ip(*octets: int) -> bytes:
        return bytes(octets)

    return {
        # address and port that count up together: crc32, linear in its input bits, can
        # cancel the two (the hunt shards' first hash used only some shards on these)
        "address = port": [(6, ip(10, 1, 0, i), ip(10, 2, 0, 1), i, 80, b"")
                           for i in range(1, 255)] * 4,
        "ephemeral ports": [(6, A4, B4, 32768 + i, 443, b"") for i in range(1024)],
        "hosts x ports": [(17, ip(10, 0, h, 1), ip(10, 9, 0, s), 40000 + p, 53, b"")
                          for h in range(32) for s in range(4) for p in range(8)],
        "v6 hosts": [(6, A6[:15] + bytes((i,)), B6, 40000, 80, b"") for i in range(256)] * 4,
    }


@pytest.mark.parametrize("workers", [2, 3, 4, 8, 16])
def test_flows_spread_evenly_over_workers(workers: int) -> None:
    for name, flows in _flows().items():
        unique = list(dict.fromkeys(flows))
        counts = Counter(flow_hash(t) % workers for t in unique)
        mean = len(unique) / workers
        # a random spread: mean +- ~3.5 standard deviations of a binomial
        bound = 3.5 * (mean * (1 - 1 / workers)) ** 0.5
        assert len(counts) == workers, name
        assert max(abs(c - mean) for c in counts.values()) <= bound, (name, counts)


def test_the_spread_check_catches_a_hash_with_cancelling_bits() -> None:
    # guards the check above: a symmetric xor fold (address ^ address ^ port ^ port), whose
    # low bits cancel when an address and a port count up together, fails it
    flows = _flows()["address = port"]
    counts = Counter((int.from_bytes(s) ^ int.from_bytes(d) ^ sp ^ dp) % 4
                     for _p, s, d, sp, dp, _f in flows)
    assert len(counts) < 4


def test_only_the_headroom_of_a_long_frame_is_read() -> None:
    frame = b"\x02" * 12 + b"\x08\x00" + ipv4(A4, B4, 1, 2, payload=b"x" * 4000)
    assert frame_tuple(LINKTYPE_ETHERNET, memoryview(frame)) == (6, A4, B4, 1, 2, b"")
    assert len(frame) > HEADROOM
