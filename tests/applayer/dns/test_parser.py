"""DNS parsing: messages, compression, Suricata's name limits, events, TCP framing."""

from __future__ import annotations

import time

import pytest

from ruleengine.applayer.dns import DnsConfig, DnsParser
from ruleengine.applayer.dns.wire import (
    DnsName,
    Incomplete,
    Malformed,
    Soa,
    Srv,
    Sshfp,
    parse_message,
)
from tests.applayer.dns.helpers import (
    header,
    make,
    query,
    response,
    rich_response,
    tcp_frame,
)


def udp(config: DnsConfig | None = None) -> DnsParser:
    parser = make(config or DnsConfig(), 17)
    assert isinstance(parser, DnsParser)
    return parser


def tcp(config: DnsConfig | None = None) -> DnsParser:
    parser = make(config or DnsConfig(), 6)
    assert isinstance(parser, DnsParser) and parser.tcp
    return parser


def test_query_and_response_are_one_transaction_each() -> None:
    p = udp()
    p.feed(True, query(), 1.0)
    p.feed(False, response(), 2.0)
    assert [tx.tx_id for tx in p.transactions] == [0, 1]
    req, resp = p.transactions
    assert req.request is not None and req.response is None
    assert req.request.queries[0].name.value == b"www.example.com"
    assert req.request_complete and req.response_complete
    assert resp.response is not None and resp.request is None
    assert resp.response_progress == 1 and req.request_progress == 1
    assert [a.name.value for a in resp.response.answers] == [b"www.example.com",
                                                            b"a.example.net"]
    assert resp.response.answers[1].data == bytes([192, 0, 2, 7])
    assert resp.events == [] and req.events == []


def test_compressed_names_are_expanded() -> None:
    raw = response()
    assert b"\xc0" in raw  # scapy compressed it
    message = parse_message(raw)
    assert message.answers[0].data == DnsName(b"a.example.net")
    assert message.answers[1].name.value == b"a.example.net"


def test_rdata_types() -> None:
    m = parse_message(rich_response())
    by_type = {r.rrtype: r.data for r in m.answers}
    assert by_type[1] == bytes([192, 0, 2, 1])
    assert by_type[28] == bytes.fromhex("20010db8000000000000000000000001")
    assert by_type[15] == DnsName(b"mail.example.com")
    assert by_type[2] == DnsName(b"ns1.example.com")
    assert by_type[16] == [b"v=spf1 -all", b"two"]
    assert by_type[12] == DnsName(b"host.example.com")
    assert by_type[33] == Srv(1, 2, 5060, DnsName(b"sip.example.com"))
    assert by_type[44] == Sshfp(1, 2, bytes(range(32)))
    assert by_type[10] == b"nullbytes"
    assert by_type[99] == b"\x05hello"
    soa = m.authorities[0].data
    assert isinstance(soa, Soa)
    assert (soa.mname.value, soa.rname.value, soa.serial, soa.minimum) == (
        b"ns1.example.com", b"hostmaster.example.com", 2024, 300)
    assert m.additionals[1].rrtype == 41 and m.additionals[1].data == [(10, b"12345678")]


def test_self_pointer_first_is_malformed() -> None:
    p = udp()
    p.feed(True, query())
    p.feed(True, header() + b"\xc0\x0c" + b"\x00\x01\x00\x01")
    assert p.transactions[-1].events == ["malformed_data"]
    assert len(p.transactions) == 1


def test_self_pointer_after_pointer_is_infinite_loop() -> None:
    # offset 12: pointer to 14; offset 14: pointer to itself
    msg = header() + b"\xc0\x0e\xc0\x0e" + b"\x00\x01\x00\x01"
    p = udp()
    p.feed(True, msg)
    (tx,) = p.transactions
    assert "infinite_loop" in tx.events


