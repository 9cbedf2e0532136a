"""Accuracy against Suricata: every check of every shared suricata-verify test, one case each.

Each case runs the engine on one test (once per session, see conftest.py) and scores every
``filter`` and ``stats`` check of its test.yaml as suricata-verify's run.py does
(tests/accuracy/suricata_verify.py). The known failures are listed below with the reason, as
strict xfails: a new failure and an unexpected pass both break the suite, so the list stays
true. ``test_scorers_agree_test_by_test`` holds this scorer to the reference scorer
``../shared/tools/sv_score.py`` on the same engine runs.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.accuracy.conftest import EngineRuns
from tests.accuracy.suricata_verify import (
    FAIL,
    NOT_APPLICABLE,
    NOT_SCORED,
    PASS,
    EngineRun,
    SvTest,
    Verdict,
    corpus_present,
    load_index,
    score,
)
from tests.shared import SV_CORPUS, SV_SCORE

# name -> why the engine does not (yet) do what Suricata does, from the failing checks
KNOWN_FAILURES = {
    "http-evader/http-evader-248": "folded Content-Length '34' + ' 68': libhtp 0.5 (C, "
    "Suricata 7) appends the fold to the value ('34 68') and htp_parse_content_length reads "
    "34 (junk after the digits is allowed), as the engine does; the expected alert needs "
    "the body read past 34 bytes (the EICAR string is at bytes 28-62): the libhtp-rs "
    "(Suricata 8) result, not ported",
}

TESTS = load_index()
REPLAY = Path(__file__).with_name("eve_replay.py")


def _cases() -> list[object]:
    if not TESTS:
        return [pytest.param(None, id="no-corpus",
                             marks=pytest.mark.skip(reason=f"no corpus at {SV_CORPUS}"))]
    cases: list[object] = []
    for test in TESTS:
        name = test["name"]
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[name])] \
            if name in KNOWN_FAILURES else []
        cases.append(pytest.param(name, id=name, marks=marks))
    return cases


@pytest.mark.parametrize("name", _cases())
def test_every_check_passes(name: str, sv_runs: EngineRuns) -> None:
    verdict = score(sv_runs.tests[name], sv_runs.get(name))
    assert verdict.passed, verdict.describe()


@pytest.mark.skipif(not corpus_present(), reason=f"no corpus at {SV_CORPUS}")
def test_known_failures_name_corpus_tests() -> None:
    """A renamed or removed test would otherwise leave a reason nobody checks."""
    assert set(KNOWN_FAILURES) <= {t["name"] for t in TESTS}


# --- agreement with the reference scorer ---------------------------------------------------


def _load_sv_score() -> ModuleType:
    """sv_score.py, loaded from ../shared by path (it is not part of this repository)."""
    if not SV_SCORE.is_file():
        pytest.skip(f"reference scorer not found at {SV_SCORE}")
    spec = importlib.util.spec_from_file_location("sv_score", SV_SCORE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _reference(
    sv: ModuleType, test: SvTest, run: EngineRun, record: Path
) -> tuple[dict[str, Any], list[str]]:
    """sv_score.py's result for a recorded run, and the arguments it gave the engine."""
    record.mkdir()
    if run.eve is not None:
        (record / "eve.json").write_bytes(run.eve)
    (record / "exit_code").write_text(str(run.exit_code))
    engine = shlex.join([sys.executable, "-S", str(REPLAY), str(record)])
    result = sv.run_test(str(SV_CORPUS), test, engine, 60)
    return result, json.loads((record / "argv.json").read_text())


def _without_logdir(argv: list[str]) -> list[str]:
    at = argv.index("-l") + 1
    return [*argv[:at], "LOGDIR", *argv[at + 1:]]


_STATUS_OF_OK = {True: PASS, False: FAIL, None: NOT_SCORED}


def _check_statuses(reference: dict[str, Any]) -> dict[int, str]:
    """sv_score.py's per-check outcome; checks it drops (version excludes 8) do not apply."""
    return {c["index"]: _STATUS_OF_OK[c["ok"]] for c in reference["checks"]}


def _ours(verdict: Verdict) -> dict[int, str]:
    return {c.index: c.status for c in verdict.checks if c.status != NOT_APPLICABLE}


@pytest.mark.slow
@pytest.mark.skipif(not corpus_present(), reason=f"no corpus at {SV_CORPUS}")
def test_scorers_agree_test_by_test(sv_runs: EngineRuns, tmp_path: Path) -> None:
    """Same engine run, two scorers: same command line, same verdict, same check outcomes."""
    sv = _load_sv_score()
    disagreements: dict[str, list[str]] = {}
    for number, test in enumerate(TESTS):
        run = sv_runs.get(test["name"])
        reference, sv_argv = _reference(sv, test, run, tmp_path / str(number))
        verdict = score(test, run)
        found = []
        if _without_logdir(sv_argv) != _without_logdir(run.argv):
            found.append(f"argv {sv_argv} vs ours {run.argv}")
        if reference["pass"] != verdict.passed:
            found.append(f"sv_score pass={reference['pass']}, ours {verdict.passed}: "
                         f"{verdict.describe()}")
        if _check_statuses(reference) != _ours(verdict):
            found.append(f"checks {_check_statuses(reference)} vs ours {_ours(verdict)}")
        if found:
            disagreements[test["name"]] = found
    print(f"sv_score.py and tests/accuracy agree on {len(TESTS) - len(disagreements)}/"
          f"{len(TESTS)} tests")
    assert not disagreements, "\n".join(f"{name}: {'; '.join(lines)}"
                                         for name, lines in disagreements.items())
