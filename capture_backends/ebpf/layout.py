"""Python mirror of ``bpf/flow_keys.h``: the bypass flow-table key and value layouts.

Defined once here for Python; ``tests/bpf/test_layout.py`` compiles the C header with gcc and
asserts sizes and offsets agree. Keys are in network byte order (as the programs build them
from the wire); counters are native-endian ``__u64``.

A key holds the two endpoints of a flow in canonical order, endpoint *a* being the smaller
``(address, port)`` pair, so one entry covers both directions; the counters are kept per
direction (``ab`` = sent by *a*).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from capture_backends.base import FlowTuple

# struct flow_key_v4 { u32 a_ip, b_ip; u16 a_port, b_port, vlan0, vlan1; u8 proto, pad[3]; }
KEY_V4 = struct.Struct("!4s4sHHHHB3x")
# struct flow_key_v6 { u32 a_ip[4], b_ip[4]; u16 a_port, b_port, vlan0, vlan1; u8 proto, pad[3]; }
KEY_V6 = struct.Struct("!16s16sHHHHB3x")
# struct flow_counters { u64 pkts_ab, bytes_ab, pkts_ba, bytes_ba, last_ns; }
COUNTERS = struct.Struct("=QQQQQ")

# (field name, offset) in declaration order, for the C/Python agreement test
KEY_V4_FIELDS = (("a_ip", 0), ("b_ip", 4), ("a_port", 8), ("b_port", 10), ("vlan0", 12),
                 ("vlan1", 14), ("proto", 16), ("pad", 17))
KEY_V6_FIELDS = (("a_ip", 0), ("b_ip", 16), ("a_port", 32), ("b_port", 34), ("vlan0", 36),
                 ("vlan1", 38), ("proto", 40), ("pad", 41))
COUNTERS_FIELDS = (("pkts_ab", 0), ("bytes_ab", 8), ("pkts_ba", 16), ("bytes_ba", 24),
                   ("last_ns", 32))

MAP_V4 = "flow_table_v4"
MAP_V6 = "flow_table_v6"
VLAN_ID_MASK = 0x0FFF


class FlowCounters(NamedTuple):
    pkts_ab: int
    bytes_ab: int
    pkts_ba: int
    bytes_ba: int
    last_ns: int


ZERO_COUNTERS = COUNTERS.pack(0, 0, 0, 0, 0)


def canonical_key(flow: FlowTuple, vlan_in_key: bool = True) -> tuple[bytes, bool]:
    """The map key of ``flow`` and whether ``flow.src`` is endpoint *b*.

    Raises ValueError for addresses that are neither 4 nor 16 bytes or that differ in
    length. VLAN ids beyond the second are not part of the key (the programs read two);
    with ``vlan_in_key`` False none are (programs loaded the same way)."""
    src, dst = flow.src, flow.dst
    if len(src) != len(dst) or len(src) not in (4, 16):
        raise ValueError(f"flow addresses must both be 4 or 16 bytes, got {len(src)}/{len(dst)}")
    sport, dport = flow.sport & 0xFFFF, flow.dport & 0xFFFF
    vlan = flow.vlan if vlan_in_key else ()
    vlan0 = vlan[0] & VLAN_ID_MASK if len(vlan) > 0 else 0
    vlan1 = vlan[1] & VLAN_ID_MASK if len(vlan) > 1 else 0
    # bytes compare lexicographically == numerically for big-endian values of equal length
    reverse = (src, sport) > (dst, dport)
    if reverse:
        src, dst, sport, dport = dst, src, dport, sport
    layout = KEY_V4 if len(src) == 4 else KEY_V6
    return layout.pack(src, dst, sport, dport, vlan0, vlan1, flow.proto & 0xFF), reverse


def map_name(flow: FlowTuple) -> str:
    return MAP_V4 if len(flow.src) == 4 else MAP_V6


def unpack_key(raw: bytes) -> FlowTuple:
    """Inverse of ``canonical_key`` (endpoint a as source): for listing map contents."""
    layout = KEY_V4 if len(raw) == KEY_V4.size else KEY_V6
    a, b, ap, bp, v0, v1, proto = layout.unpack(raw)
    vlan = tuple(v for v in (v0, v1) if v)
    return FlowTuple(a, b, ap, bp, proto, vlan)


def sum_counters(raw: bytes, value_size: int = COUNTERS.size) -> FlowCounters:
    """Counters from a map value: one struct, or one per CPU (per-CPU maps), summed.
    ``last_ns`` is the maximum."""
    if len(raw) == COUNTERS.size:
        return FlowCounters(*COUNTERS.unpack(raw))
    stride = (value_size + 7) & ~7
    totals = [0, 0, 0, 0, 0]
    for off in range(0, len(raw) - COUNTERS.size + 1, stride):
        values = COUNTERS.unpack_from(raw, off)
        for i in range(4):
            totals[i] += values[i]
        totals[4] = max(totals[4], values[4])
    return FlowCounters(*totals)
