"""Buffer control keywords that are not HTTP: pkt_data (back to the payload) and absent."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ruleengine.keywords.registry import ArgKind, KeywordSpec, Quotes, Stage
from ruleengine.rules.errors import KeywordError
from ruleengine.rules.model import PAYLOAD, Absent

if TYPE_CHECKING:
    from ruleengine.rules.builder import RuleBuilder


def setup_pkt_data(b: RuleBuilder, value: str | None) -> None:
    b.set_sticky(PAYLOAD)


def setup_absent(b: RuleBuilder, value: str | None) -> None:
    if b.sticky is None:
        raise KeywordError("'absent' needs a sticky buffer before it", code="absent-without-buffer")
    if value not in (None, "or_else"):
        raise KeywordError(
            f"absent: expected no value or 'or_else', got '{value}'",
            code="invalid-keyword-value",
            value_range=(0, len(value or "")),
        )
    b.add_item(Absent(value == "or_else", b.option_span))


SPECS: tuple[KeywordSpec, ...] = (
    KeywordSpec("pkt_data", setup_pkt_data, arg=ArgKind.NONE, stage=Stage.STICKY),
    KeywordSpec("absent", setup_absent, arg=ArgKind.OPTIONAL, quotes=Quotes.FORBIDDEN),
)
