"""IP-only rules in address tables, as Suricata's IP-only engine (detect-engine-iponly.c).

An IP-only rule (addresses only: no ports, no payload, no keyword that reads the packet)
is decided by the packet's addresses alone, once per flow and direction. ET Open has
about a thousand of them (block lists), so testing their headers one by one on the first
packet of every flow direction was most of the detection time. Here every distinct
header is one bit; each side (source, destination) is cut, per IP version, into the
elementary ranges of all the headers' address sets, and each range holds the mask of the
headers whose set contains it. A lookup is a bisection per side and an AND of two masks
(a ``<>`` header also tries the swapped addresses), as Suricata's radix trees give the
per-address signature bit arrays that are ANDed.

The mask is exact for the addresses; the caller still runs each candidate's full header
test (protocol, IP version), so this table only narrows the candidates.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from ruleengine.detect.conditions import CompiledAddresses, CompiledHeader

_LAST = {4: (1 << 32) - 1, 6: (1 << 128) - 1}


class _SideTable:
    """For one side of the headers (their source or destination sets): per IP version,
    the start of each elementary range and the mask of the headers holding it."""

    __slots__ = ("masks", "other", "points")

    def __init__(self, sides: Sequence[CompiledAddresses]) -> None:
        anywhere = 0  # ``any``
        no_include = 0  # only exclusions (``!10.0.0.0/8``): everything but them
        for bit, addrs in enumerate(sides):
            if addrs.is_any:
                anywhere |= 1 << bit
            elif not addrs.has_include:
                no_include |= 1 << bit
        # an address of no known IP version: CompiledAddresses.contains gives these
        self.other = anywhere | no_include
        self.points: dict[int, list[int]] = {}
        self.masks: dict[int, list[int]] = {}
        for ver, last in _LAST.items():
            inc_edges = _edges(sides, ver, last, exclude=False)
            exc_edges = _edges(sides, ver, last, exclude=True)
            inc = exc = 0
            points: list[int] = []
            masks: list[int] = []
            for point in sorted({0, *inc_edges, *exc_edges}):
                # a header's own ranges are merged and never touch, so at one point its
                # bit starts or ends a range but not both: a toggle is enough
                inc ^= inc_edges.get(point, 0)
                exc ^= exc_edges.get(point, 0)
                mask = anywhere | ((inc | no_include) & ~exc)
                if masks and masks[-1] == mask:
                    continue
                points.append(point)
                masks.append(mask)
            self.points[ver] = points
            self.masks[ver] = masks

    def lookup(self, ver: int, value: int) -> int:
        points = self.points.get(ver)
        if points is None:
            return self.other
        return self.masks[ver][bisect_right(points, value) - 1]


def _edges(sides: Sequence[CompiledAddresses], ver: int, last: int, *, exclude: bool
           ) -> dict[int, int]:
    """Point -> XOR of the header bits whose include (or exclude) ranges of ``ver``
    start there or end just before it."""
    edges: dict[int, int] = {}
    for bit, addrs in enumerate(sides):
        ranges = (addrs.exclude if exclude else addrs.include).get(ver)
        if ranges is None or addrs.is_any:
            continue
        flag = 1 << bit
        for lo, hi in zip(ranges.starts, ranges.ends, strict=True):
            edges[lo] = edges.get(lo, 0) ^ flag
            if hi < last:
                edges[hi + 1] = edges.get(hi + 1, 0) ^ flag
    return edges


class IpOnlyTable:
    """The headers (one bit each, in the given order) whose addresses fit a packet's."""

    __slots__ = ("both", "dst", "src")

    def __init__(self, headers: Sequence[CompiledHeader]) -> None:
        self.src = _SideTable([h.src for h in headers])
        self.dst = _SideTable([h.dst for h in headers])
        self.both = sum(1 << bit for bit, h in enumerate(headers) if h.both)

    def lookup(self, ver: int, src: int, dst: int) -> int:
        """Mask of the headers whose source set holds ``src`` and destination set
        ``dst``, or (``<>`` headers) the other way round."""
        mask = self.src.lookup(ver, src) & self.dst.lookup(ver, dst)
        if self.both:
            mask |= self.src.lookup(ver, dst) & self.dst.lookup(ver, src) & self.both
        return mask


def bits(mask: int) -> list[int]:
    """The set bits of ``mask``, lowest first."""
    out: list[int] = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out
