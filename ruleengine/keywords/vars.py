"""``flowvar:<name>,"<content>"`` and ``pktvar:<name>,"<content>"`` (``src/detect-flowvar.c``,
``src/detect-pktvar.c``): the flow / packet variable contains ``content``.

Variables are set by pcre named captures ``(?P<flow_name>...)`` / ``(?P<pkt_name>...)``
of a rule that matched (``src/detect-pcre.c``; stored after the match, logged in the
alert's ``metadata.flowvars`` / ``metadata.pktvars``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ruleengine.keywords.content import parse_content_value
from ruleengine.keywords.registry import KeywordSpec, MatchOrder, Quotes, Stage, StepCache
from ruleengine.rules.errors import KeywordError
from ruleengine.rules.model import Rule, VarCheck

if TYPE_CHECKING:
    from ruleengine.keywords.registry import MatchContext, MatchStep, Setup
    from ruleengine.rules.builder import RuleBuilder

_RE = re.compile(r"\s*(?P<name>[A-Za-z_][\w.\-]*)\s*,\s*(?P<content>.+?)\s*\Z", re.S)


def _setup(scope: str) -> Setup:
    keyword = f"{scope}var"

    def setup(b: RuleBuilder, value: str | None) -> None:
        assert value is not None
        m = _RE.match(value)
        if m is None or not m.group("content").startswith('"'):
            raise KeywordError(
                f"{keyword}: expected <name>,\"<content>\"",
                value_range=(0, len(value)),
            )
        at = m.start("content")
        try:
            pattern, negated = parse_content_value(m.group("content"))
        except KeywordError as exc:
            if exc.value_range is not None:
                lo, hi = exc.value_range
                exc.value_range = (lo + at, hi + at)
            raise
        if negated:
            raise KeywordError(f"{keyword} cannot be negated", value_range=(at, at + 1))
        b.rule.var_checks.append(VarCheck(scope, m.group("name"), pattern))

    return setup


def _match(ctx: MatchContext, vc: VarCheck) -> bool:
    if vc.scope == "flow":
        state = ctx.state
        value = state.flowvars.get(vc.name) if state is not None else None
    else:
        value = ctx.pktvar(vc.name)
    return value is not None and vc.content in value


def match_setup(rule: Rule) -> tuple[MatchStep, ...]:
    """flowvar and pktvar checks in rule order (one setup for both keywords)."""
    if not rule.var_checks:
        return ()
    checks = tuple(rule.var_checks)
    return _STEPS.get(checks, lambda: tuple((_match, vc, f"{vc.scope}var") for vc in checks))


_STEPS: StepCache[tuple[MatchStep, ...]] = StepCache()


SPECS: tuple[KeywordSpec, ...] = (
    KeywordSpec("flowvar", _setup("flow"), quotes=Quotes.FORBIDDEN, stage=Stage.MATCH,
                match=match_setup, match_order=MatchOrder.VARIABLES),
    KeywordSpec("pktvar", _setup("pkt"), quotes=Quotes.FORBIDDEN, stage=Stage.MATCH,
                match=match_setup, match_order=MatchOrder.VARIABLES),
)
