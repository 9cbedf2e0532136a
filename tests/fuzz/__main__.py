"""Long fuzz runs: ``python -m tests.fuzz [--cases N] [--engine auto|atheris|mutate] [TARGET...]``.

Each target runs in its own process (a crash, a hang or memory growth in one does not stop
the others). With atheris installed (``pip install atheris``; ``make fuzz`` does it) the run
is coverage-guided by libFuzzer over a corpus seeded from real captures and rule files
(``tests/fuzz/seeds.py``); without it, the mutation engine of ``tests/fuzz/mutate.py``
runs over the same seeds. Reproducers land in ``tests/fuzz/crashes/`` as
``<target>-crash-<sha1>``; ``tests/fuzz/test_targets.py`` replays every file there.

Prints one line per target (cases run, crashes, seconds) and exits 1 if any target crashed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n")[0])
    p.add_argument("targets", nargs="*", help="target names (default: all; see --list)")
    p.add_argument("--cases", type=int, default=int(os.environ.get("FUZZ_CASES", 1_000_000)),
                   help="cases per target (FUZZ_CASES, default 1000000)")
    p.add_argument("--seconds", type=float, default=float(os.environ.get("FUZZ_SECONDS", 0)),
                   help="stop each target after this long (0: no limit)")
    p.add_argument("--engine", choices=("auto", "atheris", "mutate"),
                   default=os.environ.get("FUZZ_ENGINE", "auto"))
    p.add_argument("--jobs", type=int, default=int(os.environ.get("FUZZ_JOBS", 1)),
                   help="targets run at once")
    p.add_argument("--seed", type=int, default=0, help="random seed of the mutation engine")
    p.add_argument("--list", action="store_true", help="print the target names and exit")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _engine(choice: str) -> str:
    if choice != "auto":
        return choice
    try:
        import atheris  # noqa: F401
    except ImportError:
        return "mutate"
    return "atheris"


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    if args.worker:  # before anything imports the engine: atheris instruments it first
        from tests.fuzz.worker import run_worker

        return run_worker(args.worker, _engine(args.engine), args.cases, args.seconds, args.seed)
    from tests.fuzz.targets import all_targets

    targets = all_targets()
    if args.list:
        print("\n".join(targets))
        return 0
    names = args.targets or list(targets)
    unknown = [n for n in names if n not in targets]
    if unknown:
        print(f"fuzz: unknown target(s) {', '.join(unknown)}; try --list", file=sys.stderr)
        return 2
    engine = _engine(args.engine)
    print(f"fuzz: {len(names)} targets, {args.cases} cases each, engine {engine}", flush=True)
    results = _run_all(names, engine, args)
    failed = [r for r in results if r.get("crashes") or r.get("rc")]
    total = sum(int(r.get("cases", 0)) for r in results)
    print(f"fuzz: {total} cases, {len(failed)} target(s) with crashes", flush=True)
    return 1 if failed else 0


def _run_all(names: list[str], engine: str, args: argparse.Namespace) -> list[dict[str, object]]:
    pending = list(names)
    running: list[tuple[str, subprocess.Popen[str], float]] = []
    results: list[dict[str, object]] = []
    log_dir = ROOT / "tests" / "fuzz" / "logs"
    log_dir.mkdir(exist_ok=True)
    while pending or running:
        while pending and len(running) < max(1, args.jobs):
            name = pending.pop(0)
            cmd = [sys.executable, "-m", "tests.fuzz", "--worker", name, "--engine", engine,
                   "--cases", str(args.cases), "--seconds", str(args.seconds),
                   "--seed", str(args.seed)]
            log = open(log_dir / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True)
            running.append((name, proc, time.monotonic()))
        time.sleep(0.2)
        for item in list(running):
            name, proc, started = item
            if proc.poll() is None:
                continue
            running.remove(item)
            out = proc.stdout.read() if proc.stdout else ""
            result = _result(name, out, proc.returncode, time.monotonic() - started)
            results.append(result)
            print(json.dumps(result), flush=True)
    return results


def _result(name: str, out: str, rc: int, seconds: float) -> dict[str, object]:
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            result: dict[str, object] = json.loads(line)
            result["rc"] = rc
            return result
    # atheris: libFuzzer exits the process itself; its log says how far it got
    log = ROOT / "tests" / "fuzz" / "logs" / f"{name}.log"
    return {"target": name, "engine": "atheris", "cases": _libfuzzer_runs(log),
            "crashes": 0 if rc == 0 else 1, "rc": rc, "seconds": round(seconds, 1),
            "log": str(log.relative_to(ROOT))}


def _libfuzzer_runs(log: Path) -> int:
    """Cases run by libFuzzer: its "Done N runs" line, or its last status line."""
    runs = 0
    for line in log.read_text(errors="replace").splitlines():
        head = line.split()
        if line.startswith("Done ") and len(head) > 1 and head[1].isdigit():
            return int(head[1])
        if head and head[0].startswith("#") and head[0][1:].isdigit():
            runs = int(head[0][1:])
    return runs


if __name__ == "__main__":
    sys.exit(main())
