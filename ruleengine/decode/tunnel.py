"""Encapsulations: GRE (with ERSPAN and PPTP's PPP), VXLAN, Geneve, MPLS, PPPoE,
IP-in-IP, IPv6-in-IPv4 (6in4), IPv4/IPv6-in-IPv6, as Suricata's decode-*.c read them.

Suricata spawns a second packet for what a tunnel carries (PacketTunnelPktSetup): the
inner packet is the one flow tracking, the stream engine and payload detection see, with
``p->root`` pointing at the outer one. Here the inner headers are decoded into the same
``Packet`` (no second object on the hot path): before the inner decode, the outermost
packet's addresses go to ``pkt.tunnel`` with the depth (Suricata's ``recursion_level``,
for the EVE alert ``tunnel`` object), and the fields are reset for the inner packet.
``pkt_id`` is untouched, so the capture verdict applies to the outer frame, as
Suricata's verdict on a tunnel packet goes to its root.

MPLS, PPPoE and PPP are not tunnels for Suricata (the same packet is decoded on, as
VLAN is): they change nothing but the offset. Every encapsulation layer counts towards
``decoder.max-layers`` (``decoder.too_many_layers``), which bounds nesting and keeps the
recursion shallow whatever the frame holds.

A tunnel whose first inner header does not decode (an IPv4 header too short, an
Ethernet frame of 10 bytes, a bad ERSPAN version ...) is not a tunnel: Suricata drops
the tunnel packet with its events and goes on with the outer packet as a plain one
(PacketTunnelPktSetup), and so does ``_tunnel_failed`` here, putting the outer fields
back. A failure deeper in (a bad inner TCP header) leaves the inner packet invalid.

Differences from Suricata, on purpose: the outer packet of a tunnel is not tracked as a
flow of its own nor inspected (Suricata runs it through header-only detection too);
ERSPAN type III (ethertype 0x22EB), which Suricata does not decode, is.
"""

from __future__ import annotations

import struct

from ruleengine.decode.base import U16, Buffer
from ruleengine.decode.link import ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, LinkDecoder
from ruleengine.decode.packet import Packet

ETHERTYPE_MPLS_UC = 0x8847
ETHERTYPE_MPLS_MC = 0x8848
ETHERTYPE_PPPOE_DISC = 0x8863
ETHERTYPE_PPPOE_SESS = 0x8864
ETHERTYPE_BRIDGE = 0x6558  # transparent Ethernet bridging (GRE, Geneve)
ETHERTYPE_ERSPAN = 0x88BE  # type I (no GRE sequence) and II
ETHERTYPE_ERSPAN3 = 0x22EB
ETHERTYPE_PPP = 0x880B  # GRE version 1 (PPTP)
_VLAN_ETHERTYPES = frozenset((0x8100, 0x88A8, 0x9100))
# a tunnel payload named by its ethertype that is an IP packet, and its version
_INNER_IP_VERSION = {ETHERTYPE_IPV4: 4, ETHERTYPE_IPV6: 6}
# GRE protocols decoded as a tunnel besides IPv4/IPv6 and bridging
_GRE_L2_PROTOS = _VLAN_ETHERTYPES | {ETHERTYPE_PPP, ETHERTYPE_ERSPAN, ETHERTYPE_ERSPAN3}

IPPROTO_IPIP = 4
IPPROTO_IPV6 = 41
IPPROTO_GRE = 47
# an IP packet inside IPv6 (by inner version): its minimum header, the events of a short or a
# wrongly versioned one, its counter; inside IPv4 only the counter (decode-ipv6.c, ipv4.c)
_IN_IPV6 = {4: (20, "ipv6.ipv4_in_ipv6_too_small", "ipv6.ipv4_in_ipv6_wrong_version",
                "decoder.ipv4_in_ipv6"),
            6: (40, "ipv6.ipv6_in_ipv6_too_small", "ipv6.ipv6_in_ipv6_wrong_version",
                "decoder.ipv6_in_ipv6")}
_IN_IPV4 = {4: "decoder.ipv4_in_ipv4", 6: "decoder.ipv6_in_ipv4"}

VXLAN_PORTS = frozenset((4789,))
GENEVE_PORTS = frozenset((6081,))
DEFAULT_MAX_LAYERS = 16  # decoder.max-layers
MAX_LAYERS_CAP = 64  # above this the recursion, not the config, would be the limit

