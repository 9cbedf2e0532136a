"""Does flow.memcap bound the engine's memory? N distinct TCP SYN flows (a SYN flood of new
5-tuples, in one second of capture time) through the pipeline, peak RSS reported beside the
configured memcap, and the cost of one tracked flow measured with no cap.

Usage: python bench/flow_memcap.py [--flows 500000] [--memcap 128mb]
Each run is a fresh process (peak RSS is per process).
"""

from __future__ import annotations

import argparse
import resource
import struct
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from capture_backends.base import Capability  # noqa: E402
from capture_backends.memory import MemoryBackend  # noqa: E402
from ruleengine.config.values import parse_size  # noqa: E402
from ruleengine.detect.engine import DetectEngine  # noqa: E402
from ruleengine.outputs.stats import Stats  # noqa: E402
from ruleengine.pipeline import Pipeline  # noqa: E402
from ruleengine.settings import EngineSettings  # noqa: E402


def syn(i: int) -> bytes:
    """A SYN from 10.x.y.z:port to 192.168.1.1:80, unique per i (checksums left 0: -k none)."""
    src = struct.pack("!I", 0x0A000000 + (i >> 16))
    sport = 1024 + (i & 0xFFFF) % 60000
    tcp = struct.pack("!HHIIBBHHH", sport, 80, 1, 0, 5 << 4, 0x02, 65535, 0, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 0, 0, 64, 6, 0, src, b"\xc0\xa8\x01\x01")
    return b"\x00" * 12 + b"\x08\x00" + ip + tcp


def rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def one_run(flows: int, memcap: int) -> None:
    settings = EngineSettings(flow_memcap=memcap, checksum_validation=False)
    stats = Stats()
    pipeline = Pipeline(settings, DetectEngine([]), eve=None, stats=stats,
                        classify=lambda _c: None)
    # the frames are built first (the memory backend holds them): only the engine's growth
    # is measured
    backend = MemoryBackend([(1.0 + i / flows, syn(i)) for i in range(flows)],
                            capabilities=Capability.OFFLINE)
    base = rss_kib()
    started = time.perf_counter()
    pipeline.run(backend)
    seconds = time.perf_counter() - started
    pipeline.collect_counters()
    counters = stats.snapshot()
    grown = rss_kib() - base
    print(f"flows={flows} memcap={memcap >> 20} MiB  table max={pipeline.flows.max_flows}  "
          f"engine peak RSS growth={grown / 1024:.0f} MiB  ({grown * 1024 / flows:.0f} B per "
          f"offered flow)  flow.memcap={counters.get('flow.memcap', 0)}  {seconds:.1f} s "
          f"({flows / seconds:,.0f} flows/s)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--flows", type=int, default=500_000)
    parser.add_argument("--memcap", default="128mb")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    memcap = parse_size(args.memcap)
    if memcap is None:
        parser.error(f"--memcap: not a size: {args.memcap}")
    if args.one:
        one_run(args.flows, memcap)
        return 0
    for cap in (args.memcap, "0"):  # the configured cap, then none (the per-flow cost)
        flows = args.flows if cap != "0" else min(args.flows, 100_000)
        subprocess.run([sys.executable, __file__, "--one", "--flows", str(flows),
                        "--memcap", cap], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
