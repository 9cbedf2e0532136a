"""Frame decoder: link layer → IPv4/IPv6 (defragmented) → TCP/UDP/ICMP.

Design (hot path): one ``Packet`` per frame, precompiled ``struct.Struct`` objects
read with ``unpack_from`` at offsets into the frame (no intermediate slices), bytes
copied once for the payload and the headers the detection keywords need.

Anomalies follow Suricata's decoder: they become events named as in Suricata's
``decode-event`` keyword (``ipv4.trunc_pkt``, ``tcp.hlen_too_small`` …) and are also
counted as ``decoder.event.<name>``. A frame whose headers cannot be decoded is marked
``invalid`` (not tracked nor inspected as a flow) and counted in ``decoder.invalid``.
Nothing raises out of ``Decoder.decode``.

Checksums (``checksum_validation``, i.e. ``-k all``/``auto`` vs ``-k none``): TCP, UDP
and ICMP checksums are verified with a whole-segment big-integer trick (the one's
complement sum is the value modulo 0xFFFF). A failure sets ``checksum_ok = False``;
like Suricata, the packet is still decoded and inspected as a packet but the stream
engine ignores it (``tcp.invalid_checksum``). IPv4 header checksums are not enforced
(Suricata does not either; the ``ipv4-csum`` keyword checks them).
"""

from __future__ import annotations

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
from ruleengine.decode.defrag import Defragmenter
from ruleengine.decode.packet import (
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    Packet,
)

Buffer = bytes | memoryview

# Old/BSD DLT values some writers put in pcap headers for raw IP.
DLT_RAW_12 = 12
DLT_RAW_14 = 14

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_ARP = 0x0806
_VLAN_TYPES = frozenset((0x8100, 0x88A8, 0x9100, 0x9200))
MAX_VLAN_LAYERS = 3

# BSD loopback address families (NULL/LOOP link types); IPv6 varies by OS.
_AF_INET = 2
_AF_INET6 = frozenset((10, 24, 28, 30))

_U16 = struct.Struct("!H")
_U32_LE = struct.Struct("<I")
_U32_BE = struct.Struct("!I")
_VLAN = struct.Struct("!HH")
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_IPV6 = struct.Struct("!IHBB16s16s")
_IPV6_FRAG = struct.Struct("!BBHI")
_TCP = struct.Struct("!HHIIBBHHH")
_UDP = struct.Struct("!HHHH")
_ICMP = struct.Struct("!BBH")

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

CHECKSUM_SAMPLE_COUNT = 1000
CHECKSUM_INVALID_RATIO = 10

COUNTER_NAMES = (
    "decoder.pkts",
    "decoder.bytes",
    "decoder.invalid",
    "decoder.ipv4",
    "decoder.ipv6",
    "decoder.ethernet",
    "decoder.vlan",
    "decoder.vlan_qinq",
    "decoder.vlan_qinqinq",
    "decoder.sll",
    "decoder.sll2",
    "decoder.raw",
    "decoder.null",
    "decoder.arp",
    "decoder.unknown_ethertype",
    "decoder.tcp",
    "decoder.udp",
    "decoder.icmpv4",
    "decoder.icmpv6",
    "decoder.max_pkt_size",
    "decoder.ipv4_in_ipv6",
)


def _sum16(data: Buffer) -> int:
    """One's complement sum (mod 0xFFFF) of ``data`` as big-endian 16-bit words."""
    value = int.from_bytes(data, "big")
    if len(data) & 1:
        value <<= 8
    return value % 0xFFFF


