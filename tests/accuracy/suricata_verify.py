"""Run the shared suricata-verify subset the way Suricata is run, and score it as run.py does.

For each test of ``../shared/corpus/suricata-verify/index.json`` the engine is called, in the
test's folder, as suricata-verify (and ``../shared/tools/sv_score.py``) call Suricata::

    ruleengine run -r <pcap> -l <logdir> -S <rules>|/dev/null [-c <suricata.yaml>]
                   [--simulate-ips] <args...>

then every check of the test's ``test.yaml`` is scored against ``<logdir>/eve.json``:

* ``filter``: the number of EVE events (any event type) matching every ``match`` field equals
  ``count``. Fields are dotted paths with ``[N]`` indexes; ``__len``, ``__contains``,
  ``__find``, ``__startswith`` and ``__endswith`` suffixes; ``has-key`` / ``not-has-key``.
* ``stats``: fields of the last ``stats`` event, equal or compared with ``__gt``, ``__gte``,
  ``__lt``, ``__lte``.
* Checks whose ``requires`` names anything but ``min-version`` / ``lt-version``, filters on
  another file than eve.json, and ``shell`` / ``file-compare`` checks are not scored; checks
  whose version range excludes Suricata 8 do not apply. These are sv_score.py's decisions, and
  tests/accuracy/test_suricata_verify.py checks that both scorers agree test by test.

Nothing here (or in the engine) knows a test by name: every test goes through the same path.
Usable as a script for the full report: ``python -m tests.accuracy.suricata_verify``.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ruleengine.cli import main as cli_main
from tests.shared import SV_CORPUS

Event = dict[str, Any]
SvTest = dict[str, Any]

SURICATA_MAJOR = 8  # the Suricata whose behaviour the engine is held to
STRING_OPS = ("__len", "__contains", "__find", "__startswith", "__endswith")
STATS_OPS: dict[str, Callable[[float, float], bool]] = {
    "__gt": lambda a, b: a > b,
    "__gte": lambda a, b: a >= b,
    "__lt": lambda a, b: a < b,
    "__lte": lambda a, b: a <= b,
}
_PART = re.compile(r"([^\[]*)((?:\[\d+\])*)")


# --- corpus -------------------------------------------------------------------------------


def corpus_present() -> bool:
    return (SV_CORPUS / "index.json").is_file()


def load_index() -> list[SvTest]:
    if not corpus_present():
        return []
    return list(json.loads((SV_CORPUS / "index.json").read_text())["tests"])


def load_checks(test: SvTest) -> list[dict[str, Any]]:
    """The ``checks`` list of the test's test.yaml (none when it has no test.yaml)."""
    name = test.get("test_yaml")
    if not name or not (SV_CORPUS / name).is_file():
        return []
    doc = yaml.safe_load((SV_CORPUS / name).read_text()) or {}
    return list(doc.get("checks") or [])


# --- running the engine -------------------------------------------------------------------


@dataclass(frozen=True)
class EngineRun:
    """What one engine run left behind: its exit code and eve.json (None when not written)."""

    argv: list[str]
    exit_code: int
    eve: bytes | None
    stderr: str


def engine_argv(test: SvTest, logdir: Path) -> list[str]:
    """The arguments after ``ruleengine run``, built as suricata-verify builds Suricata's."""
    argv = ["-r", str(SV_CORPUS / test["pcaps"][0]["path"]), "-l", str(logdir)]
    rule_files = [str(SV_CORPUS / name) for name in test["rules"]]
    for rule_file in rule_files or ["/dev/null"]:  # no rules: Suricata is given none on purpose
        argv += ["-S", rule_file]
    if test.get("suricata_yaml"):
        argv += ["-c", str(SV_CORPUS / test["suricata_yaml"])]
    extra = [str(arg) for arg in test.get("args") or []]
    if test.get("simulate_ips") and "--simulate-ips" not in " ".join(extra):
        argv.append("--simulate-ips")
    for arg in extra:
        argv += shlex.split(arg)
    return argv


