"""Detection cost per HTTP transaction: all ET Open HTTP rules vs a 10-rule set.

    .venv/bin/python bench/detect_inspect.py [--mpm auto|hs|ac] [--iterations N]

Parses a few realistic HTTP/1.1 exchanges with the project's HTTP parser, then runs
``DetectEngine.inspect_packet`` + ``inspect_tx`` (request side, then response side) on
each transaction with a fresh flow, so every MPM scan and candidate inspection is paid.
Prints microseconds per transaction and per body data packet. Detection alone is
measured here; the end-to-end ratio (decode + stream + HTTP + detect) is bench/pcap_throughput.py.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from ruleengine.applayer.http1.parser import HttpParser
from ruleengine.decode.packet import IPPROTO_TCP, Packet
from ruleengine.detect.engine import DetectEngine
from ruleengine.rules.loader import load_rule_files, load_rule_text
from ruleengine.rules.model import Rule

ROOT = Path(__file__).resolve().parents[1]
ET = ROOT.parent / "shared" / "corpus" / "rules" / "et-open-suricata-5.0.rules"

EXCHANGES = [
    (
        b"GET /wp-content/themes/t/index.php?page=1&q=hello HTTP/1.1\r\nHost: www.example.com\r\n"
        b"User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120\r\n"
        b"Accept: text/html,application/xhtml+xml\r\nAccept-Encoding: gzip, deflate\r\n"
        b"Accept-Language: en-US,en;q=0.9\r\nCookie: session=abcdef0123456789\r\n"
        b"Referer: https://www.example.com/\r\nConnection: keep-alive\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nServer: nginx/1.24.0\r\nContent-Type: text/html; charset=UTF-8\r\n"
        b"Content-Length: 120\r\nSet-Cookie: a=b\r\n\r\n" + b"<html><head><title>Hi</title></head>"
        b"<body>" + b"x" * 70 + b"</body></html>",
    ),
    (
        b"POST /api/v1/login HTTP/1.1\r\nHost: api.example.org\r\nUser-Agent: python-requests/2.31"
        b"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 29\r\n\r\n"
        b"user=alice&password=secret123",
        b"HTTP/1.1 302 Found\r\nLocation: /home\r\nServer: Apache\r\nContent-Length: 0\r\n\r\n",
    ),
    (
        b"GET /download/file.exe HTTP/1.1\r\nHost: cdn.example.net\r\nUser-Agent: curl/8.4.0\r\n"
        b"Accept: */*\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 64\r\n\r\n"
        b"MZ\x90\x00" + b"\x00" * 60,
    ),
]

SMALL = "\n".join(
    f'alert http any any -> any any (msg:"r{i}"; flow:established,to_server; http.uri; '
    f'content:"/needle{i}"; sid:{i + 1};)'
    for i in range(10)
)


def _packet(to_server: bool, payload: bytes) -> Packet:
    a, b = b"\x0a\x00\x00\x01", b"\x5d\xb8\xd8\x22"  # 10.0.0.1 (HOME_NET) -> 93.184.216.34
    src, dst, sport, dport = (a, b, 40000, 80) if to_server else (b, a, 80, 40000)
    p = Packet(0.0, 0, len(payload) + 54, 4, src, dst, IPPROTO_TCP, sport, dport, payload)
    p.tcp_flags = 0x18
    return p


class _Flow:
    def __init__(self) -> None:
        self.state = "established"
        self.alproto = "http"
        self.flowbits: set[str] = set()
        self.detect: object | None = None


def _transactions() -> list[tuple[Any, bytes, bytes]]:
    out = []
    for req, resp in EXCHANGES:
        parser = HttpParser()
        parser.feed(True, req)
        parser.feed(False, resp)
        out.append((parser.transactions[0], req, resp))
    return out


def _run(engine: DetectEngine, txs: list[tuple[Any, bytes, bytes]], iterations: int) -> float:
    pkts = [(_packet(True, req), _packet(False, resp), tx) for tx, req, resp in txs]
    start = time.perf_counter()
    for _ in range(iterations):
        for p_req, p_resp, tx in pkts:
            flow = _Flow()
            engine.inspect_packet(p_req, flow, True, p_req.payload)
            engine.inspect_tx(p_req, flow, True, tx, True, False)
            engine.inspect_packet(p_resp, flow, False, p_resp.payload)
            engine.inspect_tx(p_resp, flow, False, tx, True, True)
    return (time.perf_counter() - start) / (iterations * len(pkts)) * 1e6


def _run_packets(engine: DetectEngine, iterations: int) -> float:
    """A 1448-byte response body segment (the common packet of a download)."""
    words = b"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
    body = (words * 20)[:1448]
    pkt, flow = _packet(False, body), _Flow()
    start = time.perf_counter()
    for _ in range(iterations):
        engine.inspect_packet(pkt, flow, False, body)
    return (time.perf_counter() - start) / iterations * 1e6


class _Conversation:
    """Frames of one TCP connection with tracked sequence numbers."""

    def __init__(self, conv: int, frames: list[Any], clock: list[float]) -> None:
        self.cli, self.srv = f"10.0.{conv // 250}.{conv % 250 + 1}", "93.184.216.34"
        self.sport = 20000 + conv
        self.seq = {True: 1000, False: 5000}
        self.frames, self.clock = frames, clock

    def add(self, from_client: bool, flags: str, payload: bytes = b"") -> None:
        from scapy.all import IP, TCP, Ether  # type: ignore[import-untyped]

        self.clock[0] += 0.0001
        src, dst = (self.cli, self.srv) if from_client else (self.srv, self.cli)
        sport, dport = (self.sport, 80) if from_client else (80, self.sport)
        tcp = TCP(
            sport=sport,
            dport=dport,
            flags=flags,
            seq=self.seq[from_client],
            ack=self.seq[not from_client],
        )
        frame = Ether() / IP(src=src, dst=dst) / tcp / payload
        frame.time = self.clock[0]
        self.frames.append(frame)
        self.seq[from_client] += len(payload) + (1 if ("S" in flags or "F" in flags) else 0)


def _write_pcap(path: Path, conversations: int) -> None:
    """HTTP/1.1 conversations (handshake, request, 1448-byte response segments, ACKs,
    FIN) written with scapy, for the end-to-end comparison."""
    from scapy.all import wrpcap

    frames: list[Any] = []
    clock = [1_700_000_000.0]
    body = b"lorem ipsum dolor sit amet consectetur adipiscing elit " * 300
    for conv in range(conversations):
        req = EXCHANGES[conv % len(EXCHANGES)][0]
        data = body[: 200 + (conv * 997) % len(body)]
        resp = (
            b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/html\r\n"
            b"Content-Length: %d\r\n\r\n" % len(data)
        ) + data
        c = _Conversation(conv, frames, clock)
        c.add(True, "S")
        c.add(False, "SA")
        c.add(True, "A")
        c.add(True, "PA", req)
        c.add(False, "A")
        for off in range(0, len(resp), 1448):
            c.add(False, "PA", resp[off : off + 1448])
            c.add(True, "A")
        c.add(True, "FA")
        c.add(False, "FA")
        c.add(True, "A")
    wrpcap(str(path), frames)


def _pipeline_seconds(pcap: Path, rules: list[Rule]) -> float:
    from capture_backends.pcap_file import PcapFileBackend
    from ruleengine.outputs.stats import Stats
    from ruleengine.pipeline import Pipeline
    from ruleengine.rules.loader import classification
    from ruleengine.settings import EngineSettings

    engine = DetectEngine(rules)
    pipeline = Pipeline(
        EngineSettings(checksum_validation=False),
        engine,
        eve=None,
        stats=Stats(),
        classify=classification,
    )
    start = time.perf_counter()
    pipeline.run(PcapFileBackend(pcap))
    return time.perf_counter() - start


def pipeline_ratio(conversations: int, http_rules: list[Rule], small: list[Rule]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        pcap = Path(tmp) / "http.pcap"
        _write_pcap(pcap, conversations)
        size = pcap.stat().st_size
        # best of 3: the machine is shared, the minimum is the least disturbed run
        t_small = min(_pipeline_seconds(pcap, small) for _ in range(3))
        t_big = min(_pipeline_seconds(pcap, http_rules) for _ in range(3))
    print(f"pipeline, {conversations} conversations, {size / 1e6:.1f} MB:")
    print(f"  10 rules:    {t_small:6.2f} s  ({size * 8 / t_small / 1e6:6.1f} Mbit/s)")
    print(f"  all ET HTTP: {t_big:6.2f} s  ({size * 8 / t_big / 1e6:6.1f} Mbit/s)")
    print(f"  ratio:       {t_big / t_small:6.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mpm", default="auto")
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument(
        "--pipeline",
        type=int,
        metavar="N",
        default=0,
        help="also run the whole pipeline on N generated conversations (end-to-end ratio)",
    )
    args = ap.parse_args()
    et_rules: list[Rule] = load_rule_files([ET]).rules
    http_rules = [
        r
        for r in et_rules
        if r.app_proto in ("http", "http1") or any(b.buffer != "payload" for b in r.buffers)
    ]
    small = load_rule_text(SMALL).rules
    txs = _transactions()
    t0 = time.perf_counter()
    big_engine = DetectEngine(http_rules, mpm=args.mpm)
    build = time.perf_counter() - t0
    small_engine = DetectEngine(small, mpm=args.mpm)
    print(
        f"mpm={big_engine.mpm_backend} ET HTTP rules={len(http_rules)} "
        f"(evaluated {len(big_engine.rules)}, skipped {len(big_engine.skipped)}), "
        f"build {build:.2f}s"
    )
    _run(big_engine, txs, 5)  # warm-up
    t_small = _run(small_engine, txs, args.iterations)
    t_big = _run(big_engine, txs, args.iterations)
    print(f"10 rules:     {t_small:8.1f} us/tx (request+response, incl. packet rules)")
    print(f"all ET HTTP:  {t_big:8.1f} us/tx")
    print(f"ratio:        {t_big / t_small:8.2f}x")
    p_small = _run_packets(small_engine, args.iterations * 50)
    p_big = _run_packets(big_engine, args.iterations * 50)
    print(f"data packet:  {p_small:8.2f} us (10 rules)  {p_big:8.2f} us (all ET HTTP)")
    if args.pipeline:
        pipeline_ratio(args.pipeline, http_rules, small)


if __name__ == "__main__":
    main()
