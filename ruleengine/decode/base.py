"""What every decoding layer shares: the buffer type, header layouts read by more than
one layer, the checksum sum, and the decoder state with its event/invalid bookkeeping.

The ``Decoder`` is assembled as a chain, each layer a class that inherits the layer it
hands the packet down to: ``LinkDecoder`` → ``NetworkDecoder`` → ``TransportDecoder`` →
``DecoderBase``. Inheritance rather than separate objects keeps the hot path one method
call per header, as it was when all of it lived in one class.
"""

from __future__ import annotations

import struct

from ruleengine.decode.defrag import Defragmenter
from ruleengine.decode.packet import Packet

Buffer = bytes | memoryview

U16 = struct.Struct("!H")
TWO_U16 = struct.Struct("!HH")  # a VLAN tag, or the port pair quoted in an ICMP error
IPV4_HEADER = struct.Struct("!BBHHHBBH4s4s")
IPV6_HEADER = struct.Struct("!IHBB16s16s")


def sum16(data: Buffer) -> int:
    """One's complement sum (mod 0xFFFF) of ``data`` as big-endian 16-bit words."""
    value = int.from_bytes(data, "big")
    if len(data) & 1:
        value <<= 8
    return value % 0xFFFF


def option_kinds(buf: Buffer, p: int, end: int) -> tuple[list[int], str | None]:
    """The kinds of an IPv4 or TCP option list, which share one layout (EOL ends the list,
    NOP is one byte, any other option is kind, length, data), and why the walk stopped
    early: ``"short"`` a kind without its length byte, ``"length"`` a length under 2 or
    past ``end``; None when the list is whole."""
    kinds: list[int] = []
    while p < end:
        kind = buf[p]
        if kind == 0:  # end of option list
            break
        if kind == 1:  # NOP
            p += 1
            continue
        if end - p < 2:
            return kinds, "short"
        olen = buf[p + 1]
        if olen < 2 or olen > end - p:
            return kinds, "length"
        kinds.append(kind)
        p += olen
    return kinds, None


class DecoderBase:
    """State the layers read and write; ``Decoder.__init__`` sets it up."""

    counters: dict[str, int]
    checksum_validation: bool
    # Checksum failures per protocol (see Decoder.__init__ for why not stats counters).
    checksum_errors: dict[str, int]
    defrag_enabled: bool
    defrag: Defragmenter
    # UDP ports that may carry VXLAN / Geneve (decoder.vxlan.ports, decoder.geneve.ports);
    # their union is checked first so other UDP packets pay one set lookup per port.
    udp_tunnel_ports: frozenset[int]

    def _event(self, pkt: Packet, name: str) -> None:
        pkt.add_event(name)
        key = "decoder.event." + name
        self.counters[key] = self.counters.get(key, 0) + 1

    # -- encapsulation hooks ------------------------------------------------------
    # The layers below hand what they recognise as an encapsulation to these; the tunnel
    # layer (``tunnel.TunnelDecoder``, the top of the chain) implements them.

    def _encap_ethertype(self, pkt: Packet, buf: Buffer, off: int, n: int, etype: int) -> bool:
        """MPLS / PPPoE ethertypes; False when ``etype`` is not one of them."""
        raise NotImplementedError

    def _encap_ip(self, pkt: Packet, buf: Buffer, off: int, end: int, proto: int) -> bool:
        """GRE, IP-in-IP, 6in4 ... carried by IP; False when ``proto`` is not one of them."""
        raise NotImplementedError

    def _encap_udp(
        self, pkt: Packet, buf: Buffer, off: int, end: int, sport: int, dport: int
    ) -> bool:
        """VXLAN / Geneve payload of a UDP packet; False when it is not one (stays UDP)."""
        raise NotImplementedError

    def _invalid(self, pkt: Packet, name: str) -> None:
        self._event(pkt, name)
        if not pkt.invalid:
            pkt.invalid = True
            self.counters["decoder.invalid"] += 1
