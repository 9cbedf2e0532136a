"""The protocol contract's helpers."""

from __future__ import annotations

from ruleengine.applayer.base import settings_parser
from ruleengine.applayer.ssh import SshParser, SshSettings


def test_settings_parser_passes_settings_or_defaults() -> None:
    make = settings_parser(SshParser, SshSettings)
    custom = SshSettings(max_events=3)
    assert make(custom, 6).settings is custom  # type: ignore[attr-defined]
    fallback = make(None, 6)
    assert fallback.settings == SshSettings()  # type: ignore[attr-defined]
