"""``ruleengine bypass report``: numbers from a real engine run, text, JSON and plots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ruleengine.cli import main
from ruleengine.commands.bypass_report import build_report, flow_record

REPO = Path(__file__).resolve().parents[2]
PCAP = REPO / "examples" / "pcaps" / "http-demo.pcap"
RULE = 'alert http any any -> any any (msg:"bypass demo"; http.uri; content:"/"; bypass; sid:7;)\n'


@pytest.fixture(scope="module")
def eve(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("bypass-report")
    rules = tmp / "r.rules"
    rules.write_text(RULE)
    assert main(["run", "-r", str(PCAP), "-S", str(rules), "-l", str(tmp), "--no-progress"]) == 0
    return tmp / "eve.json"


def _flows(eve: Path) -> list[dict]:
    return [e for e in map(json.loads, eve.read_text().splitlines())
            if e["event_type"] == "flow"]


def test_report_totals_match_the_flow_events(eve: Path) -> None:
    flows = _flows(eve)
    report = build_report(eve)
    wire = sum(f["flow"]["pkts_toserver"] + f["flow"]["pkts_toclient"] for f in flows)
    bypassed = sum(f["flow"]["bypassed"]["pkts_toserver"] + f["flow"]["bypassed"]["pkts_toclient"]
                   for f in flows if "bypassed" in f["flow"])
    assert report.total.wire_pkts == wire and report.total.bypassed_pkts == bypassed > 0
    # every flow was bypassed locally (a pcap run) by sid 7: nothing was kept from user space
    assert report.by_mode["local"].flows == len(flows) == report.by_sid[7].flows
    assert report.total.not_delivered_pkts == 0
    assert report.signatures[7] == "bypass demo"
    # reconciled: wire = inspected + leaked + bypassed for every flow
    assert report.reconciled == {"ok": len(flows)}
    assert report.inspected_pkts + report.total.bypassed_pkts == wire
    assert sum(report.series.user_pps) * report.series.step == pytest.approx(wire)
    assert sum(report.series.closed_bypassed_flows) == len(flows)


def test_report_text_and_json(eve: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bypass", "report", str(eve)]) == 0
    text = capsys.readouterr().out
    assert "by rule (sid)" in text and '7 "bypass demo"' in text and "4 ok" in text
    assert main(["bypass", "report", "--format", "json", str(eve)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["by_reason"]["rule"]["bypassed_flows"] == 4
    assert doc["by_sid"]["7"]["signature"] == "bypass demo"


@pytest.mark.parametrize("suffix,magic", [(".png", b"\x89PNG"), (".svg", b"<?xml")])
def test_plot_is_a_real_image(eve: Path, tmp_path: Path, suffix: str, magic: bytes) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / f"plot{suffix}"
    assert main(["bypass", "report", str(eve), str(eve), "--label", "a", "--label", "b",
                 "--plot", str(out)]) == 0
    data = out.read_bytes()
    assert data.startswith(magic) and len(data) > 10_000


def test_bad_inputs_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bypass", "report", str(tmp_path / "missing.json")]) == 1
    empty = tmp_path / "eve.json"
    empty.write_text('not json\n{"event_type":"alert"}\n')
    assert main(["bypass", "report", str(empty)]) == 1
    assert main(["bypass", "report", str(empty), "--plot", str(tmp_path / "x.gif")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "no flow events" in err


def test_mismatch_and_leakage_from_a_capture_bypass_record() -> None:
    event = {"event_type": "flow", "flow": {
        "pkts_toserver": 10, "pkts_toclient": 90, "bytes_toserver": 1000, "bytes_toclient": 9000,
        "bypassed": {"pkts_toserver": 0, "pkts_toclient": 80, "bytes_toserver": 0,
                     "bytes_toclient": 8000},
        "start": "2026-01-01T00:00:00.000000+0000", "end": "2026-01-01T00:00:10.000000+0000",
        "bypass": "capture", "reason": "timeout"},
        "metadata": {"flowvars": [{"bypass_reason": "stream-depth"}, {"bypass_accounting": {
            "time": "2026-01-01T00:00:02.000000+0000", "inspected_pkts": 15, "leaked_pkts": 5,
            "leaked_bytes": 500, "reconciled": False}}]}}
    rec = flow_record(event)
    assert rec is not None
    assert (rec.reason, rec.sid, rec.leaked_pkts) == ("stream-depth", None, 5)
    assert rec.reconciled is False
    assert rec.user_pkts == 20 and rec.bypass_time == rec.start + 2
