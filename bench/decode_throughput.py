"""Per-packet cost of the capture hot path: pcap read, decode, flow lookup, TCP tracking.

Builds (in memory, with scapy, once) HTTP-like TCP conversations — handshake, a request,
a response split in MSS-sized segments with delayed ACKs, FIN — writes them to a
temporary pcap and times each stage separately over the whole file.

Usage: python bench/decode_throughput.py [--flows 300] [--response-kb 64] [--repeat 3]
       [--no-checksum] [--tunnel none|gre|vxlan]

``--tunnel`` wraps every frame in GRE or VXLAN (between two fixed endpoints), to compare
the cost of decoding tunnelled traffic with the same traffic bare.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scapy.layers.inet import IP, TCP, UDP  # noqa: E402
from scapy.layers.l2 import GRE, Ether  # noqa: E402
from scapy.layers.vxlan import VXLAN  # noqa: E402
from scapy.packet import Raw  # noqa: E402
from scapy.utils import wrpcap  # noqa: E402

from capture_backends.pcap_file import PcapFileBackend  # noqa: E402
from ruleengine.decode.decoder import Decoder  # noqa: E402
from ruleengine.flow.table import FlowTable  # noqa: E402
from ruleengine.stream.tcp import StreamConfig, TcpTracker  # noqa: E402

MSS = 1448
MAC_C, MAC_S = "02:00:00:00:00:01", "02:00:00:00:00:02"


def conversation(i: int, response_size: int) -> list[bytes]:
    client = f"10.{(i >> 8) & 255}.{i & 255}.1"
    server = "192.0.2.80"
    cport = 20000 + i % 40000
    req = f"GET /item/{i} HTTP/1.1\r\nHost: bench.test\r\n\r\n".encode()
    body = (b"x" * 61 + b"\n") * (response_size // 62 + 1)
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body

    def c(flags: str, seq: int, ack: int, data: bytes = b"") -> bytes:
        p = Ether(src=MAC_C, dst=MAC_S) / IP(src=client, dst=server) / TCP(
            sport=cport, dport=80, flags=flags, seq=seq, ack=ack
        )
        return bytes(p / Raw(data) if data else p)

    def s(flags: str, seq: int, ack: int, data: bytes = b"") -> bytes:
        p = Ether(src=MAC_S, dst=MAC_C) / IP(src=server, dst=client) / TCP(
            sport=80, dport=cport, flags=flags, seq=seq, ack=ack
        )
        return bytes(p / Raw(data) if data else p)

    cs, ss = 1001, 5001
    out = [c("S", 1000, 0), s("SA", 5000, cs), c("A", cs, ss), c("PA", cs, ss, req)]
    cs += len(req)
    for n, off in enumerate(range(0, len(resp), MSS)):
        seg = resp[off : off + MSS]
        out.append(s("A" if off + MSS < len(resp) else "PA", ss + off, cs, seg))
        if n % 2:
            out.append(c("A", cs, ss + off + len(seg)))
    ss += len(resp)
    out += [c("FA", cs, ss), s("FA", ss, cs + 1), c("A", cs + 1, ss + 1)]
    return out


def encapsulate(frame: bytes, tunnel: str) -> bytes:
    """``frame`` inside GRE or VXLAN between two endpoints (``none``: as it is)."""
    if tunnel == "none":
        return frame
    outer = Ether(src=MAC_C, dst=MAC_S) / IP(src="198.51.100.1", dst="198.51.100.2")
    if tunnel == "gre":
        return bytes(outer / GRE() / Ether(frame)[IP])
    return bytes(outer / UDP(sport=49152, dport=4789) / VXLAN(flags=0x08, vni=1) / Ether(frame))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flows", type=int, default=300)
    ap.add_argument("--response-kb", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-checksum", action="store_true", help="decode as with -k none")
    ap.add_argument("--tunnel", choices=("none", "gre", "vxlan"), default="none")
    args = ap.parse_args()

    frames: list[bytes] = []
    for i in range(args.flows):
        frames.extend(encapsulate(f, args.tunnel)
                      for f in conversation(i, args.response_kb * 1024))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.pcap"
        pkts = [Ether(f) for f in frames]
        for n, p in enumerate(pkts):
            p.time = 1_700_000_000 + n * 1e-5
        wrpcap(str(path), pkts)
        size = path.stat().st_size
        n = len(frames)
        print(f"{n} packets, {args.flows} flows, {size / 1e6:.1f} MB")
        best: dict[str, float] = {}
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            raw = list(PcapFileBackend(path).packets())
            t1 = time.perf_counter()
            decoder = Decoder(1, checksum_validation=not args.no_checksum)
            decoded = [decoder.decode(ts, data) for ts, data, _ in raw]
            t2 = time.perf_counter()
            table = FlowTable()
            looked = [table.lookup(p) for p in decoded if p is not None]
            t3 = time.perf_counter()
            tracker = TcpTracker(StreamConfig())
            delivered = 0
            for (flow, to_server), pkt in zip(looked, decoded, strict=True):
                assert pkt is not None
                for _d, chunk in tracker.process(flow, pkt, to_server).data:
                    delivered += len(chunk)
            t4 = time.perf_counter()
            for name, dt in (
                ("read", t1 - t0),
                ("decode", t2 - t1),
                ("flow", t3 - t2),
                ("stream", t4 - t3),
                ("total", t4 - t0),
            ):
                best[name] = min(best.get(name, dt), dt)
        for name, dt in best.items():
            print(f"{name:>7}: {dt * 1e6 / n:6.2f} µs/packet")
        total = best["total"]
        print(f"  total: {n / total:,.0f} packets/s, {size * 8 / total / 1e6:,.0f} Mbit/s")
        print(f"  reassembled {delivered / 1e6:.1f} MB of app data")


if __name__ == "__main__":
    main()
