from __future__ import annotations

import hashlib

import pytest

from ruleengine.applayer.tls import PROTOCOL, TlsParser, parse_config, probe
from ruleengine.applayer.tls.consts import (
    EVENTS,
    HRR_RANDOM,
    STATE_CLIENT_HELLO,
    STATE_SERVER_HELLO,
    ClientProgress,
    ServerProgress,
)
from ruleengine.applayer.tls.logger import eve_tls

from .handshake import (
    CCS,
    alpn_ext,
    certificate_msg,
    client_hello,
    ext,
    groups_ext,
    hs,
    make_cert,
    pf_ext,
    record,
    server_hello,
    sni_ext,
    tls12_client_flight,
    tls12_server_flight,
    versions_ext,
)

ON, _ = parse_config({"ja3-fingerprints": "yes", "ja4-fingerprints": "yes"})
CKE = record(22, hs(16, b"\x20" + b"\x01" * 32))
FINISHED_ENC = record(22, b"\x5a" * 40)


def full_tls12(parser: TlsParser, der: bytes) -> None:
    parser.feed(True, tls12_client_flight())
    parser.feed(False, tls12_server_flight(der))
    parser.feed(True, CKE + CCS + FINISHED_ENC)
    parser.feed(False, CCS + FINISHED_ENC)


def summary(p: TlsParser) -> tuple[object, ...]:
    tx = p.transactions[0]
    c0 = tx.server.cert0
    return (tx.client.sni, tx.client.ja3_string, tx.server.ja3_string, tx.client.ja4,
            c0.subject if c0 else None, len(tx.server.certs), tuple(tx.client.alpns),
            tx.client.version, tx.server.version, tuple(tx.events), p.encrypted)


def test_tls12_full_handshake():
    der = make_cert(issuer_cn="Test CA")
    p = TlsParser(ON)
    p.feed(True, tls12_client_flight())
    tx = p.transactions[0]
    assert tx.tx_id == 0
    assert tx.request_progress == ClientProgress.HELLO_DONE
    assert tx.current_flags == STATE_CLIENT_HELLO
    assert not tx.request_complete
    p.feed(False, tls12_server_flight(der))
    assert tx.current_flags == STATE_SERVER_HELLO
    assert tx.response_progress == ServerProgress.HELLO_DONE
    assert tx.server.cert0 is not None
    assert tx.server.cert0.subject == "C=US, ST=California, O=Example Org, CN=example.com"
    assert tx.server.cert0.issuer == "C=US, O=Test CA, CN=Test CA"
    assert tx.server.certs == [der]
    p.feed(True, CKE + CCS + FINISHED_ENC)
    assert tx.request_complete and not tx.response_complete and not p.encrypted
    p.feed(False, CCS + FINISHED_ENC)
    assert tx.response_complete and p.encrypted
    assert tx.request_progress == ClientProgress.HANDSHAKE_DONE
    assert tx.response_progress == ServerProgress.HANDSHAKE_DONE
    assert tx.client.sni == b"example.com"
    assert tx.client.alpns == [b"h2", b"http/1.1"] and tx.server.alpns == [b"h2"]
    assert tx.client.version == 0x0303 and tx.server.version == 0x0303
    assert tx.events == []
    # application data afterwards is skipped quietly
    p.feed(True, record(23, b"\x00" * 100))
    assert tx.events == []
    p.close()
    assert tx.request_progress == ClientProgress.FINISHED
    assert tx.response_progress == ServerProgress.FINISHED


@pytest.mark.parametrize("direction", [True, False])
def test_every_split_point(direction):
    der = make_cert()
    ref = TlsParser(ON)
    full_tls12(ref, der)
    expected = summary(ref)
    client = tls12_client_flight()
    server = tls12_server_flight(der)
    data = client if direction else server
    for cut in range(1, len(data)):
        p = TlsParser(ON)
        if direction:
            p.feed(True, data[:cut])
            p.feed(True, data[cut:])
            p.feed(False, server)
        else:
            p.feed(True, client)
            p.feed(False, data[:cut])
            p.feed(False, data[cut:])
        p.feed(True, CKE + CCS + FINISHED_ENC)
        p.feed(False, CCS + FINISHED_ENC)
        assert summary(p) == expected, cut


def test_byte_by_byte():
    der = make_cert()
    ref = TlsParser(ON)
    full_tls12(ref, der)
    p = TlsParser(ON)
    for direction, data in ((True, tls12_client_flight()), (False, tls12_server_flight(der)),
                            (True, CKE + CCS + FINISHED_ENC), (False, CCS + FINISHED_ENC)):
        for i in range(len(data)):
            p.feed(direction, data[i : i + 1])
    assert summary(p) == summary(ref)


