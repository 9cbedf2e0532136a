"""Repeated diagnostics are summarised in text (run's stderr, lint's text format), never in
lint's json/sarif."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ruleengine.cli import main
from ruleengine.diagnostics import Diagnostic, render_omitted, summarize
from tests.rules.helpers import REPO

DUPS = 500  # rules sharing sid 1: 499 duplicate-sid errors
ODD = 'alert http any any -> any any (msg:"odd"; http_urii; content:"x"; sid:77;)\n'


def _d(code: str, severity: str = "error") -> Diagnostic:
    return Diagnostic("f.rules", 1, 1, 2, severity, code, "m")


def test_summarize_keeps_the_first_of_each_kind_in_order() -> None:
    diags = [_d("a")] * 5 + [_d("b")] + [_d("a", "warning")] * 3 + [_d("a")]
    shown, omitted = summarize(diags, per_kind=2)
    assert [(d.severity, d.code) for d in shown] == [
        ("error", "a"), ("error", "a"), ("error", "b"), ("warning", "a"), ("warning", "a")]
    assert omitted == {("error", "a"): 4, ("warning", "a"): 1}
    assert render_omitted(omitted, 2) == ["... and 4 more error(s) [a] (first 2 shown)",
                                          "... and 1 more warning(s) [a] (first 2 shown)"]
    assert summarize(diags, per_kind=0) == (diags, {})


@pytest.fixture
def dup_rules(tmp_path: Path) -> Path:
    path = tmp_path / "dups.rules"
    lines = [f'alert tcp any any -> any 80 (msg:"r{i}"; content:"abc{i}"; sid:1;)'
             for i in range(DUPS)]
    path.write_text("\n".join(lines) + "\n" + ODD)
    return path


def test_run_prints_a_few_of_each_kind_and_a_count(tmp_path: Path, dup_rules: Path) -> None:
    # PYTHONPATH: this tree's engine, whatever the venv's editable install points at
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "ruleengine", "run", "-r",
         str(REPO / "examples" / "pcaps" / "http-demo.pcap"), "-S", str(dup_rules),
         "-l", str(tmp_path / "out")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) < 80, len(lines)  # 4 lines a diagnostic: 2,000 before
    assert f"... and {DUPS - 1 - 10} more error(s) [duplicate-sid]" in proc.stderr
    assert "[unknown-keyword]" in proc.stderr or "http_urii" in proc.stderr  # the odd one
    assert f"1 rules successfully loaded, {DUPS} rules failed" in proc.stderr


def test_lint_text_summarises_json_and_sarif_stay_complete(
    dup_rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["lint", str(dup_rules)])
    text = capsys.readouterr().out
    assert text.count("[duplicate-sid]") == 10 + 1  # the first 10 and the summary line
    assert "more error(s) [duplicate-sid] (first 10 shown; --max-per-kind 0 prints all)" in text
    main(["lint", "--max-per-kind", "0", str(dup_rules)])
    assert capsys.readouterr().out.count("[duplicate-sid]") == DUPS - 1
    main(["lint", "--format", "json", str(dup_rules)])
    found = json.loads(capsys.readouterr().out)
    assert sum(1 for d in found if d["code"] == "duplicate-sid") == DUPS - 1
    main(["lint", "--format", "sarif", str(dup_rules)])
    results = json.loads(capsys.readouterr().out)["runs"][0]["results"]
    assert sum(1 for r in results if r["ruleId"] == "duplicate-sid") == DUPS - 1
