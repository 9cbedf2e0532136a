"""The readers every app-layer section shares: one meaning per key across protocols."""

from __future__ import annotations

from typing import Any

import pytest

from ruleengine.applayer.ftp.config import parse_config as ftp_config
from ruleengine.applayer.protocol_config import (
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
    read_sizes({"a": "4kb", "b": 0, "c": 0, "d": "huge"},
               (("a", "a_"), ("b", "b_"), ("c", "c_"), ("d", "d_")), values, warnings,
               zero_ok=frozenset({"b"}))
    assert values == {"a_": 4096, "b_": 0}
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
