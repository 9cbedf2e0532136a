"""The rule header compiled for the per-packet test (protocol, addresses, ports,
direction) and what detection reads of a flow. The keyword tests (``flow``, ``dsize``,
``flags``...) are their keyword modules' (``ruleengine/keywords/``).

Addresses are compiled to integer ranges once so the per-packet test is a few
integer comparisons (``ipaddress`` objects are too slow on the hot path).
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any, Protocol

from ruleengine.applayer.registry import protocols
from ruleengine.decode.packet import IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP
from ruleengine.rules.model import (
    AddressSet,
    PortSet,
)


class FlowLike(Protocol):
    """What detection reads from a flow (``ruleengine.flow.table.Flow``)."""

    flowbits: set[str]
    detect: Any
    state: str
    alproto: str | None


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