def test_pointer_cycle_hits_label_limit() -> None:
    # 12 -> 14 -> 12 -> ...: not a self reference, stopped by the 255 label limit
    msg = header() + b"\xc0\x0e\xc0\x0c" + b"\x00\x01\x00\x01"
    started = time.perf_counter()
    p = udp()
    p.feed(True, msg)
    assert time.perf_counter() - started < 1
    (tx,) = p.transactions
    assert "too_many_labels" in tx.events and "name_too_long" in tx.events
    # the question goes on after the first pointer: its type is the next pointer
    assert tx.request is not None and tx.request.queries[0].rrtype == 0xC00C


def test_too_many_labels_without_pointer_is_malformed() -> None:
    msg = header() + b"\x01a" * 300 + b"\x00" + b"\x00\x01\x00\x01"
    p = udp()
    p.feed(True, query())
    p.feed(True, msg)
    assert p.transactions[-1].events == ["malformed_data"]


def test_long_name_is_truncated_to_1025() -> None:
    labels = b"".join(b"\x3f" + b"x" * 63 for _ in range(20))  # 20 * 64 - 1 = 1279 chars
    msg = header() + labels + b"\x00" + b"\x00\x01\x00\x01"
    p = udp()
    p.feed(True, msg)
    (tx,) = p.transactions
    assert tx.events == ["name_too_long"]
    assert tx.request is not None
    name = tx.request.queries[0].name
    assert name.truncated and len(name.value) == 1025
    assert tx.request.queries[0].rrtype == 1  # parsing went on after the long name


def test_pointer_past_end_is_malformed() -> None:
    p = udp()
    p.feed(True, query())
    p.feed(True, header() + b"\xcf\xff" + b"\x00\x01\x00\x01")
    assert p.transactions[-1].events == ["malformed_data"]


def test_truncated_message_every_prefix() -> None:
    full = response()
    for cut in range(len(full)):
        p = udp()
        p.feed(True, query())
        p.feed(False, full[:cut])
        assert len(p.transactions) == 1
        assert set(p.transactions[0].events) <= {"malformed_data"}
    with pytest.raises((Incomplete, Malformed)):
        parse_message(full[:-3])


def test_header_only_garbage_is_ignored_on_udp() -> None:
    p = udp()
    p.feed(True, query())
    p.feed(True, header(qd=0))  # a request without questions: not DNS, no event
    p.feed(True, b"\x00" * 5)
    assert len(p.transactions) == 1 and p.transactions[0].events == []
    assert not p.failed


def test_flag_events() -> None:
    p = udp()
    p.feed(True, query(z=1))
    assert p.transactions[-1].events == ["z_flag_set"]
    p.feed(True, query(opcode=9))
    assert p.transactions[-1].events == ["invalid_opcode"]
    p.feed(True, response())  # response flag on the to-server side
    assert p.transactions[-1].events == ["invalid_opcode", "not_request"]
    assert len(p.transactions) == 2
    p.feed(False, query())  # a query seen to the client: a transaction with not_response
    assert p.transactions[-1].response is not None
    assert p.transactions[-1].events == ["not_response"]


def test_invalid_authorities_and_additionals() -> None:
    good = response(compress=False)
    # claim one authority record that is not there: answers fine, authorities invalid
    bad = good[:8] + b"\x00\x01" + good[10:]
    p = udp()
    p.feed(False, bad)
    (tx,) = p.transactions
    assert tx.events == ["invalid_authorities"]
    assert tx.response is not None and len(tx.response.answers) == 2
    bad = good[:10] + b"\x00\x01"  + good[12:]
    p = udp()
    p.feed(False, bad)
    assert p.transactions[0].events == ["invalid_additionals"]


