"""A statistical CPU profile of ``python -m ruleengine ARGS`` without cProfile's
per-call overhead (which inflates the many small detection calls several times).

    python bench/sample_profile.py [--interval 0.001] [--top 40] -- run -r PCAP -S RULES ...

A SIGPROF timer (process CPU time, ITIMER_PROF) samples the main thread's stack every
``interval`` CPU seconds; each function is counted once per sample it is on the stack
(inclusive) and for the sample's innermost frame (self). Printed: both, in seconds of CPU
(samples x interval), for the functions with the most inclusive time.
"""

from __future__ import annotations

import argparse
import collections
import runpy
import signal
import sys
from types import FrameType


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=0.001)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--self-top", type=int, default=25)
    parser.add_argument("args", nargs=argparse.REMAINDER)
    opts = parser.parse_args()
    args = opts.args[1:] if opts.args[:1] == ["--"] else opts.args
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = [0]

    def name(frame: FrameType) -> str:
        code = frame.f_code
        path = code.co_filename
        cut = path.rfind("ruleengine/")
        short = path[cut:] if cut >= 0 else path.rsplit("/", 1)[-1]
        return f"{short}:{code.co_name}"

    def sample(_sig: int, frame: FrameType | None) -> None:
        total[0] += 1
        seen = set()
        first = True
        while frame is not None:
            key = name(frame)
            if first:
                own[key] += 1
                first = False
            if key not in seen:
                seen.add(key)
                inclusive[key] += 1
            frame = frame.f_back

    signal.signal(signal.SIGPROF, sample)
    signal.setitimer(signal.ITIMER_PROF, opts.interval, opts.interval)
    sys.argv = ["ruleengine", *args]
    code = 0
    try:
        runpy.run_module("ruleengine", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
    dt = opts.interval
    print(f"\n{total[0]} samples, {total[0] * dt:.2f} s CPU", file=sys.stderr)
    print("inclusive:", file=sys.stderr)
    for key, n in inclusive.most_common(opts.top):
        print(f"  {n * dt:7.3f} s  {key}", file=sys.stderr)
    print("self:", file=sys.stderr)
    for key, n in own.most_common(opts.self_top):
        print(f"  {n * dt:7.3f} s  {key}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
