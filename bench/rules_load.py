"""Rule-load throughput: ruleengine (cold and warm) vs idstools and suricataparser.

    .venv/bin/python bench/rules_load.py [RULES_FILE] [--repeat N]
    .venv/bin/python bench/rules_load.py [RULES_FILE] --process --repo A --repo B [--repeat N]

All parsers run in the same process on the same file (default: the ET Open corpus).
rules/s counts the rules each tool returns: idstools and suricataparser also return
the commented-out (disabled) rules, ruleengine only the enabled ones it loads, so
both counts are printed along with the ratio of the wall times for the whole file.
Cold = no cache (parse + validate + compile every pcre); warm = the cache keyed by
file content, variables and engine version (``$XDG_CACHE_HOME/ruleengine``).
Times are the best CPU time (``time.process_time``) of --repeat runs, so a busy shared
machine disturbs them less than wall time would.

``--process``: the whole process instead, per ``--repo`` checkout (alternating, so load
on the machine hits every checkout alike): CPU (user+sys) of ``python -m ruleengine run
-r PCAP -S RULES`` on a one-packet pcap, i.e. interpreter start, imports, rule loading,
engine build and exit. Cold: the rules file gets a new content each time (a comment line
with a counter: the cache is keyed by content), warm: the same content again.
"""

from __future__ import annotations

import argparse
import os
import resource
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# the nearest ../shared above the checkout (a worktree sits one level deeper)
SHARED = next((p / "shared" for p in ROOT.parents if (p / "shared").is_dir()),
              ROOT.parent / "shared")
DEFAULT = SHARED / "corpus" / "rules" / "et-open-suricata-5.0.rules"


def best_of(repeat: int, fn: Callable[[], int]) -> tuple[float, int]:
    """Best CPU time (process_time: other processes on a shared box do not count) of
    ``repeat`` runs, and the number of rules the run returned."""
    best, count = float("inf"), 0
    for _ in range(repeat):
        t0 = time.process_time()
        count = fn()
        best = min(best, time.process_time() - t0)
    return best, count


def one_packet_pcap() -> bytes:
    """A pcap of one Ethernet/IPv4/UDP frame (the run must read something)."""
    udp = struct.pack("!HHHH", 53, 53, 8, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 1, 0, 64, 17, 0, bytes((10, 0, 0, 1)),
                     bytes((10, 0, 0, 2)))
    frame = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + udp
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    return header + struct.pack("<IIII", 1, 0, len(frame), len(frame)) + frame


def _child_cpu(cmd: list[str], cwd: str, env: dict[str, str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def whole_process(path: Path, repos: list[str], repeat: int) -> int:
    work = Path(tempfile.mkdtemp(prefix="ruleengine-bench-"))
    pcap = work / "one.pcap"
    pcap.write_bytes(one_packet_pcap())
    env = {**os.environ, "XDG_CACHE_HOME": str(work / "cache")}
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    times: dict[tuple[str, str], list[float]] = {}
    counter = 0
    for _ in range(repeat):
        for repo in repos:
            counter += 1
            rules = work / "bench.rules"  # one name: the cache key has the name too
            rules.write_text(f"# bench pass {counter}\n{text}", encoding="utf-8",
                             errors="surrogateescape")
            cmd = [sys.executable, "-m", "ruleengine", "run", "--no-progress", "-r", str(pcap),
                   "-S", str(rules), "-l", str(work)]
            times.setdefault((repo, "cold"), []).append(_child_cpu(cmd, repo, env))
            times.setdefault((repo, "warm"), []).append(_child_cpu(cmd, repo, env))
    print(f"file: {path}; whole process CPU s (user+sys) per pass")
    for (repo, kind), values in times.items():
        shown = " ".join(f"{v:.2f}" for v in values)
        print(f"{repo:<24} {kind}: {shown}  (best {min(values):.2f})")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("rules", nargs="?", default=str(DEFAULT))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--process", action="store_true", help="whole-process time per --repo")
    ap.add_argument("--repo", action="append", default=[])
    args = ap.parse_args()
    path = Path(args.rules)
    if not path.is_file():
        print(f"rules file not found: {path}", file=sys.stderr)
        return 2
    if args.process:
        return whole_process(path, args.repo or [str(ROOT)], args.repeat)
    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="ruleengine-bench-")
    sys.path.insert(0, str(ROOT))

    from idstools import rule as idstools_rule
    from suricataparser import parse_file as surp_parse_file

    from ruleengine.rules.loader import load_rule_files
    from ruleengine.rules.syntax import parser

    parser()  # grammar construction is a one-off per process; not part of a load

    results: dict[str, tuple[float, int]] = {}
    results["idstools"] = best_of(args.repeat, lambda: len(idstools_rule.parse_file(str(path))))
    # The same comparison on the rules ruleengine loads (idstools also parses "#alert ...").
    enabled_file = Path(os.environ["XDG_CACHE_HOME"]) / "enabled.rules"
    enabled_file.write_text(
        "".join(ln for ln in path.open(encoding="utf-8", errors="replace") if ln[:1].isalpha()),
        encoding="utf-8",
    )
    results["idstools (enabled)"] = best_of(
        args.repeat, lambda: len(idstools_rule.parse_file(str(enabled_file)))
    )
    results["suricataparser"] = best_of(args.repeat, lambda: len(surp_parse_file(str(path))))

    def cold() -> int:
        return load_rule_files([path], use_cache=False).loaded

    results["ruleengine cold"] = best_of(args.repeat, cold)
    load_rule_files([path], use_cache=True)  # fill the cache

    def warm() -> int:
        return load_rule_files([path], use_cache=True).loaded

    results["ruleengine warm"] = best_of(args.repeat, warm)

    enabled = sum(1 for line in path.open(encoding="utf-8", errors="replace") if line[:1].isalpha())
    print(f"file: {path} ({enabled} enabled rules)")
    print(f"{'parser':<20}{'cpu s':>9}{'rules':>8}{'rules/s':>10}{'time vs idstools':>18}")
    base_t, base_n = results["idstools"]
    for name, (secs, count) in results.items():
        rate = count / secs if secs else 0.0
        ratio = base_t / secs if secs else 0.0
        print(f"{name:<20}{secs:>9.3f}{count:>8}{rate:>10.0f}{ratio:>17.2f}x")
    base_rate = base_n / base_t
    summary: dict[str, Any] = {
        name: round((count / secs) / base_rate, 2) for name, (secs, count) in results.items()
    }
    print("rules/s relative to idstools (each tool's own rule count):", summary)
    print("targets: cold >= 1.0x idstools rules/s, warm >= 10x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
