"""Frame builders shared by the decode, flow and stream tests (scapy, test-time only)."""

from __future__ import annotations

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from ruleengine.decode.decoder import Decoder
from ruleengine.decode.packet import Packet

MAC_A = "02:00:00:00:00:01"
MAC_B = "02:00:00:00:00:02"

CLIENT = "10.0.0.1"
SERVER = "10.0.0.2"
CPORT = 40000
SPORT = 80


def eth(**kw: object) -> Ether:
    """An Ethernet header with explicit MACs (scapy would otherwise ARP for them)."""
    return Ether(src=MAC_A, dst=MAC_B, **kw)


def tcp_frame(
    flags: str,
    seq: int,
    ack: int = 0,
    data: bytes = b"",
    *,
    to_server: bool = True,
    src: str = CLIENT,
    dst: str = SERVER,
    sport: int = CPORT,
    dport: int = SPORT,
) -> bytes:
    if not to_server:
        src, dst, sport, dport = dst, src, dport, sport
    pkt = (
        eth()
        / IP(src=src, dst=dst)
        / TCP(sport=sport, dport=dport, flags=flags, seq=seq & 0xFFFFFFFF, ack=ack & 0xFFFFFFFF)
    )
    if data:
        pkt = pkt / Raw(data)
    return bytes(pkt)


def decode_one(frame: bytes, ts: float = 1.0, linktype: int = 1, **kw: object) -> Packet:
    pkt = Decoder(linktype, **kw).decode(ts, frame)  # type: ignore[arg-type]
    assert pkt is not None
    return pkt


def tunnel_frames() -> list[tuple[int, bytes]]:
    """One frame per encapsulation the decoder knows, as ``(linktype, frame)``: seeds for
    the decoder's fuzz targets, so mutations start inside every tunnel header."""
    from scapy.contrib.erspan import ERSPAN_II, ERSPAN_III
    from scapy.contrib.mpls import MPLS
    from scapy.layers.inet import UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import GRE, GRE_PPTP
    from scapy.layers.ppp import PPPoE
    from scapy.layers.vxlan import VXLAN

    inner = IP(src="192.168.7.1", dst="192.168.7.2") / TCP(sport=1234, dport=80, flags="PA") \
        / Raw(b"GET / HTTP/1.1\r\n\r\n")
    inner6 = IPv6(src="fd00::1", dst="fd00::2") / UDP(sport=5353, dport=53) / Raw(b"q")
    outer = eth() / IP(src=CLIENT, dst=SERVER)
    geneve = b"\x02\x00\x65\x58\x00\x00\x07\x00" + b"\x01\x08\x00\x01\x11\x11\x11\x11"
    frames = [
        outer / GRE() / inner,
        outer / GRE(key_present=1, seqnum_present=1, chksum_present=1) / inner6,
        outer / GRE(proto=0x6558) / eth() / inner,
        outer / GRE(proto=0x8100) / Raw(b"\x00\x05\x08\x00") / inner,
        outer / GRE(seqnum_present=1, proto=0x88BE) / ERSPAN_II(vlan=5) / eth() / inner,
        outer / GRE(seqnum_present=1, proto=0x22EB) / ERSPAN_III() / eth() / inner,
        outer / GRE_PPTP(seqnum_present=1, payload_len=4 + len(inner))
        / Raw(b"\xff\x03\x00\x21") / inner,
        outer / UDP(sport=5000, dport=4789) / VXLAN(flags=0x08, vni=1) / eth() / inner,
        outer / UDP(sport=5000, dport=6081) / Raw(geneve) / eth() / inner,
        outer / inner,
        outer / inner6,
        eth() / IPv6(src="fd00::a", dst="fd00::b") / inner,
        eth() / IPv6(src="fd00::a", dst="fd00::b") / inner6,
        eth() / MPLS(label=100, s=0) / MPLS(label=200, s=1) / inner,
        eth() / MPLS(label=300, s=1) / Raw(bytes(4)) / eth() / inner,
        eth() / PPPoE(sessionid=1) / Raw(b"\x00\x21") / inner,
    ]
    out = [(1, bytes(f)) for f in frames]
    out.append((104, b"\x0f\x00\x08\x00" + bytes(inner)))  # Cisco HDLC
    return out
