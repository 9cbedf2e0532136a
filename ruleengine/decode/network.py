"""Network layer: IPv4 and IPv6 (options, extension headers, defragmentation).

A reassembled datagram is decoded again from its IP header; the transport layer gets
the L4 bounds and, when checksums are validated, the pseudo-header sum.
"""

from __future__ import annotations

import struct

from ruleengine.decode.base import IPV4_HEADER, IPV6_HEADER, Buffer, option_kinds
from ruleengine.decode.packet import (
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    Packet,
)
from ruleengine.decode.transport import TransportDecoder

_IPV6_FRAG = struct.Struct("!BBHI")

# IP protocols the tunnel layer decodes: IP-in-IP (4), IPv6 (41), GRE (47)
_ENCAP_PROTOS = frozenset((4, 41, 47))

# RR, QS, TS, SEC, LSRR, E-SEC, CIPSO, SID, SSRR, RTRALT (Suricata's known IPv4 options)
_IPV4_KNOWN_OPTIONS = frozenset((7, 25, 68, 130, 131, 133, 134, 136, 137, 148))

# Router alert, jumbo payload, home address (options Suricata knows besides padding)
_IPV6_KNOWN_OPTIONS = frozenset((0x05, 0xC2, 0xC9))

# IPv6 extension headers that are skipped with their generic length field.
_EXT_HOP = 0
_EXT_ROUTING = 43
_EXT_FRAG = 44
_EXT_ESP = 50
_EXT_AH = 51
_EXT_NONE = 59
_EXT_DEST = 60
_EXT_MOBILITY = 135

_DUPL_EVENTS = {
    _EXT_HOP: "ipv6.exthdr_dupl_hh",
    _EXT_ROUTING: "ipv6.exthdr_dupl_rh",
    _EXT_DEST: "ipv6.exthdr_dupl_dh",
    _EXT_AH: "ipv6.exthdr_dupl_ah",
}


