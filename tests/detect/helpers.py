"""Shared fakes for detection tests: rules from text (the real parser), packets,
flows and HTTP transactions."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from ruleengine.decode.packet import IPPROTO_TCP, IPPROTO_UDP, Packet
from ruleengine.detect.content import compile_buffer, inspect
from ruleengine.rules.loader import parse_rule
from ruleengine.rules.model import PAYLOAD, Rule

CLIENT = "10.0.0.1"
SERVER = "10.0.0.2"


def rule(text: str) -> Rule:
    return parse_rule(text)


def payload_matches(options: str, data: bytes) -> bool:
    """Does the payload part of ``alert tcp any any -> any any (<options>)`` match?"""
    r = rule(f"alert tcp any any -> any any ({options} sid:1;)")
    bm = r.buffer(PAYLOAD)
    assert bm is not None
    return inspect(compile_buffer(bm), data, {})


def buffer_matches(options: str, name: str, data: bytes) -> bool:
    r = rule(f"alert http any any -> any any ({options} sid:1;)")
    bm = r.buffer(name)
    assert bm is not None
    return inspect(compile_buffer(bm), data, {})


def pkt(
    payload: bytes = b"",
    *,
    src: str = CLIENT,
    dst: str = SERVER,
    sport: int = 40000,
    dport: int = 80,
    proto: int = IPPROTO_TCP,
    flags: int = 0x18,
    ts: float = 1.0,
) -> Packet:
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    p = Packet(
        ts, 0, 60 + len(payload), s.version, s.packed, d.packed, proto, sport, dport, payload,
    )  # fmt: skip
    if proto == IPPROTO_TCP:
        p.tcp_flags = flags
    p.ttl = 64
    return p


def reply(payload: bytes = b"", **kw: Any) -> Packet:
    kw.setdefault("src", SERVER)
    kw.setdefault("dst", CLIENT)
    kw.setdefault("sport", 80)
    kw.setdefault("dport", 40000)
    return pkt(payload, **kw)


def udp(payload: bytes = b"", **kw: Any) -> Packet:
    kw.setdefault("dport", 53)
    return pkt(payload, proto=IPPROTO_UDP, **kw)


@dataclass
class FakeFlow:
    state: str = "established"
    alproto: str | None = "http"
    flowbits: set[str] = field(default_factory=set)
    detect: object | None = None


@dataclass
class FakeTx:
    tx_id: int = 0
    request: dict[str, Any] = field(default_factory=dict)
    response: dict[str, Any] = field(default_factory=dict)

    def buffer(self, name: str, to_server: bool | None = None) -> bytes | list[bytes] | None:
        if to_server is False:
            return self.response.get(name)
        if to_server is True:
            return self.request.get(name)
        return self.request.get(name, self.response.get(name))