def test_handshake_message_split_across_records():
    der = make_cert()
    msgs = server_hello() + certificate_msg(der, make_cert("ca")) + hs(14, b"")
    records = b"".join(record(22, msgs[i : i + 100]) for i in range(0, len(msgs), 100))
    p = TlsParser(ON)
    p.feed(True, tls12_client_flight())
    p.feed(False, records)
    tx = p.transactions[0]
    assert tx.server.cert0 is not None and tx.server.cert0.subject.endswith("CN=example.com")
    assert len(tx.server.certs) == 2
    assert tx.response_progress == ServerProgress.HELLO_DONE
    assert tx.events == []


def test_header_of_handshake_message_split_across_records():
    msgs = server_hello() + certificate_msg(make_cert())
    cut = len(server_hello()) + 2  # inside the Certificate message header
    p = TlsParser(ON)
    p.feed(False, record(22, msgs[:cut]) + record(22, msgs[cut:]))
    assert p.transactions[0].server.cert0 is not None


def test_huge_handshake_length_is_not_buffered():
    p = TlsParser(ON)
    p.feed(True, tls12_client_flight())
    huge = b"\x0b" + b"\xff\xff\xff"  # 16 MiB - 1
    p.feed(False, record(22, server_hello() + huge + b"\x00" * 1000))
    tx = p.transactions[0]
    assert "handshake_invalid_length" in tx.events
    for _ in range(40):  # 40 records of junk belonging to the oversized message
        p.feed(False, record(22, b"\x00" * 16000))
    assert len(p._dirs[False].hs_buf) == 0
    assert len(p._dirs[False].buf) < 70000
    assert tx.server.cert0 is None
    assert tx.server.version == 0x0303


def test_oversized_message_then_next_message_parsed():
    settings, _ = parse_config({"max-handshake-message": 2000})
    p = TlsParser(settings)
    big = hs(22, b"\x01" * 3000)  # CertificateStatus, over the 2000-byte cap
    p.feed(False, record(22, server_hello() + big + certificate_msg(make_cert())))
    tx = p.transactions[0]
    assert tx.events == ["handshake_invalid_length"]
    assert tx.server.cert0 is not None


def test_garbage_certificate():
    p = TlsParser(ON)
    p.feed(False, record(22, server_hello() + certificate_msg(b"\x30\x03\x02\x01\x01")))
    tx = p.transactions[0]
    assert tx.server.cert0 is None
    assert "invalid_certificate" in tx.events
    p2 = TlsParser(ON)
    p2.feed(False, record(22, server_hello() + certificate_msg(b"garbage garbage")))
    assert "certificate_invalid_der" in p2.transactions[0].events
    p3 = TlsParser(ON)
    p3.feed(False, record(22, server_hello() + certificate_msg(make_cert()[:-20])))
    assert "certificate_invalid_length" in p3.transactions[0].events
    for q in (p, p2, p3):
        assert set(q.transactions[0].events) <= EVENTS


def test_certificate_list_overruns():
    body = (100).to_bytes(3, "big") + (200).to_bytes(3, "big") + b"\x00" * 97
    p = TlsParser(ON)
    p.feed(False, record(22, hs(11, body)))
    assert p.transactions[0].events == ["invalid_certificate"]


def test_truncated_then_close():
    data = tls12_client_flight()
    p = TlsParser(ON)
    p.feed(True, data[:-10])
    tx = p.transactions[0]
    assert tx.client.sni is None and not tx.request_complete
    p.close(True)
    assert tx.request_complete and not tx.response_complete
    p.feed(True, data[-10:])  # after the close: ignored
    assert tx.client.sni is None
    p.close()
    assert tx.complete and not p.encrypted


def test_invalid_record_type_stops_parser():
    p = TlsParser(ON)
    p.feed(True, record(0x30, b"\x00" * 10) + tls12_client_flight())
    tx = p.transactions[0]
    assert "invalid_record_version" in tx.events or "invalid_record_type" in tx.events
    p2 = TlsParser(ON)
    p2.feed(True, b"\x19\x03\x03\x00\x02ab" + tls12_client_flight())
    assert p2.transactions[0].events == ["invalid_record_type"]
    assert p2.failed
    p2.feed(True, tls12_client_flight())
    assert p2.transactions[0].client.sni is None


