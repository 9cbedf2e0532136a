"""Flow-hash shards of one pcap for ``ruleengine hunt``.

A big file is split into N tasks that each read the whole file and inspect only the frames
whose *symmetric* flow hash falls in their shard, so both directions of a flow meet in the
same task. The hash reads the raw frame (the link layer, VLAN tags, the IP header and the
transport ports) without the decoder: it must agree with the flow table only in that all
packets of one flow get one shard.

Frames with no 5-tuple to hash go to shard 0, all of them: IP fragments (the first one
carries ports, the rest do not, and the reassembled packet needs them all), non-IP frames
and link types this module does not read. Tunnels hash by their outer header, so every
flow inside a tunnel stays with it.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable

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

LINKTYPE_RAW_OLD = (12, 14)  # DLT_RAW's old numbers, still found in pcaps

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_VLANS = (0x8100, 0x88A8, 0x9100)
PORTED = (6, 17, 132)  # TCP, UDP, SCTP: the ports are part of the flow key
IPV6_SKIPPABLE = (0, 43, 60)  # hop-by-hop, routing, destination options
IPV6_FRAGMENT = 44
NO_KEY = -1  # no 5-tuple: shard 0


def _ip_offset(linktype: int, frame: bytes | memoryview) -> int:
    """Where the IP header starts, or NO_KEY for a frame that carries no IP."""
    if linktype == LINKTYPE_ETHERNET:
        off, etype = 14, _u16(frame, 12)
        while etype in ETH_VLANS:
            etype, off = _u16(frame, off + 2), off + 4
        return off if etype in (ETH_IPV4, ETH_IPV6) else NO_KEY
    if linktype == LINKTYPE_LINUX_SLL:
        return 16 if _u16(frame, 14) in (ETH_IPV4, ETH_IPV6) else NO_KEY
    if linktype == LINKTYPE_LINUX_SLL2:
        return 20 if _u16(frame, 0) in (ETH_IPV4, ETH_IPV6) else NO_KEY
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        return 4
    if linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6, *LINKTYPE_RAW_OLD):
        return 0
    return NO_KEY


def _u16(frame: bytes | memoryview, off: int) -> int:
    if off + 2 > len(frame):
        return NO_KEY
    value: int = struct.unpack_from("!H", frame, off)[0]
    return value


def flow_key(linktype: int, frame: bytes | memoryview) -> bytes | None:
    """The direction-independent flow key of a frame, or None (shard 0)."""
    off = _ip_offset(linktype, frame)
    if off < 0 or off >= len(frame):
        return None
    version = frame[off] >> 4
    if version == 4:
        return _ipv4_key(frame, off)
    if version == 6:
        return _ipv6_key(frame, off)
    return None


def _ipv4_key(frame: bytes | memoryview, off: int) -> bytes | None:
    if off + 20 > len(frame):
        return None
    ihl = (frame[off] & 0x0F) * 4
    flags_frag = _u16(frame, off + 6)
    if flags_frag & 0x3FFF:  # MF set or a fragment offset: a fragment
        return None
    proto = frame[off + 9]
    src, dst = bytes(frame[off + 12:off + 16]), bytes(frame[off + 16:off + 20])
    return _key(proto, src, dst, frame, off + ihl)


def _ipv6_key(frame: bytes | memoryview, off: int) -> bytes | None:
    if off + 40 > len(frame):
        return None
    nxt = frame[off + 6]
    src, dst = bytes(frame[off + 8:off + 24]), bytes(frame[off + 24:off + 40])
    pos = off + 40
    while nxt in IPV6_SKIPPABLE and pos + 2 <= len(frame):
        nxt, pos = frame[pos], pos + (frame[pos + 1] + 1) * 8
    if nxt == IPV6_FRAGMENT:
        return None
    return _key(nxt, src, dst, frame, pos)


def _key(proto: int, src: bytes, dst: bytes, frame: bytes | memoryview, l4: int) -> bytes:
    sport = dport = 0
    if proto in PORTED and l4 + 4 <= len(frame):
        sport, dport = struct.unpack_from("!HH", frame, l4)
    a, b = (src, sport), (dst, dport)
    lo, hi = (a, b) if a <= b else (b, a)
    return bytes((proto,)) + lo[0] + struct.pack("!H", lo[1]) + hi[0] + struct.pack("!H", hi[1])


def shard_of(linktype: int, frame: bytes | memoryview, count: int) -> int:
    """The shard (0 .. count-1) of a frame. A keyed digest, not hash(): every worker
    process, on any machine, must compute the same shard; not crc32 either, whose low
    bits are linear in the key's and cancel out for keys such as 10.1.0.i:i."""
    key = flow_key(linktype, frame)
    if key is None or count <= 1:
        return 0
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") % count


def shard_filter(linktype: int, index: int, count: int) -> Callable[[bytes | memoryview], bool]:
    """The pipeline's ``packet_filter`` for shard ``index`` of ``count``."""

    def mine(frame: bytes | memoryview) -> bool:
        return shard_of(linktype, frame, count) == index

    return mine
