"""Encapsulations (ruleengine/decode/tunnel.py) against Suricata's decode-gre.c,
decode-vxlan.c, decode-geneve.c, decode-erspan.c, decode-mpls.c, decode-pppoe.c,
decode-ppp.c and the IP-in-IP / 6in4 / 4in6 cases of decode-ipv4.c / decode-ipv6.c:
the inner packet is what the packet describes, the outermost addresses are in
``pkt.tunnel``; malformed headers give Suricata's decoder events; a tunnel whose first
inner header fails is no tunnel (the outer packet goes on, as PacketTunnelPktSetup
does); ``decoder.max-layers`` bounds nesting. Frames are built with scapy."""

from __future__ import annotations

import struct

import pytest
from scapy.contrib.erspan import ERSPAN_II, ERSPAN_III
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, GRE, GRE_PPTP, Dot1Q
from scapy.layers.ppp import PPPoE, PPPoED
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet as ScapyPacket
from scapy.packet import Raw

from ruleengine.capture import LINKTYPE_C_HDLC
from ruleengine.decode.decoder import Decoder
from ruleengine.decode.packet import Packet
from tests.decode.frames import eth

IN_SRC, IN_DST = "192.168.7.1", "192.168.7.2"
OUT_SRC, OUT_DST = "10.0.0.1", "10.0.0.2"
DATA = b"GET /tunnel HTTP/1.1\r\nHost: x\r\n\r\n"
V6_SRC, V6_DST = "fd00::1", "fd00::2"


def inner4() -> ScapyPacket:
    return IP(src=IN_SRC, dst=IN_DST) / TCP(sport=1234, dport=80, flags="PA", seq=7) / Raw(DATA)


def inner6() -> ScapyPacket:
    return IPv6(src=V6_SRC, dst=V6_DST) / UDP(sport=5353, dport=53) / Raw(b"dns?")


def outer4(proto: int | None = None) -> ScapyPacket:
    ip = IP(src=OUT_SRC, dst=OUT_DST) if proto is None else IP(src=OUT_SRC, dst=OUT_DST,
                                                                proto=proto)
    return eth() / ip


def vxlan(inner: ScapyPacket, *, dport: int = 4789, sport: int = 50123,
          header: bytes | None = None) -> bytes:
    """A VXLAN frame (RFC 7348: I flag only; scapy's default header is VXLAN-GPE)."""
    hdr = header if header is not None else bytes(VXLAN(flags=0x08, vni=42))
    return bytes(outer4() / UDP(sport=sport, dport=dport) / Raw(hdr + bytes(eth() / inner)))


def geneve(payload: bytes, *, proto: int = 0x0800, options: bytes = b"", ver: int = 0,
           flags: int = 0, res: int = 0, dport: int = 6081) -> bytes:
    hdr = struct.pack("!BBH3sB", ver << 6 | len(options) // 4, flags, proto, b"\x00\x00\x07",
                      res)
    return bytes(outer4() / UDP(sport=40000, dport=dport) / Raw(hdr + options + payload))


def gre_raw(body: bytes) -> bytes:
    return bytes(outer4(47) / Raw(body))


def decode(frame: bytes, linktype: int = 1, **kw: object) -> tuple[Packet, Decoder]:
    d = Decoder(linktype, **kw)  # type: ignore[arg-type]
    pkt = d.decode(1.0, frame)
    assert pkt is not None
    return pkt, d


def assert_inner4(pkt: Packet) -> None:
    assert not pkt.invalid, pkt.events
    assert (pkt.ip_version, pkt.proto, pkt.sport, pkt.dport) == (4, 6, 1234, 80)
    assert (pkt.src, pkt.dst) == (bytes([192, 168, 7, 1]), bytes([192, 168, 7, 2]))
    assert pkt.payload == DATA and pkt.seq == 7


OUT4 = (4, bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))

PPP_HDLC = b"\xff\x03"

