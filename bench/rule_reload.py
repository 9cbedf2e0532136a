"""Live rule reload: how long the new engine takes to build and what packet processing
does meanwhile (the build runs in a thread beside the running engine; the swap is between
two packets).

    .venv/bin/python bench/rule_reload.py [--rules FILE] [--seconds S]

A pipeline runs on an in-process live-like capture that hands it UDP packets (matching
nothing) as fast as it takes them; after ``S`` seconds ``start_reload()`` rebuilds the
engine from the same rule file (default: ET Open 5.0, warm rule cache), its hyperscan
databases compiled in a child process as ``ruleengine run`` does (``--in-process``: in this
process, holding the GIL). Prints the build
time, packets/s before, during and after the build, and the longest pause between two
processed packets during the build (the stall a capture queue has to absorb).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from capture_backends.base import BaseBackend, Capability, RawPacket
from ruleengine.detect.engine import DetectEngine
from ruleengine.detect.prefilter import compile_in_child
from ruleengine.outputs.stats import Stats
from ruleengine.pipeline import Pipeline, RuleReload
from ruleengine.rules.loader import load_rule_files
from ruleengine.settings import EngineSettings

ROOT = Path(__file__).resolve().parents[1]
_CANDIDATES = [ROOT.parent / "shared", Path("/work/shared")]
ET = next((p for p in _CANDIDATES if p.exists()), _CANDIDATES[0]) / "corpus" / "rules" \
    / "et-open-suricata-5.0.rules"


class Endless(BaseBackend):
    name = "bench"

    def __init__(self, frames: list[bytes]) -> None:
        self.capabilities = Capability.NONE
        self.linktype = 1
        self.frames = frames
        self.stop = False

    def packets(self) -> Iterator[RawPacket]:
        i = 0
        while not self.stop:
            yield (time.time(), self.frames[i % len(self.frames)], 0)
            i += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rules", default=str(ET))
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--in-process", action="store_true",
                        help="compile hyperscan databases in this process (holding the GIL)")
    args = parser.parse_args()
    t0 = time.perf_counter()
    ruleset = load_rule_files([args.rules])
    engine = DetectEngine(ruleset.rules)
    print(f"{ruleset.loaded} rules, first load + engine: {time.perf_counter() - t0:.1f}s")
    frames = [bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2")
                    / UDP(sport=10000 + i, dport=20000) / (b"z" * 200)) for i in range(64)]
    backend = Endless(frames)
    pipeline = Pipeline(EngineSettings(offline=False), engine, eve=None, stats=Stats(),
                        classify=lambda _c: None)
    def rebuild() -> DetectEngine:  # as ``ruleengine run`` builds it
        rules = load_rule_files([args.rules]).rules
        if args.in_process:
            return DetectEngine(rules)
        with compile_in_child():
            return DetectEngine(rules)

    pipeline.rebuild = rebuild
    stamps: list[float] = []
    phase: dict[str, float] = {}
    reload: list[RuleReload] = []

    def on_packet() -> None:
        now = time.perf_counter()
        stamps.append(now)
        if not reload and now - stamps[0] > args.seconds:
            phase["start"] = now
            r = pipeline.start_reload()
            r.add_done_callback(lambda _r: phase.setdefault("swap", time.perf_counter()))
            reload.append(r)
        if "swap" in phase and now - phase["swap"] > args.seconds:
            backend.stop = True

    pipeline.run(backend, on_packet=on_packet)
    start, swap = phase["start"], phase["swap"]
    if reload[0].error:
        print(f"reload failed: {reload[0].error}")
        return 1

    def rate(lo: float, hi: float) -> float:
        return sum(1 for s in stamps if lo <= s < hi) / (hi - lo)

    during = [s for s in stamps if start <= s <= swap]
    gaps = [b - a for a, b in itertools.pairwise(during)]
    print(f"reload build + swap: {swap - start:.2f}s")
    print(f"packets/s before: {rate(stamps[0], start):,.0f}  during: {rate(start, swap):,.0f}"
          f"  after: {rate(swap, stamps[-1]):,.0f}")
    top = sorted(((b - a, a - start) for a, b in itertools.pairwise(during)),
                 reverse=True)[:3]
    print("longest pauses (ms, at s into the build): " + ", ".join(
        f"{g * 1000:.0f} at {at:.2f}" for g, at in top))
    print(f"packets processed during the build: {len(during):,}; longest pause between two "
          f"packets: {max(gaps, default=0.0) * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
