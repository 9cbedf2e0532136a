"""Flow tuples read from raw frames, without the decoder: the one reader of the engine's
fan-out (``pcap_fanout``), the hunt's flow-hash shards (``commands/hunt_shard``) and the
capture backends' bypassed-flow fast path (``capture_backends/bypassed_flows``).

Each of them must look at a frame *before* it is decoded (to choose a worker, a shard, or
to skip a bypassed flow's packet) and must agree with the flow table on which packets
form one flow. They differ only in what they do with the tuple: a symmetric hash
(``flow_hash``), or a directional lookup key. So the reading lives here, below every
layer, next to the contract (``ruleengine.capture``) whose link types it reads: a backend
may import it, and it imports nothing else of the engine.

What it reads: Ethernet (up to ``MAX_VLAN_LAYERS`` VLAN tags, as the decoder), Linux SLL
and SLL2, BSD null/loopback, raw IP (all its link numbers); IPv4 with options, IPv6 with
hop-by-hop, routing, destination-options, AH and fragment headers skipped; the ports of
TCP, UDP and SCTP. An ICMP error (ICMPv4 destination unreachable, ICMPv6 type 1) can be
read as the flow it quotes, which is where the flow table puts it. Tunnels are read by
their outer header.

Buffers are anything whose slices are ``bytes`` (``bytes``, an ``mmap`` of a ring); a
``memoryview`` is first copied (``frame_tuple`` does it for the headers only).
"""

from __future__ import annotations

import mmap
import struct

from ruleengine.capture import (
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    MAX_VLAN_LAYERS,
    RAW_IP_LINKTYPES,
    VLAN_TPIDS,
)

__all__ = ["HEADROOM", "IpTuple", "ether_ip_offset", "flow_hash", "frame_tuple", "ip_offset",
           "ip_tuple"]

Buffer = bytes | mmap.mmap

IpTuple = tuple[int, bytes, bytes, int, int, bytes]
"""``(proto, src, dst, sport, dport, frag)`` in the packet's direction. ``frag`` is empty
for a whole datagram, else the fragment's IP id (2 bytes IPv4, 4 bytes IPv6); a later
fragment (offset > 0) has ports 0, a first one its ports when they are in it."""

HEADROOM = 512  # link + IP (+ IPv6 extension headers) + ports, or an ICMP error's quote

PORTED = frozenset((6, 17, 132))  # TCP, UDP, SCTP: the ports are part of the flow
_QUOTED = (6, 17)  # what an ICMP error's quote is read for (the decoder's icmp_emb)
_V6_SKIP = frozenset((0, 43, 60))  # hop-by-hop, routing, destination options: (len+1)*8
_V6_AH = 51  # (len+2)*4
_V6_FRAGMENT = 44
_IP_ETYPES = (ETHERTYPE_IPV4, ETHERTYPE_IPV6)
_PORTS = struct.Struct("!HH")


def ether_ip_offset(buf: Buffer, off: int, end: int, tags: list[int] | None = None,
                    max_tags: int = MAX_VLAN_LAYERS) -> int:
    """Where the IP header of the Ethernet frame at ``buf[off:end]`` starts, or -1 (not
    IP, more than ``max_tags`` VLAN tags, truncated). The VLAN ids are appended to
    ``tags`` when given."""
    p = off + 12
    if p + 2 > end:
        return -1
    etype = (buf[p] << 8) | buf[p + 1]
    ntags = 0
    while etype in VLAN_TPIDS:
        if ntags == max_tags or p + 6 > end:
            return -1
        if tags is not None:
            tags.append(((buf[p + 2] << 8) | buf[p + 3]) & 0x0FFF)
        ntags += 1
        p += 4
        etype = (buf[p] << 8) | buf[p + 1]
    return p + 2 if etype in _IP_ETYPES else -1


def ip_offset(linktype: int, buf: Buffer, off: int = 0, end: int = -1) -> int:
    """Where the IP header starts in a frame of ``linktype``, or -1 when it carries none."""
    if end < 0:
        end = len(buf)
    if linktype == LINKTYPE_ETHERNET:
        return ether_ip_offset(buf, off, end)
    if linktype in RAW_IP_LINKTYPES:
        return off
    if linktype == LINKTYPE_LINUX_SLL:
        p = off + 14
        return off + 16 if p + 2 <= end and (buf[p] << 8 | buf[p + 1]) in _IP_ETYPES else -1
    if linktype == LINKTYPE_LINUX_SLL2:
        return off + 20 if off + 2 <= end and (buf[off] << 8 | buf[off + 1]) in _IP_ETYPES \
            else -1
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        return off + 4  # the address family is not read: the IP version says it
    return -1


def ip_tuple(buf: Buffer, off: int, end: int = -1, quote: bool = False) -> IpTuple | None:
    """The tuple of the IP packet at ``buf[off:end]``, or None (not IPv4/IPv6, truncated,
    a TCP/UDP/SCTP packet that is not a fragment but has no room for its ports).
    ``quote``: an ICMP error gives the TCP/UDP flow it quotes, as the flow table files it."""
    if end < 0:
        end = len(buf)
    if off >= end:
        return None
    version = buf[off] >> 4
    if version == 4:
        return _ipv4(buf, off, end, quote)
    if version == 6:
        return _ipv6(buf, off, end, quote)
    return None


