"""The capture backends' user-space table of bypassed flows: the fast path.

When the engine bypasses a flow, packets of it that the kernel had already handed over (the
AF_PACKET ring, the NFQUEUE queue) still arrive. Decoding them to find out that they belong to
a bypassed flow costs as much as inspecting them; under a flood the ring is full of them. So a
backend keeps the flow keys of the flows it bypassed here and checks every raw packet right
after reading its addresses, ports and protocol (a few byte slices; no decode, no objects):
a hit is counted for its flow and never reaches the engine (AF_PACKET: skipped before its
frame is copied out of the ring; NFQ: accepted with the bypass mark at once).

Keys are the wire bytes ``src + dst + sport + dport + proto`` (IPv4 or IPv6), followed by the
two-byte ids of up to two VLAN tags when VLANs are part of flow tracking. Both directions of a
flow are entered, so a lookup needs no canonical ordering. The tuple is read by
``ruleengine.rawflow`` (the reader the engine's pcap fan-out and hunt shards use too), IPv4
options and IPv6 extension headers skipped; fragments take the normal path (the engine then
recognises the bypassed flow itself).

The table is bounded (``capacity`` flows); when full, the oldest flow leaves it (its packets
take the normal path again, which still knows the flow is bypassed).

Each flow may carry a time limit (``until``): packets stamped later are not taken, so that
they reach the engine. A capture bypass the kernel does not honour (packets keep arriving
long after the kernel last counted one) must be seen there to be downgraded to a local
bypass, as Suricata does; the engine sets the limit from the kernel's counters.
"""

from __future__ import annotations

import math
import mmap
import struct

from capture_backends.base import BypassCounters, FlowTuple
from ruleengine.capture import MAX_VLAN_LAYERS
from ruleengine.rawflow import ether_ip_offset, ip_tuple

__all__ = ["DEFAULT_CAPACITY", "BypassedFlows", "RingPacket", "ether_key", "flow_keys", "ip_key"]

DEFAULT_CAPACITY = 65536
_PORTS_PROTO = struct.Struct("!HHB")
_VLAN_ID = struct.Struct("!H")
_BYPASSED = (6, 17)  # TCP, UDP: the protocols a backend bypasses


# bytes, or the mmap of an AF_PACKET ring (indexing gives ints, slicing bytes)
Buffer = bytes | mmap.mmap
RingPacket = tuple[float, bytes, int]  # a RawPacket copied out of a ring: always bytes


def ip_key(buf: Buffer, off: int = 0, end: int = -1) -> bytes | None:
    """The key of the IPv4/IPv6 TCP/UDP packet at ``buf[off:end]`` (``end`` -1: the whole
    buffer), or None when it has none (not TCP/UDP, a fragment, truncated)."""
    t = ip_tuple(buf, off, end)
    if t is None or t[0] not in _BYPASSED or t[5]:
        return None
    return t[1] + t[2] + _PORTS_PROTO.pack(t[3], t[4], t[0])


def ether_key(buf: Buffer, off: int, end: int, vlan_in_key: bool = True,
              outer_tag: int = -1) -> bytes | None:
    """The key of the Ethernet frame at ``buf[off:end]``, or None (see ``ip_key``).
    ``outer_tag``: the TCI of a tag the kernel took out of the frame (AF_PACKET metadata);
    it comes before the tags still in the frame."""
    tags: list[int] = [outer_tag & 0x0FFF] if outer_tag >= 0 else []
    ip = ether_ip_offset(buf, off, end, tags, MAX_VLAN_LAYERS - (outer_tag >= 0))
    if ip < 0:
        return None
    key = ip_key(buf, ip, end)
    if key is None or not vlan_in_key or not tags:
        return key
    return key + b"".join(_VLAN_ID.pack(v) for v in tags[:2])


def flow_keys(flow: FlowTuple, vlan_in_key: bool = True) -> tuple[bytes, bytes]:
    """The keys of ``flow``'s packets from ``flow.src`` and from ``flow.dst``."""
    tags = b"".join(_VLAN_ID.pack(v & 0x0FFF) for v in flow.vlan[:2]) if vlan_in_key else b""
    proto = flow.proto & 0xFF
    forward = flow.src + flow.dst + _PORTS_PROTO.pack(flow.sport, flow.dport, proto) + tags
    reverse = flow.dst + flow.src + _PORTS_PROTO.pack(flow.dport, flow.sport, proto) + tags
    return forward, reverse


