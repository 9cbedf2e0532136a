"""``ruleengine lint``: output formats, exit codes, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ruleengine.cli import main
from tests.rules.helpers import CORPUS_RULES, REPO

GOOD = (
    'alert http any any -> any any (msg:"ok"; flow:to_server; http.uri; content:"/admin"; '
    "sid:1; rev:1;)\n"
)
BAD = 'alert http any any -> any any (msg:"bad"; flow:to_server; http_urii; content:"/x"; sid:2;)\n'
WARN = 'alert tcp any any -> any any (msg:"warn"; content:"abcdef"; sid:3;)\n'


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def write(tmp_path: Path, text: str, name: str = "x.rules") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_text_output_and_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, GOOD, "good.rules")
    assert run(["lint", str(good)], capsys)[0] == 0
    bad = write(tmp_path, GOOD + BAD, "bad.rules")
    code, out, _ = run(["lint", str(bad)], capsys)
    assert code == 1
    lines = out.splitlines()
    col = BAD.index("http_urii") + 1
    assert lines[0] == f"{bad}:2:{col}: error: unknown rule keyword 'http_urii' [unknown-keyword]"
    assert lines[1] == "  " + BAD.rstrip("\n")
    assert lines[2] == "  " + " " * (col - 1) + "^" + "~" * 8
    assert lines[3].startswith("  help: did you mean 'http_uri'")
    assert lines[-1].startswith(
        "1 rule files processed. 1 rules successfully loaded, 1 rules failed, 0 rules skipped"
    )


def test_strict_turns_warnings_into_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, WARN)
    code, out, _ = run(["lint", str(path)], capsys)
    assert code == 0 and "warning: TCP rule without a flow or flags option [tcp-no-flow]" in out
    assert run(["lint", "--strict", str(path)], capsys)[0] == 1


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, GOOD + BAD + WARN)
    code, out, err = run(["lint", "--format", "json", str(path)], capsys)
    assert code == 1
    records = json.loads(out)
    assert {tuple(sorted(r)) for r in records} == {
        ("code", "column", "end_column", "file", "hint", "line", "message", "severity", "sid")
    }
    error = next(r for r in records if r["severity"] == "error")
    assert error == {
        "file": str(path),
        "line": 2,
        "column": BAD.index("http_urii") + 1,
        "end_column": BAD.index("http_urii") + 10,
        "severity": "error",
        "code": "unknown-keyword",
        "message": "unknown rule keyword 'http_urii'",
        "sid": 2,
        "hint": error["hint"],
    }
    assert any(r["code"] == "tcp-no-flow" and r["sid"] == 3 for r in records)
    assert "rules successfully loaded" in err


def test_sarif_output_is_valid_2_1_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, GOOD + BAD + WARN)
    code, out, _ = run(["lint", "--format", "sarif", str(path)], capsys)
    assert code == 1
    log = json.loads(out)
    validate_sarif(log)
    results = log["runs"][0]["results"]
    err = next(r for r in results if r["level"] == "error")
    region = err["locations"][0]["physicalLocation"]["region"]
    assert region == {
        "startLine": 2,
        "startColumn": BAD.index("http_urii") + 1,
        "endColumn": BAD.index("http_urii") + 10,
    }
    assert err["ruleId"] == "unknown-keyword" and err["properties"] == {"sid": 2}
    rule_ids = {r["id"] for r in log["runs"][0]["tool"]["driver"]["rules"]}
    assert {r["ruleId"] for r in results} <= rule_ids


def validate_sarif(log: dict) -> None:  # type: ignore[type-arg]
    """The required properties of SARIF 2.1.0 (sarif-schema-2.1.0.json) for what we emit."""
    import jsonschema

    location = {
        "type": "object",
        "required": ["physicalLocation"],
        "properties": {
            "physicalLocation": {
                "type": "object",
                "required": ["artifactLocation", "region"],
                "properties": {
                    "artifactLocation": {"type": "object", "required": ["uri"]},
                    "region": {
                        "type": "object",
                        "required": ["startLine"],
                        "properties": {
                            "startLine": {"type": "integer", "minimum": 1},
                            "startColumn": {"type": "integer", "minimum": 1},
                            "endColumn": {"type": "integer", "minimum": 1},
                        },
                    },
                },
            }
        },
    }
    schema = {
        "type": "object",
        "required": ["version", "runs"],
        "properties": {
            "version": {"const": "2.1.0"},
            "$schema": {"type": "string"},
            "runs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["tool"],
                    "properties": {
                        "tool": {
                            "type": "object",
                            "required": ["driver"],
                            "properties": {
                                "driver": {
                                    "type": "object",
                                    "required": ["name"],
                                    "properties": {
                                        "rules": {
                                            "type": "array",
                                            "items": {"type": "object", "required": ["id"]},
                                        }
                                    },
                                }
                            },
                        },
                        "results": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["message"],
                                "properties": {
                                    "message": {
                                        "type": "object",
                                        "anyOf": [{"required": ["text"]}, {"required": ["id"]}],
                                    },
                                    "level": {"enum": ["none", "note", "warning", "error"]},
                                    "ruleId": {"type": "string"},
                                    "locations": {"type": "array", "items": location},
                                },
                            },
                        },
                    },
                },
            },
        },
    }
    jsonschema.validate(log, schema)


def test_directory_and_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    write(rules_dir, "alert tcp $MY_NET any -> any any (flow:to_server; sid:1;)\n", "a.rules")
    code, out, _ = run(["lint", str(rules_dir)], capsys)
    assert code == 1 and "address variable '$MY_NET' is not defined" in out
    conf = write(tmp_path, "vars:\n  address-groups:\n    MY_NET: 10.0.0.0/8\n", "suricata.yaml")
    code, out, _ = run(["lint", "-c", str(conf), str(rules_dir)], capsys)
    assert code == 0, out


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["lint"], capsys)[0] == 2
    assert run(["lint", "--format", "xml", "x"], capsys)[0] == 2
    code, _, err = run(["lint", str(tmp_path / "missing.rules")], capsys)
    assert code == 2 and "no such file or directory" in err
    bad_yaml = write(tmp_path, "vars: [", "bad.yaml")
    code, _, err = run(["lint", "-c", str(bad_yaml), str(write(tmp_path, GOOD))], capsys)
    assert code == 2 and "cannot read" in err
    assert run([], capsys)[0] == 2


def test_internal_error_is_one_line_exit_70(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import ruleengine.commands.lint as lint

    def boom(*args: object, **kwargs: object) -> None:
        raise ValueError("boom")

    monkeypatch.setattr(lint, "load_rule_files", boom)
    code, out, err = run(["lint", str(write(tmp_path, GOOD))], capsys)
    assert code == 70
    assert err.strip().splitlines() == [
        "ruleengine: internal error: ValueError: boom "
        "(please report this with the command line and input)"
    ]
    assert "Traceback" not in out + err


def test_python_dash_m(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    proc = subprocess.run(
        [sys.executable, "-m", "ruleengine", "lint", "--no-cache", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "1 rules successfully loaded" in proc.stdout


def test_example_rules_lint_clean(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["lint", "--strict", str(REPO / "examples" / "rules")], capsys)
    assert code == 0, out
    assert "0 error(s), 0 warning(s)" in out


CORPUS = sorted(CORPUS_RULES.glob("*.rules")) if CORPUS_RULES.is_dir() else []


@pytest.mark.skipif(not CORPUS, reason="../shared/corpus/rules is not present")
def test_corpus_lints_with_zero_errors(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["lint", "--no-cache", *map(str, CORPUS)], capsys)
    summary = out.splitlines()[-1]
    assert code == 0, summary
    assert " 0 rules failed," in summary and "; 0 error(s)," in summary


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
def test_fuzz_lint_cli_never_tracebacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    path = tmp_path / "fuzz.rules"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    for fmt in ("text", "json", "sarif"):
        code = main(["lint", "--no-cache", "--format", fmt, str(path)])
        out, err = capsys.readouterr()
        assert code in (0, 1), err
        assert "Traceback" not in out + err and "internal error" not in err
        if fmt != "text":
            json.loads(out)


def test_list_keywords(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["lint", "--list-keywords"], capsys)
    assert code == 0
    rows = {line.split(";")[0]: line.split(";") for line in out.splitlines()}
    assert rows["content"][2:] == ["required", "match", "supported"]
    assert rows["bypass"][2:] == ["none", "postmatch", "supported"]
    assert rows["http.uri"][1] == "-" and rows["http.uri"][3] == "sticky"
    assert rows["file.data"][1] == "file_data"
    assert rows["dns.query"][1:] == ["dns_query", "none", "sticky", "supported"]
    assert rows["lua"][3:] == ["unsupported", "unsupported"]
