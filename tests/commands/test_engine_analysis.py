"""``run --engine-analysis``: Suricata's three reports in the log directory, the fast
pattern the engine's prefilter was built with, warnings, failures; exits without a capture."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

from ruleengine.cli import main as cli_main
from ruleengine.detect.engine import DetectEngine
from ruleengine.rules.loader import load_rule_text

RULES = """\
alert http any any -> any any (msg:"uri"; flow:established,to_server; http.uri; \
content:"/admin"; fast_pattern; sid:1; rev:2;)
alert tcp any any -> any 80 (msg:"raw"; content:"GET /"; depth:5; pcre:"/foo/"; sid:2;)
alert ip 10.0.0.1 any -> any any (msg:"iponly"; sid:3;)
alert http any any -> any any (msg:"bad"; content:"x"; sid:
alert tcp any any -> any any (msg:"chop"; flow:to_server; content:"abcdefgh"; \
fast_pattern:2,3; sid:5;)
alert http any any -> any any (msg:"two"; http.uri; content:"ab"; content:"longer"; sid:7;)
alert http any any -> any any (msg:"pcre only"; flow:to_server; http.method; pcre:"/^P/"; sid:8;)
"""


def analyse(tmp: Path, rules: str = RULES) -> tuple[int, Path, str]:
    rule_file = tmp / "a.rules"
    rule_file.write_text(rules)
    out = tmp / "log"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = cli_main(["run", "--engine-analysis", "-S", str(rule_file), "-l", str(out)])
    return code, out, err.getvalue()


def blocks(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for block in text.split("\n\n"):
        lines = block.strip().splitlines()
        at = next((i for i, line in enumerate(lines) if line.startswith("== Sid: ")), None)
        if at is not None:  # the first block follows the date header
            out[lines[at][8:-3]] = "\n".join(lines[at:])
    return out


def test_writes_three_reports_and_exits(tmp_path: Path) -> None:
    code, out, err = analyse(tmp_path)
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "rules.json", "rules_analysis.txt", "rules_fast_pattern.txt"]  # no eve.json: no run
    assert "Engine-Analysis for rules printed to file" in err


def test_rule_report_lines(tmp_path: Path) -> None:
    _, out, _ = analyse(tmp_path)
    by_sid = blocks((out / "rules_analysis.txt").read_text())
    one = by_sid["1"]
    assert "    Rule is App-layer TX inspecting." in one
    assert "    Rule matches on http uri buffer." in one
    assert "    App layer protocol is http." in one
    assert '    Fast Pattern "/admin" on "http.uri" buffer.' in one
    assert "    No warnings for this rule." in one
    two = by_sid["2"]
    assert "Rule is packet and stream inspecting." in two
    assert '    Fast Pattern "GET /" on "payload and reassembled stream" buffer.' in two
    assert "Warning: TCP rule without a flow or flags option." in two
    assert "Warning: Rule has depth/offset with raw content keywords." in two
    assert "    Rule is ip only." in by_sid["3"]
    # an http pcre is not "pcre without a content" for Suricata: the method warning is
    assert "Warning: Rule uses pcre with only a http_method content" in by_sid["8"]
    assert "pcre without a content" not in by_sid["8"]
    assert "FAILURE: invalid rule." in by_sid["UNKNOWN"] and "Line: 4." in by_sid["UNKNOWN"]


def test_fast_pattern_is_the_prefilters_choice(tmp_path: Path) -> None:
    _, out, _ = analyse(tmp_path)
    fp = blocks((out / "rules_fast_pattern.txt").read_text())
    assert "Fast pattern chop set: yes" in fp["5"] and "Final content: cde" in fp["5"]
    assert "Original content: abcdefgh" in fp["5"]
    # no fast_pattern: the engine registers the longest content
    assert "Final content: longer" in fp["7"]
    assert "No content present" in fp["3"]
    engine = DetectEngine(load_rule_text(RULES).rules)
    chosen = {an.rule.sid: an.fast_pattern for an in engine.analysis()}
    assert chosen[7] is not None and chosen[7][1].pattern == b"longer"
    assert (out / "rules_fast_pattern.txt").read_text().rstrip().endswith(
        "content, smallest pattern 3 byte(s), longest pattern 5 byte(s), number of patterns "
        "2, avg pattern len 4.00 byte(s)")


def test_rules_json_one_object_per_rule(tmp_path: Path) -> None:
    _, out, _ = analyse(tmp_path)
    docs = [json.loads(line) for line in (out / "rules.json").read_text().splitlines()]
    assert [d["id"] for d in docs] == [1, 2, 3, 5, 7, 8]
    first = docs[0]
    assert first["type"] == "app_tx" and first["app_proto"] == "http" and first["rev"] == 2
    assert first["mpm"] == {"buffer": "http.uri", "content": {
        "pattern": "/admin", "length": 6, "nocase": False, "negated": False,
        "starts_with": False, "ends_with": False, "is_mpm": True, "fast_pattern": True}}
    assert docs[2]["type"] == "ip_only" and "mpm" not in docs[2]
    assert any("TCP rule without a flow" in w for w in docs[1]["warnings"])


def test_unwritable_log_dir_is_one_line_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    rule_file = tmp_path / "a.rules"
    rule_file.write_text(RULES)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = cli_main(["run", "--engine-analysis", "-S", str(rule_file),
                         "-l", str(blocker / "sub")])
    assert code == 1
    assert "error: engine analysis: cannot write to" in err.getvalue()
    assert "Traceback" not in err.getvalue()
