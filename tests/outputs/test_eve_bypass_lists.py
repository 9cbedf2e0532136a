"""Bypass-list counters in EVE stats: only with ``- stats: bypass-lists: yes`` (Suricata's
stats schema is closed: ``additionalProperties: false`` at every level), so a default
stats event still validates against the schema."""

from __future__ import annotations

import json
from pathlib import Path

from ruleengine.outputs.eve import EveWriter
from tests.outputs.eve_schema import validate_line

COUNTERS = {"decoder.pkts": 10, "flow_bypassed.pkts": 5,
            "bypass_list.entries": 3, "bypass_list.reloads": 2, "bypass_list.errors": 1,
            "bypass_list.kernel_errors": 0,
            "bypass_list.nets.list:3.pkts": 18272, "bypass_list.nets.list:3.bytes": 22200000,
            "bypass_list.my.ports:7.pkts": 4, "bypass_list.my.ports:7.bytes": 600,
            "bypass_list.nets.list:4.pkts": 0, "bypass_list.nets.list:4.bytes": 0}


def _stats_line(tmp_path: Path, options: dict[str, object] | None) -> str:
    path = tmp_path / "eve.json"
    type_options = {"stats": options} if options is not None else None
    with EveWriter(path, type_options=type_options) as eve:
        eve.stats(1.0, 1.0, COUNTERS)
    (line,) = path.read_text().splitlines()
    return line


def test_default_stats_keep_to_suricatas_schema(tmp_path: Path) -> None:
    event = validate_line(_stats_line(tmp_path, None))
    assert "bypass_list" not in event["stats"]
    assert event["stats"]["flow_bypassed"] == {"pkts": 5}
    event = validate_line(_stats_line(tmp_path, {"bypass-lists": "no"}))
    assert "bypass_list" not in event["stats"]


def test_bypass_lists_option_adds_totals_and_the_entries_hit(tmp_path: Path) -> None:
    event = json.loads(_stats_line(tmp_path, {"bypass-lists": "yes"}))
    assert event["stats"]["bypass_list"] == {
        "entries": 3, "reloads": 2, "errors": 1, "kernel_errors": 0,
        "pkts": 18276, "bytes": 22200600,
        "entries_hit": [{"entry": "my.ports:7", "pkts": 4, "bytes": 600},
                        {"entry": "nets.list:3", "pkts": 18272, "bytes": 22200000}]}
    # everything else is Suricata's schema
    del event["stats"]["bypass_list"]
    validate_line(json.dumps(event))


def test_bypass_lists_option_without_lists_adds_nothing(tmp_path: Path) -> None:
    path = tmp_path / "eve.json"
    with EveWriter(path, type_options={"stats": {"bypass-lists": True}}) as eve:
        eve.stats(1.0, 1.0, {"decoder.pkts": 1})
    assert "bypass_list" not in validate_line(path.read_text().strip())["stats"]
