"""DNS test traffic built with scapy's DNS layer (and by hand for malformed names)."""

from __future__ import annotations

import json
import struct
from functools import cache
from pathlib import Path
from typing import Any

from scapy.layers.dns import (
    DNS,
    DNSQR,
    DNSRR,
    DNSRRMX,
    DNSRROPT,
    DNSRRSOA,
    DNSRRSRV,
    EDNS0TLV,
)

SCHEMA_PATH = Path(__file__).resolve().parents[4] / "shared" / "corpus" / "eve-schema" / \
    "schema.json"


def query(name: str = "www.example.com", qtype: str | int = "A", dns_id: int = 0x1234,
          **kw: Any) -> bytes:
    return bytes(DNS(id=dns_id, rd=1, qd=DNSQR(qname=name, qtype=qtype), **kw))


def response(name: str = "www.example.com", dns_id: int = 0x1234, compress: bool = True,
             **kw: Any) -> bytes:
    kw.setdefault("an", [DNSRR(rrname=name, type="CNAME", ttl=300, rdata="a.example.net"),
                         DNSRR(rrname="a.example.net", type="A", ttl=60, rdata="192.0.2.7")])
    pkt = DNS(id=dns_id, qr=1, rd=1, ra=1, qd=DNSQR(qname=name, qtype="A"), **kw)
    return bytes(pkt.compress() if compress else pkt)  # type: ignore[no-untyped-call]


def rich_response(dns_id: int = 7) -> bytes:
    """Every rdata type Suricata decodes, compressed."""
    sshfp = bytes([1, 2]) + bytes(range(32))
    pkt = DNS(
        id=dns_id, qr=1, aa=1, rd=1, ra=1, rcode=0,
        qd=DNSQR(qname="example.com", qtype=255),
        an=[
            DNSRR(rrname="example.com", type="A", ttl=1, rdata="192.0.2.1"),
            DNSRR(rrname="example.com", type="AAAA", ttl=2, rdata="2001:db8::1"),
            DNSRRMX(rrname="example.com", ttl=3, preference=10, exchange="mail.example.com"),
            DNSRR(rrname="example.com", type="NS", ttl=4, rdata="ns1.example.com"),
            DNSRR(rrname="example.com", type="TXT", ttl=5, rdata=[b"v=spf1 -all", b"two"]),
            DNSRR(rrname="1.2.0.192.in-addr.arpa", type="PTR", ttl=6,
                  rdata="host.example.com"),
            DNSRRSRV(rrname="_sip._tcp.example.com", ttl=7, priority=1, weight=2, port=5060,
                     target="sip.example.com"),
            DNSRR(rrname="example.com", type=44, ttl=8, rdata=sshfp),
            DNSRR(rrname="example.com", type="NULL", ttl=9, rdata=b"nullbytes"),
            DNSRR(rrname="example.com", type=99, ttl=10, rdata=b"\x05hello"),
        ],
        ns=[DNSRRSOA(rrname="example.com", ttl=11, mname="ns1.example.com",
                     rname="hostmaster.example.com", serial=2024, refresh=3600, retry=600,
                     expire=86400, minimum=300)],
        ar=[DNSRR(rrname="ns1.example.com", type="A", ttl=12, rdata="192.0.2.53"),
            DNSRROPT(rclass=4096, rdata=[EDNS0TLV(optcode=10, optdata=b"12345678")])],
    )
    return bytes(pkt.compress())  # type: ignore[no-untyped-call]


def header(dns_id: int = 1, flags: int = 0x0100, qd: int = 1, an: int = 0, ns: int = 0,
           ar: int = 0) -> bytes:
    return struct.pack("!6H", dns_id, flags, qd, an, ns, ar)


def tcp_frame(message: bytes) -> bytes:
    return len(message).to_bytes(2, "big") + message


@cache
def schema_validator() -> Any:
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


def validate_event(dns_obj: dict[str, Any], event_type: str = "dns") -> None:
    event = {"timestamp": "2024-01-01T00:00:00.000000+0000", "flow_id": 1,
             "event_type": event_type, "src_ip": "192.0.2.1", "src_port": 1234,
             "dest_ip": "192.0.2.53", "dest_port": 53, "proto": "UDP", "dns": dns_obj}
    if event_type == "alert":
        event["alert"] = {"action": "allowed", "gid": 1, "signature_id": 1, "rev": 1,
                          "signature": "x", "category": "", "severity": 3}
    errors = sorted(schema_validator().iter_errors(json.loads(json.dumps(event))),
                    key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]


def make(config: Any, ipproto: int) -> Any:
    """``PROTOCOL.make_parser`` (asserted present): a DnsParser."""
    from ruleengine.applayer.dns import PROTOCOL, DnsParser

    factory = PROTOCOL.make_parser
    assert factory is not None
    parser = factory(config, ipproto)
    assert isinstance(parser, DnsParser)
    return parser