CASES: dict[str, tuple[bytes, tuple[int, int, int], str]] = {
    # name: frame, the outer (sport, dport, proto), the counter the encapsulation bumps
    "gre": (bytes(outer4() / GRE() / inner4()), (0, 0, 47), "decoder.gre"),
    "gre-key-seq-csum": (bytes(outer4() / GRE(chksum_present=1, key_present=1, key=9,
                                               seqnum_present=1, sequence_number=3)
                               / inner4()), (0, 0, 47), "decoder.gre"),
    "gre-bridged-ethernet": (bytes(outer4() / GRE(proto=0x6558) / eth() / inner4()),
                             (0, 0, 47), "decoder.gre"),
    "gre-vlan": (bytes(outer4() / GRE(proto=0x8100) / Raw(b"\x00\x05\x08\x00")
                       / inner4()), (0, 0, 47), "decoder.gre"),
    "erspan-type-i": (bytes(outer4() / GRE(proto=0x88BE) / eth() / inner4()), (0, 0, 47),
                      "decoder.erspan"),
    "erspan-type-ii": (bytes(outer4() / GRE(seqnum_present=1, proto=0x88BE)
                             / ERSPAN_II(session_id=3) / eth() / inner4()), (0, 0, 47),
                       "decoder.erspan"),
    "erspan-type-iii": (bytes(outer4() / GRE(seqnum_present=1, proto=0x22EB)
                              / ERSPAN_III(session_id=3) / eth() / inner4()), (0, 0, 47),
                        "decoder.erspan"),
    "pptp": (bytes(outer4() / GRE_PPTP(seqnum_present=1, call_id=4,
                                        payload_len=4 + len(inner4()))
                   / Raw(PPP_HDLC + b"\x00\x21") / inner4()), (0, 0, 47), "decoder.ppp"),
    "vxlan": (vxlan(inner4()), (50123, 4789, 17), "decoder.vxlan"),
    "geneve-ipv4": (geneve(bytes(inner4())), (40000, 6081, 17), "decoder.geneve"),
    "geneve-ethernet-options": (geneve(bytes(eth() / inner4()), proto=0x6558,
                                       options=b"\x01\x08\x00\x01\x11\x11\x11\x11" * 2),
                                (40000, 6081, 17), "decoder.geneve"),
    "ipip": (bytes(outer4() / inner4()), (0, 0, 4), "decoder.ipv4_in_ipv4"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_inner_packet_is_decoded(name: str) -> None:
    frame, (sport, dport, proto), counter = CASES[name]
    pkt, d = decode(frame)
    assert_inner4(pkt)
    assert pkt.tunnel == (*OUT4, sport, dport, proto, 1)
    assert d.counters[counter] == 1
    assert not pkt.events


@pytest.mark.parametrize(
    "frame, outer_proto, counter",
    [
        (bytes(outer4() / inner6()), 41, "decoder.ipv6_in_ipv4"),  # 6in4
        (bytes(outer4() / GRE() / inner6()), 47, "decoder.gre"),
        (bytes(outer4() / UDP(sport=1, dport=6081) / Raw(
            struct.pack("!BBH4s", 0, 0, 0x86DD, b"\x00" * 4) + bytes(inner6()))), 17,
         "decoder.geneve"),
    ],
    ids=["6in4", "gre-ipv6", "geneve-ipv6"],
)
def test_ipv6_inside_ipv4(frame: bytes, outer_proto: int, counter: str) -> None:
    pkt, d = decode(frame)
    assert not pkt.invalid
    assert (pkt.ip_version, pkt.proto, pkt.sport, pkt.dport) == (6, 17, 5353, 53)
    assert pkt.payload == b"dns?"
    assert pkt.tunnel is not None and pkt.tunnel[:3] == OUT4 and pkt.tunnel[5] == outer_proto
    assert d.counters[counter] == 1


def test_ipv4_and_ipv6_inside_ipv6() -> None:
    outer = eth() / IPv6(src="fd00::a", dst="fd00::b")
    pkt, d = decode(bytes(outer / inner4()))  # 4in6
    assert_inner4(pkt)
    assert pkt.tunnel is not None and pkt.tunnel[0] == 6 and pkt.tunnel[5] == 4
    assert d.counters["decoder.ipv4_in_ipv6"] == 1
    pkt, d = decode(bytes(outer / inner6()))  # 6in6
    assert (pkt.ip_version, pkt.sport, pkt.tunnel is not None) == (6, 5353, True)
    assert d.counters["decoder.ipv6_in_ipv6"] == 1


def test_vlan_ids_inside_a_tunnel_add_to_the_outer_ones() -> None:
    frame = bytes(eth() / Dot1Q(vlan=10) / IP(src=OUT_SRC, dst=OUT_DST)
                  / UDP(sport=1, dport=4789)
                  / Raw(bytes(VXLAN(flags=8, vni=1)) + bytes(eth() / Dot1Q(vlan=20) / inner4())))
    pkt, _ = decode(frame)
    assert_inner4(pkt)
    assert pkt.vlan == (10, 20)
    pkt, _ = decode(CASES["gre-vlan"][0])
    assert pkt.vlan == (5,)
    frame = bytes(outer4() / GRE(seqnum_present=1, proto=0x88BE) / ERSPAN_II(vlan=99)
                  / eth() / inner4())
    pkt, _ = decode(frame)
    assert_inner4(pkt)
    assert pkt.vlan == (99,)


def test_nested_tunnels_keep_the_outermost_addresses_and_count_the_depth() -> None:
    mid = IP(src="172.16.0.1", dst="172.16.0.2") / GRE() / inner4()
    pkt, _ = decode(vxlan(mid))
    assert_inner4(pkt)
    assert pkt.tunnel == (*OUT4, 50123, 4789, 17, 2)
    five = inner4()
    for _ in range(5):
        five = IP(src="172.16.0.1", dst="172.16.0.2") / GRE() / five
    pkt, _ = decode(bytes(eth() / five))
    assert_inner4(pkt)
    assert pkt.tunnel is not None and pkt.tunnel[6] == 5


# -- not tunnels: MPLS, PPPoE, C-HDLC decode the same packet on ----------------------


@pytest.mark.parametrize(
    "frame",
    [
        bytes(eth() / MPLS(label=100, s=1) / inner4()),
        bytes(eth() / MPLS(label=100, s=0) / MPLS(label=200, s=1) / inner4()),
        bytes(eth(type=0x8847) / Raw(struct.pack("!I", 0 << 12 | 1 << 8 | 64)) / inner4()),
        bytes(eth() / MPLS(label=15, s=1) / inner4()),  # 15 is not a reserved label
        # Ethernet pseudowire: control word, then the frame
        bytes(eth() / MPLS(label=300, s=1) / Raw(b"\x00" * 4) / eth() / inner4()),
        bytes(eth() / PPPoE(sessionid=1) / Raw(b"\x00\x21") / inner4()),
        bytes(eth() / PPPoE(sessionid=1) / Raw(b"\x21") / inner4()),  # 1-byte protocol
        # a PPPoE length too short for the IP packet does not hide it (Suricata decodes
        # what the IP header says)
        bytes(eth(type=0x8864) / Raw(b"\x11\x00\x00\x01\x00\x02\x00\x21") / inner4()),
    ],
    ids=["mpls", "mpls-stack", "mpls-ipv4-explicit-null", "mpls-label-15", "mpls-pw",
         "pppoe", "pppoe-short-proto", "pppoe-short-length"],
)
def test_label_and_session_layers_are_not_tunnels(frame: bytes) -> None:
    pkt, _ = decode(frame)
    assert_inner4(pkt)
    assert pkt.tunnel is None


def test_mpls_ipv6_explicit_null_and_chdlc() -> None:
    pkt, _ = decode(bytes(eth(type=0x8847) / Raw(struct.pack("!I", 2 << 12 | 1 << 8 | 64))
                          / inner6()))
    assert (pkt.ip_version, pkt.dport, pkt.tunnel) == (6, 53, None)
    pkt, d = decode(b"\x0f\x00\x08\x00" + bytes(inner4()), LINKTYPE_C_HDLC)
    assert_inner4(pkt)
    assert d.counters["decoder.chdlc"] == 1
    pkt, _ = decode(b"\x0f\x00", LINKTYPE_C_HDLC)
    assert pkt.invalid and pkt.events == ["chdlc.pkt_too_small"]


# -- VXLAN / Geneve configuration and header checks ---------------------------------


def test_vxlan_is_recognised_by_the_destination_port_only() -> None:
    pkt, _ = decode(vxlan(inner4(), dport=50123, sport=4789))  # RFC 7348
    assert pkt.tunnel is None and (pkt.proto, pkt.dport) == (17, 50123)
    pkt, _ = decode(vxlan(inner4(), dport=8472), vxlan_ports=frozenset({8472, 4789}))
    assert_inner4(pkt)
    pkt, _ = decode(vxlan(inner4()), vxlan_ports=frozenset())  # decoder.vxlan.enabled: no
    assert pkt.tunnel is None and pkt.proto == 17 and not pkt.invalid


@pytest.mark.parametrize(
    "header",
    [
        bytes.fromhex("0c00000300002a00"),  # VXLAN-GPE (scapy's default): flags, next proto
        bytes.fromhex("88001234 00002a00".replace(" ", "")),  # VXLAN-GBP group policy id
        bytes.fromhex("0800000000002a01"),  # last reserved byte
    ],
    ids=["gpe", "gbp", "reserved-byte"],
)
def test_vxlan_reserved_bits_strict_and_permissive(header: bytes) -> None:
    pkt, d = decode(vxlan(inner4(), header=header))
    assert pkt.tunnel is None and pkt.proto == 17 and not pkt.invalid
    assert d.counters["decoder.vxlan"] == 0
    pkt, _ = decode(vxlan(inner4(), header=header), vxlan_strict=False)
    assert_inner4(pkt)


def test_vxlan_without_the_i_flag_is_plain_udp() -> None:
    pkt, _ = decode(vxlan(inner4(), header=bytes(8)), vxlan_strict=False)
    assert pkt.tunnel is None and pkt.proto == 17


def test_vxlan_payload_types() -> None:
    arp = bytes(outer4() / UDP(sport=1, dport=4789)
                / Raw(bytes(VXLAN(flags=8, vni=1)) + bytes(eth() / ARP())))
    pkt, d = decode(arp)
    assert pkt.tunnel is None and pkt.proto == 17 and not pkt.invalid  # nothing to track
    assert d.counters["decoder.vxlan"] == 1
    odd = bytes(outer4() / UDP(sport=1, dport=4789)
                / Raw(bytes(VXLAN(flags=8, vni=1)) + bytes(eth(type=0x1234) / (b"x" * 20))))
    pkt, d = decode(odd)
    assert pkt.invalid and pkt.events == ["vxlan.unknown_payload_type"]
    assert d.counters["decoder.event.vxlan.unknown_payload_type"] == 1


def test_geneve_ports_and_header_checks() -> None:
    payload = bytes(inner4())
    pkt, _ = decode(bytes(outer4() / UDP(sport=6081, dport=40000) / Raw(
        struct.pack("!BBH4s", 0, 0, 0x0800, bytes(4)) + payload)))
    assert_inner4(pkt)  # either port, as DecodeGeneveEnabledForPort
    for bad in (geneve(payload, ver=1), geneve(payload, flags=0x01), geneve(payload, res=1),
                # option lengths that do not add up to the header's (DecodeGeneveTest05)
                geneve(payload, options=b"\x01\x08\x00\x04\x11\x11\x11\x11" * 2)):
        pkt, d = decode(bad)
        assert pkt.tunnel is None and pkt.proto == 17 and not pkt.invalid
        assert d.counters["decoder.geneve"] == 0
    pkt, _ = decode(geneve(payload, flags=0xC0))  # O and C flags are not reserved
    assert_inner4(pkt)
    pkt, _ = decode(geneve(payload), geneve_ports=frozenset())
    assert pkt.tunnel is None
    pkt, _ = decode(geneve(bytes(ARP()), proto=0x0806))
    assert pkt.tunnel is None and not pkt.invalid and not pkt.events
    pkt, _ = decode(geneve(b"x" * 30, proto=0x1234))
    assert pkt.invalid and pkt.events == ["geneve.unknown_payload_type"]


# -- decoder events of malformed headers --------------------------------------------

GRE_EVENTS = [
    (b"\x00\x00\x08", "gre.pkt_too_small"),
    (b"\x00\x02\x08\x00" + bytes(inner4()), "gre.wrong_version"),
    (b"\x01\x00\x08\x00" + bytes(inner4()), "gre.version0_recur"),
    (b"\x00\x08\x08\x00" + bytes(inner4()), "gre.version0_flags"),
    (b"\x30\x00\x08\x00\x00\x00\x00\x01", "gre.version0_hdr_too_big"),  # key + seq: 12
    # routing present, an SRE that runs past the end
    (b"\x40\x00\x08\x00\x00\x00\x00\x00\x08\x00\x00\x40" + b"\x00" * 8,
     "gre.version0_malformed_sre_hdr"),
    (b"\x80\x01\x88\x0b" + bytes(8), "gre.version1_chksum"),
    (b"\x40\x01\x88\x0b" + bytes(8), "gre.version1_route"),
    (b"\x28\x01\x88\x0b" + bytes(8), "gre.version1_ssr"),
    (b"\x21\x01\x88\x0b" + bytes(8), "gre.version1_recur"),
    (b"\x20\x09\x88\x0b" + bytes(8), "gre.version1_flags"),
    (b"\x20\x01\x08\x00" + bytes(8), "gre.version1_wrong_protocol"),
    (b"\x00\x01\x88\x0b" + bytes(8), "gre.version1_no_key"),
    (b"\x30\x81\x88\x0b\x00\x10\x00\x01\x00\x00", "gre.version1_hdr_too_big"),
]


@pytest.mark.parametrize("body, event", GRE_EVENTS, ids=[e for _, e in GRE_EVENTS])
def test_gre_events(body: bytes, event: str) -> None:
    pkt, d = decode(gre_raw(body))
    assert pkt.invalid and pkt.events == [event]
    assert pkt.tunnel is None and pkt.proto == 47  # the outer packet, flagged
    assert d.counters["decoder.event." + event] == 1 and d.counters["decoder.invalid"] == 1


def test_pptp_ack_without_payload_stays_gre() -> None:
    pkt, _ = decode(gre_raw(b"\x20\x81\x88\x0b\x00\x00\x00\x04" + bytes(4)))
    assert not pkt.invalid and pkt.tunnel is None and pkt.proto == 47 and not pkt.events


MPLS_EVENTS = [
    (struct.pack("!I", 100 << 12 | 64)[:3], "mpls.header_too_small", True),  # no bottom
    (struct.pack("!I", 100 << 12 | 0 << 8 | 64) + b"\x00\x00", "mpls.header_too_small", True),
    (struct.pack("!I", 21 << 12 | 1 << 8 | 255) + b"\x45\x01\x02", "mpls.pkt_too_small", True),
    (struct.pack("!I", 1 << 12 | 1 << 8 | 255) + bytes(inner4()),
     "mpls.bad_label_router_alert", False),
    (struct.pack("!I", 3 << 12 | 1 << 8 | 255) + bytes(inner4()),
     "mpls.bad_label_implicit_null", False),
    (struct.pack("!I", 5 << 12 | 1 << 8 | 255) + bytes(inner4()), "mpls.bad_label_reserved",
     False),
    (struct.pack("!I", 21 << 12 | 1 << 8 | 255) + b"\x15" + bytes(30),
     "mpls.unknown_payload_type", True),
]


@pytest.mark.parametrize("body, event, invalid", MPLS_EVENTS,
                         ids=[f"{e}-{i}" for i, (_, e, _) in enumerate(MPLS_EVENTS)])
def test_mpls_events(body: bytes, event: str, invalid: bool) -> None:
    pkt, d = decode(bytes(eth(type=0x8847) / Raw(body)))
    assert pkt.events == [event] and pkt.invalid is invalid
    assert pkt.ip_version == 0 and d.counters["decoder.mpls"] == 1


PPPOE_EVENTS = [
    (0x8864, b"\x11\x00\x00\x01\x00", "pppoe.pkt_too_small", True),
    (0x8864, b"\x11\x00\x00\x01\x00\x04\x00", "pppoe.pkt_too_small", True),  # 2-byte proto
    (0x8863, b"\x11\xbb\x00\x00\x00\x04\x01\x01\x00\x00", "pppoe.wrong_code", True),
    # a PADO whose tag length runs past the frame (DecodePPPOEtest05)
    (0x8863, b"\x11\x07\x00\x00\x00\x20\x01\x01\x00\x00\x01\x02\x00\x18Go", "pppoe.malformed_tags",
     True),
    (0x8864, b"\x11\x00\x00\x01\x00\x10\x00\x21" + bytes(10), "ppp.ip4_pkt_too_small", True),
    (0x8864, b"\x11\x00\x00\x01\x00\x10\x00\x57" + bytes(20), "ppp.ip6_pkt_too_small", True),
    (0x8864, b"\x11\x00\x00\x01\x00\x10\xc0\x21" + bytes(20), "ppp.unsup_proto", False),  # LCP
    (0x8864, b"\x11\x00\x00\x01\x00\x10\x00\x2b" + bytes(20), "ppp.unsup_proto", False),  # IPX
    (0x8864, b"\x11\x00\x00\x01\x00\x10\x12\x34" + bytes(20), "ppp.wrong_type", True),
    (0x8864, b"\x11\x00\x00\x01\x00\x10\x00\x2f" + bytes(10), "ppp.vju_pkt_too_small", True),
]


@pytest.mark.parametrize("etype, body, event, invalid", PPPOE_EVENTS,
                         ids=[f"{e}-{i}" for i, (_, _, e, _) in enumerate(PPPOE_EVENTS)])
def test_pppoe_events(etype: int, body: bytes, event: str, invalid: bool) -> None:
    pkt, d = decode(bytes(eth(type=etype) / Raw(body)))
    assert pkt.events == [event] and pkt.invalid is invalid
    assert d.counters["decoder.pppoe"] == 1


def test_pppoe_discovery_and_empty_session_are_quiet() -> None:
    pkt, _ = decode(bytes(eth() / PPPoED(code=0x09) / Raw(b"\x01\x01\x00\x00")))
    assert not pkt.events and not pkt.invalid and pkt.ip_version == 0
    pkt, _ = decode(bytes(eth(type=0x8864) / Raw(b"\x11\x00\x00\x01\x00\x00\x00\x21")))
    assert not pkt.events and not pkt.invalid  # length 0: nothing to decode


def _pptp(ppp: bytes) -> bytes:
    return bytes(outer4() / GRE_PPTP(seqnum_present=1, payload_len=len(ppp)) / Raw(ppp))


def test_ppp_inside_pptp() -> None:
    for ppp in (b"\x00\x21" + bytes(inner4()), b"\x21" + bytes(inner4()),
                PPP_HDLC + b"\x21" + bytes(inner4()), PPP_HDLC + b"\x00\x2f" + bytes(inner4())):
        pkt, _ = decode(_pptp(ppp))
        assert_inner4(pkt)
        assert pkt.tunnel is not None and pkt.tunnel[5] == 47
    # LCP: valid in PPP, not inspected; IPX: ppp.unsup_proto; garbage: ppp.wrong_type
    pkt, _ = decode(_pptp(PPP_HDLC + b"\xc0\x21" + bytes(20)))
    assert not pkt.events and not pkt.invalid and pkt.tunnel is not None
    pkt, _ = decode(_pptp(PPP_HDLC + b"\x00\x2b" + bytes(20)))
    assert pkt.events == ["ppp.unsup_proto"] and not pkt.invalid
    pkt, _ = decode(_pptp(PPP_HDLC + b"\x12\x34" + bytes(20)))
    assert pkt.events == ["ppp.wrong_type"] and pkt.invalid and pkt.tunnel is not None


def _in6(nh: int, body: bytes) -> bytes:
    """An IPv6 packet of next header ``nh`` carrying ``body``."""
    return bytes(eth() / IPv6(src="fd00::a", dst="fd00::b", nh=nh) / Raw(body))


def test_ip_in_ipv6_events() -> None:
    pkt, _ = decode(_in6(41, bytes(20)))
    assert pkt.invalid and pkt.events == ["ipv6.ipv6_in_ipv6_too_small"]
    pkt, _ = decode(_in6(41, b"\x45" + bytes(45)))
    assert not pkt.invalid and pkt.events == ["ipv6.ipv6_in_ipv6_wrong_version"]
    assert pkt.tunnel is None and pkt.proto == 41
    pkt, _ = decode(_in6(4, bytes(10)))
    assert pkt.invalid and pkt.events == ["ipv6.ipv4_in_ipv6_too_small"]
    pkt, _ = decode(_in6(4, b"\x65" + bytes(25)))
    assert not pkt.invalid and pkt.events == ["ipv6.ipv4_in_ipv6_wrong_version"]


# -- a tunnel whose inner packet fails is no tunnel ------------------------------------


@pytest.mark.parametrize(
    "frame, outer_proto",
    [
        (bytes(outer4() / GRE() / Raw(b"\x45\x00\x00")), 47),  # inner IPv4 too small
        (bytes(outer4() / GRE() / Raw(b"\x65" + bytes(30))), 47),  # not version 4
        (bytes(outer4() / GRE(proto=0x6558) / Raw(bytes(10))), 47),  # Ethernet too small
        (bytes(outer4() / GRE(seqnum_present=1, proto=0x88BE) / Raw(b"\x30\x00" + bytes(30))),
         47),  # ERSPAN version 3 in a type II header
        (bytes(outer4() / GRE(seqnum_present=1, proto=0x88BE) / Raw(b"\x10\x00")), 47),
        (bytes(outer4() / GRE_PPTP(seqnum_present=1, payload_len=3) / Raw(b"\xff\x03")), 47),
        (vxlan(IP(src=IN_SRC, dst=IN_DST, len=200) / TCP()), 17),  # inner IPv4 truncated
        (geneve(b"\x45" + bytes(10)), 17),
        (bytes(outer4(4) / Raw(b"\x45" + bytes(8))), 4),  # IP-in-IP, truncated inner
    ],
    ids=["gre-ipv4-short", "gre-ipv4-version", "gre-ethernet-short", "erspan-version",
         "erspan-short", "pptp-ppp-short", "vxlan-ipv4-trunc", "geneve-ipv4-short",
         "ipip-short"],
)
def test_failed_tunnel_leaves_the_outer_packet(frame: bytes, outer_proto: int) -> None:
    """PacketTunnelPktSetup: DecodeTunnel failed, the tunnel packet is dropped with its
    events; the outer packet is a plain packet of its protocol (flow, payload)."""
    pkt, d = decode(frame)
    assert not pkt.invalid and not pkt.events and pkt.tunnel is None
    assert (pkt.ip_version, pkt.src, pkt.proto) == (4, OUT4[1], outer_proto)
    assert pkt.payload  # the outer payload, for payload rules
    assert d.counters["decoder.invalid"] == 0
    assert not [k for k, v in d.counters.items() if k.startswith("decoder.event.") and v]


def test_failure_deeper_in_keeps_the_inner_packet_invalid() -> None:
    bad_tcp = IP(src=IN_SRC, dst=IN_DST) / TCP(sport=1, dport=2, dataofs=3)
    pkt, d = decode(bytes(outer4() / GRE() / bad_tcp))
    assert pkt.invalid and pkt.tunnel is not None and pkt.ip_version == 4
    assert pkt.events == ["tcp.hlen_too_small"]
    assert d.counters["decoder.event.tcp.hlen_too_small"] == 1


def test_nested_failure_falls_back_one_level_only() -> None:
    mid = IP(src="172.16.0.1", dst="172.16.0.2") / GRE() / Raw(b"\x45\x00")
    pkt, _ = decode(vxlan(mid))
    assert not pkt.invalid and pkt.proto == 47 and pkt.src == bytes([172, 16, 0, 1])
    assert pkt.tunnel == (*OUT4, 50123, 4789, 17, 1)


# -- decoder.max-layers ---------------------------------------------------------------


def _gre_nest(depth: int) -> bytes:
    pkt = inner4()
    for _ in range(depth):
        pkt = IP(src="172.16.0.1", dst="172.16.0.2") / GRE() / pkt
    return bytes(eth() / pkt)


def test_max_layers_limits_nesting() -> None:
    pkt, d = decode(_gre_nest(3), max_layers=3)
    assert pkt.invalid and pkt.events == ["too_many_layers"]
    assert d.counters["decoder.too_many_layers"] == 1 and pkt.ip_version == 4
    assert pkt.proto == 47  # the packet that hit the limit, not its payload
    pkt, _ = decode(_gre_nest(2), max_layers=3)
    assert_inner4(pkt)
    pkt, _ = decode(_gre_nest(15))  # the default, 16
    assert_inner4(pkt)
    pkt, _ = decode(_gre_nest(16))
    assert pkt.invalid and pkt.events == ["too_many_layers"]


def test_max_layers_is_capped_so_depth_never_exhausts_the_stack() -> None:
    pkt, d = decode(_gre_nest(100), max_layers=10_000)
    assert pkt.events == ["too_many_layers"]
    assert d.counters["decoder.too_many_layers"] == 1
    assert "decoder.internal_error" not in (pkt.events or [])


# -- hostile input --------------------------------------------------------------------


def _all_frames() -> list[bytes]:
    frames = [frame for frame, _, _ in CASES.values()]
    frames += [gre_raw(body) for body, _ in GRE_EVENTS]
    frames += [bytes(eth(type=0x8847) / Raw(body)) for body, _, _ in MPLS_EVENTS]
    frames += [bytes(eth(type=et) / Raw(body)) for et, body, _, _ in PPPOE_EVENTS]
    frames += [_gre_nest(4), vxlan(IP() / GRE() / inner4())]
    return frames


def test_every_truncation_of_every_tunnel_frame_decodes_without_error() -> None:
    for frame in _all_frames():
        d = Decoder(1)
        for cut in range(len(frame) + 1):
            pkt = d.decode(1.0, frame[:cut])
            assert pkt is None or "decoder.internal_error" not in (pkt.events or []), \
                (cut, frame.hex())


def test_garbage_after_every_tunnel_header_decodes_without_error() -> None:
    import random

    rng = random.Random(12)
    for frame in _all_frames():
        d = Decoder(1)
        for _ in range(200):
            raw = bytearray(frame)
            for _ in range(rng.randint(1, 6)):
                raw[rng.randrange(14, len(raw))] = rng.randrange(256)
            pkt = d.decode(1.0, bytes(raw))
            assert pkt is None or "decoder.internal_error" not in (pkt.events or []), \
                raw.hex()


def test_inner_packet_length_is_the_tunnel_packets() -> None:
    """PacketTunnelPktSetup copies the outer payload from the inner header on: that is
    the length flows count (VXLAN skips the inner Ethernet header, GRE bridging keeps it)."""
    inner = len(bytes(inner4()))
    assert decode(CASES["vxlan"][0])[0].length == inner
    assert decode(CASES["gre"][0])[0].length == inner
    assert decode(CASES["gre-bridged-ethernet"][0])[0].length == inner + 14
    pkt, _ = decode(bytes(outer4() / GRE() / Raw(b"\x45\x00")))  # failed: the outer frame
    assert pkt.length == len(bytes(outer4() / GRE() / Raw(b"\x45\x00")))
