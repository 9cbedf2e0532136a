"""bypass: after a full match, stop inspecting the flow (and ask the capture backend to
stop delivering it). No value allowed; cannot be combined with filestore."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ruleengine.keywords.registry import ArgKind, KeywordSpec, Stage

if TYPE_CHECKING:
    from ruleengine.rules.builder import RuleBuilder


def setup_bypass(b: RuleBuilder, value: str | None) -> None:
    b.rule.bypass = True
    b.bypass_span = b.option_span


SPECS: tuple[KeywordSpec, ...] = (
    KeywordSpec(
        "bypass",
        setup_bypass,
        arg=ArgKind.NONE,
        stage=Stage.POSTMATCH,
        doc="bypass the flow after this rule matched",
    ),
)
