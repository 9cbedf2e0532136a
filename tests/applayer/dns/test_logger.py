"""EVE ``dns`` objects: Suricata 8's v3 (default) and v2, validated against the schema."""

from __future__ import annotations

import pytest
from scapy.layers.dns import DNSRR

from ruleengine.applayer.dns import PROTOCOL, DnsConfig, DnsParser, alert_logger, log_sides
from tests.applayer.dns.helpers import (
    SCHEMA_PATH,
    make,
    query,
    response,
    rich_response,
    validate_event,
)

needs_schema = pytest.mark.skipif(not SCHEMA_PATH.exists(), reason="EVE schema not present")


def parsed(*messages: tuple[bool, bytes], config: DnsConfig | None = None) -> DnsParser:
    parser = make(config or DnsConfig(), 17)
    assert isinstance(parser, DnsParser)
    for to_server, raw in messages:
        parser.feed(to_server, raw)
    return parser


def test_v3_request() -> None:
    (tx,) = parsed((True, query("www.Example.com", "AAAA", 0xBEEF))).transactions
    ((to_server, obj),) = log_sides(tx, {})
    assert to_server is True
    assert obj == {"version": 3, "type": "request", "tx_id": 0, "id": 0xBEEF, "flags": "100",
                   "rd": True, "opcode": 0, "rcode": "NOERROR",
                   "queries": [{"rrname": "www.Example.com", "rrtype": "AAAA"}]}


def test_v3_response_answers_and_grouped() -> None:
    p = parsed((True, query()), (False, response()))
    ((to_server, obj),) = log_sides(p.transactions[1], {})
    assert to_server is False
    assert obj["type"] == "response" and obj["tx_id"] == 1 and obj["id"] == 0x1234
    assert obj["flags"] == "8180" and obj["qr"] and obj["rd"] and obj["ra"]
    assert "aa" not in obj and "tc" not in obj
    assert obj["answers"] == [
        {"rrname": "www.example.com", "rrtype": "CNAME", "ttl": 300, "rdata": "a.example.net"},
        {"rrname": "a.example.net", "rrtype": "A", "ttl": 60, "rdata": "192.0.2.7"},
    ]
    assert obj["grouped"] == {"CNAME": ["a.example.net"], "A": ["192.0.2.7"]}


def test_rich_response_fields() -> None:
    (tx,) = parsed((False, rich_response())).transactions
    ((_, obj),) = log_sides(tx, {})
    answers = {a["rrtype"]: a for a in obj["answers"]}
    assert answers["AAAA"]["rdata"] == "2001:0db8:0000:0000:0000:0000:0000:0001"
    assert answers["MX"]["rdata"] == "mail.example.com"
    assert answers["SRV"]["srv"] == {"priority": 1, "weight": 2, "port": 5060,
                                     "name": "sip.example.com"}
    assert answers["SSHFP"]["sshfp"]["fingerprint"].startswith("00:01:02:")
    assert answers["SSHFP"]["sshfp"]["algo"] == 1 and answers["SSHFP"]["sshfp"]["type"] == 2
    assert answers["NULL"]["rdata"] == "nullbytes"
    assert "rdata" not in answers["SPF"]  # a type Suricata does not decode
    assert [a["rdata"] for a in obj["answers"] if a["rrtype"] == "TXT"] == ["v=spf1 -all",
                                                                         "two"]
    assert obj["grouped"]["TXT"] == ["v=spf1 -all", "two"]
    assert obj["aa"] is True
    assert obj["authorities"] == [{"rrname": "example.com", "rrtype": "SOA", "ttl": 11, "soa": {
        "mname": "ns1.example.com", "rname": "hostmaster.example.com", "serial": 2024,
        "refresh": 3600, "retry": 600, "expire": 86400, "minimum": 300}}]
    assert obj["additionals"][0] == {"rrname": "ns1.example.com", "rrtype": "A", "ttl": 12,
                                     "rdata": "192.0.2.53"}
    assert obj["additionals"][1]["opt"] == [{"code": 10, "data": "3132333435363738"}]
    assert obj["queries"] == [{"rrname": "example.com", "rrtype": "ANY"}]


def test_formats_and_filters() -> None:
    (tx,) = parsed((False, response())).transactions
    ((_, obj),) = log_sides(tx, {"formats": ["grouped"]})
    assert "answers" not in obj and "grouped" in obj
    ((_, obj),) = log_sides(tx, {"formats": ["detailed"]})
    assert "answers" in obj and "grouped" not in obj
    assert log_sides(tx, {"responses": "no"}) == []
    assert log_sides(tx, {"types": ["aaaa"]}) == []  # the query is an A query
    assert len(log_sides(tx, {"types": ["a"]})) == 1


