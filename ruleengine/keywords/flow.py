"""flow:established,to_server,... (``src/detect-flow.c``): parse and match."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ruleengine.keywords._values import split_args
from ruleengine.keywords.registry import (
    KeywordSpec,
    MatchContext,
    MatchOrder,
    MatchStep,
    Quotes,
    StepCache,
)
from ruleengine.rules.errors import KeywordError
from ruleengine.rules.model import FlowCondition, Rule

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


# ------------------------------------------------------------------------------ match

ESTABLISHED_STATES = frozenset({"established", "closed"})
"""Flow states in which Suricata sets FLOW_PKT_ESTABLISHED (TCP after the handshake
until it is torn down; UDP/other once both directions were seen)."""


def flow_established(flow: Any) -> bool:
    return flow is not None and flow.state in ESTABLISHED_STATES


def flow_condition_matches(fc: FlowCondition, flow: Any, to_server: bool, frag: bool) -> bool:
    """Suricata's ``FlowMatch``: every flag given must hold (stream flags are handled
    by the engine as inspection constraints). ``flow``: the packet's flow or None."""
    if fc.no_frag and frag:
        return False
    if fc.only_frag and not frag:
        return False
    has_flow = flow is not None
    if fc.to_server and not (has_flow and to_server):
        return False
    if fc.to_client and not (has_flow and not to_server):
        return False
    established = flow_established(flow)
    if fc.established and not established:
        return False
    return not (fc.not_established and established)


def match_flow(ctx: MatchContext, fc: FlowCondition) -> bool:
    # rules share their FlowCondition (setup interns them): one test per packet each
    key = id(fc)
    ok = ctx.fcache.get(key)
    if ok is None:
        ok = ctx.fcache[key] = flow_condition_matches(fc, ctx.flow, ctx.to_server,
                                                      bool(ctx.pkt.frag))
    return ok


_STEPS: StepCache[tuple[MatchStep, ...]] = StepCache()


def match_setup(rule: Rule) -> tuple[MatchStep, ...]:
    fc = rule.flow
    if fc is None:
        return ()
    return _STEPS.get(fc, lambda: ((match_flow, fc, "flow"),))


SPECS: tuple[KeywordSpec, ...] = (
    KeywordSpec("flow", setup_flow, quotes=Quotes.FORBIDDEN, doc="flow state and direction",
                match=match_setup, match_order=MatchOrder.FLOW),
)
