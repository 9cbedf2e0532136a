"""DNS buffers, keywords, probe and configuration."""

from __future__ import annotations

import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR, DNSRRSOA

from ruleengine.applayer.base import BufferDirection, TxMatchContext
from ruleengine.applayer.dns import (
    PROTOCOL,
    DnsConfig,
    DnsParser,
    parse_config,
    probe_tcp_result,
    probe_udp_result,
)
from ruleengine.applayer.dns.detect import parse_multi_uint, parse_uint
from tests.applayer.dns.helpers import header, make, query, response, rich_response, tcp_frame

TS, TC = TxMatchContext(True), TxMatchContext(False)


def buffers() -> dict[str, object]:
    return {b.name: b for b in PROTOCOL.buffers}


def parsed(*messages: tuple[bool, bytes], config: DnsConfig | None = None) -> DnsParser:
    parser = make(config or DnsConfig(), 17)
    assert isinstance(parser, DnsParser)
    for to_server, raw in messages:
        parser.feed(to_server, raw)
    return parser


def get(name: str, tx: object, to_server: bool) -> object:
    spec = next(b for b in PROTOCOL.buffers if b.name == name or name in b.aliases)
    if to_server or spec.direction is BufferDirection.TO_CLIENT:
        assert spec.getter is not None
        return spec.getter(tx)
    assert spec.getter_toclient is not None
    return spec.getter_toclient(tx)


def test_buffer_table() -> None:
    table = {b.name: b for b in PROTOCOL.buffers}
    assert table["dns.query"].aliases == ("dns_query",)
    assert table["dns.query"].direction is BufferDirection.TO_SERVER
    assert table["dns.response.rrname"].direction is BufferDirection.TO_CLIENT
    for name in ("dns.query.name", "dns.queries.rrname", "dns.answer.name",
                 "dns.answers.rrname", "dns.authorities.rrname", "dns.additionals.rrname"):
        assert table[name].direction is BufferDirection.BOTH
        assert table[name].getter_toclient is not None
    assert all(b.multi for b in PROTOCOL.buffers)


def test_query_buffers() -> None:
    two = bytes(DNS(id=1, qd=[DNSQR(qname="evil.example"), DNSQR(qname="good.example")]))
    req, resp = parsed((True, two), (False, response())).transactions
    assert get("dns_query", req, True) == [b"evil.example", b"good.example"]
    assert get("dns.query", resp, True) is None
    assert get("dns.queries.rrname", req, True) == [b"evil.example", b"good.example"]
    assert get("dns.queries.rrname", resp, False) == [b"www.example.com"]
    assert get("dns.query.name", resp, False) == [b"www.example.com"]
    assert get("dns.query.name", resp, True) is None


def test_record_buffers() -> None:
    (tx,) = parsed((False, rich_response())).transactions
    answers = get("dns.answers.rrname", tx, False)
    assert isinstance(answers, list) and answers[0] == b"example.com" and len(answers) == 10
    assert get("dns.answer.name", tx, False) == answers
    assert get("dns.authorities.rrname", tx, False) == [b"example.com"]
    assert get("dns.authorities.rrname", tx, True) == [b"example.com"]  # response's, always
    assert get("dns.additionals.rrname", tx, False) == [b"ns1.example.com"]  # OPT root stops
    names = get("dns.response.rrname", tx, False)
    assert isinstance(names, list)
    assert names[:3] == [b"example.com", b"example.com", b"example.com"]
    assert b"mail.example.com" in names and b"host.example.com" in names
    assert b"ns1.example.com" in names  # NS rdata and the SOA mname
    assert b"sip.example.com" not in names  # SRV targets are not names for this buffer


def test_empty_name_ends_a_multi_buffer() -> None:
    raw = bytes(DNS(id=1, qr=1, qd=[DNSQR(qname="a.example")],
                    an=[DNSRR(rrname="x.example", rdata="192.0.2.1"),
                        DNSRR(rrname=".", rdata="192.0.2.2"),
                        DNSRR(rrname="y.example", rdata="192.0.2.3")],
                    ns=[DNSRRSOA(rrname="example", mname="m.example", rname="r.example")]))
    (tx,) = parsed((False, raw)).transactions
    assert get("dns.answers.rrname", tx, False) == [b"x.example"]
    assert get("dns.response.rrname", tx, False) == [
        b"a.example", b"x.example", b"example", b"m.example"]


@pytest.mark.parametrize(("text", "yes", "no"), [
    ("4", [4], [0, 5]), ("!4", [0, 5], [4]), (">3", [4, 15], [3]), ("1-3", [2], [1, 3]),
    ("!1-3", [1, 3, 0], [2]), ("<=2", [0, 2], [3]), (">=7", [7], [6]), ("0x4", [4], [3]),
    ("&0x3=1", [1, 5], [2]), ("2<>5", [3], [5]),
])
def test_uint_syntax(text: str, yes: list[int], no: list[int]) -> None:
    match = parse_uint(text, 8)
    assert all(match(v) for v in yes) and not any(match(v) for v in no)


