"""The ring reader's fast path on a TPACKET_V3 block laid out in memory as the kernel lays
it: the inline key of the common frame and the general reader agree on every kind of frame,
a bypassed flow's frames are left out and counted, others delivered intact; frames copied out
before a bypass are filtered when the engine bypasses their flow mid-block."""

from __future__ import annotations

import mmap
import struct

from capture_backends.af_packet import _deliver
from capture_backends.base import BypassCounters, FlowTuple
from capture_backends.bypassed_flows import BypassedFlows, ether_key
from capture_backends.tpacket import (
    TP_STATUS_USER,
    TP_STATUS_VLAN_TPID_VALID,
    TP_STATUS_VLAN_VALID,
    block_frames,
)
from tests.capture_backends.test_bypassed_flows import A4, A6, B4, B6, ether, ipv4, ipv6

BLOCK = 1 << 16
FIRST = 48  # offset_to_first_pkt
MAC = 80  # tp_mac: where the frame starts in its slot


def lay_block(m: mmap.mmap, frames: list[tuple[bytes, int]], ts: float = 100.0) -> None:
    """Write ``frames`` (frame, vlan tci or -1: a tag the kernel took out) as one block."""
    p = FIRST
    for n, (frame, tci) in enumerate(frames):
        nxt = 0 if n == len(frames) - 1 else (MAC + len(frame) + 15) & ~15
        status = TP_STATUS_USER | (TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID
                                   if tci >= 0 else 0)
        sec, nsec = int(ts + n), 5000
        struct.pack_into("=IIIIIIHHIIH", m, p, nxt, sec, nsec, len(frame), len(frame), status,
                         MAC, MAC + 14, 0, max(tci, 0), 0x8100 if tci >= 0 else 0)
        m[p + MAC:p + MAC + len(frame)] = frame
        p += nxt
    struct.pack_into("=IIIII", m, 0, 3, 0, TP_STATUS_USER, len(frames), FIRST)


FLOW = FlowTuple(A4, B4, 40000, 80, 6)
KINDS = [
    ether(ipv4(A4, B4, 40000, 80)),  # the common frame, both directions
    ether(ipv4(B4, A4, 80, 40000)),
    ether(ipv4(B4, A4, 80, 40000, ihl=6)),  # IP options: general reader
    ether(ipv4(B4, A4, 80, 40000, frag=0x2000)),  # a fragment: delivered
    ether(ipv4(A4, B4, 40000, 80, frag=0x4000)),  # DF only: a hit
    ether(ipv4(A4, B4, 40000, 80, proto=17)),  # UDP, same ports: another flow
    ether(ipv4(A4, B4, 40000, 80, proto=1)),  # ICMP
    ether(ipv4(A4, B4, 40001, 80)),
    ether(ipv6(A6, B6, 40000, 80)),
    ether(ipv4(A4, B4, 40000, 80))[:37],  # snapped before the ports end
    b"\x02" * 12 + b"\x08\x06" + b"\0" * 28,  # ARP
]


def test_inline_and_general_keys_agree_and_hits_are_left_out() -> None:
    table = BypassedFlows()
    table.add(FLOW)
    table.add(FlowTuple(A6, B6, 40000, 80, 6))
    frames = [(f, -1) for f in KINDS] + [(ether(ipv4(B4, A4, 80, 40000)), 0x2000 | 7)]
    table.add(FlowTuple(A4, B4, 40000, 80, 6, (7,)))
    m = mmap.mmap(-1, BLOCK)
    try:
        lay_block(m, frames)
        expect_hits = [BypassedFlows.hit(_probe(table), ether_key(f, 0, len(f), True, tci),
                                         len(f)) for f, tci in frames]
        out = block_frames(m, 0, BLOCK, table)
    finally:
        m.close()
    delivered = [f for (f, _), hit in zip(frames, expect_hits, strict=True) if not hit]
    assert [frame for _, frame, _ in out] == delivered
    assert expect_hits == [True, True, True, False, True, False, False, False, True, False,
                           False, True]
    assert table.packets == 6
    assert table.counters(FLOW) == BypassCounters(2, 2 * len(KINDS[0]), 2,
                                                  len(KINDS[1]) + len(KINDS[2]))
    assert out[0][0] == 103.000005  # the stamp of the first delivered frame (the 4th)


def _probe(table: BypassedFlows) -> BypassedFlows:
    """A copy of ``table`` to ask without counting on the real one."""
    probe = BypassedFlows(table.capacity, table.vlan_in_key)
    probe.keys = {k: ([0, 0, 0, 0, v[0][4]], v[1]) for k, v in table.keys.items()}
    return probe


def test_the_time_limit_applies_on_the_inline_path_and_no_table_delivers_all() -> None:
    frames = [(ether(ipv4(B4, A4, 80, 40000)), -1) for _ in range(4)]  # stamped 100..103 s
    m = mmap.mmap(-1, BLOCK)
    try:
        lay_block(m, frames)
        assert len(block_frames(m, 0, BLOCK)) == 4
        table = BypassedFlows()
        table.add(FLOW)
        table.until(FLOW, 101.5)
        out = block_frames(m, 0, BLOCK, table)
    finally:
        m.close()
    assert [ts for ts, _, _ in out] == [102.000005, 103.000005]  # the engine sees these
    assert table.counters(FLOW) == BypassCounters(0, 0, 2, 2 * len(frames[0][0]))


def test_a_bypass_mid_block_filters_the_rest_of_the_block() -> None:
    other = (1.0, ether(ipv4(A4, B4, 5, 6)), 0)
    mine = (1.0, ether(ipv4(B4, A4, 80, 40000)), 0)
    tagged = (1.0, ether(ipv4(B4, A4, 80, 40000), (7,)), 0)
    block = [mine, other, mine, other, mine, tagged]
    table = BypassedFlows()
    seen = []
    for n, pkt in enumerate(_deliver(block, table, True)):
        seen.append(pkt)
        if n == 0:  # the engine bypasses the flow on its first packet
            table.add(FLOW)
    assert seen == [mine, other, other, tagged]  # another VLAN: another flow
    assert table.packets == 2
    assert table.counters(FLOW) == BypassCounters(0, 0, 2, 2 * len(mine[1]))
