"""pcap runs on 1 vs N worker processes (issue 10 §2): wall time, CPU, packets/s, alerts.

The traffic is the kind where most bytes are inspected: many short HTTP/1.1 connections
(70 % one request, the rest keep-alive), objects of 200 B .. 60 KB (under libhtp's body
limits), 20 % chunked, 5 % requests ET Open has rules for (scanners, traversal,
injection), servers outside HOME_NET: ``bench/detect_realistic.py``'s generator and its
cached pcap (bench/.cache/realistic-N.pcap, made once with scapy, seeded).

Besides the whole run's wall time (which includes the serial start: rule loading and the
engine build) the packet phase is printed: the summary's first-to-last-packet time.

Each run is ``python -m ruleengine run -r PCAP -S RULES --runmode single|autofp`` in a
child process; CPU is user+sys of the whole process tree (the reader and its workers,
``os.wait4`` on the parent collects the reaped children's times). ``N`` workers are made
with ``--set threading.detect-thread-ratio`` (N = CPUs x ratio, as Suricata counts).
The alert set (sid, pcap_cnt) of each run is digested: the digests must agree. The
machine may be shared: before each run ``cores-free`` says how many cores two busy
processes got at that moment (2.00 = two idle cores); read the speed-ups beside it.

Usage: python bench/pcap_runmodes.py [--conns 3000] [--workers 1,2] [--sets 10,http]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import pcap_throughput  # noqa: E402
from detect_realistic import generate, run_engine  # noqa: E402
from pcap_throughput import http_rules  # noqa: E402

CACHE = REPO / "bench" / ".cache"
# the shared corpus beside the checkout, or beside a worktree's parent (/work/wt/NAME)
ET_RULES = next((p / "shared" / "corpus" / "rules" / "et-open-suricata-5.0.rules"
                 for p in REPO.parents
                 if (p / "shared" / "corpus" / "rules" / "et-open-suricata-5.0.rules").exists()),
                pcap_throughput.ET_RULES)
pcap_throughput.ET_RULES = ET_RULES  # http_rules() reads it there


def run_one(pcap: Path, rules: Path, workers: int) -> dict[str, object]:
    cpus = len(os.sched_getaffinity(0))
    mode = ["--runmode", "single"] if workers <= 1 else [
        "--runmode", "autofp", "--set", f"threading.detect-thread-ratio={(workers + 0.5) / cpus}"]
    r = run_engine(REPO, pcap, rules, ["-k", "none", "--no-progress", *mode])
    # the summary's packet phase (first to last packet; the workers' longest), without
    # the start (rule loading, engine build), which is serial in either mode
    phase = re.search(r"Packets: [\d,]+ \([^)]*\), \d+ invalid in ([\d.]+)s", str(r["stderr"]))
    # the children's CPU: the reaped grandchildren are in the child's rusage (run_engine)
    return {**r, "phase": float(phase.group(1)) if phase else 0.0}


def _spin(n: int = 3_000_000) -> None:
    x = 0
    for i in range(n):
        x ^= i


def cores_free() -> float:
    """How many cores this machine gives two busy processes right now (2.0: two idle
    cores; 1.0: one, e.g. another job holds the other): one spin alone vs two at once."""
    t0 = time.perf_counter()
    _spin()
    alone = time.perf_counter() - t0
    t0 = time.perf_counter()
    pids = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            _spin()
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    return 2 * alone / (time.perf_counter() - t0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conns", type=int, default=3000)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--sets", default="10,http")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    pcap = CACHE / f"realistic-{args.conns}.pcap"
    if not pcap.exists():
        print(f"generating {pcap} (once) ...", flush=True)
        generate(pcap, args.conns)
    print(f"pcap: {pcap} ({pcap.stat().st_size / 1e6:.1f} MB), "
          f"CPUs visible: {len(os.sched_getaffinity(0))}, load: {os.getloadavg()[0]:.2f}")
    if not ET_RULES.exists():
        print(f"ET rules not found at {ET_RULES}", file=sys.stderr)
        return 1
    for kind in args.sets.split(","):
        rules = http_rules(10 if kind == "10" else None)
        base = base_phase = 0.0
        for _ in range(args.repeat):
            for n in (int(w) for w in args.workers.split(",")):
                free = cores_free()
                r = run_one(pcap, rules, n)
                pps = float(r["packets"]) / float(r["wall"]) if r["wall"] else 0.0
                phase = float(r["packets"]) / float(r["phase"]) if r["phase"] else 0.0
                if n == 1:
                    base, base_phase = pps, phase
                speedup = f" x{pps / base:.2f}" if base and n > 1 else ""
                phase_up = f" x{phase / base_phase:.2f}" if base_phase and n > 1 else ""
                print(f"rules={kind:5s} workers={n} cores-free={free:.2f} "
                      f"wall={r['wall']:.2f}s cpu={r['cpu']:.2f}s "
                      f"pkts={r['packets']} pkt/s(wall)={pps:.0f}{speedup} "
                      f"pkt/s(packet phase {r['phase']:.2f}s)={phase:.0f}{phase_up} "
                      f"rss(max proc)={r['rss_mb']:.0f}MB alerts={r['alerts']} "
                      f"digest={r['digest']} load={os.getloadavg()[0]:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