@pytest.mark.parametrize("bad", ["", "x", "256", "3-1", "<0", "1-", "--1", ">255"])
def test_uint_errors(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_uint(bad, 8)


def keyword(name: str) -> object:
    return next(k for k in PROTOCOL.keywords if k.name == name)


def test_opcode_keyword() -> None:
    kw = next(k for k in PROTOCOL.keywords if k.name == "dns.opcode")
    assert kw.negatable
    req, resp = parsed((True, query(opcode=4)), (False, response())).transactions
    assert kw.match(kw.parse("4"), req, TS) is True
    assert kw.match(kw.parse("!4"), req, TS) is False
    assert kw.match(kw.parse("0"), resp, TC) is True
    assert kw.match(kw.parse("4"), req, TC) is False  # no response in this transaction
    with pytest.raises(ValueError):
        kw.parse("16x")


def test_rcode_keyword() -> None:
    kw = next(k for k in PROTOCOL.keywords if k.name == "dns.rcode")
    (tx,) = parsed((False, response(rcode=3, an=[]))).transactions
    assert kw.match(kw.parse("NXDOMAIN"), tx, TC) is True
    assert kw.match(kw.parse("nxdomain"), tx, TC) is True
    assert kw.match(kw.parse("!NXDOMAIN"), tx, TC) is False
    assert kw.match(kw.parse("3"), tx, TC) is True
    assert kw.match(kw.parse("!0"), tx, TC) is True
    with pytest.raises(ValueError):
        kw.parse("NOSUCHCODE")


def test_rrtype_keyword() -> None:
    kw = next(k for k in PROTOCOL.keywords if k.name == "dns.rrtype")
    req, resp = parsed((True, query(qtype="AAAA")), (False, response())).transactions
    assert kw.match(kw.parse("AAAA"), req, TS) is True
    assert kw.match(kw.parse("28"), req, TS) is True
    assert kw.match(kw.parse("a"), req, TS) is False
    # to the client: the answers' types (CNAME, A), not the question's
    assert kw.match(kw.parse("CNAME"), resp, TC) is True
    assert kw.match(kw.parse("A,all"), resp, TC) is False
    assert kw.match(kw.parse("A,-1"), resp, TC) is True
    assert kw.match(kw.parse("!0"), resp, TC) is True
    assert parse_multi_uint("5,any", 16, {}).index == "any"
    with pytest.raises(ValueError):
        kw.parse("A,sometimes")


def test_paired_missing_side_is_undecided() -> None:
    kw = next(k for k in PROTOCOL.keywords if k.name == "dns.rcode")
    (tx,) = parsed((True, query()), config=DnsConfig(match_responses=True)).transactions
    assert kw.match(kw.parse("0"), tx, TC) is None  # the response may still come


def test_probe() -> None:
    assert PROTOCOL.probe is not None
    assert PROTOCOL.probe(query(), True) == "match"
    assert PROTOCOL.probe(response(), True) == "match"  # responses too, any direction
    assert PROTOCOL.probe(tcp_frame(query()), True) == "match"
    assert PROTOCOL.probe(tcp_frame(query())[:14], True) == "undecided"  # wait for it all
    assert PROTOCOL.probe(tcp_frame(query())[:20], True) == "undecided"
    assert PROTOCOL.probe(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", True) == "nomatch"
    assert PROTOCOL.probe(b"\x00", True) == "undecided"
    assert probe_udp_result(query(), True) == "match"
    assert probe_udp_result(header(qd=0), True) == "nomatch"  # a request needs a question
    assert probe_udp_result(header(qd=3) + b"\x01a\x00\x00\x01\x00\x01", True) == "nomatch"
    assert probe_tcp_result(tcp_frame(response()), False) == "match"
    assert probe_tcp_result(b"\x00\x20" + header(qd=0), False) == "nomatch"
    big = tcp_frame(response(an=[DNSRR(rrname="x.example", type="TXT", rdata=[b"t" * 200])
                                 for _ in range(10)]))
    assert len(big) > 1100
    assert probe_tcp_result(big[:1024], False) == "match"  # long: judged on a prefix
    assert probe_tcp_result(big[:100], False) == "undecided"
    assert probe_tcp_result(big[:2] + b"\x00\x01" + big[4:14] + b"\x80" * 40, False) \
        == "nomatch"
    assert PROTOCOL.ipprotos == frozenset({6, 17})
    assert PROTOCOL.default_ports == {17: (53,), 6: (53,)}


def test_tls_client_hellos_are_not_dns() -> None:
    import random

    rng = random.Random(7)
    claimed = 0
    for _ in range(2000):
        body = bytes([1, 0, 1, 0xFC, 3, 3]) + rng.randbytes(300)
        hello = bytes([0x16, 3, 1]) + len(body).to_bytes(2, "big") + body
        assert PROTOCOL.probe is not None
        claimed += PROTOCOL.probe(hello, True) == "match"
    assert claimed == 0


def test_config() -> None:
    config, warnings = parse_config({})
    assert config == DnsConfig() and warnings == []
    config, warnings = parse_config({
        "tcp": {"enabled": "no", "detection-ports": {"dp": 5353}},
        "udp": {"enabled": "yes", "detection-ports": {"dp": "[53, 5300:5301]"}},
        "request-flood": 500, "max-tx": "10", "match-responses": "yes",
    })
    assert not config.tcp_enabled and config.udp_enabled
    assert config.tcp_ports == (5353,) and config.udp_ports == (53, 5300, 5301)
    assert config.max_tx == 10 and config.match_responses
    assert any("request-flood" in w for w in warnings)
    config, warnings = parse_config({"max-tx": "lots", "udp": {"detection-ports": "x"},
                                     "tcp": "yes", "bogus": 1})
    assert config.max_tx == 4096 and config.udp_ports == (53,)
    assert len(warnings) == 4
    assert PROTOCOL.parse_config is parse_config


def test_events_declared() -> None:
    assert PROTOCOL.events == frozenset({
        "malformed_data", "not_request", "not_response", "z_flag_set", "invalid_opcode",
        "name_too_long", "infinite_loop", "too_many_labels", "invalid_additionals",
        "invalid_authorities"})
