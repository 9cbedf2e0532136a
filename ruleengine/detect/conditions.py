"""Per-packet conditions: rule header (addresses, ports), the ``flow`` keyword, and
non-buffer packet keywords (``dsize``, ``flags``, ``ack``, ``ttl``...).

Addresses are compiled to integer ranges once so the per-packet test is a few
integer comparisons (``ipaddress`` objects are too slow on the hot path).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from typing import Any, Protocol

from ruleengine.applayer.registry import protocols
from ruleengine.decode.packet import IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP
from ruleengine.rules.model import (
    AddressSet,
    FlowCondition,
    IntCondition,
    PacketCondition,
    PortSet,
    TcpFlags,
)


class FlowLike(Protocol):
    """What detection reads from a flow (``ruleengine.flow.table.Flow``)."""

    flowbits: set[str]
    detect: Any
    state: str
    alproto: str | None


ESTABLISHED_STATES = frozenset({"established", "closed"})
"""Flow states in which Suricata sets FLOW_PKT_ESTABLISHED (TCP after the handshake
until it is torn down; UDP/other once both directions were seen)."""


def flow_established(flow: FlowLike | None) -> bool:
    return flow is not None and flow.state in ESTABLISHED_STATES


class _Intervals:
    """Sorted, merged integer intervals of one IP version; membership by bisection
    (rule address lists can hold thousands of entries)."""

    __slots__ = ("ends", "starts")

    def __init__(self, ranges: list[tuple[int, int]]) -> None:
        merged: list[list[int]] = []
        for lo, hi in sorted(ranges):
            if merged and lo <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        self.starts = [lo for lo, _ in merged]
        self.ends = [hi for _, hi in merged]

    def __contains__(self, value: int) -> bool:
        i = bisect_right(self.starts, value) - 1
        return i >= 0 and value <= self.ends[i]


def _by_version(nets: tuple[Any, ...]) -> dict[int, _Intervals]:
    ranges: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
    for net in nets:
        lo = int(net.network_address)
        # not net.num_addresses: it goes through broadcast_address and hostmask, a third
        # of building the headers of ET's block lists
        ranges[net.version].append((lo, lo + (1 << (net.max_prefixlen - net.prefixlen)) - 1))
    return {v: _Intervals(r) for v, r in ranges.items()}


class CompiledAddresses:
    """An :class:`AddressSet` as integer intervals."""

    __slots__ = ("exclude", "has_include", "include", "is_any")

    def __init__(self, addrs: AddressSet) -> None:
        self.is_any = addrs.is_any
        self.has_include = bool(addrs.include)
        self.include = _by_version(addrs.include)
        self.exclude = _by_version(addrs.exclude)

    def contains(self, version: int, value: int) -> bool:
        if self.is_any:
            return True
        inc = self.include.get(version)
        if self.has_include and (inc is None or value not in inc):
            return False
        exc = self.exclude.get(version)
        return exc is None or value not in exc


def addr_int(packed: bytes) -> int:
    return int.from_bytes(packed, "big")


class CompiledHeader:
    """Rule header test: protocol number, addresses, ports and direction."""

    __slots__ = ("both", "dport", "dst", "hid", "ip_version", "protos", "sport", "src")

    def __init__(
        self,
        protos: tuple[int, ...],
        src: AddressSet,
        sports: PortSet,
        dst: AddressSet,
        dports: PortSet,
        both: bool,
    ) -> None:
        self.protos = frozenset(protos)  # empty = any IP protocol
        self.ip_version = 0  # 4 or 6 for the ip4/ip6 header protocols
        self.hid = 0  # identity for per-packet result caching (set by the engine)
        self.src = CompiledAddresses(src)
        self.dst = CompiledAddresses(dst)
        self.sport = None if sports.is_any else sports
        self.dport = None if dports.is_any else dports
        self.both = both

    def _one_way(self, ver: int, s: int, sp: int, d: int, dp: int) -> bool:
        if not self.src.contains(ver, s) or not self.dst.contains(ver, d):
            return False
        if self.sport is not None and not self.sport.contains(sp):
            return False
        return self.dport is None or self.dport.contains(dp)

    def matches(self, proto: int, ver: int, s: int, sp: int, d: int, dp: int) -> bool:
        if self.protos and proto not in self.protos:
            return False
        if self.ip_version and ver != self.ip_version:
            return False
        if self._one_way(ver, s, sp, d, dp):
            return True
        return self.both and self._one_way(ver, d, dp, s, sp)


_TCP, _UDP = (IPPROTO_TCP,), (IPPROTO_UDP,)
PROTO_NUMBERS: dict[str, tuple[int, ...]] = {
    "ip": (), "ipv4": (), "ip4": (), "ipv6": (), "ip6": (), "pkthdr": (),
    "tcp": _TCP, "tcp-pkt": _TCP, "tcp-stream": _TCP, "udp": _UDP,
    "icmp": (IPPROTO_ICMP, IPPROTO_ICMPV6), "icmpv4": (IPPROTO_ICMP,),
    "icmpv6": (IPPROTO_ICMPV6,),
}  # fmt: skip
# app-layer protocols from the registry: ``alert dns`` covers UDP and TCP, ``alert tls`` TCP
for _spec in protocols():
    for _name in (_spec.name, *_spec.aliases):
        PROTO_NUMBERS.setdefault(_name, tuple(sorted(_spec.ipprotos)))
"""Header protocol -> IP protocols it covers (empty: any)."""

IP_VERSIONS: dict[str, int] = {"ipv4": 4, "ip4": 4, "ipv6": 6, "ip6": 6, "icmpv6": 6}
"""Header protocols that also fix the IP version."""


def flow_condition_matches(
    fc: FlowCondition, flow: FlowLike | None, to_server: bool, frag: bool
) -> bool:
    """Suricata's ``FlowMatch``: every flag given must hold (stream flags are handled
    by the caller as inspection constraints)."""
    if fc.no_frag and frag:
        return False
    if fc.only_frag and not frag:
        return False
    has_flow = flow is not None
    if fc.to_server and not (has_flow and to_server):
        return False
    if fc.to_client and not (has_flow and not to_server):
        return False
    established = flow_established(flow)
    if fc.established and not established:
        return False
    return not (fc.not_established and established)


def tcp_flags_match(tf: TcpFlags, pflags: int) -> bool:
    """Suricata ``FlagsMatch`` (``src/detect-tcp-flags.c``)."""
    dflags = tf.flags
    if not dflags and pflags:
        return tf.modifier == "!"
    flags = pflags & tf.mask
    if tf.modifier == "*":
        return (flags & dflags) > 0
    if tf.modifier == "+":
        return (flags & dflags) == dflags
    if tf.modifier == "!":
        return (flags & dflags) != dflags
    return flags == dflags


def _tcp_only(getter: Callable[[Any], int]) -> Callable[[Any], int | None]:
    def get(pkt: Any) -> int | None:
        return getter(pkt) if pkt.proto == IPPROTO_TCP else None

    return get


def _icmp_only(getter: Callable[[Any], int]) -> Callable[[Any], int | None]:
    def get(pkt: Any) -> int | None:
        if pkt.proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
            return getter(pkt)
        return None

    return get


def _ip_only(getter: Callable[[Any], int]) -> Callable[[Any], int | None]:
    def get(pkt: Any) -> int | None:
        return getter(pkt) if pkt.ip_version else None

    return get


PACKET_FIELDS: dict[str, Callable[[Any], int | None]] = {
    "dsize": lambda p: len(p.payload),
    "ttl": _ip_only(lambda p: int(p.ttl)),
    "id": _ip_only(lambda p: int(p.ip_id)),
    "ip_proto": _ip_only(lambda p: int(p.proto)),
    "ack": _tcp_only(lambda p: int(p.ack)),
    "seq": _tcp_only(lambda p: int(p.seq)),
    "window": _tcp_only(lambda p: int(p.window)),
    "itype": _icmp_only(lambda p: int(p.icmp_type)),
    "icode": _icmp_only(lambda p: int(p.icmp_code)),
    "flags": _tcp_only(lambda p: int(p.tcp_flags)),
}
"""Packet keyword field -> value getter (None: the keyword cannot match this packet)."""
# Suricata 8's ``tcp.*`` names of the same fields
PACKET_FIELDS.update({f"tcp.{name}": PACKET_FIELDS[name]
                      for name in ("window", "ack", "seq", "flags")})

TX_FIELDS = frozenset({"urilen", "urilen.raw", "urilen_raw", "urilen.norm"})
"""Conditions evaluated on an HTTP transaction rather than on the packet."""


def packet_condition_supported(pc: PacketCondition) -> bool:
    return pc.field in PACKET_FIELDS or pc.field in TX_FIELDS


def packet_condition_matches(pc: PacketCondition, pkt: Any) -> bool:
    value = PACKET_FIELDS[pc.field](pkt)
    if value is None:
        return False
    cond = pc.cond
    if isinstance(cond, TcpFlags):
        return tcp_flags_match(cond, value)
    assert isinstance(cond, IntCondition)
    return cond.matches(value)
