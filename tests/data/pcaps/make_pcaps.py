"""Regenerate the small capture fixtures in this directory (deterministic).

    .venv/bin/python tests/data/pcaps/make_pcaps.py

Every frame carries explicit MAC addresses and fixed timestamps, so the files are
byte-identical between runs.
"""

from __future__ import annotations

from pathlib import Path

from scapy.layers.inet import IP, TCP, UDP, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, fragment6
from scapy.layers.l2 import CookedLinux, Dot1AD, Dot1Q, Ether
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap, wrpcapng

HERE = Path(__file__).resolve().parent
MAC_C = "02:00:00:00:00:01"
MAC_S = "02:00:00:00:00:02"
T0 = 1_700_000_000.0

REQUEST = b"GET /index.html HTTP/1.1\r\nHost: example.test\r\nUser-Agent: fixture\r\n\r\n"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 13\r\n\r\n<html></html>"
)


def http_conversation(client: str = "192.0.2.10", server: str = "192.0.2.80") -> list[Packet]:
    """A complete HTTP/1.1 exchange: handshake, request, response, FIN both ways."""
    c_isn, s_isn = 1000, 5000
    cp, sp = 41000, 80

    def c(flags: str, seq: int, ack: int, data: bytes = b"") -> Packet:
        p = Ether(src=MAC_C, dst=MAC_S) / IP(src=client, dst=server) / TCP(
            sport=cp, dport=sp, flags=flags, seq=seq, ack=ack
        )
        return p / Raw(data) if data else p

    def s(flags: str, seq: int, ack: int, data: bytes = b"") -> Packet:
        p = Ether(src=MAC_S, dst=MAC_C) / IP(src=server, dst=client) / TCP(
            sport=sp, dport=cp, flags=flags, seq=seq, ack=ack
        )
        return p / Raw(data) if data else p

    cs, ss = c_isn + 1, s_isn + 1
    pkts = [
        c("S", c_isn, 0),
        s("SA", s_isn, cs),
        c("A", cs, ss),
        c("PA", cs, ss, REQUEST),
        s("A", ss, cs + len(REQUEST)),
        s("PA", ss, cs + len(REQUEST), RESPONSE),
        c("A", cs + len(REQUEST), ss + len(RESPONSE)),
        c("FA", cs + len(REQUEST), ss + len(RESPONSE)),
        s("FA", ss + len(RESPONSE), cs + len(REQUEST) + 1),
        c("A", cs + len(REQUEST) + 1, ss + len(RESPONSE) + 1),
    ]
    return _stamp(pkts)


def _stamp(pkts: list[Packet], start: float = T0) -> list[Packet]:
    for i, p in enumerate(pkts):
        p.time = start + i * 0.001
    return pkts


def fragments() -> list[Packet]:
    v4 = IP(src="192.0.2.1", dst="192.0.2.2", id=4242) / UDP(sport=5000, dport=53)
    v6 = (
        IPv6(src="2001:db8::1", dst="2001:db8::2")
        / IPv6ExtHdrFragment(id=77)
        / UDP(sport=5000, dport=53)
    )
    body = bytes(range(256)) * 8
    eth = Ether(src=MAC_C, dst=MAC_S)
    pkts = [eth / f for f in reversed(fragment(v4 / Raw(body), fragsize=600))]
    pkts += [eth / f for f in fragment6(v6 / Raw(body), 700)]
    return _stamp(pkts)


def main() -> None:
    http = http_conversation()
    wrpcap(str(HERE / "http-get.pcap"), http)
    wrpcap(str(HERE / "http-get-ns.pcap"), http, nano=True)
    wrpcapng(str(HERE / "http-get.pcapng"), http)
    sll = _stamp([CookedLinux(pkttype=0, proto=0x0800) / p[IP] for p in http_conversation()])
    wrpcap(str(HERE / "http-get-sll.pcap"), sll, linktype=113)
    raw = _stamp([p[IP] for p in http_conversation()])
    wrpcap(str(HERE / "http-get-raw.pcap"), raw, linktype=101)
    qinq = _stamp(
        [
            Ether(src=MAC_C, dst=MAC_S) / Dot1AD(vlan=100) / Dot1Q(vlan=200) / p[IP]
            for p in http_conversation()
        ]
    )
    wrpcap(str(HERE / "http-get-qinq.pcap"), qinq)
    wrpcap(str(HERE / "fragments.pcap"), fragments())


if __name__ == "__main__":
    main()