_GRE_HDR = struct.Struct("!BBH")  # flags, version byte, protocol
_GRE_SRE = struct.Struct("!HBB")  # address family, offset, length
_PPPOE_CODES = frozenset((0x09, 0x07, 0x19, 0x65, 0xA7))  # PADI PADO PADR PADS PADT
_PPP_IPV4 = 0x0021
_PPP_IPV6 = 0x0057
_PPP_VJ_UCOMP = 0x002F  # uncompressed Van Jacobson: an IPv4 header as it is
# PPP protocols Suricata knows but does not decode: ppp.unsup_proto (not wrong_type)
_PPP_UNSUPPORTED = frozenset(
    (0x002D, 0x002B, 0x0023, 0x0025, 0x0027, 0x0029, 0x0031, 0x0033, 0x0035, 0x0201,
     0x0231, 0x0233, 0x0281, 0x0283, 0x8023, 0x8025, 0x8027, 0x8029, 0x802B, 0x8033,
     0x8035, 0x8281)
)
# link control protocols: DecodePPP accepts them silently, DecodePPPOESession reports
# them as unsupported
_PPP_CONTROL = frozenset(
    (0x8021, 0x8057, 0xC021, 0xC023, 0xC223, 0x80FD, 0xC025, 0xC029, 0x00FD, 0x8207)
)
_PPPOE_UNSUPPORTED = (_PPP_UNSUPPORTED | _PPP_CONTROL) - {0x80FD, 0xC029, 0x00FD, 0x8207}

# The first event of a failed inner decode that makes Suricata drop the tunnel packet
# (DecodeTunnel returned TM_ECODE_FAILED) for a tunnel carrying a link-layer frame; for
# one carrying IP, any header-level failure (no inner IP header decoded) does.
_L2_HEADER_FAILURES = frozenset(
    ("ethernet.pkt_too_small", "erspan.header_too_small", "erspan.unsupported_version",
     "erspan.too_many_vlan_layers", "vlan.header_too_small", "vlan.too_many_layers")
)
# inner failures after which DecodeTunnel still returns TM_ECODE_OK (the tunnel packet
# lives on, invalid)
_KEPT_FAILURES = frozenset(("ppp.wrong_type", "mpls.unknown_payload_type"))

# Packet fields a tunnel entry overwrites and a failed tunnel puts back
_OUTER_FIELDS = (
    "ip_version", "src", "dst", "proto", "ttl", "ip_id", "ip_len", "sport", "dport",
    "tcp_flags", "seq", "ack", "window", "icmp_type", "icmp_code", "payload", "ip_header",
    "l4_header", "icmp_emb", "checksum_ok", "tunnel", "vlan", "length", "invalid",
)

Tunnel = tuple[int, bytes, bytes, int, int, int, int]


_Saved = tuple[tuple[object, ...], int, int]


