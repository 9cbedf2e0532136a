"""The backends' fast-path table: keys read from raw packets match the keys of the tuple the
engine bypassed, in both directions, and only for TCP/UDP packets that are not fragments."""

from __future__ import annotations

import mmap
import socket
import struct

from capture_backends.base import BypassCounters, FlowTuple
from capture_backends.bypassed_flows import BypassedFlows, ether_key, flow_keys, ip_key

A4, B4 = socket.inet_aton("10.0.0.1"), socket.inet_aton("10.0.0.2")
A6 = socket.inet_pton(socket.AF_INET6, "fd00::1")
B6 = socket.inet_pton(socket.AF_INET6, "fd00::2")


def ipv4(src: bytes, dst: bytes, sport: int, dport: int, proto: int = 6, frag: int = 0,
         ihl: int = 5) -> bytes:
    options = b"\x01" * ((ihl - 5) * 4)
    header = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, 40, 1, frag, 64, proto, 0, src, dst)
    return header + options + struct.pack("!HH", sport, dport) + b"\0" * 16


def ipv6(src: bytes, dst: bytes, sport: int, dport: int, nxt: int = 6) -> bytes:
    return struct.pack("!IHBB", 6 << 28, 20, nxt, 64) + src + dst + \
        struct.pack("!HH", sport, dport) + b"\0" * 16


def ether(ip: bytes, tags: tuple[int, ...] = ()) -> bytes:
    etype = 0x0800 if ip[0] >> 4 == 4 else 0x86DD
    frame = b"\x02" * 12
    for tag in tags:
        frame += struct.pack("!HH", 0x8100, tag)
    return frame + struct.pack("!H", etype) + ip


def test_both_directions_of_a_flow_hit_ipv4_and_ipv6() -> None:
    for a, b, make in ((A4, B4, ipv4), (A6, B6, ipv6)):
        flow = FlowTuple(a, b, 40000, 80, 6)
        table = BypassedFlows()
        table.add(flow)
        assert table.hit(ip_key(make(a, b, 40000, 80)), 100)
        assert table.hit(ip_key(make(b, a, 80, 40000)), 1500)
        assert table.hit(ip_key(make(b, a, 80, 40000)), 1500)
        assert not table.hit(ip_key(make(a, b, 40001, 80)), 100)  # another flow
        assert not table.hit(ip_key(make(a, b, 40000, 80, 17) if make is ipv4 else
                                    ipv6(a, b, 40000, 80, 17)), 100)  # UDP, same ports
        assert table.counters(flow) == BypassCounters(1, 100, 2, 3000)
        # the tuple read the other way round: the other endpoint is the client
        assert table.counters(FlowTuple(b, a, 80, 40000, 6)) == BypassCounters(2, 3000, 1, 100)
        assert table.packets == 3


def test_fragments_options_extension_headers_and_junk() -> None:
    assert ip_key(ipv4(A4, B4, 1, 2, frag=0x2000)) is None  # MF: first fragment
    assert ip_key(ipv4(A4, B4, 1, 2, frag=0x0010)) is None  # a later fragment
    assert ip_key(ipv4(A4, B4, 1, 2, frag=0x4000)) is not None  # DF only: not a fragment
    with_options = ip_key(ipv4(A4, B4, 1, 2, ihl=6))
    assert with_options == flow_keys(FlowTuple(A4, B4, 1, 2, 6))[0]
    # extension headers are skipped (the engine's flow has the same tuple)
    hop = ipv6(A6, B6, 0, 0, nxt=0)[:40] + bytes((6, 0)) + b"\0" * 6 + ipv6(A6, B6, 1, 2)[40:]
    assert ip_key(hop) == flow_keys(FlowTuple(A6, B6, 1, 2, 6))[0]
    frag = ipv6(A6, B6, 0, 0, nxt=44)[:40] + struct.pack("!BBHI", 6, 0, 1, 9) + \
        ipv6(A6, B6, 1, 2)[40:]
    assert ip_key(frag) is None  # a first fragment (M set)
    assert ip_key(ipv4(A4, B4, 1, 2, proto=1)) is None  # ICMP
    assert ip_key(b"") is None
    assert ip_key(ipv4(A4, B4, 1, 2)[:22]) is None  # ports cut off
    assert ip_key(b"\x00" * 40) is None


