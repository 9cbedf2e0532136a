"""Test helper: TCP payloads of a pcap, per flow and in stream order (scapy, tests only)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.utils import PcapReader

from ruleengine.applayer.http1 import HttpConfig, HttpParser
from tests.shared import SV_CORPUS

CORPUS = SV_CORPUS


@dataclass
class _Dir:
    next_seq: int | None = None
    pending: dict[int, bytes] = field(default_factory=dict)


def tcp_segments(path: Path) -> Iterator[tuple[tuple, bool, bytes, bool]]:
    """(flow key, to_server, in-order data, fin) per packet; simple reassembly
    (out-of-order segments are held, retransmitted bytes dropped)."""
    dirs: dict[tuple, _Dir] = {}
    clients: dict[tuple, tuple] = {}
    with PcapReader(str(path)) as reader:
        for pkt in reader:
            ip = pkt.getlayer(IP) or pkt.getlayer(IPv6)
            if ip is None or TCP not in pkt:
                continue
            tcp = pkt[TCP]
            src, dst = (ip.src, tcp.sport), (ip.dst, tcp.dport)
            key = tuple(sorted((src, dst)))
            flags = int(tcp.flags)
            if key not in clients:
                syn_ack = flags & 0x12 == 0x12
                clients[key] = dst if syn_ack else src
            to_server = src == clients[key]
            state = dirs.setdefault((key, to_server), _Dir())
            payload = bytes(tcp.payload)
            seq = int(tcp.seq)
            if flags & 0x02:
                state.next_seq = (seq + 1) & 0xFFFFFFFF
                if not payload:
                    continue
                seq = state.next_seq  # TCP Fast Open: data in the SYN
            if state.next_seq is None:
                state.next_seq = seq
            if payload:
                state.pending.setdefault(seq, payload)
            out = bytearray()
            while True:
                progressed = False
                for s, data in list(state.pending.items()):
                    offset = (state.next_seq - s) & 0xFFFFFFFF
                    if offset < len(data):
                        out += data[offset:]
                        state.next_seq = (s + len(data)) & 0xFFFFFFFF
                        del state.pending[s]
                        progressed = True
                    elif offset < 0x80000000:
                        del state.pending[s]  # fully retransmitted
                if not progressed:
                    break
            yield key, to_server, bytes(out), bool(flags & 0x05)


def parse_pcap(path: Path, config: HttpConfig | None = None) -> list[HttpParser]:
    parsers: dict[tuple, HttpParser] = {}
    for key, to_server, data, fin in tcp_segments(path):
        parser = parsers.setdefault(key, HttpParser(config or HttpConfig()))
        if data:
            parser.feed(to_server, data)
        if fin:
            parser.close(to_server)
    for parser in parsers.values():
        parser.close()
    return list(parsers.values())