def run_engine(test: SvTest) -> EngineRun:
    """One in-process engine run, in the test's folder (its args may name files there)."""
    with tempfile.TemporaryDirectory(prefix="sv-") as tmp:
        logdir = Path(tmp)
        argv = engine_argv(test, logdir)
        err = io.StringIO()
        with contextlib.chdir(SV_CORPUS / test["name"]), contextlib.redirect_stderr(err), \
                contextlib.redirect_stdout(io.StringIO()):
            try:
                code = cli_main(["run", *argv])
            except Exception:  # a strict-mode safety net fired: the test fails with the trace
                code = -1
                err.write(traceback.format_exc())
        eve = logdir / "eve.json"
        return EngineRun(argv, code, eve.read_bytes() if eve.exists() else None, err.getvalue())


# --- field matching (run.py's find_value and FilterCheck.match) ----------------------------


class _BadPath(ValueError):
    """A field path run.py could not follow (sv_score.py counts the event as not matching)."""


def lookup(event: Any, dotted: str) -> Any:
    """The value at a dotted path (``a.b[0][1].c``); None when any step is missing."""
    current = event
    for part in dotted.split("."):
        parsed = _PART.fullmatch(part)
        if parsed is None:
            raise _BadPath(dotted)
        key, indexes = parsed.group(1), [int(i) for i in re.findall(r"\d+", parsed.group(2))]
        if key:
            if not isinstance(current, dict) or key not in current:
                return None
            current = current[key]
        for index in indexes:
            if not isinstance(current, list) or index >= len(current):
                return None
            current = current[index]
    return current


def _split_op(key: str) -> tuple[str, str] | None:
    """(base path, operator) for ``base.__op`` (or a bare ``__op``, on the event itself)."""
    for op in STRING_OPS:
        if key == op or key.endswith("." + op):
            return key[: -len(op)].rstrip("."), op
    return None


def _op_matches(value: Any, op: str, expected: Any) -> bool:
    if op == "__len":
        try:
            return bool(len(value) == expected)
        except TypeError:  # run.py: "-1 if the object is not a type that has a length"
            return bool(expected == -1)
    if op == "__contains":
        return isinstance(value, (str, list)) and expected in value
    if not isinstance(value, str):
        return False
    if op == "__find":
        return value.find(expected) >= 0
    if op == "__startswith":
        return value.startswith(expected)
    return value.endswith(expected)


def field_matches(event: Event, key: str, expected: Any) -> bool:
    """One ``match`` entry of a filter against one event."""
    try:
        if key in ("has-key", "not-has-key"):
            paths = expected if isinstance(expected, list) else [expected]
            present = [lookup(event, path) is not None for path in paths]
            return all(present) if key == "has-key" else not any(present)
        split = _split_op(key)
        if split is None:
            return bool(lookup(event, key) == expected)
        base, op = split
        return _op_matches(lookup(event, base) if base else event, op, expected)
    except (_BadPath, TypeError, AttributeError):  # e.g. a number where a string is searched
        return False


def event_matches(event: Event, match: dict[str, Any]) -> bool:
    return all(field_matches(event, key, expected) for key, expected in match.items())


def stats_field_ok(stats: dict[str, Any], key: str, expected: Any) -> bool:
    base, _, op = key.rpartition(".")
    if op in STATS_OPS:
        value = lookup(stats, base)
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        return number and STATS_OPS[op](value, expected)
    return bool(lookup(stats, key) == expected)


# --- scoring ------------------------------------------------------------------------------

PASS, FAIL, NOT_SCORED, NOT_APPLICABLE = "pass", "fail", "not scored", "not applicable"


@dataclass(frozen=True)
class CheckResult:
    index: int
    kind: str
    status: str
    detail: str = ""


@dataclass
class Verdict:
    name: str
    exit_code: int
    expected_exit_code: int
    checks: list[CheckResult] = field(default_factory=list)
    stderr: str = ""

    @property
    def passed(self) -> bool:
        return self.exit_code == self.expected_exit_code and all(
            c.status != FAIL for c in self.checks
        )

    def scored(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status in (PASS, FAIL)]

    def describe(self) -> str:
        lines = [f"{self.name}:"]
        if self.exit_code != self.expected_exit_code:
            lines.append(f"  exit code {self.exit_code}, expected {self.expected_exit_code}")
            lines.append("  " + self.stderr[-600:].replace("\n", "\n  "))
        lines += [f"  check {c.index} ({c.kind}): {c.detail}" for c in self.checks
                  if c.status == FAIL]
        return "\n".join(lines)


