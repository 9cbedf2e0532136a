"""Offline throughput: Mbit/s and packets/s of ``ruleengine run -r`` on realistic HTTP/1.1.

1. Generates (with scapy, once, cached in bench/.cache/) a >= 100 MB pcap of HTTP/1.1
   conversations: varied methods, URIs, user agents and hosts, responses from 200 B
   to 2 MB, some gzip-encoded, some chunked, delayed ACKs.
2. Runs the engine in-process on it with (a) 10 rules and (b) every HTTP rule of the
   ET Open file, and prints Mbit/s, packets/s, alerts, and the cost ratio b/a.

Usage: python bench/pcap_throughput.py [--size-mb 100] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gzip
import pstats
import random
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from capture_backends.pcap_file import PcapFileBackend  # noqa: E402
from ruleengine.detect.engine import DetectEngine  # noqa: E402
from ruleengine.outputs.eve import EveWriter  # noqa: E402
from ruleengine.outputs.stats import Stats  # noqa: E402
from ruleengine.pipeline import Pipeline  # noqa: E402
from ruleengine.rules.classification import classification  # noqa: E402
from ruleengine.rules.loader import load_rule_files  # noqa: E402
from ruleengine.settings import EngineSettings  # noqa: E402

CACHE = REPO / "bench" / ".cache"
ET_RULES = next((p / "shared" for p in REPO.parents if (p / "shared").is_dir()),
                REPO.parent / "shared") / "corpus" / "rules" / "et-open-suricata-5.0.rules"
MSS = 1448

USER_AGENTS = ["Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
               "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0",
               "curl/8.5.0", "python-requests/2.32.3", "Wget/1.21.3"]
PATHS = ["/", "/index.html", "/static/app.js", "/api/v1/items?page=2&sort=desc",
         "/images/logo.png", "/search?q=network+security", "/downloads/file.tar.gz",
         "/wp-login.php", "/news/2026/11/article-1234.html", "/cart/checkout"]
HOSTS = ["www.example.com", "cdn.example.net", "api.example.org", "shop.example.com"]


def _body(rng: random.Random) -> bytes:
    size = rng.choice([200, 1500, 8000, 40000, 250_000, 2_000_000])
    words = b"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
    return (words * (size // len(words) + 1))[:size]


def _exchange(rng: random.Random) -> tuple[bytes, bytes]:
    path, host, ua = rng.choice(PATHS), rng.choice(HOSTS), rng.choice(USER_AGENTS)
    if rng.random() < 0.15:
        form = b"user=alice&comment=" + b"x" * rng.randint(10, 2000)
        request = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {ua}\r\n"
                   f"Content-Type: application/x-www-form-urlencoded\r\n"
                   f"Content-Length: {len(form)}\r\n\r\n").encode() + form
    else:
        request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {ua}\r\n"
                   "Accept: */*\r\nAccept-Encoding: gzip\r\n\r\n").encode()
    body = _body(rng)
    headers = "HTTP/1.1 200 OK\r\nServer: nginx/1.24.0\r\nContent-Type: text/html\r\n"
    if rng.random() < 0.2 and len(body) < 300_000:
        body = gzip.compress(body)
        headers += "Content-Encoding: gzip\r\n"
    if rng.random() < 0.2:
        chunks = b"".join(f"{len(body[i:i + 4096]):x}\r\n".encode() + body[i:i + 4096] + b"\r\n"
                          for i in range(0, len(body), 4096))
        response = (headers + "Transfer-Encoding: chunked\r\n\r\n").encode() + chunks + b"0\r\n\r\n"
    else:
        response = (headers + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    return request, response


class _Connection:
    """One TCP connection being written to the pcap (sequence numbers tracked)."""

    def __init__(self, writer: object, conv: int, rng: random.Random, clock: list[float]) -> None:
        from scapy.all import Ether  # type: ignore[import-untyped]

        self.writer = writer
        self.client = f"10.{conv // 60000 % 250}.{conv // 250 % 240}.{conv % 250 + 1}"
        self.server = f"172.16.{conv % 16}.{conv % 200 + 1}"
        self.sport = 20000 + conv % 40000
        self.cseq, self.sseq = rng.randrange(1 << 31), rng.randrange(1 << 31)
        self.eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        self.clock = clock
        self.written = 0

    def emit(self, from_client: bool, flags: str, payload: bytes = b"") -> None:
        from scapy.all import IP, TCP  # type: ignore[import-untyped]

        self.clock[0] += 0.0002
        ts = self.clock[0]
        if from_client:
            pkt = self.eth / IP(src=self.client, dst=self.server) / TCP(
                sport=self.sport, dport=80, flags=flags, seq=self.cseq, ack=self.sseq) / payload
        else:
            pkt = self.eth / IP(src=self.server, dst=self.client) / TCP(
                sport=80, dport=self.sport, flags=flags, seq=self.sseq, ack=self.cseq) / payload
        raw = bytes(pkt)
        self.writer.write_packet(raw, sec=int(ts), usec=int(ts % 1 * 1e6))  # type: ignore[attr-defined]
        self.written += len(raw)
        step = len(payload) + (1 if "S" in flags or "F" in flags else 0)
        if from_client:
            self.cseq = (self.cseq + step) & 0xFFFFFFFF
        else:
            self.sseq = (self.sseq + step) & 0xFFFFFFFF


def generate(path: Path, size_mb: int, seed: int = 1) -> None:
    from scapy.utils import PcapWriter  # type: ignore[import-untyped]

    rng = random.Random(seed)
    target = size_mb * 1_000_000
    written = 0
    clock = [1_760_000_000.0]
    tmp = path.with_suffix(".tmp")
    writer = PcapWriter(str(tmp), linktype=1, sync=False)
    writer.write_header(None)  # write_packet() alone never writes the global header
    conv = 0
    while written < target:
        conv += 1
        c = _Connection(writer, conv, rng, clock)
        c.emit(True, "S")
        c.emit(False, "SA")
        c.emit(True, "A")
        for _ in range(rng.randint(1, 3)):  # keep-alive: several requests per connection
            request, response = _exchange(rng)
            c.emit(True, "PA", request)
            for n, i in enumerate(range(0, len(response), MSS)):
                c.emit(False, "PA" if i + MSS >= len(response) else "A", response[i:i + MSS])
                if n % 2:
                    c.emit(True, "A")  # delayed ACK: one per two segments
            c.emit(True, "A")
        c.emit(True, "FA")
        c.emit(False, "FA")
        c.emit(True, "A")
        written += c.written
    writer.close()
    tmp.rename(path)


def http_rules(limit: int | None) -> Path:
    """Write the ET file's HTTP rules (http header protocol or http buffers) to a temp file."""
    http_kw = re.compile(r"\b(http[._]\w+|file[._]data|uricontent|urilen)\b")
    selected = []
    for line in ET_RULES.read_text(encoding="utf-8", errors="replace").splitlines():
        is_tcp_http = line.startswith("alert tcp ") and http_kw.search(line)
        if line.startswith("alert http ") or is_tcp_http:
            selected.append(line)
    if limit is not None:
        selected = selected[:limit]
    out = Path(tempfile.mkstemp(suffix=".rules", prefix="bench-")[1])
    out.write_text("\n".join(selected) + "\n")
    return out