def test_record_too_long_event():
    p = TlsParser(ON)
    p.feed(True, record(23, b"\x00" * 17000))
    assert p.transactions[0].events == ["invalid_record_length"]


def test_too_many_records():
    p = TlsParser(ON)
    p.feed(True, tls12_client_flight())
    p.feed(True, record(21, b"") * 20)
    assert "too_many_records_in_packet" in p.transactions[0].events


def test_sslv2_client_hello():
    ciphers = bytes.fromhex("0000390000380000350000330000320000040000050000")
    challenge = b"\x07" * 16
    body = b"\x01\x03\x01" + len(ciphers).to_bytes(2, "big") + b"\x00\x00" + b"\x00\x10"
    body += ciphers + challenge
    rec = bytes([0x80 | (len(body) >> 8), len(body) & 0xFF]) + body
    assert probe(rec, True) == "match"
    p = TlsParser(ON)
    p.feed(True, rec)
    tx = p.transactions[0]
    assert tx.client.version == 0x0002 and tx.sslv2
    assert tx.client.hello_version == 0x0301
    assert tx.flags & STATE_CLIENT_HELLO
    assert tx.request_progress == ClientProgress.HELLO_DONE
    assert 0x39 in tx.client.ciphers and tx.client.random == challenge
    # the server answers in TLS
    p.feed(False, tls12_server_flight(make_cert()))
    assert tx.server.version == 0x0301 or tx.server.version == 0x0303
    assert tx.server.cert0 is not None
    assert tx.events == []


def tls13_client_hello() -> bytes:
    exts = (ext(0x2A2A, b"") + sni_ext(b"tls13.example") + groups_ext(0x3A3A, 0x001D)
            + versions_ext(0x4A4A, 0x0304, 0x0303) + alpn_ext(b"h2")
            + ext(51, b"\x00\x00"))
    return record(22, client_hello(ciphers=(0x1A1A, 0x1301, 0x1302), extensions=exts,
                                   session_id=b"\x33" * 32), version=0x0301)


def test_tls13_handshake():
    p = TlsParser(ON)
    p.feed(True, tls13_client_hello())
    tx = p.transactions[0]
    assert tx.client.version == 0x0304
    assert tx.client.ja3_string == "771,4865-4866,0-10-43-16-51,29,"
    assert tx.client.ja4 is not None and tx.client.ja4.startswith("t13d0205h2_")
    sh = record(22, server_hello(extensions=versions_ext(0x0304)[:4] + b"\x03\x04",
                                 session_id=b"\x33" * 32, cipher=0x1301))
    # server supported_versions: 2 bytes, no list length
    sh = record(22, server_hello(extensions=ext(43, b"\x03\x04"), session_id=b"\x33" * 32,
                                 cipher=0x1301))
    p.feed(False, sh + CCS + record(23, b"\x00" * 300))
    assert tx.server.version == 0x0304
    assert tx.response_complete and tx.log_without_cert
    assert not p.encrypted
    p.feed(True, CCS + record(23, b"\x00" * 60))
    assert p.encrypted
    assert tx.server.cert0 is None
    obj = eve_tls(tx, {"extended": True})
    assert obj is not None and obj["version"] == "TLS 1.3"
    assert "session_resumed" not in obj  # same session id, but TLS 1.3
    assert tx.events == []


def test_tls13_hello_retry_request():
    p = TlsParser(ON)
    p.feed(True, tls13_client_hello())
    hrr = record(22, server_hello(extensions=ext(43, b"\x03\x04"), random=HRR_RANDOM,
                                  session_id=b"\x33" * 32))
    p.feed(False, hrr + CCS)
    tx = p.transactions[0]
    assert tx.hello_retry
    # second ClientHello after the client's compatibility CCS is still parsed
    ch2 = tls13_client_hello()
    p.feed(True, CCS + ch2)
    p.feed(False, record(22, server_hello(extensions=ext(43, b"\x03\x04"),
                                          session_id=b"\x33" * 32)))
    assert not tx.hello_retry and tx.response_complete


def test_session_id_resumption():
    sid = b"\x44" * 32
    p = TlsParser(ON)
    p.feed(True, record(22, client_hello(session_id=sid)))
    p.feed(False, record(22, server_hello(session_id=sid)) + CCS + FINISHED_ENC)
    p.feed(True, CCS + FINISHED_ENC)
    tx = p.transactions[0]
    assert tx.session_resumed and p.encrypted
    obj = eve_tls(tx, {})
    assert obj == {"session_resumed": True}
    assert eve_tls(tx, {"session-resumption": "no"}) is None


