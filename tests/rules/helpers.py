"""Shared helpers for rule-language tests."""

from __future__ import annotations

from pathlib import Path

from ruleengine.diagnostics import Diagnostic
from ruleengine.rules.loader import RuleSet, load_rule_text
from ruleengine.rules.model import Rule
from tests.shared import SHARED

REPO = Path(__file__).resolve().parents[2]
CORPUS_RULES = SHARED / "corpus" / "rules"  # the nearest ../shared (worktrees too)


def load(text: str) -> RuleSet:
    return load_rule_text(text, file="t.rules")


def one_rule(text: str) -> Rule:
    rs = load(text)
    assert not rs.errors, [d.message for d in rs.errors]
    assert len(rs.rules) == 1
    return rs.rules[0]


def one_error(text: str) -> Diagnostic:
    rs = load(text)
    errors = rs.errors
    assert len(errors) == 1, [(d.code, d.message) for d in rs.diagnostics]
    assert rs.failed == 1 and not rs.rules
    return errors[0]


def col_of(text: str, needle: str, nth: int = 0) -> int:
    """1-based column of the nth occurrence of needle."""
    pos = -1
    for _ in range(nth + 1):
        pos = text.index(needle, pos + 1)
    return pos + 1


def codes(rs: RuleSet) -> list[str]:
    return [d.code for d in rs.diagnostics]
