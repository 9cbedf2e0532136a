"""The readers every app-layer section shares: one meaning per key across protocols."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import pytest

from ruleengine.applayer.ftp.config import parse_config as ftp_config
from ruleengine.applayer.protocol_config import (
    AutoSwitchView,
    read_auto_switch,
    read_common_keys,
    read_encryption_handling,
    read_sizes,
)
from ruleengine.applayer.ssh.config import parse_config as ssh_config
from ruleengine.applayer.tls.config import parse_config as tls_config
from ruleengine.config.values import parse_switch


@pytest.mark.parametrize(("raw", "expected"), [
    ("yes", True), ("Enabled", True), (" disable ", False), ("off", False), (True, True),
    (0, False), ("maybe", None), (None, None),
])
def test_parse_switch(raw: Any, expected: bool | None) -> None:
    assert parse_switch(raw) is expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("detection-only", "detection-only"), ("no", "no"), ("enable", "yes"), (False, "no"),
])
def test_enabled_values(raw: Any, expected: str) -> None:
    values, warnings = read_common_keys({"enabled": raw}, frozenset({"enabled"}))
    assert (values, warnings) == ({"enabled": expected}, [])


def test_bad_enabled_and_unknown_keys_warn() -> None:
    values, warnings = read_common_keys({"enabled": "perhaps", "colour": 1},
                                        frozenset({"enabled"}))
    assert values == {}
    assert warnings == ["colour: unknown key, ignored",
                        "enabled: invalid value 'perhaps'; using yes"]


def test_sizes_zero_only_where_allowed() -> None:
    values: dict[str, Any] = {}
    warnings: list[str] = []
    read_sizes({"a-a": "4kb", "b": 0, "c": 0, "d": "huge"}, ("a-a", "b", "c", "d"), values,
               warnings, zero_ok=frozenset({"b"}))
    assert values == {"a_a": 4096, "b": 0}
    assert [w.split(":")[0] for w in warnings] == ["c", "d"]


def test_auto_switch_and_handling() -> None:
    warnings: list[str] = []
    assert read_auto_switch("k", "auto", warnings) is None
    assert read_auto_switch("k", "no", warnings) is False
    assert read_auto_switch("k", "sometimes", warnings) is None
    assert read_encryption_handling("e", "track-only", warnings) == "default"
    assert read_encryption_handling("e", "drop", warnings) is None
    assert len(warnings) == 2


@pytest.mark.parametrize("parse", [ssh_config, tls_config, ftp_config])
def test_protocols_read_shared_keys_alike(parse: Any) -> None:
    settings, warnings = parse({"enabled": "detection-only", "max-events": "1kb", "x": 1})
    assert settings.enabled == "detection-only"
    assert settings.max_events == 1024
    assert warnings == ["x: unknown key, ignored"]


def test_auto_switch_view() -> None:
    @dataclass(frozen=True)
    class Settings:
        switch: bool | None = None
        computed = AutoSwitchView("switch", logged=False)
        logged = AutoSwitchView("switch", logged=True)

    # auto: computed for rules, not logged; yes: both; no: neither
    assert [(s.computed, s.logged) for s in (Settings(), Settings(True), Settings(False))] \
        == [(True, False), (True, True), (False, False)]
    assert [f.name for f in fields(Settings)] == ["switch"]  # the views are not fields
