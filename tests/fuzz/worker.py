"""One target's long run (a process of its own, started by ``python -m tests.fuzz``)."""

from __future__ import annotations

import hashlib
import json
import random
import sys
import time
import traceback
from pathlib import Path

from tests.fuzz import seeds as S
from tests.fuzz import targets as T

MAX_LEN = 4096
SLOW_CASE = 5.0  # seconds: a case this slow is written as a reproducer ("slow-")
MAX_REPRODUCERS = 20  # per target and run: past that, only counted


def save_reproducer(target: str, kind: str, data: bytes) -> Path:
    directory = T.crash_dir()
    directory.mkdir(exist_ok=True)
    path = directory / f"{target}-{kind}-{hashlib.sha1(data).hexdigest()}"
    path.write_bytes(data)
    return path


def run_worker(name: str, engine: str, cases: int, seconds: float, seed: int) -> int:
    if engine == "atheris":
        import atheris

        # coverage feedback: instrument the engine's modules before anything imports them
        with atheris.instrument_imports(include=["ruleengine", "capture_backends"]):
            _warm_imports()
        return _atheris(T.all_targets()[name], cases, seconds)
    return _mutate(T.all_targets()[name], cases, seconds, seed)


def _mutate(target: T.Target, cases: int, seconds: float, seed: int) -> int:
    from tests.fuzz.mutate import Mutator

    corpus = list(S.seeds(target.seeds)) + [p.read_bytes() for p in S.crash_inputs(target.name)]
    mutator = Mutator(corpus, random.Random(seed or hash(target.name)), MAX_LEN)
    started = time.monotonic()
    crashes = slow = done = 0
    seen: set[str] = set()
    try:
        for done in range(1, cases + 1):
            data = mutator.next() if done > len(corpus) else corpus[done - 1]
            t0 = time.monotonic()
            try:
                target.run(data)
            except Exception as exc:
                crashes += 1
                where = traceback.extract_tb(exc.__traceback__)[-1]
                sig = f"{type(exc).__name__} {where.filename}:{where.lineno}"
                if sig not in seen and len(seen) < MAX_REPRODUCERS:
                    seen.add(sig)
                    path = save_reproducer(target.name, "crash", data)
                    print(f"CRASH {sig} -> {path}", file=sys.stderr)
                    traceback.print_exc(file=sys.stderr)
            elapsed = time.monotonic() - t0
            if elapsed > SLOW_CASE and slow < MAX_REPRODUCERS:
                slow += 1
                print(f"SLOW {elapsed:.1f}s -> {save_reproducer(target.name, 'slow', data)}",
                      file=sys.stderr)
            if done % 10000 == 0:
                print(f"#{done} {time.monotonic() - started:.0f}s crashes={crashes}",
                      file=sys.stderr, flush=True)
            if seconds and time.monotonic() - started > seconds:
                break
    finally:
        T.cleanup()
    print(json.dumps({"target": target.name, "engine": "mutate", "cases": done,
                      "crashes": crashes, "unique": len(seen), "slow": slow,
                      "seconds": round(time.monotonic() - started, 1)}), flush=True)
    return 1 if crashes else 0


def _atheris(target: T.Target, cases: int, seconds: float) -> int:
    import atheris

    corpus_dir = Path(__file__).resolve().parent / "corpus" / target.name
    corpus_dir.mkdir(parents=True, exist_ok=True)
    for i, data in enumerate(S.seeds(target.seeds)):
        (corpus_dir / f"seed-{i:04d}").write_bytes(data[:MAX_LEN])
    for path in S.crash_inputs(target.name):
        (corpus_dir / path.name).write_bytes(path.read_bytes())
    T.crash_dir().mkdir(exist_ok=True)
    argv = [sys.argv[0], f"-runs={cases}", f"-max_len={MAX_LEN}", "-timeout=20",
            "-rss_limit_mb=3072", "-print_final_stats=1",
            f"-artifact_prefix={T.crash_dir()}/{target.name}-", str(corpus_dir)]
    if seconds:
        argv.insert(2, f"-max_total_time={int(seconds)}")

    def one(data: bytes) -> None:
        target.run(data)

    atheris.Setup(argv, one)
    try:
        atheris.Fuzz()
    finally:
        T.cleanup()
    return 0


def _warm_imports() -> None:
    import capture_backends.pcap_file  # noqa: F401
    import ruleengine.decode.decoder
    import ruleengine.flow.table
    import ruleengine.rules.loader
    import ruleengine.stream.tcp  # noqa: F401
    from ruleengine.applayer import registry

    registry.protocols()
