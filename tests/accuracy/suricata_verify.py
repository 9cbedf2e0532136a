"""Run the shared suricata-verify subset the way Suricata runs it, and score it.

For each test of ``../shared/corpus/suricata-verify/index.json``::

    ruleengine run -r <pcap> -S <rules> -l <logdir> [-c <suricata.yaml>] <args...>

then count ``event_type: alert`` lines of ``<logdir>/eve.json`` per signature id and
compare with ``expected_alerts_by_sid``. Nothing here (or in the engine) knows a
test by name: every test goes through the same command line.

Usable as a script for the full report: ``python -m tests.accuracy.suricata_verify``.
"""

from __future__ import annotations

import contextlib
import io
import json
import shlex
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ruleengine.cli import main as cli_main

REPO = Path(__file__).resolve().parents[2]
SV_DIR = REPO.parent / "shared" / "corpus" / "suricata-verify"


@dataclass
class Outcome:
    name: str
    passed: bool
    expected: dict[int, int]
    got: dict[int, int]
    exit_code: int
    stderr: str

    def describe(self) -> str:
        diffs = [f"sid {sid}: expected {exp}, got {self.got.get(sid, 0)}"
                 for sid, exp in sorted(self.expected.items()) if self.got.get(sid, 0) != exp]
        if self.exit_code != 0:
            diffs.append(f"exit code {self.exit_code}")
        return f"{self.name}: " + "; ".join(diffs)


def load_index() -> list[dict[str, object]]:
    index = json.loads((SV_DIR / "index.json").read_text())
    return list(index["tests"])


def command_for(test: dict[str, object], logdir: Path) -> list[str]:
    pcaps = test["pcaps"]
    assert isinstance(pcaps, list)
    argv = ["run", "-r", str(SV_DIR / pcaps[0]["path"]), "-l", str(logdir), "--no-progress"]
    rules = test["rules"]
    assert isinstance(rules, list)
    for rule_file in rules:
        argv += ["-S", str(SV_DIR / str(rule_file))]
    if not rules:  # Suricata is given an empty rule file
        empty = logdir / "empty.rules"
        empty.write_text("")
        argv += ["-S", str(empty)]
    if test.get("suricata_yaml"):
        argv += ["-c", str(SV_DIR / str(test["suricata_yaml"]))]
    args = test.get("args") or []
    assert isinstance(args, list)
    for arg in args:
        argv += shlex.split(str(arg))
    return argv


def count_alerts(eve: Path) -> dict[int, int]:
    counts: dict[int, int] = {}
    if not eve.exists():
        return counts
    for line in eve.read_text().splitlines():
        event = json.loads(line)
        if event.get("event_type") == "alert":
            sid = int(event["alert"]["signature_id"])
            counts[sid] = counts.get(sid, 0) + 1
    return counts


def run_test(test: dict[str, object]) -> Outcome:
    expected = {int(k): int(v) for k, v in dict(test["expected_alerts_by_sid"]).items()}
    with tempfile.TemporaryDirectory(prefix="sv-") as tmp:
        logdir = Path(tmp)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = cli_main(command_for(test, logdir))
        got = count_alerts(logdir / "eve.json")
    passed = code == 0 and all(got.get(sid, 0) == n for sid, n in expected.items())
    return Outcome(str(test["name"]), passed, expected, got, code, err.getvalue())


def run_all() -> list[Outcome]:
    return [run_test(test) for test in load_index()]


def main() -> int:
    outcomes = run_all()
    failed = [o for o in outcomes if not o.passed]
    for outcome in failed:
        print("FAIL", outcome.describe())
    passed = len(outcomes) - len(failed)
    print(f"{passed}/{len(outcomes)} suricata-verify tests pass "
          f"({100.0 * passed / max(1, len(outcomes)):.1f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
