"""Flow hashing for pcap fan-out (``ruleengine.pcap_workers``).

The parent of an ``autofp``/``workers`` pcap run reads the file once and must send every
packet of a flow, in both directions, to the same worker: ``worker_for`` hashes the
symmetric 5-tuple from the raw frame without a full decode. IP fragments of one datagram
must meet in one worker (defragmentation happens there), so a fragment goes where the
first fragment of its datagram went (``FragmentRouter``); frames that are not IP go to
worker 0.
"""

from __future__ import annotations

import struct
import zlib

from ruleengine.capture import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
)

_PORTS = struct.Struct("!HH")
_VLAN_TYPES = (0x8100, 0x88A8, 0x9100)
_PORT_PROTOS = (6, 17, 132)  # TCP, UDP, SCTP
_V6_EXT = (0, 43, 60)  # hop-by-hop, routing, destination options
_HEADROOM = 512  # link + IP (+ IPv6 extension) + L4 ports, or an ICMP error's quote


def _ip_offset(linktype: int, data: bytes) -> int:
    """Offset of the IP header in the frame, -1 when the frame carries no IP."""
    if linktype == LINKTYPE_ETHERNET:
        off, etype = 14, int.from_bytes(data[12:14], "big")
        while etype in _VLAN_TYPES and len(data) >= off + 4:
            etype = int.from_bytes(data[off + 2:off + 4], "big")
            off += 4
        return off if etype in (0x0800, 0x86DD) else -1
    if linktype == LINKTYPE_LINUX_SLL:
        return 16 if data[14:16] in (b"\x08\x00", b"\x86\xdd") else -1
    if linktype == LINKTYPE_LINUX_SLL2:
        return 20 if data[0:2] in (b"\x08\x00", b"\x86\xdd") else -1
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        return 4
    if linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6):
        return 0
    return -1


def _symmetric(src: bytes, dst: bytes, sport: int, dport: int, proto: int) -> int:
    a, b = src + sport.to_bytes(2, "big"), dst + dport.to_bytes(2, "big")
    return zlib.crc32((a + b if a <= b else b + a) + bytes((proto,)))


class FragmentRouter:
    """Maps ``(src, dst, proto, ip id)`` of a fragmented datagram to the worker its first
    seen fragment went to; bounded (oldest entries dropped past ``cap``)."""

    def __init__(self, cap: int = 65536) -> None:
        self.cap = cap
        self._seen: dict[bytes, int] = {}

    def route(self, key: bytes, wanted: int) -> int:
        worker = self._seen.get(key)
        if worker is None:
            if len(self._seen) >= self.cap:
                del self._seen[next(iter(self._seen))]
            worker = self._seen[key] = wanted
        return worker


def worker_for(linktype: int, data: bytes | memoryview, workers: int, frags: FragmentRouter,
               *, ports: bool = True) -> int:
    """The worker (0..workers-1) for one frame; ``ports=False`` hashes the address pair
    only (every flow between two hosts in one worker)."""
    if workers <= 1:
        return 0
    # only the headers are read: the first bytes as bytes (slices of a memoryview of the
    # mapped file would not concatenate)
    data = bytes(data[:_HEADROOM])
    off = _ip_offset(linktype, data)
    if off < 0 or len(data) < off + 20:
        return 0
    version = data[off] >> 4
    if version == 4:
        return _v4(data, off, workers, frags, ports)
    if version == 6 and len(data) >= off + 40:
        return _v6(data, off, workers, frags, ports)
    return 0


def _v4(data: bytes, off: int, workers: int, frags: FragmentRouter,
        ports: bool) -> int:
    l4 = off + (data[off] & 0x0F) * 4
    proto, src, dst = data[off + 9], data[off + 12:off + 16], data[off + 16:off + 20]
    frag = int.from_bytes(data[off + 6:off + 8], "big")
    first = frag & 0x1FFF == 0
    wanted = (_l4_hash(data, l4, proto, src, dst, first) if ports
              else _symmetric(src, dst, 0, 0, 0)) % workers
    if frag & 0x3FFF:  # MF set or offset > 0: a fragment
        return frags.route(src + dst + bytes((proto,)) + data[off + 4:off + 6], wanted)
    return wanted


def _v6(data: bytes, off: int, workers: int, frags: FragmentRouter,
        ports: bool) -> int:
    nh, src, dst = data[off + 6], data[off + 8:off + 24], data[off + 24:off + 40]
    l4, frag_id, first = off + 40, b"", True
    while len(data) >= l4 + 8:
        if nh in _V6_EXT:
            nh, l4 = data[l4], l4 + (data[l4 + 1] + 1) * 8
        elif nh == 44:
            offset_m = int.from_bytes(data[l4 + 2:l4 + 4], "big")
            first = offset_m >> 3 == 0
            frag_id = data[l4 + 4:l4 + 8] if offset_m & 0xFFF9 else b""
            nh, l4 = data[l4], l4 + 8
        elif nh == 51:
            nh, l4 = data[l4], l4 + (data[l4 + 1] + 2) * 4
        else:
            break
    wanted = (_l4_hash(data, l4, nh, src, dst, first) if ports
              else _symmetric(src, dst, 0, 0, 0)) % workers
    if frag_id:
        return frags.route(src + dst + frag_id, wanted)
    return wanted


def _l4_hash(data: bytes, l4: int, proto: int, src: bytes, dst: bytes, first: bool) -> int:
    if first and proto in _PORT_PROTOS and len(data) >= l4 + 4:
        sport, dport = _PORTS.unpack_from(data, l4)
        return _symmetric(src, dst, sport, dport, proto)
    # ICMP errors belong to the flow they quote (the flow table does the same lookup)
    if first and proto in (1, 58) and len(data) >= l4 + 8 and data[l4] in (3, 1):
        inner = l4 + 8
        if proto == 1 and len(data) >= inner + 24 and data[inner] >> 4 == 4:
            il4 = inner + (data[inner] & 0x0F) * 4
            if data[inner + 9] in _PORT_PROTOS and len(data) >= il4 + 4:
                sport, dport = _PORTS.unpack_from(data, il4)
                return _symmetric(data[inner + 12:inner + 16], data[inner + 16:inner + 20],
                                  sport, dport, data[inner + 9])
    # other protocols (and later fragments, routed by FragmentRouter): by address pair
    return _symmetric(src, dst, 0, 0, 0)