class TunnelDecoder(LinkDecoder):
    """The encapsulation hooks of ``DecoderBase``; ``Decoder`` sets the ports and caps."""

    vxlan_ports: frozenset[int]
    geneve_ports: frozenset[int]
    vxlan_strict: bool  # decoder.vxlan.reserved-bits-check: strict (the default)
    max_layers: int
    _layers: int  # encapsulation layers of the frame being decoded (reset per frame)

    # -- shared -----------------------------------------------------------------------

    def _layer(self, pkt: Packet) -> bool:
        """One more encapsulation (Suricata's PacketIncreaseCheckLayers)."""
        self._layers += 1
        if self._layers < self.max_layers:
            return True
        # Suricata's GENERIC_TOO_MANY_LAYERS ("decoder.too_many_layers"): counted as
        # decoder.too_many_layers, not as a decoder.event.* counter
        pkt.add_event("too_many_layers")
        self.counters["decoder.too_many_layers"] += 1
        if not pkt.invalid:
            pkt.invalid = True
            self.counters["decoder.invalid"] += 1
        return False

    def _enter_tunnel(self, pkt: Packet, start: int, end: int) -> _Saved:
        """Keep the outermost packet's addresses, clear the fields for the inner one,
        which starts at ``start``; what is returned lets ``_tunnel_failed`` put the outer
        packet back."""
        saved = (tuple(getattr(pkt, f) for f in _OUTER_FIELDS),
                 len(pkt.events) if pkt.events else 0, self._layers)
        t = pkt.tunnel
        if t is None:
            pkt.tunnel = (pkt.ip_version, pkt.src, pkt.dst, pkt.sport, pkt.dport, pkt.proto, 1)
        else:
            pkt.tunnel = (t[0], t[1], t[2], t[3], t[4], t[5], t[6] + 1)
        pkt.ip_version = 0
        pkt.src = pkt.dst = b""
        pkt.proto = pkt.ttl = pkt.ip_id = pkt.ip_len = 0
        pkt.sport = pkt.dport = pkt.tcp_flags = pkt.seq = pkt.ack = pkt.window = 0
        pkt.icmp_type = pkt.icmp_code = -1
        pkt.payload = pkt.ip_header = pkt.l4_header = b""
        pkt.icmp_emb = None
        pkt.checksum_ok = True  # the outer checksum was counted; the inner is checked anew
        # the tunnel packet's length (flow bytes) is what PacketTunnelPktSetup copies:
        # the outer payload from the inner header on
        pkt.length = end - start
        return saved

    def _tunnel_failed(self, pkt: Packet, saved: _Saved, l2: bool) -> bool:
        """Suricata drops a tunnel packet whose first inner header does not decode
        (PacketTunnelPktSetup: DecodeTunnel failed) and goes on with the outer packet as
        a plain one, the inner events unseen. True when that happened here: the outer
        packet is back, with neither the inner events nor their counts."""
        if not pkt.invalid or pkt.ip_version or pkt.frag:
            return False
        fields, n_events, layers = saved
        events = pkt.events or []
        first = events[n_events] if len(events) > n_events else ""
        if (first in _L2_HEADER_FAILURES) if l2 else (first not in _KEPT_FAILURES):
            c = self.counters
            for name in events[n_events:]:
                key = "decoder.event." + name
                if key in c:
                    c[key] -= 1
                    if not c[key]:
                        del c[key]
            del events[n_events:]
            if not events:
                pkt.events = None
            for name, value in zip(_OUTER_FIELDS, fields, strict=True):
                setattr(pkt, name, value)
            if not pkt.invalid:  # the inner packet made it invalid: not counted after all
                c["decoder.invalid"] -= 1
            self._layers = layers
            return True
        return False

    def _ether_at(self, pkt: Packet, buf: Buffer, off: int, n: int) -> None:
        """An Ethernet frame at ``off`` (VXLAN, Geneve, GRE bridging, ERSPAN, MPLS PW)."""
        self.counters["decoder.ethernet"] += 1
        if n - off < 14:
            self._invalid(pkt, "ethernet.pkt_too_small")
            return
        self._ethertype(pkt, buf, off + 14, n, U16.unpack_from(buf, off + 12)[0])

    def _inner_ip(self, pkt: Packet, buf: Buffer, p: int, end: int, version: int) -> bool:
        """An IP packet as a tunnel's payload; False when the tunnel failed (the packet
        is the outer one again)."""
        saved = self._enter_tunnel(pkt, p, end)
        if version == 4:
            self._ipv4(pkt, buf, p, end)
        else:
            self._ipv6(pkt, buf, p, end)
        return not self._tunnel_failed(pkt, saved, False)

    def _inner_ether(self, pkt: Packet, buf: Buffer, p: int, end: int) -> bool:
        saved = self._enter_tunnel(pkt, p, end)
        self._ether_at(pkt, buf, p, end)
        return not self._tunnel_failed(pkt, saved, True)

    def _inner_by_ethertype(self, pkt: Packet, buf: Buffer, p: int, end: int, proto: int,
                            *, bridge: bool) -> bool | None:
        """A tunnel payload named by its ethertype: IPv4, IPv6 and, with ``bridge``,
        Ethernet are decoded (the inner decode's answer); None for any other ethertype."""
        version = _INNER_IP_VERSION.get(proto)
        if version is not None:
            return self._inner_ip(pkt, buf, p, end, version)
        if bridge and proto == ETHERTYPE_BRIDGE:
            return self._inner_ether(pkt, buf, p, end)
        return None

    # -- hooks called by the link, network and transport layers ------------------------

    def _encap_ethertype(self, pkt: Packet, buf: Buffer, off: int, n: int, etype: int) -> bool:
        if etype in (ETHERTYPE_MPLS_UC, ETHERTYPE_MPLS_MC):
            self._mpls(pkt, buf, off, n)
        elif etype == ETHERTYPE_PPPOE_SESS:
            self._pppoe_session(pkt, buf, off, n)
        elif etype == ETHERTYPE_PPPOE_DISC:
            self._pppoe_discovery(pkt, buf, off, n)
        else:
            return False
        return True

    def _encap_ip(self, pkt: Packet, buf: Buffer, off: int, end: int, proto: int) -> bool:
        if proto == IPPROTO_GRE:
            return self._gre(pkt, buf, off, end)
        inner = 4 if proto == IPPROTO_IPIP else 6
        if pkt.ip_version == 6:  # Suricata's DecodeIPv4inIPv6 / DecodeIP6inIP6
            min_len, too_small, wrong_version, counter = _IN_IPV6[inner]
            if end - off < min_len:
                self._invalid(pkt, too_small)
                return True
            if buf[off] >> 4 != inner:
                self._event(pkt, wrong_version)
                return False
            self.counters[counter] += 1
        else:
            self.counters[_IN_IPV4[inner]] += 1
        if not self._layer(pkt):
            return True
        return self._inner_ip(pkt, buf, off, end, inner)

    def _encap_udp(
        self, pkt: Packet, buf: Buffer, off: int, end: int, sport: int, dport: int
    ) -> bool:
        # Suricata's DecodeUDP tries Geneve (either port) before VXLAN (the destination
        # port only, RFC 7348); a payload that is not a valid header of either, or whose
        # inner packet fails, leaves the packet plain UDP
        ports = self.geneve_ports
        if (dport in ports or sport in ports) and self._geneve(pkt, buf, off, end):
            return True
        return dport in self.vxlan_ports and self._vxlan(pkt, buf, off, end)

    # -- GRE (decode-gre.c) -----------------------------------------------------------

    def _gre(self, pkt: Packet, buf: Buffer, off: int, end: int) -> bool:
        """True when the GRE packet was consumed (tunnel decoded or invalid)."""
        self.counters["decoder.gre"] += 1
        length = end - off
        if length < 4:
            self._invalid(pkt, "gre.pkt_too_small")
            return True
        if not self._layer(pkt):
            return True
        flags, ver, proto = _GRE_HDR.unpack_from(buf, off)
        version = ver & 0x07
        if version == 0:
            hlen = self._gre_v0_len(pkt, buf, off, length, flags, ver)
        elif version == 1:
            hlen = self._gre_v1_len(pkt, length, flags, ver, proto)
            if hlen and not U16.unpack_from(buf, off + 4)[0]:
                return False  # PPTP packet without payload (an ack only)
        else:
            self._invalid(pkt, "gre.wrong_version")
            return True
        if not hlen:
            return True
        return self._gre_payload(pkt, buf, off + hlen, end, proto, flags)

    def _gre_v0_len(
        self, pkt: Packet, buf: Buffer, off: int, length: int, flags: int, ver: int
    ) -> int:
        """Header length of RFC 1701/2784 GRE; 0 when invalid (event set)."""
        if flags & 0x07:
            self._invalid(pkt, "gre.version0_recur")
            return 0
        if ver & 0x78:
            self._invalid(pkt, "gre.version0_flags")
            return 0
        hlen = 4
        if flags & 0x20:  # key
            hlen += 4
        if flags & 0x10:  # sequence number
            hlen += 4
        if flags & 0xC0:  # checksum or routing present: checksum + offset
            hlen += 4
        if hlen > length:
            self._invalid(pkt, "gre.version0_hdr_too_big")
            return 0
        if flags & 0x40:  # source route entries, ended by a null SRE
            while True:
                if hlen + 4 > length:
                    self._invalid(pkt, "gre.version0_malformed_sre_hdr")
                    return 0
                af, _sre_off, sre_len = _GRE_SRE.unpack_from(buf, off + hlen)
                hlen += 4
                if af == 0 and sre_len == 0:
                    break
                hlen += sre_len
                if hlen > length:
                    self._invalid(pkt, "gre.version0_malformed_sre_hdr")
                    return 0
        return hlen

    def _gre_v1_len(self, pkt: Packet, length: int, flags: int, ver: int, proto: int) -> int:
        """Header length of enhanced GRE (PPTP, RFC 2637); 0 when invalid."""
        for bit, name in ((0x80, "chksum"), (0x40, "route"), (0x08, "ssr"), (0x07, "recur")):
            if flags & bit:
                self._invalid(pkt, "gre.version1_" + name)
                return 0
        if ver & 0x78:
            self._invalid(pkt, "gre.version1_flags")
            return 0
        if proto != ETHERTYPE_PPP:
            self._invalid(pkt, "gre.version1_wrong_protocol")
            return 0
        if not flags & 0x20:
            self._invalid(pkt, "gre.version1_no_key")
            return 0
        hlen = 8
        if flags & 0x10:
            hlen += 4
        if ver & 0x80:  # acknowledgment number
            hlen += 4
        if hlen > length:
            self._invalid(pkt, "gre.version1_hdr_too_big")
            return 0
        return hlen

    def _gre_payload(
        self, pkt: Packet, buf: Buffer, p: int, end: int, proto: int, flags: int
    ) -> bool:
        """False when the payload is not decoded (or its tunnel failed): the packet
        stays a GRE packet with its payload."""
        inner = self._inner_by_ethertype(pkt, buf, p, end, proto, bridge=True)
        if inner is not None:
            return inner
        if proto == ETHERTYPE_ARP:
            self.counters["decoder.arp"] += 1
            return False
        if proto not in _GRE_L2_PROTOS:
            return False  # not decoded: stays a GRE packet with its payload
        saved = self._enter_tunnel(pkt, p, end)
        if proto == ETHERTYPE_PPP:
            self._ppp(pkt, buf, p, end)
            return not self._tunnel_failed(pkt, saved, False)
        if proto in _VLAN_ETHERTYPES:
            self._vlan(pkt, buf, p, end, proto)
        elif proto == ETHERTYPE_ERSPAN:
            if flags & 0x10:  # type II carries a sequence number; type I does not
                self._erspan(pkt, buf, p, end, 8, 1)
            else:
                self.counters["decoder.erspan"] += 1
                self._ether_at(pkt, buf, p, end)
        elif proto == ETHERTYPE_ERSPAN3:
            # the optional platform sub-header (O flag) adds 8 bytes
            hlen = 20 if end - p >= 12 and buf[p + 11] & 0x01 else 12
            self._erspan(pkt, buf, p, end, hlen, 2)
        return not self._tunnel_failed(pkt, saved, True)

    def _erspan(
        self, pkt: Packet, buf: Buffer, p: int, end: int, hlen: int, version: int
    ) -> None:
        """ERSPAN type II (version 1) / III (version 2) header, then Ethernet."""
        self.counters["decoder.erspan"] += 1
        if end - p < hlen:
            self._invalid(pkt, "erspan.header_too_small")
            return
        if not self._layer(pkt):
            return
        ver_vlan = U16.unpack_from(buf, p)[0]
        if ver_vlan >> 12 != version:
            self._invalid(pkt, "erspan.unsupported_version")
            return
        vlan = ver_vlan & 0x0FFF
        if vlan:
            if len(pkt.vlan) >= 3:  # VLAN_MAX_LAYERS
                self._invalid(pkt, "erspan.too_many_vlan_layers")
                return
            pkt.vlan = (*pkt.vlan, vlan)
        self._ether_at(pkt, buf, p + hlen, end)

    # -- PPP (decode-ppp.c) -----------------------------------------------------------

    def _ppp(self, pkt: Packet, buf: Buffer, p: int, end: int) -> None:
        """DecodePPP: an optional HDLC address/control (0xFF ..), a 1- or 2-byte
        protocol (a 1-byte one has its low bit set)."""
        self.counters["decoder.ppp"] += 1
        n = end - p
        skip = 2 if n >= 1 and buf[p] == 0xFF else 0
        size = 1 if n > skip and buf[p + skip] & 1 else 2
        if n < 1 or n < skip + size or (skip and n < 3):
            self._invalid(pkt, "ppp.pkt_too_small")
            return
        if not self._layer(pkt):
            return
        data = p + skip + size
        if size == 1:
            proto = buf[p + skip]
            if proto == 0x21 or proto == _PPP_VJ_UCOMP:
                # Suricata names a short compressed-protocol IPv4 packet "vju"
                self._ppp_ipv4(pkt, buf, data, end, "ppp.vju_pkt_too_small",
                               proto == _PPP_VJ_UCOMP)
            elif proto == 0x57:
                self._ppp_ipv6(pkt, buf, data, end)
            else:
                self._event(pkt, "ppp.unsup_proto")
            return
        proto = U16.unpack_from(buf, p + skip)[0]
        if proto in _PPP_CONTROL:
            return  # valid in PPP, not inspected
        self._ppp_protocol(pkt, buf, data, end, proto, _PPP_UNSUPPORTED)

    def _ppp_protocol(
        self, pkt: Packet, buf: Buffer, p: int, end: int, proto: int,
        unsupported: frozenset[int],
    ) -> None:
        if proto == _PPP_IPV4:
            self._ppp_ipv4(pkt, buf, p, end, "ppp.ip4_pkt_too_small", False)
        elif proto == _PPP_IPV6:
            self._ppp_ipv6(pkt, buf, p, end)
        elif proto == _PPP_VJ_UCOMP:
            self._ppp_ipv4(pkt, buf, p, end, "ppp.vju_pkt_too_small", True)
        elif proto in unsupported:
            self._event(pkt, "ppp.unsup_proto")
        else:
            self._invalid(pkt, "ppp.wrong_type")

    def _ppp_ipv4(
        self, pkt: Packet, buf: Buffer, p: int, end: int, too_small: str, vj: bool
    ) -> None:
        if end - p < 20:
            self._invalid(pkt, too_small)
        elif not vj or buf[p] >> 4 == 4:  # a VJ-uncompressed frame only when it is IPv4
            self._ipv4(pkt, buf, p, end)

    def _ppp_ipv6(self, pkt: Packet, buf: Buffer, p: int, end: int) -> None:
        if end - p < 40:
            self._invalid(pkt, "ppp.ip6_pkt_too_small")
        else:
            self._ipv6(pkt, buf, p, end)

    # -- PPPoE (decode-pppoe.c) -------------------------------------------------------

    def _pppoe_session(self, pkt: Packet, buf: Buffer, off: int, n: int) -> None:
        """6-byte session header and the PPP protocol (one byte when its low bit is
        set). As Suricata, the session's length field only says whether there is a
        payload; the IP header's own length bounds it (a short PPPoE length does not
        hide the packet)."""
        self.counters["decoder.pppoe"] += 1
        if n - off < 7:
            self._invalid(pkt, "pppoe.pkt_too_small")
            return
        if not self._layer(pkt):
            return
        if not U16.unpack_from(buf, off + 4)[0]:
            return
        proto = buf[off + 6]
        p = off + 7
        if not proto & 1:
            if n - off < 8:
                self._invalid(pkt, "pppoe.pkt_too_small")
                return
            proto = U16.unpack_from(buf, off + 6)[0]
            p += 1
        self._ppp_protocol(pkt, buf, p, n, proto, _PPPOE_UNSUPPORTED)

    def _pppoe_discovery(self, pkt: Packet, buf: Buffer, off: int, n: int) -> None:
        self.counters["decoder.pppoe"] += 1
        if n - off < 6:
            self._invalid(pkt, "pppoe.pkt_too_small")
            return
        if buf[off + 1] not in _PPPOE_CODES:
            self._invalid(pkt, "pppoe.wrong_code")
            return
        if U16.unpack_from(buf, off + 4)[0] > n - off - 6:
            self._invalid(pkt, "pppoe.malformed_tags")

    # -- MPLS (decode-mpls.c) ---------------------------------------------------------

    def _mpls(self, pkt: Packet, buf: Buffer, off: int, n: int) -> None:
        self.counters["decoder.mpls"] += 1
        if not self._layer(pkt):
            return
        p = off
        while True:  # the label stack, to the entry with the bottom-of-stack bit
            if n - p < 4:
                self._invalid(pkt, "mpls.header_too_small")
                return
            shim = buf[p] << 16 | buf[p + 1] << 8 | buf[p + 2]  # label(20) tc(3) bottom(1)
            p += 4
            if shim & 0x01:
                break
        label = shim >> 4
        if label == 0:  # IPv4 explicit null
            self._ipv4(pkt, buf, p, n)
            return
        if label == 2:  # IPv6 explicit null
            self._ipv6(pkt, buf, p, n)
            return
        if label < 15:  # MPLS_MAX_RESERVED_LABEL: router alert (1), implicit null (3) ...
            self._event(
                pkt,
                "mpls.bad_label_router_alert" if label == 1
                else "mpls.bad_label_implicit_null" if label == 3
                else "mpls.bad_label_reserved",
            )
            return
        if n - p < 4:
            self._invalid(pkt, "mpls.pkt_too_small")
            return
        nibble = buf[p] >> 4  # no payload type in MPLS: guess from the first nibble
        if nibble == 4:
            self._ipv4(pkt, buf, p, n)
        elif nibble == 6:
            self._ipv6(pkt, buf, p, n)
        elif nibble == 0:  # Ethernet pseudowire behind a 4-byte control word
            self._ether_at(pkt, buf, p + 4, n)
        else:
            self._invalid(pkt, "mpls.unknown_payload_type")

    # -- VXLAN (decode-vxlan.c) and Geneve (decode-geneve.c) -----------------------------

    def _vxlan(self, pkt: Packet, buf: Buffer, off: int, end: int) -> bool:
        if end - off < 22:  # VXLAN header + Ethernet header
            return False
        if not self._layer(pkt):
            return True
        if not buf[off] & 0x08:  # I flag: the VNI is valid
            return False
        # strict: every reserved bit zero (flags but I, the second flags byte, the group
        # policy id of VXLAN-GBP, the last byte); permissive: only the I flag counts
        if self.vxlan_strict and (buf[off] & 0xF7 or buf[off + 1] or buf[off + 2]
                                  or buf[off + 3] or buf[off + 7]):
            return False
        self.counters["decoder.vxlan"] += 1
        etype = U16.unpack_from(buf, off + 20)[0]
        if etype == ETHERTYPE_ARP:
            return True  # recognised, nothing to track inside
        # the inner Ethernet header is skipped: the tunnel packet starts at its payload
        # (DECODE_TUNNEL_IPV4 / IPV6 / VLAN)
        p = off + 22
        inner = self._inner_by_ethertype(pkt, buf, p, end, etype, bridge=False)
        if inner is not None:
            return inner
        if etype not in _VLAN_ETHERTYPES:
            self._invalid(pkt, "vxlan.unknown_payload_type")
            return True
        saved = self._enter_tunnel(pkt, p, end)
        self._vlan(pkt, buf, p, end, etype)
        return not self._tunnel_failed(pkt, saved, True)

    def _geneve(self, pkt: Packet, buf: Buffer, off: int, end: int) -> bool:
        if end - off < 8:
            return False
        if not self._layer(pkt):
            return True
        ver_optlen = buf[off]
        hlen = 8 + ((ver_optlen & 0x3F) << 2)
        if (
            end - off < hlen
            or ver_optlen >> 6  # version 0 only
            or buf[off + 1] & 0x3F  # reserved flags (after O and C)
            or buf[off + 7]  # reserved byte
            or not _geneve_options_ok(buf, off + 8, off + hlen)
        ):
            return False
        self.counters["decoder.geneve"] += 1
        proto = U16.unpack_from(buf, off + 2)[0]
        p = off + hlen
        inner = self._inner_by_ethertype(pkt, buf, p, end, proto, bridge=True)
        if inner is not None:
            return inner
        if proto != ETHERTYPE_ARP:
            self._invalid(pkt, "geneve.unknown_payload_type")
        return True


def _geneve_options_ok(buf: Buffer, p: int, end: int) -> bool:
    """Option TLVs (class, type, 5-bit length in words) must fill the option space."""
    while p < end:
        if end - p < 4:
            return False
        p += 4 + ((buf[p + 3] & 0x1F) << 2)
    return p == end


def parse_port_list(value: object, default: frozenset[int]) -> tuple[frozenset[int], str | None]:
    """``decoder.vxlan.ports`` syntax: ``4789``, ``[8472, 4789]`` or ``"8472,4789"``;
    the default and a one-line problem when the value cannot be used."""
    if value is None:
        return default, None
    items = value if isinstance(value, list) else str(value).strip().strip("[]").split(",")
    ports: set[int] = set()
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        if not text.isdigit() or not 0 < int(text) < 65536:
            return default, f"not a port: {text!r}"
        ports.add(int(text))
    if not ports:
        return default, "no port given"
    return frozenset(ports), None