def test_message_without_queries_is_not_logged() -> None:
    from scapy.layers.dns import DNS

    raw = bytes(DNS(id=5, qr=1, qd=[], an=[DNSRR(rrname="x.example", rdata="192.0.2.1")]))
    (tx,) = parsed((False, raw)).transactions
    assert log_sides(tx, {}) == []
    assert PROTOCOL.eve_logger is not None and PROTOCOL.eve_logger(tx, {}) is None


def test_v2() -> None:
    from scapy.layers.dns import DNS, DNSQR

    two = bytes(DNS(id=3, rd=1, qd=[DNSQR(qname="a.example"), DNSQR(qname="b.example",
                                                                     qtype="MX")]))
    p = parsed((True, two), (False, response(dns_id=3)))
    objs = log_sides(p.transactions[0], {"version": 2})
    assert [o for _, o in objs] == [
        {"version": 2, "type": "query", "id": 3, "rrname": "a.example", "rrtype": "A",
         "tx_id": 0, "opcode": 0},
        {"version": 2, "type": "query", "id": 3, "rrname": "b.example", "rrtype": "MX",
         "tx_id": 0, "opcode": 0},
    ]
    ((to_server, answer),) = log_sides(p.transactions[1], {"version": "2"})
    assert to_server is False
    assert answer["type"] == "answer" and answer["version"] == 2
    assert answer["rrname"] == "www.example.com" and answer["rrtype"] == "A"
    assert answer["rcode"] == "NOERROR" and len(answer["answers"]) == 2


def test_eve_logger_returns_each_object_once() -> None:
    from scapy.layers.dns import DNS, DNSQR

    two = bytes(DNS(id=3, qd=[DNSQR(qname="a.example"), DNSQR(qname="b.example")]))
    p = parsed((True, two))
    logger = PROTOCOL.eve_logger
    assert logger is not None and PROTOCOL.log_when == "each_side"
    tx = p.transactions[0]
    first, second = logger(tx, {"version": 2}), logger(tx, {"version": 2})
    assert first is not None and second is not None
    assert (first["rrname"], second["rrname"]) == ("a.example", "b.example")
    assert logger(tx, {"version": 2}) is None


def test_paired_transaction_logs_each_side() -> None:
    p = parsed((True, query()), config=DnsConfig(match_responses=True))
    tx = p.transactions[0]
    logger = PROTOCOL.eve_logger
    assert logger is not None
    request = logger(tx, {})
    assert request is not None and request["type"] == "request"
    assert logger(tx, {}) is None
    p.feed(False, response())
    answer = logger(tx, {})
    assert answer is not None and answer["type"] == "response"
    assert [side for side, _ in log_sides(tx, {})] == [True, False]


def test_rcode_names() -> None:
    (tx,) = parsed((False, response(rcode=3, an=[]))).transactions
    ((_, obj),) = log_sides(tx, {})
    assert obj["rcode"] == "NXDOMAIN" and "answers" not in obj
    (tx,) = parsed((False, response(rcode=12, an=[]))).transactions
    assert log_sides(tx, {})[0][1]["rcode"] == "12"


def test_alert_object() -> None:
    p = parsed((True, query()), (False, response()))
    obj = alert_logger(p.transactions[1], {})
    assert obj is not None and obj["type"] == "response" and "answers" in obj
    assert "grouped" not in obj
    req = alert_logger(p.transactions[0], {})
    assert req is not None and req["queries"][0]["rrname"] == "www.example.com"


def test_non_utf8_names_are_escaped() -> None:
    from tests.applayer.dns.helpers import header

    msg = header() + b"\x03a\xffb\x00\x00\x01\x00\x01"
    (tx,) = parsed((True, msg)).transactions
    assert log_sides(tx, {})[0][1]["queries"][0]["rrname"] == "a\\xFFb"


@needs_schema
@pytest.mark.parametrize("options", [{}, {"version": 2}, {"formats": ["detailed"]}])
def test_schema(options: dict[str, object]) -> None:
    p = parsed((True, query()), (False, response()), (False, rich_response()),
               (True, query(z=1, opcode=4)), (False, response(rcode=3, an=[], tc=1)))
    count = 0
    for tx in p.transactions:
        for _, obj in log_sides(tx, options):
            validate_event(obj)
            count += 1
        alert = alert_logger(tx, {})
        assert alert is not None
        validate_event(alert, "alert")
    assert count >= 5


@needs_schema
def test_schema_long_and_truncated_names() -> None:
    from tests.applayer.dns.helpers import header

    labels = b"".join(b"\x3f" + b"x" * 63 for _ in range(20))
    p = parsed((True, header() + labels + b"\x00\x00\x01\x00\x01"))
    obj = log_sides(p.transactions[0], {})[0][1]
    assert obj["queries"][0]["rrname_truncated"] is True
    validate_event(obj)