def test_session_ticket_with_full_handshake_not_resumed():
    p = TlsParser(ON)
    p.feed(True, record(22, client_hello(extensions=ext(35, b""))))
    p.feed(False, tls12_server_flight(make_cert()))
    tx = p.transactions[0]
    assert tx.session_resumed_flag and not tx.session_resumed


def test_sni_anomalies():
    p = TlsParser(ON)
    bad_type = ext(0, b"\x00\x05\x01\x00\x02ab")
    p.feed(True, record(22, client_hello(extensions=bad_type + groups_ext(23))))
    tx = p.transactions[0]
    assert tx.events == ["invalid_sni_type"]
    assert tx.client.ja3_string == "771,49199-156,,,"  # the loop stopped before the SNI ext
    p2 = TlsParser(ON)
    p2.feed(True, record(22, client_hello(extensions=sni_ext(b"a") + sni_ext(b"b"))))
    assert p2.transactions[0].events == ["multiple_sni_extensions"]
    assert p2.transactions[0].client.sni == b"a"
    p3 = TlsParser(ON)
    p3.feed(True, record(22, client_hello(extensions=sni_ext(b"x" * 300))))
    assert p3.transactions[0].events == ["invalid_sni_length"]


def test_truncated_hello_fields():
    body = client_hello()[4:]
    for cut in range(0, len(body)):
        p = TlsParser(ON)
        p.feed(True, record(22, hs(1, body[:cut])) if cut >= 0 else b"")
        tx = p.transactions[0]
        assert set(tx.events) <= {"handshake_invalid_length", "invalid_ssl_record"}


def test_heartbleed_overflow():
    p = TlsParser(ON)
    p.feed(True, tls12_client_flight())
    p.feed(True, record(24, b"\x01\x40\x00"))
    tx = p.transactions[0]
    assert tx.events == ["overflow_heartbeat_message"]
    ok = TlsParser(ON)
    ok.feed(True, record(24, b"\x01\x00\x03abc" + b"\x00" * 16))
    ok.feed(False, record(24, b"\x02\x00\x03abc" + b"\x00" * 16))
    assert ok.transactions[0].events == []


def test_ja3_published_example_with_grease():
    """The JA3 README's example: string and md5."""
    ciphers = (0x0A0A, 47, 53, 5, 10, 49161, 49162, 49171, 49172, 50, 56, 19, 4)
    exts = ext(0xDADA, b"") + sni_ext(b"x.test") + groups_ext(0x2A2A, 23, 24, 25) + pf_ext(0)
    p = TlsParser(ON)
    p.feed(True, record(22, client_hello(version=0x0301, ciphers=ciphers, extensions=exts)))
    tx = p.transactions[0]
    assert tx.client.ja3_string == (
        "769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11,23-24-25,0")
    assert tx.client.ja3_hash == "ada70206e40642a3e4461f35503241d5"
    assert tx.client.ja3_hash == hashlib.md5(tx.client.ja3_string.encode()).hexdigest()


def test_ja3_disabled():
    off, _ = parse_config({"ja3-fingerprints": "no", "ja4-fingerprints": "no"})
    p = TlsParser(off)
    p.feed(True, tls12_client_flight())
    assert p.transactions[0].client.ja3_hash is None
    assert p.transactions[0].client.ja4 is None
    auto = TlsParser()
    auto.feed(True, tls12_client_flight())
    tx = auto.transactions[0]
    assert tx.client.ja3_hash is not None and not tx.log_ja3  # computed for rules, not logged


def test_probe():
    assert probe(b"\x16\x03\x01\x00\x10", True) == "match"
    assert probe(b"\x15\x03\x03", False) == "match"
    assert probe(b"\x16\x03", True) == "undecided"
    assert probe(b"GET / HTTP/1.1\r\n", True) == "nomatch"
    assert probe(b"\x16\x04\x01", True) == "nomatch"
    assert probe(b"SSH-2.0", True) == "nomatch"


def test_spec():
    assert PROTOCOL.name == "tls" and PROTOCOL.aliases == ("ssl",)
    assert PROTOCOL.encrypts and PROTOCOL.ipprotos == frozenset({6})
    assert "invalid_certificate" in PROTOCOL.events
    parser = PROTOCOL.make_parser(PROTOCOL.parse_config({})[0], 6)  # type: ignore[misc]
    parser.feed(True, tls12_client_flight())
    assert parser.transactions[0].client.sni == b"example.com"
