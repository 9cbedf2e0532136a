"""flow:established,to_server,... (``src/detect-flow.c``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ruleengine.keywords._values import split_args
from ruleengine.keywords.registry import KeywordSpec, Quotes
from ruleengine.rules.errors import KeywordError
from ruleengine.rules.model import FlowCondition

if TYPE_CHECKING:
    from ruleengine.rules.builder import RuleBuilder

_FIELDS = {
    "established": "established",
    "not_established": "not_established",
    "stateless": "stateless",
    "to_server": "to_server",
    "from_client": "to_server",
    "to_client": "to_client",
    "from_server": "to_client",
    "only_stream": "only_stream",
    "no_stream": "no_stream",
    "only_frag": "only_frag",
    "no_frag": "no_frag",
}
_CACHE: dict[str, FlowCondition] = {}
_CONFLICTS = (
    ("to_server", "to_client"),
    ("established", "not_established"),
    ("established", "stateless"),
    ("not_established", "stateless"),
    ("only_stream", "no_stream"),
    ("only_frag", "no_frag"),
)


def setup_flow(b: RuleBuilder, value: str | None) -> None:
    assert value is not None
    if b.rule.flow is not None:
        raise KeywordError("'flow' is used more than once in this rule", code="duplicate-keyword")
    cached = _CACHE.get(value)
    if cached is not None:
        b.rule.flow = cached
        return
    chosen: dict[str, tuple[int, int]] = {}
    for word, at in split_args(value):
        key = _FIELDS.get(word.lower())
        if key is None:
            raise KeywordError(
                f"flow: unknown option '{word}'",
                code="invalid-keyword-value",
                value_range=(at, at + max(len(word), 1)),
                hint="valid: " + ", ".join(sorted(_FIELDS)),
            )
        chosen[key] = (at, at + len(word))
    for a, c in _CONFLICTS:
        if a in chosen and c in chosen:
            raise KeywordError(
                f"flow: '{a}' and '{c}' cannot be combined",
                code="invalid-keyword-value",
                value_range=(0, len(value)),
            )
    b.rule.flow = FlowCondition(**{k: True for k in chosen})
    if len(_CACHE) < 1024:  # FlowCondition is frozen: rules can share one
        _CACHE[value] = b.rule.flow


SPECS: tuple[KeywordSpec, ...] = (
    KeywordSpec("flow", setup_flow, quotes=Quotes.FORBIDDEN, doc="flow state and direction"),
)
