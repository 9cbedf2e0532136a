"""``flowint:<name>,<op>[,<value|variable>]`` (``src/detect-flowint.c``).

``= + -`` change the variable after the whole rule matched; ``== != < <= > >=`` compare
it (a missing variable never matches) and ``isset`` / ``notset`` (``isnotset``) test it.
The value is an unsigned 32-bit number or the name of another flowint (0 when unset).

Match: a missing target variable counts as 0; a comparison on a missing variable fails;
``+`` on a missing variable starts it at the added value, ``-`` on a missing one does
nothing. A flow keeps at most ``flowint_max`` variables (later new names are ignored).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ruleengine.keywords._values import match_syntax
from ruleengine.keywords.registry import KeywordSpec, MatchContext, MatchOrder
from ruleengine.keywords.state_steps import CheckActionSteps
from ruleengine.rules.errors import KeywordError
from ruleengine.rules.model import Flowint

if TYPE_CHECKING:
    from ruleengine.rules.builder import RuleBuilder

_RE = re.compile(
    r"\s*(?P<name>[A-Za-z][\w./-]*)\s*,\s*(?P<op>==|!=|<=|>=|<|>|=|\+|-|isset|notset|isnotset)"
    r"\s*(?:,\s*(?P<val>[A-Za-z][\w./-]*|\d+))?\s*\Z"
)
SET_OPS = ("=", "+", "-")
NO_VALUE = ("isset", "notset", "isnotset")


def setup_flowint(b: RuleBuilder, value: str | None) -> None:
    assert value is not None
    m = match_syntax(_RE, value, "flowint", "write flowint:<name>,<op>[,<value>] with op one "
                     "of = + - == != < <= > >= isset notset")
    op = m.group("op")
    val = m.group("val")
    if op in NO_VALUE:
        if val is not None:
            raise KeywordError(
                f"flowint: '{op}' takes no value", value_range=(m.start("val"), m.end("val"))
            )
        b.rule.flowints.append(Flowint(m.group("name"), "notset" if op == "isnotset" else op))
        return
    if val is None:
        raise KeywordError(
            f"flowint: '{op}' needs a value or a variable name", code="missing-value",
            value_range=(0, len(value)),
        )
    target: int | str
    if val[0].isdigit():
        target = int(val)
        if target > 0xFFFFFFFF:
            raise KeywordError(
                f"flowint: {target} is outside the allowed range 0-4294967295",
                code="out-of-range",
                value_range=(m.start("val"), m.end("val")),
            )
    else:
        target = val
    b.rule.flowints.append(Flowint(m.group("name"), op, target))


# ------------------------------------------------------------------------------ match

MAX_VARS = 256
_U32 = 0xFFFFFFFF


def _target(fi: Flowint, store: dict[str, int]) -> int:
    t = fi.target
    if isinstance(t, str):
        return store.get(t, 0)
    return t or 0


def check(fi: Flowint, store: dict[str, int] | None) -> bool:
    current = store.get(fi.name) if store is not None else None
    if fi.op == "isset":
        return current is not None
    if fi.op in ("notset", "isnotset"):
        return current is None
    if current is None or store is None:
        return False
    target = _target(fi, store)
    op = fi.op
    if op == "==":
        return current == target
    if op == "!=":
        return current != target
    if op == "<":
        return current < target
    if op == "<=":
        return current <= target
    if op == ">":
        return current > target
    if op == ">=":
        return current >= target
    return False


def checks_pass(checks: Sequence[Flowint], store: dict[str, int] | None) -> bool:
    return all(check(fi, store) for fi in checks)


def apply(actions: Sequence[Flowint], store: dict[str, int], max_vars: int = MAX_VARS) -> None:
    for fi in actions:
        target = _target(fi, store)
        if fi.name not in store and len(store) >= max_vars:
            continue
        current = store.get(fi.name)
        if fi.op == "=":
            store[fi.name] = target & _U32
        elif fi.op == "+":
            store[fi.name] = ((current or 0) + target) & _U32
        elif fi.op == "-" and current is not None:
            store[fi.name] = (current - target) & _U32


def _match(ctx: MatchContext, checks: tuple[Flowint, ...]) -> bool:
    state = ctx.state
    return state is not None and checks_pass(checks, state.flowints)


def _postmatch(ctx: MatchContext, actions: tuple[Flowint, ...]) -> None:
    state = ctx.state
    if state is not None:
        apply(actions, state.flowints, ctx.flowint_max)


_STEPS: CheckActionSteps[Flowint] = CheckActionSteps(
    "flowint", "flowints", _match, _postmatch)
match_setup, postmatch_setup = _STEPS.match_setup, _STEPS.postmatch_setup
SPECS: tuple[KeywordSpec, ...] = (_STEPS.spec(setup_flowint, MatchOrder.FLOWINT),)