class BypassedFlows:
    """Bypassed flows by key, with per-direction counts of the packets the fast path took.

    ``flow.src`` of the tuple given to ``add`` is the client: its packets count as toserver.
    """

    __slots__ = ("_flows", "capacity", "evicted", "generation", "keys", "packets",
                 "vlan_in_key")

    def __init__(self, capacity: int = DEFAULT_CAPACITY, vlan_in_key: bool = True) -> None:
        self.capacity = max(1, capacity)
        self.vlan_in_key = vlan_in_key
        # packet key -> (the flow's [pkts_ts, bytes_ts, pkts_tc, bytes_tc, until], index)
        self.keys: dict[bytes, tuple[list[float], int]] = {}
        # forward key -> reverse key, in insertion order (the oldest leaves first)
        self._flows: dict[bytes, bytes] = {}
        self.packets = 0  # fast-path hits, all flows (also those gone since)
        self.evicted = 0
        self.generation = 0  # bumped by each add: frames read before it may now be hits

    def __len__(self) -> int:
        return len(self._flows)

    def add(self, flow: FlowTuple) -> None:
        forward, reverse = flow_keys(flow, self.vlan_in_key)
        if forward in self._flows:
            return
        while len(self._flows) >= self.capacity:
            old = next(iter(self._flows))
            self.keys.pop(self._flows.pop(old), None)
            self.keys.pop(old, None)
            self.evicted += 1
        counts: list[float] = [0, 0, 0, 0, math.inf]
        self._flows[forward] = reverse
        self.keys[forward] = (counts, 0)
        self.keys[reverse] = (counts, 2)
        self.generation += 1

    def discard(self, flow: FlowTuple) -> None:
        forward, reverse = flow_keys(flow, self.vlan_in_key)
        if self._flows.pop(forward, None) is None:
            forward, reverse = reverse, forward  # given the other way round
            if self._flows.pop(forward, None) is None:
                return
        self.keys.pop(forward, None)
        self.keys.pop(reverse, None)

    def until(self, flow: FlowTuple, ts: float) -> None:
        """Take packets of ``flow`` stamped up to ``ts`` only (no-op if it is not here)."""
        entry = self.keys.get(flow_keys(flow, self.vlan_in_key)[0])
        if entry is not None:
            entry[0][4] = ts

    def hit(self, key: bytes | None, length: int, ts: float = 0.0) -> bool:
        """Count a packet of ``key`` (stamped ``ts``) if its flow is bypassed and the packet
        is within the flow's time limit; True when it is."""
        entry = self.keys.get(key) if key is not None else None
        if entry is None:
            return False
        counts, i = entry
        if ts > counts[4]:
            return False
        counts[i] += 1
        counts[i + 1] += length
        self.packets += 1
        return True

    def take(self, packets: list[RingPacket], vlan_in_key: bool = True) -> list[RingPacket]:
        """``packets`` (Ethernet frames, copied out of a ring: VLAN tags in the frame) less
        those of flows here, which are counted (``hit``). For the frames of a ring block read
        before a flow of it was bypassed: they are still waiting for the engine."""
        hit = self.hit
        return [pkt for pkt in packets
                if not hit(ether_key(pkt[1], 0, len(pkt[1]), vlan_in_key), len(pkt[1]), pkt[0])]

    def counters(self, flow: FlowTuple) -> BypassCounters | None:
        """What the fast path took of ``flow``, ``flow.src`` read as the client."""
        forward, _ = flow_keys(flow, self.vlan_in_key)
        entry = self.keys.get(forward)
        if entry is None:
            return None
        c = [int(v) for v in entry[0][:4]]
        if entry[1] == 0:
            return BypassCounters(c[0], c[1], c[2], c[3])
        return BypassCounters(c[2], c[3], c[0], c[1])

    def clear(self) -> None:
        self.keys.clear()
        self._flows.clear()