def version_applies(requires: dict[str, Any]) -> bool | None:
    """Whether a check's ``requires`` admits Suricata 8; None when it needs something other
    than a version (a feature, a script...), which this scorer does not judge. Read in order,
    as sv_score.py reads it: the first key that decides, decides."""
    for key, value in requires.items():
        if key not in ("min-version", "lt-version"):
            return None
        try:
            major = int(str(value).split(".")[0])
        except ValueError:
            return None
        if key == "min-version" and major > SURICATA_MAJOR:
            return False
        if key == "lt-version" and major <= SURICATA_MAJOR:
            return False
    return True


def parse_eve(eve: bytes) -> list[Event]:
    """run.py reads eve.json as UTF-8, one JSON object a line; anything else is an error."""
    return [json.loads(line) for line in eve.decode("utf-8").splitlines() if line.strip()]


def score_filter(index: int, spec: dict[str, Any], events: list[Event] | str) -> CheckResult:
    applies = version_applies(spec.get("requires") or {})
    if applies is None or spec.get("filename", "eve.json") != "eve.json":
        return CheckResult(index, "filter", NOT_SCORED, "needs a feature or another file")
    if not applies:
        return CheckResult(index, "filter", NOT_APPLICABLE, "not for Suricata 8")
    if isinstance(events, str):
        return CheckResult(index, "filter", FAIL, events)
    match = spec.get("match") or {}
    got = sum(1 for event in events if event_matches(event, match))
    status = PASS if got == spec.get("count") else FAIL
    return CheckResult(index, "filter", status, f"expected {spec.get('count')}, got {got} "
                       f"events matching {match}")


def score_stats(index: int, spec: dict[str, Any], events: list[Event] | str) -> CheckResult:
    if isinstance(events, str):
        return CheckResult(index, "stats", FAIL, events)
    stats: dict[str, Any] = {}
    for event in events:
        if event.get("event_type") == "stats":
            stats = event.get("stats") or {}
    wrong = {key: lookup(stats, key.rpartition(".")[0] if key.rpartition(".")[2] in STATS_OPS
                         else key)
             for key, expected in spec.items() if not stats_field_ok(stats, key, expected)}
    status = FAIL if wrong else PASS
    return CheckResult(index, "stats", status, f"expected {spec}, got {wrong}")


def _events(run: EngineRun) -> list[Event] | str:
    """The run's events, or why the checks cannot read them."""
    if run.eve is None:
        return "eve.json was not written"
    try:
        return parse_eve(run.eve)
    except (UnicodeDecodeError, ValueError) as exc:
        return f"eve.json is not UTF-8 JSON lines: {exc}"


def score(test: SvTest, run: EngineRun) -> Verdict:
    events = _events(run)
    verdict = Verdict(test["name"], run.exit_code, int(test.get("exit_code") or 0),
                      stderr=run.stderr)
    for index, check in enumerate(load_checks(test)):
        if "filter" in check:
            verdict.checks.append(score_filter(index, check["filter"], events))
        elif "stats" in check:
            verdict.checks.append(score_stats(index, check["stats"], events))
        else:  # shell, file-compare: commands of their own, outside the engine
            kind = next(iter(check), "?")
            verdict.checks.append(CheckResult(index, kind, NOT_SCORED, "runs a command"))
    return verdict


def run_all() -> Iterator[Verdict]:
    for test in load_index():
        yield score(test, run_engine(test))


def main() -> int:
    verdicts = list(run_all())
    failed = [v for v in verdicts if not v.passed]
    for verdict in failed:
        print("FAIL", verdict.describe())
    checks = [c for v in verdicts for c in v.scored()]
    print(f"{len(verdicts) - len(failed)}/{len(verdicts)} suricata-verify tests pass by every "
          f"check ({sum(c.status == PASS for c in checks)}/{len(checks)} checks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