class Decoder:
    """Decodes frames of one link type into ``Packet`` records."""

    def __init__(
        self,
        linktype: int,
        *,
        checksum_validation: bool = True,
        defrag: bool = True,
        defrag_timeout: float = 60.0,
        checksum_auto: bool = False,
    ) -> None:
        self.linktype = linktype
        self.checksum_validation = checksum_validation
        # Suricata's ``checksum-checks: auto`` (pcap files): look at the first
        # CHECKSUM_SAMPLE_COUNT packets; if more than 1 in CHECKSUM_INVALID_RATIO TCP
        # checksums were wrong, assume checksum offloading and stop validating.
        self._auto_pending = checksum_auto and checksum_validation
        self.warnings: list[str] = []
        self.defrag_enabled = defrag
        self.counters: dict[str, int] = dict.fromkeys(COUNTER_NAMES, 0)
        # Checksum failures per protocol. Not stats counters: Suricata counts TCP ones in
        # the stream engine (``tcp.invalid_checksum``, see TcpTracker) and has none for
        # UDP/ICMP (their checksums are only looked at by rule keywords).
        self.checksum_errors: dict[str, int] = {"tcp": 0, "udp": 0, "icmp": 0}
        self.defrag = Defragmenter(self.counters, timeout=defrag_timeout)
        links: dict[int, Callable[[Packet, Buffer, int], None]] = {
            LINKTYPE_ETHERNET: self._ethernet,
            LINKTYPE_LINUX_SLL: self._sll,
            LINKTYPE_LINUX_SLL2: self._sll2,
            LINKTYPE_RAW: self._raw,
            DLT_RAW_12: self._raw,
            DLT_RAW_14: self._raw,
            LINKTYPE_IPV4: self._raw,
            LINKTYPE_IPV6: self._raw,
            LINKTYPE_NULL: self._null,
            LINKTYPE_LOOP: self._loop,
        }
        self._link = links.get(linktype, self._unsupported_link)

    @staticmethod
    def supports(linktype: int) -> bool:
        return linktype in (
            LINKTYPE_ETHERNET,
            LINKTYPE_LINUX_SLL,
            LINKTYPE_LINUX_SLL2,
            LINKTYPE_RAW,
            DLT_RAW_12,
            DLT_RAW_14,
            LINKTYPE_IPV4,
            LINKTYPE_IPV6,
            LINKTYPE_NULL,
            LINKTYPE_LOOP,
        )

    # -- entry point ------------------------------------------------------------------

    def decode(self, ts: float, data: Buffer, pkt_id: int = 0) -> Packet | None:
        """Decode one frame. ``None`` when it is an IP fragment held for reassembly."""
        n = len(data)
        c = self.counters
        c["decoder.pkts"] += 1
        c["decoder.bytes"] += n
        if n > c["decoder.max_pkt_size"]:
            c["decoder.max_pkt_size"] = n
        if self._auto_pending and c["decoder.pkts"] > CHECKSUM_SAMPLE_COUNT:
            self._checksum_auto_decide()
        pkt = Packet(ts, pkt_id, n)
        try:
            self._link(pkt, data, n)
        except Exception:  # hostile input must never escape; this is a decoder bug
            self._invalid(pkt, "decoder.internal_error")
        if pkt.frag and pkt.ip_version == 0:
            return None  # fragment held (the flag marks "consumed" until reassembled)
        return pkt

    def _checksum_auto_decide(self) -> None:
        self._auto_pending = False
        invalid = self.checksum_errors["tcp"]
        if invalid and CHECKSUM_SAMPLE_COUNT // invalid < CHECKSUM_INVALID_RATIO:
            self.checksum_validation = False
            self.warnings.append(
                f"more than 1/{CHECKSUM_INVALID_RATIO}th of the first {CHECKSUM_SAMPLE_COUNT} "
                f"packets have an invalid TCP checksum ({invalid}); assuming checksum "
                "offloading and disabling checksum validation (use -k all to keep it)"
            )

    # -- helpers ----------------------------------------------------------------------

    def _event(self, pkt: Packet, name: str) -> None:
        pkt.add_event(name)
        key = "decoder.event." + name
        self.counters[key] = self.counters.get(key, 0) + 1

    def _invalid(self, pkt: Packet, name: str) -> None:
        self._event(pkt, name)
        if not pkt.invalid:
            pkt.invalid = True
            self.counters["decoder.invalid"] += 1

    # -- link layers ------------------------------------------------------------------

    def _unsupported_link(self, pkt: Packet, buf: Buffer, n: int) -> None:
        self._invalid(pkt, "decoder.unsupported_linktype")

    def _ethernet(self, pkt: Packet, buf: Buffer, n: int) -> None:
        self.counters["decoder.ethernet"] += 1
        if n < 14:
            self._invalid(pkt, "ethernet.pkt_too_small")
            return
        etype = _U16.unpack_from(buf, 12)[0]
        if etype == ETHERTYPE_IPV4:  # the common case without the extra dispatch call
            self._ipv4(pkt, buf, 14, n)
        else:
            self._ethertype(pkt, buf, 14, n, etype)

    def _ethertype(self, pkt: Packet, buf: Buffer, off: int, n: int, etype: int) -> None:
        if etype == ETHERTYPE_IPV4:
            self._ipv4(pkt, buf, off, n)
        elif etype == ETHERTYPE_IPV6:
            self._ipv6(pkt, buf, off, n)
        elif etype in _VLAN_TYPES:
            self._vlan(pkt, buf, off, n, etype)
        elif etype == ETHERTYPE_ARP:
            self.counters["decoder.arp"] += 1
        else:
            self.counters["decoder.unknown_ethertype"] += 1

    def _vlan(self, pkt: Packet, buf: Buffer, off: int, n: int, etype: int) -> None:
        c = self.counters
        vlans: list[int] = []
        while etype in _VLAN_TYPES:
            if n - off < 4:
                self._invalid(pkt, "vlan.header_too_small")
                return
            if len(vlans) >= MAX_VLAN_LAYERS:
                self._invalid(pkt, "vlan.too_many_layers")
                return
            tci, etype = _VLAN.unpack_from(buf, off)
            vlans.append(tci & 0x0FFF)
            off += 4
        depth = len(vlans)
        c["decoder.vlan"] += 1
        if depth == 2:
            c["decoder.vlan_qinq"] += 1
        elif depth == 3:
            c["decoder.vlan_qinqinq"] += 1
        pkt.vlan = tuple(vlans)
        if etype in (ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_ARP):
            self._ethertype(pkt, buf, off, n, etype)
        else:
            self._event(pkt, "vlan.unknown_type")

    def _sll(self, pkt: Packet, buf: Buffer, n: int) -> None:
        self.counters["decoder.sll"] += 1
        if n < 16:
            self._invalid(pkt, "sll.pkt_too_small")
            return
        self._ethertype(pkt, buf, 16, n, _U16.unpack_from(buf, 14)[0])

    def _sll2(self, pkt: Packet, buf: Buffer, n: int) -> None:
        self.counters["decoder.sll2"] += 1
        if n < 20:
            self._invalid(pkt, "sll.pkt_too_small")
            return
        self._ethertype(pkt, buf, 20, n, _U16.unpack_from(buf, 0)[0])

    def _raw(self, pkt: Packet, buf: Buffer, n: int) -> None:
        self.counters["decoder.raw"] += 1
        if n < 1:
            self._invalid(pkt, "ipraw.invalid_ip_version")
            return
        version = buf[0] >> 4
        if version == 4:
            self._ipv4(pkt, buf, 0, n)
        elif version == 6:
            self._ipv6(pkt, buf, 0, n)
        else:
            self._invalid(pkt, "ipraw.invalid_ip_version")

    def _null(self, pkt: Packet, buf: Buffer, n: int) -> None:
        self._loopback(pkt, buf, n, _U32_LE)

    def _loop(self, pkt: Packet, buf: Buffer, n: int) -> None:
        self._loopback(pkt, buf, n, _U32_BE)

    def _loopback(self, pkt: Packet, buf: Buffer, n: int, fmt: struct.Struct) -> None:
        self.counters["decoder.null"] += 1
        if n < 4:
            self._invalid(pkt, "ltnull.pkt_too_small")
            return
        family = fmt.unpack_from(buf, 0)[0]
        if family > 0xFFFF:  # written in the other byte order than expected
            family = struct.unpack_from("<I" if fmt is _U32_BE else "!I", buf, 0)[0]
        if family == _AF_INET:
            self._ipv4(pkt, buf, 4, n)
        elif family in _AF_INET6:
            self._ipv6(pkt, buf, 4, n)
        else:
            self._event(pkt, "ltnull.unsupported_type")

    # -- IPv4 -------------------------------------------------------------------------

    def _ipv4(self, pkt: Packet, buf: Buffer, off: int, n: int) -> None:
        self.counters["decoder.ipv4"] += 1
        avail = n - off
        if avail < 20:
            self._invalid(pkt, "ipv4.pkt_too_small")
            return
        vhl, _tos, tot_len, ip_id, frag, ttl, proto, _csum, src, dst = _IPV4.unpack_from(buf, off)
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
            self._udp(pkt, buf, l4, end, self._pseudo4(src, dst, proto, end - l4), 4)
        elif proto == IPPROTO_ICMP:
            self._icmpv4(pkt, buf, l4, end)
        else:
            if proto == IPPROTO_ICMPV6:
                self._event(pkt, "ipv4.icmpv6")
            pkt.payload = bytes(buf[l4:end])

    def _ipv4_options(self, pkt: Packet, buf: Buffer, p: int, end: int) -> bool:
        """Option sanity as in Suricata's DecodeIPV4Options; False when invalid."""
        seen: set[int] = set()
        while p < end:
            kind = buf[p]
            if kind == 0:  # end of option list
                break
            if kind == 1:  # NOP
                p += 1
                continue
            if end - p < 2:
                self._event(pkt, "ipv4.opt_eol_required")
                return True
            olen = buf[p + 1]
            if olen < 2 or olen > end - p:
                self._invalid(pkt, "ipv4.opt_invalid_len")
                return False
            if kind not in _IPV4_KNOWN_OPTIONS:
                self._event(pkt, "ipv4.opt_unknown")
            elif kind in seen:
                self._event(pkt, "ipv4.opt_duplicate")
            seen.add(kind)
            p += olen
        return True

    def _pseudo4(self, src: bytes, dst: bytes, proto: int, length: int) -> int:
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
        vtcfl, plen, nh, hlim, src, dst = _IPV6.unpack_from(buf, off)
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
            self._tcp(pkt, buf, p, end, self._pseudo6(src, dst_pseudo, nh, end - p))
        elif nh == IPPROTO_UDP:
            self._udp(pkt, buf, p, end, self._pseudo6(src, dst_pseudo, nh, end - p), 6)
        elif nh == IPPROTO_ICMPV6:
            self._icmpv6(pkt, buf, p, end, self._pseudo6(src, dst_pseudo, nh, end - p))
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

    def _pseudo6(self, src: bytes, dst: bytes, nh: int, length: int) -> int:
        if not self.checksum_validation:
            return 0
        return int.from_bytes(src, "big") + int.from_bytes(dst, "big") + nh + length

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

    # -- transport --------------------------------------------------------------------

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
        if self.checksum_validation and (pseudo + _sum16(buf[off:end])) % 0xFFFF:
            pkt.checksum_ok = False
            self.checksum_errors["tcp"] += 1

    def _tcp_options(self, pkt: Packet, buf: Buffer, p: int, end: int) -> bool:
        """Walk TCP options for length sanity (Suricata's tcp.opt_* events)."""
        seen = 0
        while p < end:
            kind = buf[p]
            if kind == 0:  # end of options list
                break
            if kind == 1:  # NOP
                p += 1
                continue
            if p + 1 >= end:
                self._invalid(pkt, "tcp.opt_invalid_len")
                return False
            olen = buf[p + 1]
            if olen < 2 or p + olen > end:
                self._invalid(pkt, "tcp.opt_invalid_len")
                return False
            if kind < 64:
                bit = 1 << kind
                if seen & bit and kind in (2, 3, 4, 8):
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
            csum == 0 or (pseudo - length + ulen + _sum16(buf[off : off + ulen])) % 0xFFFF
        ):
            pkt.checksum_ok = False
            self.checksum_errors["udp"] += 1

    def _icmpv4(self, pkt: Packet, buf: Buffer, off: int, end: int) -> None:
        self.counters["decoder.icmpv4"] += 1
        if end - off < 8:
            self._invalid(pkt, "icmpv4.pkt_too_small")
            return
        itype, icode, _csum = _ICMP.unpack_from(buf, off)
        pkt.icmp_type = itype
        pkt.icmp_code = icode
        pkt.l4_header = bytes(buf[off : off + 8])
        pkt.payload = bytes(buf[off + 8 : end])
        if itype not in _KNOWN_ICMPV4_TYPES:
            self._event(pkt, "icmpv4.unknown_type")
        elif icode > _ICMPV4_MAX_CODE.get(itype, 255):
            self._event(pkt, "icmpv4.unknown_code")
        if itype == 3:
            self._icmp_embedded_v4(pkt, buf, off + 8, end)
        if self.checksum_validation and _sum16(buf[off:end]):
            pkt.checksum_ok = False
            self.checksum_errors["icmp"] += 1

    def _icmp_embedded_v4(self, pkt: Packet, buf: Buffer, p: int, end: int) -> None:
        """Destination unreachable quotes the offending IPv4 header + 8 bytes."""
        if end - p < 20:
            self._event(pkt, "icmpv4.ipv4_trunc_pkt")
            return
        vhl, _tos, _len, _id, _frag, _ttl, proto, _csum, src, dst = _IPV4.unpack_from(buf, p)
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
        vtcfl, _plen, nh, _hlim, src, dst = _IPV6.unpack_from(buf, p)
        if vtcfl >> 28 != 6:
            self._event(pkt, "icmpv6.ipv6_unknown_version")
            return
        ports = _quoted_ports(buf, p + 40, end, nh)
        if ports is not None:
            pkt.icmp_emb = (src, dst, ports[0], ports[1], nh)

    def _icmpv6(self, pkt: Packet, buf: Buffer, off: int, end: int, pseudo: int) -> None:
        self.counters["decoder.icmpv6"] += 1
        if end - off < 4:
            self._invalid(pkt, "icmpv6.pkt_too_small")
            return
        itype, icode, _csum = _ICMP.unpack_from(buf, off)
        pkt.icmp_type = itype
        pkt.icmp_code = icode
        hdr = min(8, end - off)
        pkt.l4_header = bytes(buf[off : off + hdr])
        pkt.payload = bytes(buf[off + hdr : end])
        if itype == 0 or (_ICMPV6_MAX_KNOWN_ERROR < itype < 100):
            self._event(pkt, "icmpv6.unknown_type")
        elif itype == 1:
            self._icmp_embedded_v6(pkt, buf, off + 8, end)
        if self.checksum_validation and (pseudo + _sum16(buf[off:end])) % 0xFFFF:
            pkt.checksum_ok = False
            self.checksum_errors["icmp"] += 1


def _quoted_ports(buf: Buffer, p: int, end: int, proto: int) -> tuple[int, int] | None:
    if proto in (IPPROTO_TCP, IPPROTO_UDP) and end - p >= 4:
        sport, dport = _VLAN.unpack_from(buf, p)  # two u16, same layout as a VLAN tag
        return sport, dport
    return None


_DUPL_EVENTS = {
    _EXT_HOP: "ipv6.exthdr_dupl_hh",
    _EXT_ROUTING: "ipv6.exthdr_dupl_rh",
    _EXT_DEST: "ipv6.exthdr_dupl_dh",
    _EXT_AH: "ipv6.exthdr_dupl_ah",
}
