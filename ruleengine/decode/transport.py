"""Transport layer: TCP, UDP, ICMPv4 and ICMPv6 headers into the ``Packet``.

Checksums are verified here with the pseudo-header sum the network layer hands down
(0 when ``checksum_validation`` is off); see ``ruleengine.decode.decoder``.
"""

from __future__ import annotations

import struct

from ruleengine.decode.base import (
    IPV4_HEADER,
    IPV6_HEADER,
    TWO_U16,
    Buffer,
    DecoderBase,
    sum16,
)
from ruleengine.decode.packet import IPPROTO_TCP, IPPROTO_UDP, Packet

_TCP = struct.Struct("!HHIIBBHHH")
_UDP = struct.Struct("!HHHH")
_ICMP = struct.Struct("!BBH")
# per ICMP version: its counter, the shortest valid packet, the event when it is shorter
_ICMP_HEAD = {4: ("decoder.icmpv4", 8, "icmpv4.pkt_too_small"),
              6: ("decoder.icmpv6", 4, "icmpv6.pkt_too_small")}
# options a segment may carry once (MSS, window scale, SACK-permitted, timestamps)
_TCP_ONCE_OPTIONS = frozenset({2, 3, 4, 8})
_NOP_NOP_TIMESTAMPS = b"\x01\x01\x08\x0a"  # NOP, NOP, kind 8 length 10 (12 bytes)

_KNOWN_ICMPV4_TYPES = frozenset(
    (0, 3, 4, 5, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 30, 40, 42, 43)
)
_ICMPV6_MAX_KNOWN_ERROR = 4
# highest valid code per ICMPv4 type (as checked by Suricata's DecodeICMPV4)
_ICMPV4_MAX_CODE = {
    0: 0,
    3: 15,
    4: 0,
    5: 3,
    8: 0,
    11: 1,
    12: 0,
    13: 0,
    14: 0,
    15: 0,
    16: 0,
    17: 0,
    18: 0,
}


