"""``outputs.eve-log.types`` decides which event types ``ruleengine run`` writes, as in
Suricata (each type is a sub-logger of the eve-log output: not listed, not written)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ruleengine.cli import main

ROOT = Path(__file__).resolve().parents[2]
PCAP = ROOT / "examples" / "pcaps" / "http-demo.pcap"
RULES = ROOT / "examples" / "rules" / "demo.rules"
# an inline rule so that --simulate-ips has drops to log
DROP_RULE = 'drop http any any -> any any (msg:"admin"; http.uri; content:"/admin"; sid:7;)\n'


def _run(tmp_path: Path, types_yaml: str | None) -> set[str]:
    rules = tmp_path / "all.rules"
    rules.write_text(RULES.read_text() + DROP_RULE)
    argv = ["run", "-r", str(PCAP), "-S", str(rules), "-l", str(tmp_path), "--no-progress",
            "--simulate-ips"]
    if types_yaml is not None:
        config = tmp_path / "suricata.yaml"
        config.write_text("%YAML 1.1\n---\noutputs:\n  - eve-log:\n      enabled: yes\n"
                          "      filename: eve.json\n" + types_yaml)
        argv += ["-c", str(config)]
    assert main(argv) == 0
    lines = (tmp_path / "eve.json").read_text().splitlines()
    return {json.loads(line)["event_type"] for line in lines}


def test_every_type_without_a_config(tmp_path: Path) -> None:
    kinds = _run(tmp_path, None)
    assert {"alert", "http", "flow", "stats", "fileinfo"} <= kinds
    assert "netflow" not in kinds  # opt-in, as in Suricata


@pytest.mark.parametrize(("listed", "written"), [
    (["alert"], {"alert"}),
    (["flow", "stats"], {"flow", "stats"}),
    (["http", "drop"], {"http", "drop"}),
    (["files"], {"fileinfo"}),
    (["netflow"], {"netflow"}),
])
def test_only_the_listed_types(tmp_path: Path, listed: list[str], written: set[str]) -> None:
    types = "      types:\n" + "".join(f"        - {name}\n" for name in listed)
    assert _run(tmp_path, types) == written


def test_a_type_switched_off_is_not_written(tmp_path: Path) -> None:
    types = "      types:\n        - alert\n        - flow:\n            enabled: no\n"
    assert _run(tmp_path, types) == {"alert"}


def test_eve_log_without_types_writes_every_type(tmp_path: Path) -> None:
    assert {"alert", "flow", "stats"} <= _run(tmp_path, "")