def _ipv4(buf: Buffer, off: int, end: int, quote: bool) -> IpTuple | None:
    if off + 20 > end:
        return None
    proto = buf[off + 9]
    src, dst = buf[off + 12:off + 16], buf[off + 16:off + 20]
    l4 = off + (buf[off] & 0x0F) * 4
    if buf[off + 6] & 0x3F or buf[off + 7]:  # MF set or a fragment offset: a fragment
        first = not (buf[off + 6] & 0x1F or buf[off + 7])
        return _fragment(buf, l4, end, proto, src, dst, first, buf[off + 4:off + 6])
    if proto in PORTED:  # the common case inline: this runs once per packet
        if l4 + 4 > end:
            return None
        sport, dport = _PORTS.unpack_from(buf, l4)
        return proto, src, dst, sport, dport, b""
    if quote and proto == 1 and l4 + 8 <= end and buf[l4] == 3:
        inner = _quoted(buf, l4 + 8, end)
        if inner is not None:
            return inner
    return proto, src, dst, 0, 0, b""


def _ipv6(buf: Buffer, off: int, end: int, quote: bool) -> IpTuple | None:
    if off + 40 > end:
        return None
    nh, src, dst = buf[off + 6], buf[off + 8:off + 24], buf[off + 24:off + 40]
    l4 = off + 40
    while l4 + 8 <= end:
        if nh in _V6_SKIP:
            nh, l4 = buf[l4], l4 + (buf[l4 + 1] + 1) * 8
        elif nh == _V6_AH:
            nh, l4 = buf[l4], l4 + (buf[l4 + 1] + 2) * 4
        elif nh == _V6_FRAGMENT:
            offset_m = (buf[l4 + 2] << 8) | buf[l4 + 3]
            nh, l4 = buf[l4], l4 + 8
            if offset_m & 0xFFF9:  # an offset or M: a fragment (else an atomic one)
                return _fragment(buf, l4, end, nh, src, dst, offset_m >> 3 == 0,
                                 buf[l4 - 4:l4])
        else:
            break
    if quote and nh == 58 and l4 + 8 <= end and buf[l4] == 1:
        inner = _quoted(buf, l4 + 8, end)
        if inner is not None:
            return inner
    return _whole(buf, l4, end, nh, src, dst)


def _whole(buf: Buffer, l4: int, end: int, proto: int, src: bytes,
           dst: bytes) -> IpTuple | None:
    if proto not in PORTED:
        return proto, src, dst, 0, 0, b""
    if l4 + 4 > end:
        return None
    sport, dport = _PORTS.unpack_from(buf, l4)
    return proto, src, dst, sport, dport, b""


def _fragment(buf: Buffer, l4: int, end: int, proto: int, src: bytes, dst: bytes,
              first: bool, ident: bytes) -> IpTuple:
    if first and proto in PORTED and l4 + 4 <= end:
        sport, dport = _PORTS.unpack_from(buf, l4)
        return proto, src, dst, sport, dport, ident
    return proto, src, dst, 0, 0, ident


def _quoted(buf: Buffer, off: int, end: int) -> IpTuple | None:
    inner = ip_tuple(buf, off, end)
    if inner is not None and inner[0] in _QUOTED and not inner[5]:
        return inner
    return None


def frame_tuple(linktype: int, frame: bytes | memoryview | mmap.mmap,
                quote: bool = True) -> IpTuple | None:
    """The tuple of a whole frame of ``linktype`` (only its first ``HEADROOM`` bytes are
    read), or None when it has none (not IP, an unknown link type, truncated)."""
    buf = frame if isinstance(frame, bytes) else bytes(frame[:HEADROOM])
    # untagged Ethernet, the common case, without the calls
    if linktype == LINKTYPE_ETHERNET and len(buf) > 14 and buf[12] == 8 and buf[13] == 0:
        return _ipv4(buf, 14, len(buf), quote) if buf[14] >> 4 == 4 else None
    off = ip_offset(linktype, buf)
    if off < 0:
        return None
    return ip_tuple(buf, off, len(buf), quote)


def flow_hash(t: IpTuple, ports: bool = True) -> int:
    """A hash of the flow of ``t``, the same in both directions and in every process on
    every machine. As Suricata's FlowGetHash, the lower and the higher address and the
    lower and the higher port are combined (with the protocol). The mix is CPython's tuple
    hash over ints: xxHash64's rounds (multiply by a prime, rotate, multiply) done in C,
    4x cheaper than the same rounds written here; hashes of ints and of tuples of ints
    take no salt (PYTHONHASHSEED salts only str and bytes), and the algorithm has been
    the same on 64-bit CPython since 3.8 (tests/test_rawflow.py pins a value, since hunt
    shards on different hosts must agree). Unlike crc32, whose output is linear in its
    input bits, every input bit reaches the low bits ``% workers`` reads, whatever the
    layout of the key. ``ports=False``: the address pair only (every flow between two
    hosts hashes alike)."""
    a = int.from_bytes(t[1], "big")
    b = int.from_bytes(t[2], "big")
    if a > b:
        a, b = b, a
    if not ports:
        return hash((a, b))
    sport, dport = t[3], t[4]
    if sport > dport:
        sport, dport = dport, sport
    return hash((a, b, sport, dport, t[0]))