def test_vlan_tags_are_part_of_the_key_unless_tracking_ignores_them() -> None:
    flow = FlowTuple(A4, B4, 1000, 53, 17, (10, 20))
    tagged = ether(ipv4(B4, A4, 53, 1000, 17), (10, 20))
    assert ether_key(tagged, 0, len(tagged)) == flow_keys(flow)[1]
    other_vlan = ether(ipv4(B4, A4, 53, 1000, 17), (11, 20))
    assert ether_key(other_vlan, 0, len(other_vlan)) != flow_keys(flow)[1]
    assert ether_key(tagged, 0, len(tagged), vlan_in_key=False) == \
        flow_keys(flow, vlan_in_key=False)[1]
    # the ring took the outer tag out of the frame: it is passed as metadata
    inner = ether(ipv4(B4, A4, 53, 1000, 17), (20,))
    assert ether_key(inner, 0, len(inner), True, outer_tag=0x2000 | 10) == flow_keys(flow)[1]
    untagged = ether(ipv6(A6, B6, 5, 6))
    assert ether_key(untagged, 0, len(untagged)) == flow_keys(FlowTuple(A6, B6, 5, 6, 6))[0]
    arp = b"\x02" * 12 + b"\x08\x06" + b"\0" * 28
    assert ether_key(arp, 0, len(arp)) is None


def test_keys_are_read_in_place_from_a_ring_mapping() -> None:
    frame = ether(ipv4(A4, B4, 7, 8))
    ring = mmap.mmap(-1, 4096)
    try:
        ring[100:100 + len(frame)] = frame
        assert ether_key(ring, 100, 100 + len(frame)) == flow_keys(FlowTuple(A4, B4, 7, 8, 6))[0]
        assert ether_key(ring, 100, 100 + 30) is None  # snap length shorter than the headers
    finally:
        ring.close()


def test_the_table_is_bounded_and_forgets_the_oldest_flow() -> None:
    table = BypassedFlows(capacity=2)
    flows = [FlowTuple(A4, B4, port, 80, 6) for port in (1, 2, 3)]
    for flow in flows:
        table.add(flow)
    assert len(table) == 2 and table.evicted == 1
    assert table.counters(flows[0]) is None
    assert not table.hit(ip_key(ipv4(A4, B4, 1, 80)), 60)
    assert table.hit(ip_key(ipv4(B4, A4, 80, 3)), 60)
    table.discard(FlowTuple(B4, A4, 80, 3, 6))  # given the other way round
    assert len(table) == 1 and len(table.keys) == 2
    table.add(flows[1])  # already there: kept, counts not reset
    assert len(table) == 1


def test_packets_stamped_after_the_flows_time_limit_are_not_taken() -> None:
    flow = FlowTuple(A4, B4, 40000, 80, 6)
    table = BypassedFlows()
    table.add(flow)
    key = ip_key(ipv4(B4, A4, 80, 40000))
    assert table.hit(key, 100, 1e12)  # no limit at first
    table.until(flow, 50.0)
    assert table.hit(key, 100, 50.0)
    assert not table.hit(key, 100, 50.5)  # later: the engine must see it
    assert table.hit(key, 100)  # no stamp (NFQ): taken
    table.until(FlowTuple(B4, A4, 80, 40000, 6), 60.0)  # either way round
    assert table.hit(key, 100, 55.0)
    table.until(FlowTuple(A4, B4, 1, 2, 6), 0.0)  # not in the table: no-op
    assert table.counters(flow) == BypassCounters(0, 0, 4, 400)
