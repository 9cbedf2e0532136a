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
