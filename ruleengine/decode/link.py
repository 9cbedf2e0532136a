"""Link layer: Ethernet (with VLAN tags), Cisco HDLC, Linux SLL/SLL2, raw IP, BSD loopback.

Each link type has one handler taking ``(pkt, frame, length)``; it finds where the IP
header starts and hands the packet to the network layer.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from functools import partialmethod

# the raw-frame vocabulary lives in the contract (ruleengine.rawflow reads frames too);
# re-exported here for the decoder's importers
from ruleengine.capture import DLT_RAW_12 as DLT_RAW_12
from ruleengine.capture import DLT_RAW_14 as DLT_RAW_14
from ruleengine.capture import ETHERTYPE_IPV4 as ETHERTYPE_IPV4
from ruleengine.capture import ETHERTYPE_IPV6 as ETHERTYPE_IPV6
from ruleengine.capture import (
    LINKTYPE_C_HDLC,
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    RAW_IP_LINKTYPES,
)
from ruleengine.capture import MAX_VLAN_LAYERS as MAX_VLAN_LAYERS
from ruleengine.capture import VLAN_TPIDS as _VLAN_TYPES
from ruleengine.decode.base import TWO_U16, U16, Buffer
from ruleengine.decode.network import NetworkDecoder
from ruleengine.decode.packet import Packet

ETHERTYPE_ARP = 0x0806

# BSD loopback address families (NULL/LOOP link types); IPv6 varies by OS.
_AF_INET = 2
_AF_INET6 = frozenset((10, 24, 28, 30))

_U32_LE = struct.Struct("<I")
_U32_BE = struct.Struct("!I")

LinkHandler = Callable[[Packet, Buffer, int], None]

# link type -> name of the LinkDecoder method that decodes it
_LINK_HANDLERS = {
    LINKTYPE_ETHERNET: "_ethernet",
    LINKTYPE_C_HDLC: "_chdlc",
    LINKTYPE_LINUX_SLL: "_sll",
    LINKTYPE_LINUX_SLL2: "_sll2",
    **dict.fromkeys(RAW_IP_LINKTYPES, "_raw"),
    LINKTYPE_NULL: "_null",
    LINKTYPE_LOOP: "_loop",
}
SUPPORTED_LINKTYPES = frozenset(_LINK_HANDLERS)


class LinkDecoder(NetworkDecoder):
    """Link-layer decoding; ``_link_handler`` picks the entry point for a link type."""

    def _link_handler(self, linktype: int) -> LinkHandler:
        handler: LinkHandler = getattr(self, _LINK_HANDLERS.get(linktype, "_unsupported_link"))
        return handler

    def _unsupported_link(self, pkt: Packet, buf: Buffer, n: int) -> None:
        self._invalid(pkt, "decoder.unsupported_linktype")

    def _ethernet(self, pkt: Packet, buf: Buffer, n: int) -> None:
        self.counters["decoder.ethernet"] += 1
        if n < 14:
            self._invalid(pkt, "ethernet.pkt_too_small")
            return
        etype = U16.unpack_from(buf, 12)[0]
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
        elif not self._encap_ethertype(pkt, buf, off, n, etype):
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
            tci, etype = TWO_U16.unpack_from(buf, off)
            vlans.append(tci & 0x0FFF)
            off += 4
        depth = len(vlans)
        c["decoder.vlan"] += 1
        if depth == 2:
            c["decoder.vlan_qinq"] += 1
        elif depth == 3:
            c["decoder.vlan_qinqinq"] += 1
        # tags of an Ethernet frame inside a tunnel add to the outer ones (Suricata copies
        # the parent's vlan ids into the tunnel packet)
        pkt.vlan = pkt.vlan + tuple(vlans)
        if etype in (ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_ARP):
            self._ethertype(pkt, buf, off, n, etype)
        elif not self._encap_ethertype(pkt, buf, off, n, etype):
            self._event(pkt, "vlan.unknown_type")

    def _cooked(self, pkt: Packet, buf: Buffer, n: int, counter: str, header_len: int,
                etype_off: int) -> None:
        """Linux cooked capture: a fixed header with the ethertype inside it."""
        self.counters[counter] += 1
        if n < header_len:
            self._invalid(pkt, "sll.pkt_too_small")
            return
        self._ethertype(pkt, buf, header_len, n, U16.unpack_from(buf, etype_off)[0])

    # SLL: 16 bytes, the protocol last; SLL2: 20 bytes, the protocol first
    _sll = partialmethod(_cooked, counter="decoder.sll", header_len=16, etype_off=14)
    _sll2 = partialmethod(_cooked, counter="decoder.sll2", header_len=20, etype_off=0)

    def _chdlc(self, pkt: Packet, buf: Buffer, n: int) -> None:
        """Cisco HDLC: address, control, then an ethertype (Suricata's DecodeCHDLC)."""
        self.counters["decoder.chdlc"] += 1
        if n < 4:
            self._invalid(pkt, "chdlc.pkt_too_small")
            return
        etype = U16.unpack_from(buf, 2)[0]
        if etype == ETHERTYPE_IPV4:
            self._ipv4(pkt, buf, 4, n)
        elif etype == ETHERTYPE_IPV6:
            self._ipv6(pkt, buf, 4, n)

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