def run_once(pcap: Path, rules_path: Path, profile: bool) -> dict[str, float]:
    ruleset = load_rule_files([rules_path])
    detect = DetectEngine(ruleset.rules)
    logdir = Path(tempfile.mkdtemp(prefix="bench-eve-"))
    eve = EveWriter(logdir / "eve.json")
    settings = EngineSettings(checksum_validation=False)
    pipeline = Pipeline(settings, detect, eve=eve, stats=Stats(), classify=classification)
    backend = PcapFileBackend(pcap)
    profiler = cProfile.Profile() if profile else None
    cpu0 = resource.getrusage(resource.RUSAGE_SELF).ru_utime
    t0 = time.perf_counter()
    if profiler:
        profiler.enable()
    report = pipeline.run(backend)
    if profiler:
        profiler.disable()
    wall = time.perf_counter() - t0
    cpu = resource.getrusage(resource.RUSAGE_SELF).ru_utime - cpu0
    eve.close()
    if profiler:
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(20)
    return {"rules": len(ruleset.rules), "packets": report.packets, "bytes": report.bytes,
            "wall": wall, "cpu": cpu, "alerts": sum(report.alerts_by_sid.values()),
            "mbps": report.bytes * 8 / wall / 1e6, "pps": report.packets / wall}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--profile", action="store_true", help="cProfile the (b) run")
    args = parser.parse_args()
    if not ET_RULES.exists():
        print(f"ET rules not found at {ET_RULES}", file=sys.stderr)
        return 1
    CACHE.mkdir(parents=True, exist_ok=True)
    pcap = CACHE / f"http-{args.size_mb}mb.pcap"
    if not pcap.exists():
        t0 = time.perf_counter()
        print(f"generating {pcap} with scapy (once) ...", flush=True)
        generate(pcap, args.size_mb)
        print(f"  done in {time.perf_counter() - t0:.0f} s", flush=True)
    print(f"pcap: {pcap} ({pcap.stat().st_size / 1e6:.1f} MB)")
    results = {}
    for label, limit in (("a: 10 rules", 10), ("b: all ET HTTP rules", None)):
        rules = http_rules(limit)
        r = run_once(pcap, rules, args.profile and limit is None)
        results[label] = r
        print(f"{label:24s} rules={r['rules']:6.0f} packets={r['packets']:8.0f} "
              f"wall={r['wall']:7.2f}s cpu={r['cpu']:7.2f}s {r['mbps']:7.1f} Mbit/s "
              f"{r['pps']:9.0f} pkt/s alerts={r['alerts']:.0f}")
    a, b = results["a: 10 rules"], results["b: all ET HTTP rules"]
    print(f"cost ratio b/a (wall): {b['wall'] / a['wall']:.2f}  (target <= 2.0)")
    print(f"(b) throughput: {b['mbps']:.1f} Mbit/s on one core (target >= 150)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
