"""ruleengine/safety.py: hostile-data errors are swallowed, bugs raised in strict runs."""

from __future__ import annotations

import struct

import pytest

from ruleengine import safety


def test_hostile_errors_always_return(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RULEENGINE_STRICT", "1")
    for exc in (ValueError("x"), struct.error("x"), OverflowError(), RecursionError(),
                UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad")):
        safety.reraise_bug(exc)  # returns: counted by the caller


def test_bugs_raise_only_when_strict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RULEENGINE_STRICT", "1")
    with pytest.raises(AttributeError):
        safety.reraise_bug(AttributeError("no such field"))
    monkeypatch.setenv("RULEENGINE_STRICT", "0")
    safety.reraise_bug(AttributeError("no such field"))  # production: counted, not raised
    monkeypatch.delenv("RULEENGINE_STRICT")
    assert not safety.strict()


def test_detect_engine_counts_hostile_and_raises_bugs(monkeypatch: pytest.MonkeyPatch) -> None:
    from ruleengine.detect.engine import DetectEngine

    engine = DetectEngine([])
    monkeypatch.setenv("RULEENGINE_STRICT", "1")
    engine._internal_error(ValueError("bad length"))
    assert engine.errors == 1
    with pytest.raises(KeyError):
        engine._internal_error(KeyError("bug"))
    monkeypatch.setenv("RULEENGINE_STRICT", "0")
    engine._internal_error(KeyError("bug"))
    assert engine.errors == 2