class NetworkDecoder(TransportDecoder):
    """IPv4/IPv6 decoding; the link layer calls ``_ipv4``/``_ipv6`` at the IP header."""

    # -- IPv4 -------------------------------------------------------------------------

    def _ipv4(self, pkt: Packet, buf: Buffer, off: int, n: int) -> None:
        self.counters["decoder.ipv4"] += 1
        avail = n - off
        if avail < 20:
            self._invalid(pkt, "ipv4.pkt_too_small")
            return
        vhl, _tos, tot_len, ip_id, frag, ttl, proto, _csum, src, dst = IPV4_HEADER.unpack_from(
            buf, off
        )
        if vhl >> 4 != 4:
            self._invalid(pkt, "ipv4.wrong_ip_version")
            return
        hlen = (vhl & 0x0F) << 2
        if hlen < 20:
            self._invalid(pkt, "ipv4.hlen_too_small")
            return
        if tot_len < hlen:
            self._invalid(pkt, "ipv4.iplen_smaller_than_hlen")
            return
        if tot_len > avail:
            self._invalid(pkt, "ipv4.trunc_pkt")
            return
        l4 = off + hlen
        end = off + tot_len
        if hlen > 20 and not self._ipv4_options(pkt, buf, off + 20, l4):
            return
        if (
            frag & 0x3FFF
            and self.defrag_enabled
            and self._defrag4(pkt, buf, off, l4, end, frag, ip_id, proto, src, dst)
        ):
            return
        pkt.ip_version = 4
        pkt.src = src
        pkt.dst = dst
        pkt.proto = proto
        pkt.ttl = ttl
        pkt.ip_id = ip_id
        pkt.ip_len = tot_len
        pkt.ip_header = bytes(buf[off:l4])
        if frag & 0x3FFF:  # fragment, defrag disabled: no transport header to decode
            pkt.payload = bytes(buf[l4:end])
            return
        if proto == IPPROTO_TCP:
            pseudo = 0
            if self.checksum_validation:
                pseudo = int.from_bytes(src + dst, "big") + proto + end - l4
            self._tcp(pkt, buf, l4, end, pseudo)
        elif proto == IPPROTO_UDP:
            self._udp(pkt, buf, l4, end, self._pseudo(src, dst, proto, end - l4), 4)
        elif proto == IPPROTO_ICMP:
            self._icmpv4(pkt, buf, l4, end)
        elif proto in _ENCAP_PROTOS and self._encap_ip(pkt, buf, l4, end, proto):
            return
        else:
            if proto == IPPROTO_ICMPV6:
                self._event(pkt, "ipv4.icmpv6")
            pkt.payload = bytes(buf[l4:end])

    def _ipv4_options(self, pkt: Packet, buf: Buffer, p: int, end: int) -> bool:
        """Option sanity as in Suricata's DecodeIPV4Options; False when invalid."""
        kinds, problem = option_kinds(buf, p, end)
        seen: set[int] = set()
        for kind in kinds:
            if kind not in _IPV4_KNOWN_OPTIONS:
                self._event(pkt, "ipv4.opt_unknown")
            elif kind in seen:
                self._event(pkt, "ipv4.opt_duplicate")
            seen.add(kind)
        if problem == "length":
            self._invalid(pkt, "ipv4.opt_invalid_len")
            return False
        if problem == "short":  # a last option byte without its length: still decoded
            self._event(pkt, "ipv4.opt_eol_required")
        return True

    def _pseudo(self, src: bytes, dst: bytes, proto: int, length: int) -> int:
        """The pseudo-header's part of a transport checksum (IPv4 or IPv6 addresses), as
        a sum congruent modulo 0xFFFF; 0 when checksums are not validated."""
        if not self.checksum_validation:
            return 0
        return int.from_bytes(src, "big") + int.from_bytes(dst, "big") + proto + length

    def _defrag4(
        self,
        pkt: Packet,
        buf: Buffer,
        off: int,
        l4: int,
        end: int,
        frag: int,
        ip_id: int,
        proto: int,
        src: bytes,
        dst: bytes,
    ) -> bool:
        """Hand a fragment to defrag; False when defrag refused it (decode it as is)."""
        foff = (frag & 0x1FFF) << 3
        more = bool(frag & 0x2000)
        key = (4, src, dst, ip_id, proto, pkt.vlan)
        events: list[str] = []
        whole = self.defrag.add_v4(
            pkt.ts, key, bytes(buf[off:l4]), foff, more, bytes(buf[l4:end]), events
        )
        for name in events:
            self._event(pkt, name)
        if whole is None:
            if "ipv4.frag_pkt_too_large" in events:
                return False
            pkt.frag = True  # held; decode() returns None
            return True
        self._add_held_events(pkt, events)
        self._ipv4(pkt, whole, 0, len(whole))
        pkt.frag = True
        pkt.length = len(whole)
        return True

    def _add_held_events(self, pkt: Packet, current: list[str]) -> None:
        """Anomalies of earlier (held) fragments also go on the reassembled packet."""
        for name in self.defrag.held_events:
            if name not in current and (pkt.events is None or name not in pkt.events):
                pkt.add_event(name)

    # -- IPv6 -------------------------------------------------------------------------

    def _ipv6(self, pkt: Packet, buf: Buffer, off: int, n: int) -> None:
        self.counters["decoder.ipv6"] += 1
        avail = n - off
        if avail < 40:
            self._invalid(pkt, "ipv6.pkt_too_small")
            return
        vtcfl, plen, nh, hlim, src, dst = IPV6_HEADER.unpack_from(buf, off)
        if vtcfl >> 28 != 6:
            self._invalid(pkt, "ipv6.wrong_ip_version")
            return
        if plen > avail - 40:
            self._invalid(pkt, "ipv6.trunc_pkt")
            return
        end = off + 40 + plen
        p = off + 40
        nh_off = off + 6  # where the current next-header value was read from
        seen = 0  # bit per extension header type seen, for duplicate events
        dst_pseudo = dst  # final destination for the checksum pseudo-header
        while True:
            if nh in (IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6):
                break
            if nh in (_EXT_HOP, _EXT_ROUTING, _EXT_DEST, _EXT_AH, _EXT_MOBILITY):
                if end - p < 8:
                    self._invalid(pkt, "ipv6.trunc_exthdr")
                    return
                nxt = buf[p]
                hl = buf[p + 1]
                elen = (hl + 2) << 2 if nh == _EXT_AH else (hl + 1) << 3
                if p + elen > end:
                    self._invalid(pkt, "ipv6.trunc_exthdr")
                    return
                bit = 1 << (nh & 0x3F)
                if seen & bit and nh != _EXT_DEST:
                    self._event(pkt, _DUPL_EVENTS.get(nh, "ipv6.exthdr_dupl_eh"))
                seen |= bit
                if nh in (_EXT_HOP, _EXT_DEST):
                    self._ipv6_tlv_options(pkt, buf, p + 2, p + elen, nh == _EXT_HOP)
                elif nh == _EXT_ROUTING:
                    final = self._routing_final_dst(pkt, buf, p, elen)
                    if final is not None:
                        dst_pseudo = final
                nh_off = p
                nh = nxt
                p += elen
                continue
            if nh == _EXT_FRAG:
                if end - p < 8:
                    self._invalid(pkt, "ipv6.trunc_exthdr")
                    return
                nxt, reserved, fo, ident = _IPV6_FRAG.unpack_from(buf, p)
                if reserved:
                    self._event(pkt, "ipv6.fh_non_zero_reserved_field")
                if seen & (1 << _EXT_FRAG):
                    self._event(pkt, "ipv6.exthdr_dupl_fh")
                seen |= 1 << _EXT_FRAG
                foff = fo & 0xFFF8
                more = bool(fo & 1)
                if (
                    (foff or more)
                    and self.defrag_enabled
                    and self._defrag6(
                        pkt, buf, off, p, nh_off, end, nxt, foff, more, ident, src, dst
                    )
                ):
                    return
                if not (foff or more):
                    self._event(pkt, "ipv6.exthdr_useless_fh")
                    nh_off = p
                    nh = nxt
                    p += 8
                    continue
                # fragment with defrag disabled: stop at the fragment header
                break
            break
        pkt.ip_version = 6
        pkt.src = src
        pkt.dst = dst
        pkt.proto = nh
        pkt.ttl = hlim
        pkt.ip_len = 40 + plen
        pkt.ip_header = bytes(buf[off:p])
        if nh == IPPROTO_TCP:
            self._tcp(pkt, buf, p, end, self._pseudo(src, dst_pseudo, nh, end - p))
        elif nh == IPPROTO_UDP:
            self._udp(pkt, buf, p, end, self._pseudo(src, dst_pseudo, nh, end - p), 6)
        elif nh == IPPROTO_ICMPV6:
            self._icmpv6(pkt, buf, p, end, self._pseudo(src, dst_pseudo, nh, end - p))
        elif nh in _ENCAP_PROTOS and self._encap_ip(pkt, buf, p, end, nh):
            return
        else:
            if nh == _EXT_NONE and end > p:
                self._event(pkt, "ipv6.data_after_none_header")
            elif nh == IPPROTO_ICMP:
                self._event(pkt, "ipv6.icmpv4")
            pkt.payload = bytes(buf[p:end])

    def _ipv6_tlv_options(
        self, pkt: Packet, buf: Buffer, p: int, end: int, hop_by_hop: bool
    ) -> None:
        """Hop-by-hop / destination option TLVs (Suricata's DecodeIPV6ExtHdrs checks)."""
        padn = 0
        other = 0
        while p < end:
            kind = buf[p]
            if kind == 0:  # Pad1
                p += 1
                continue
            if p + 1 >= end or p + 2 + buf[p + 1] > end:
                self._event(pkt, "ipv6.exthdr_invalid_optlen")
                return
            olen = buf[p + 1]
            if kind == 1:  # PadN
                padn += 1
                if olen == 0:
                    self._event(pkt, "ipv6.zero_len_padn")
            elif kind not in _IPV6_KNOWN_OPTIONS:
                self._event(
                    pkt, "ipv6.hopopts_unknown_opt" if hop_by_hop else "ipv6.dstopts_unknown_opt"
                )
                other += 1
            else:
                other += 1
            p += olen + 2
        if padn and not other:
            self._event(
                pkt, "ipv6.hopopts_only_padding" if hop_by_hop else "ipv6.dstopts_only_padding"
            )

    def _routing_final_dst(self, pkt: Packet, buf: Buffer, p: int, elen: int) -> bytes | None:
        """Final destination named by a routing header (RFC 8200 §8.1 pseudo-header)."""
        rtype = buf[p + 2]
        segments_left = buf[p + 3]
        if rtype == 0:
            self._event(pkt, "ipv6.rh_type_0")
        if not segments_left:
            return None
        if rtype in (0, 2) and elen >= 24:
            return bytes(buf[p + elen - 16 : p + elen])  # last listed address
        if rtype == 4 and elen >= 24:
            return bytes(buf[p + 8 : p + 24])  # SRH: segment list[0] is the last segment
        return None

    def _defrag6(
        self,
        pkt: Packet,
        buf: Buffer,
        off: int,
        frag_p: int,
        nh_off: int,
        end: int,
        nxt: int,
        foff: int,
        more: bool,
        ident: int,
        src: bytes,
        dst: bytes,
    ) -> bool:
        key = (6, src, dst, ident, 0, pkt.vlan)
        events: list[str] = []
        whole = self.defrag.add_v6(
            pkt.ts,
            key,
            bytes(buf[off:frag_p]),
            nh_off - off,
            nxt,
            foff,
            more,
            bytes(buf[frag_p + 8 : end]),
            events,
        )
        for name in events:
            self._event(pkt, name)
        if whole is None:
            if "ipv6.frag_pkt_too_large" in events:
                return False
            pkt.frag = True
            return True
        self._add_held_events(pkt, events)
        self._ipv6(pkt, whole, 0, len(whole))
        pkt.frag = True
        pkt.length = len(whole)
        return True