class TransportDecoder(DecoderBase):
    """TCP/UDP/ICMP decoding; the network layer calls these with the L4 bounds."""

    def _tcp(self, pkt: Packet, buf: Buffer, off: int, end: int, pseudo: int) -> None:
        self.counters["decoder.tcp"] += 1
        length = end - off
        if length < 20:
            self._invalid(pkt, "tcp.pkt_too_small")
            return
        sport, dport, seq, ack, doff, flags, win, _csum, _urp = _TCP.unpack_from(buf, off)
        hlen = (doff >> 4) << 2
        if hlen < 20 or hlen > length:
            self._invalid(pkt, "tcp.hlen_too_small")
            return
        if hlen > 20 and not self._tcp_options(pkt, buf, off + 20, off + hlen):
            return
        pkt.sport = sport
        pkt.dport = dport
        pkt.seq = seq
        pkt.ack = ack
        pkt.tcp_flags = flags
        pkt.window = win
        pkt.l4_header = bytes(buf[off : off + hlen])
        pkt.payload = bytes(buf[off + hlen : end])
        if self.checksum_validation and (pseudo + sum16(buf[off:end])) % 0xFFFF:
            pkt.checksum_ok = False
            self.checksum_errors["tcp"] += 1

    def _tcp_options(self, pkt: Packet, buf: Buffer, p: int, end: int) -> bool:
        """Walk TCP options for length sanity (Suricata's tcp.opt_* events). Inline
        rather than through ``option_kinds``: nearly every segment has options."""
        if end - p == 12 and buf[p : p + 4] == _NOP_NOP_TIMESTAMPS:
            return True  # the usual Linux/BSD segment: one well-formed option
        seen = 0  # bit per option kind (< 64) seen, for duplicates of _TCP_ONCE_OPTIONS
        while p < end:
            kind = buf[p]
            if kind == 0:  # end of option list
                break
            if kind == 1:  # NOP
                p += 1
                continue
            if end - p < 2:
                self._invalid(pkt, "tcp.opt_invalid_len")
                return False
            olen = buf[p + 1]
            if olen < 2 or olen > end - p:
                self._invalid(pkt, "tcp.opt_invalid_len")
                return False
            if kind in _TCP_ONCE_OPTIONS:
                bit = 1 << kind
                if seen & bit:
                    self._event(pkt, "tcp.opt_duplicate")
                seen |= bit
            p += olen
        return True

    def _udp(self, pkt: Packet, buf: Buffer, off: int, end: int, pseudo: int, ipver: int) -> None:
        self.counters["decoder.udp"] += 1
        length = end - off
        if length < 8:
            self._invalid(pkt, "udp.pkt_too_small")
            return
        sport, dport, ulen, csum = _UDP.unpack_from(buf, off)
        if ulen < 8:
            self._invalid(pkt, "udp.hlen_too_small")
            return
        if ulen > length:
            self._invalid(pkt, "udp.len_invalid")
            return
        pkt.sport = sport
        pkt.dport = dport
        pkt.l4_header = bytes(buf[off : off + 8])
        pkt.payload = bytes(buf[off + 8 : off + ulen])
        checked = self.checksum_validation and (csum != 0 or ipver == 6)
        if checked and (
            csum == 0 or (pseudo - length + ulen + sum16(buf[off : off + ulen])) % 0xFFFF
        ):
            pkt.checksum_ok = False
            self.checksum_errors["udp"] += 1
        ports = self.udp_tunnel_ports
        if dport in ports or sport in ports:
            self._encap_udp(pkt, buf, off + 8, off + ulen, sport, dport)

    def _icmpv4(self, pkt: Packet, buf: Buffer, off: int, end: int) -> None:
        if not self._icmp_head(pkt, buf, off, end, 4):
            return
        itype, icode = pkt.icmp_type, pkt.icmp_code
        pkt.l4_header = bytes(buf[off : off + 8])
        pkt.payload = bytes(buf[off + 8 : end])
        if itype not in _KNOWN_ICMPV4_TYPES:
            self._event(pkt, "icmpv4.unknown_type")
        elif icode > _ICMPV4_MAX_CODE.get(itype, 255):
            self._event(pkt, "icmpv4.unknown_code")
        if itype == 3:
            self._icmp_embedded_v4(pkt, buf, off + 8, end)
        if self.checksum_validation and sum16(buf[off:end]):
            pkt.checksum_ok = False
            self.checksum_errors["icmp"] += 1

    def _icmp_head(self, pkt: Packet, buf: Buffer, off: int, end: int, version: int) -> bool:
        """Count the ICMP packet and read its type and code; False when it is too short."""
        counter, min_len, too_small = _ICMP_HEAD[version]
        self.counters[counter] += 1
        if end - off < min_len:
            self._invalid(pkt, too_small)
            return False
        pkt.icmp_type, pkt.icmp_code, _csum = _ICMP.unpack_from(buf, off)
        return True

    def _icmp_embedded_v4(self, pkt: Packet, buf: Buffer, p: int, end: int) -> None:
        """Destination unreachable quotes the offending IPv4 header + 8 bytes."""
        if end - p < 20:
            self._event(pkt, "icmpv4.ipv4_trunc_pkt")
            return
        vhl, _tos, _len, _id, _frag, _ttl, proto, _csum, src, dst = IPV4_HEADER.unpack_from(buf, p)
        if vhl >> 4 != 4:
            self._event(pkt, "icmpv4.ipv4_unknown_ver")
            return
        hlen = (vhl & 0x0F) << 2
        if hlen < 20 or p + hlen > end:
            self._event(pkt, "icmpv4.ipv4_trunc_pkt")
            return
        ports = _quoted_ports(buf, p + hlen, end, proto)
        if ports is not None:
            pkt.icmp_emb = (src, dst, ports[0], ports[1], proto)

    def _icmp_embedded_v6(self, pkt: Packet, buf: Buffer, p: int, end: int) -> None:
        if end - p < 40:
            self._event(pkt, "icmpv6.ipv6_trunc_pkt")
            return
        vtcfl, _plen, nh, _hlim, src, dst = IPV6_HEADER.unpack_from(buf, p)
        if vtcfl >> 28 != 6:
            self._event(pkt, "icmpv6.ipv6_unknown_version")
            return
        ports = _quoted_ports(buf, p + 40, end, nh)
        if ports is not None:
            pkt.icmp_emb = (src, dst, ports[0], ports[1], nh)

    def _icmpv6(self, pkt: Packet, buf: Buffer, off: int, end: int, pseudo: int) -> None:
        if not self._icmp_head(pkt, buf, off, end, 6):
            return
        itype = pkt.icmp_type
        hdr = min(8, end - off)
        pkt.l4_header = bytes(buf[off : off + hdr])
        pkt.payload = bytes(buf[off + hdr : end])
        if itype == 0 or (_ICMPV6_MAX_KNOWN_ERROR < itype < 100):
            self._event(pkt, "icmpv6.unknown_type")
        elif itype == 1:
            self._icmp_embedded_v6(pkt, buf, off + 8, end)
        if self.checksum_validation and (pseudo + sum16(buf[off:end])) % 0xFFFF:
            pkt.checksum_ok = False
            self.checksum_errors["icmp"] += 1


def _quoted_ports(buf: Buffer, p: int, end: int, proto: int) -> tuple[int, int] | None:
    if proto in (IPPROTO_TCP, IPPROTO_UDP) and end - p >= 4:
        sport, dport = TWO_U16.unpack_from(buf, p)
        return sport, dport
    return None