def test_ten_thousand_questions_bounded() -> None:
    first = b"\x01a\x00\x00\x01\x00\x01"
    rest = b"\xc0\x0c\x00\x01\x00\x01" * 9999
    msg = header(qd=10000) + first + rest
    started = time.perf_counter()
    p = udp()
    p.feed(True, msg)
    assert time.perf_counter() - started < 3
    (tx,) = p.transactions
    assert tx.request is not None and len(tx.request.queries) == 4096
    assert "too_many_records" in p.events
    p = udp(DnsConfig(max_records=10))
    p.feed(True, msg)
    assert p.transactions[0].request is not None
    assert len(p.transactions[0].request.queries) == 10


def test_pointer_amplification_bounded() -> None:
    # one name of 250 labels, then 10,000 questions that point to it
    name = b"\x01a" * 250 + b"\x00"
    msg = header(qd=10000) + name + b"\x00\x01\x00\x01" + b"\xc0\x0c\x00\x01\x00\x01" * 9999
    started = time.perf_counter()
    p = udp()
    p.feed(True, query())
    p.feed(True, msg)
    assert time.perf_counter() - started < 5
    assert p.transactions[-1].events == ["malformed_data"]


def test_transaction_cap() -> None:
    p = udp(DnsConfig(max_tx=5))
    for i in range(12):
        p.feed(True, query(dns_id=i))
    assert [tx.tx_id for tx in p.transactions] == [7, 8, 9, 10, 11]
    assert p.events.count("too_many_transactions") == 7


def test_tcp_split_at_every_byte() -> None:
    stream = tcp_frame(query("one.example")) + tcp_frame(query("two.example", dns_id=2))
    for cut in range(len(stream) + 1):
        p = tcp()
        p.feed(True, stream[:cut])
        p.feed(True, stream[cut:])
        names = [tx.request.queries[0].name.value for tx in p.transactions if tx.request]
        assert names == [b"one.example", b"two.example"], cut
        assert not p.failed
    p = tcp()
    for i in range(len(stream)):
        p.feed(True, stream[i:i + 1])
    assert len(p.transactions) == 2


def test_tcp_response_and_zero_length_frames() -> None:
    p = tcp()
    p.feed(True, b"\x00\x00" + tcp_frame(query()))
    p.feed(False, tcp_frame(response()) + tcp_frame(response(dns_id=9)))
    assert [tx.response is not None for tx in p.transactions] == [False, True, True]


def test_tcp_bad_message_stops_the_parser() -> None:
    p = tcp()
    p.feed(True, tcp_frame(query()))
    p.feed(True, tcp_frame(header(qd=2) + b"\x01a\x00\x00\x01\x00\x01"))
    assert p.failed and p.transactions[0].events == ["malformed_data"]
    p.feed(True, tcp_frame(query()))
    assert len(p.transactions) == 1


def test_tcp_gap_resync() -> None:
    p = tcp()
    p.feed(True, tcp_frame(query())[:10])
    p.gap(True, 100)
    p.feed(True, b"\xff\xff\xff\xff" * 10)  # not DNS: skipped
    p.feed(True, tcp_frame(query("after.gap")))
    assert [tx.request.queries[0].name.value for tx in p.transactions if tx.request] == [
        b"after.gap"]


def test_match_responses_by_id() -> None:
    p = udp(DnsConfig(match_responses=True))
    p.feed(True, query("a.example", dns_id=1))
    p.feed(True, query("b.example", dns_id=2))
    first = p.transactions[0]
    assert first.request_complete and not first.response_complete
    p.feed(False, response("b.example", dns_id=2))
    p.feed(False, response("c.example", dns_id=3))  # unsolicited: its own transaction
    assert len(p.transactions) == 3
    a, b, c = p.transactions
    assert b.response is not None and b.response.header.id == 2 and b.response_complete
    assert a.response is None and not a.response_complete
    assert c.request is None and c.response is not None
    assert c.request_complete is False
    p.close()
    assert a.response_complete and c.request_complete


def test_close_and_feed_after_close() -> None:
    p = udp()
    p.close(True)
    p.feed(True, query())
    assert p.transactions == []
    assert not p.encrypted
