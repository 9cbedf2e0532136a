"""Frame decoder: link layer → IPv4/IPv6 (defragmented) → TCP/UDP/ICMP, through the
encapsulations of ``tunnel.py`` (GRE, VXLAN, Geneve, MPLS, PPPoE, IP-in-IP ...).

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

The layers live beside this module, each a class the next one up inherits
(``tunnel.py`` → ``link.py`` → ``network.py`` → ``transport.py`` → ``base.py``; the
lower layers reach the tunnel one through the hooks declared in ``base.py``); ``Decoder`` adds the
entry point, the counters and the checksum ``auto`` decision.
"""

from __future__ import annotations

from ruleengine.decode.base import Buffer
from ruleengine.decode.defrag import Defragmenter
from ruleengine.decode.link import (
    DLT_RAW_12,
    DLT_RAW_14,
    ETHERTYPE_ARP,
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    MAX_VLAN_LAYERS,
    SUPPORTED_LINKTYPES,
)
from ruleengine.decode.packet import Packet
from ruleengine.decode.tunnel import (
    DEFAULT_MAX_LAYERS,
    GENEVE_PORTS,
    MAX_LAYERS_CAP,
    VXLAN_PORTS,
    TunnelDecoder,
)

# Names importers of this module used before the layers moved out of it.
__all__ = [
    "CHECKSUM_INVALID_RATIO",
    "CHECKSUM_SAMPLE_COUNT",
    "COUNTER_NAMES",
    "DLT_RAW_12",
    "DLT_RAW_14",
    "ETHERTYPE_ARP",
    "ETHERTYPE_IPV4",
    "ETHERTYPE_IPV6",
    "MAX_VLAN_LAYERS",
    "Buffer",
    "Decoder",
]

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
    "decoder.ipv4_in_ipv4",
    "decoder.ipv6_in_ipv4",
    "decoder.ipv6_in_ipv6",
    "decoder.chdlc",
    "decoder.gre",
    "decoder.erspan",
    "decoder.ppp",
    "decoder.pppoe",
    "decoder.mpls",
    "decoder.vxlan",
    "decoder.geneve",
    "decoder.too_many_layers",
)


class Decoder(TunnelDecoder):
    """Decodes frames of one link type into ``Packet`` records."""

    def __init__(
        self,
        linktype: int,
        *,
        checksum_validation: bool = True,
        defrag: bool = True,
        defrag_timeout: float = 60.0,
        checksum_auto: bool = False,
        vxlan_ports: frozenset[int] = VXLAN_PORTS,
        geneve_ports: frozenset[int] = GENEVE_PORTS,
        max_layers: int = DEFAULT_MAX_LAYERS,
        vxlan_strict: bool = True,
    ) -> None:
        self.linktype = linktype
        self.vxlan_strict = vxlan_strict  # decoder.vxlan.reserved-bits-check
        # decoder.vxlan.ports / decoder.geneve.ports (empty: that decoder is disabled)
        self.vxlan_ports = vxlan_ports
        self.geneve_ports = geneve_ports
        self.udp_tunnel_ports = vxlan_ports | geneve_ports
        self.max_layers = max(1, min(max_layers, MAX_LAYERS_CAP))
        self._layers = 0
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
        self._link = self._link_handler(linktype)

    @staticmethod
    def supports(linktype: int) -> bool:
        return linktype in SUPPORTED_LINKTYPES

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
        self._layers = 0
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
