"""Wall time of ``ruleengine hunt`` over a pcap archive with 1 and 2 (or more) workers.

    .venv/bin/python bench/hunt_archive.py [-n 20] [--workers 1 2] [--rules FILE]
                                           [--repeat 2] [--pcap FILE ...]
                                           [--repo A --repo B] [--no-sequential]

Takes ``-n`` pcaps spread over the suricata-verify corpus (or the ``--pcap`` files), runs
``python -m ruleengine hunt`` on them in a subprocess for each worker count (a new
LocalCluster each time) and prints, per worker count, the fastest of ``--repeat`` runs:
the whole process (interpreter, rule loading on the client, cluster start-up, tasks,
merge) and the tasks alone (hunt's own summary line: submit to last result). Also runs
``ruleengine run -r`` on each file one after the other, in one process per file, as the
sequential baseline (``--no-sequential``: not). ``--repo`` (repeatable) runs each
checkout's code (the child's working directory), the checkouts alternating per pass.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CORPUS = Path("/work/shared/corpus/suricata-verify")
DEFAULT_RULES = Path("/work/shared/corpus/rules/et-open-suricata-5.0.rules")
TASKS_LINE = re.compile(r"on (\d+) worker\(s\), ([0-9.]+) s:")


def corpus_pcaps(count: int) -> list[Path]:
    found = sorted(p for p in CORPUS.rglob("*.pcap") if "_ext" not in p.parts)
    step = len(found) / count
    return [found[int(i * step)] for i in range(count)]


def timed(cmd: list[str], cwd: str | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=cwd)
    took = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return took, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rules", type=Path, default=DEFAULT_RULES)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--pcap", type=Path, nargs="*")
    parser.add_argument("--repo", action="append", help="checkout to run (repeatable)")
    parser.add_argument("--no-sequential", action="store_true")
    args = parser.parse_args()
    pcaps = args.pcap or corpus_pcaps(args.n)
    size = sum(p.stat().st_size for p in pcaps)
    print(f"{len(pcaps)} pcaps, {size / 1e6:.2f} MB, rules {args.rules.name}, "
          f"{os.cpu_count()} cores")
    repos = args.repo or [None]
    with tempfile.TemporaryDirectory() as tmp:
        base = [sys.executable, "-m", "ruleengine"]
        for workers in args.workers:
            runs: dict[str | None, list[tuple[float, float]]] = {r: [] for r in repos}
            for _ in range(args.repeat):
                for repo in repos:  # alternating: the machine's load hits all alike
                    wall, out = timed([*base, "hunt", "--no-progress", "--workers",
                                       str(workers), "-S", str(args.rules), "-l", tmp,
                                       *map(str, pcaps)], repo)
                    match = TASKS_LINE.search(out)
                    runs[repo].append((wall, float(match.group(2)) if match else float("nan")))
            for repo in repos:
                shown = " ".join(f"{w:.2f}/{t:.2f}" for w, t in runs[repo])
                print(f"hunt --workers {workers} {repo or ''}: wall/tasks per pass {shown} s")
        if args.no_sequential:
            return
        started = time.perf_counter()
        for pcap in pcaps:
            timed([*base, "run", "--no-progress", "-r", str(pcap), "-S", str(args.rules),
                   "-l", tmp], repos[0])
        print(f"{len(pcaps)} sequential runs: {time.perf_counter() - started:6.2f} s wall")

if __name__ == "__main__":
    main()
