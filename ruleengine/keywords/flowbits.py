"""flowbits:set|unset|toggle|isset|isnotset,name[|name...] and flowbits:noalert
(``src/detect-flowbits.c``): parse, the match-time checks (isset/isnotset, ``|`` = any of,
``&`` = all of) and the post-match commands (set/unset/toggle), which run only after the
whole rule matched. ``noalert`` is the engine's (the alert is not logged)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ruleengine.keywords.registry import KeywordSpec, MatchContext, MatchOrder
from ruleengine.keywords.state_steps import CheckActionSteps
from ruleengine.rules.errors import KeywordError
from ruleengine.rules.model import Flowbit, FlowbitCmd

if TYPE_CHECKING:
    from ruleengine.rules.builder import RuleBuilder

# Suricata only refuses blanks in a name (DetectFlowbitParse); "traffic/id/x" is common
_NAME_RE = re.compile(r"[^\s|&]{1,255}\Z")


def setup_flowbits(b: RuleBuilder, value: str | None) -> None:
    assert value is not None
    cmd_text, sep, names_text = value.partition(",")
    try:
        cmd = FlowbitCmd(cmd_text.strip().lower())
    except ValueError:
        raise KeywordError(
            f"flowbits: unknown command '{cmd_text.strip()}'",
            code="invalid-keyword-value",
            value_range=(0, len(cmd_text)),
            hint="valid: set, unset, toggle, isset, isnotset, noalert",
        ) from None
    if cmd is FlowbitCmd.NOALERT:
        if sep:
            raise KeywordError(
                "flowbits:noalert takes no name",
                code="invalid-keyword-value",
                value_range=(len(cmd_text), len(value)),
            )
        b.rule.noalert = True
        b.rule.flowbits.append(Flowbit(cmd))
        return
    names_text = names_text.strip()
    if not names_text:
        raise KeywordError(
            f"flowbits:{cmd.value} needs a flowbit name",
            code="missing-value",
            value_range=(0, len(value)),
        )
    any_of = "&" not in names_text
    names = tuple(n.strip() for n in re.split(r"[|&]", names_text))
    start = len(cmd_text) + 1
    for name in names:
        if not _NAME_RE.match(name):
            raise KeywordError(
                f"flowbits: invalid name '{name}'",
                code="invalid-keyword-value",
                value_range=(start, len(value)),
            )
    if len(names) > 1 and cmd not in (FlowbitCmd.ISSET, FlowbitCmd.ISNOTSET) and "|" in names_text:
        raise KeywordError(
            f"flowbits:{cmd.value} does not take an OR list ('|'); only isset/isnotset do",
            code="invalid-keyword-value",
            value_range=(start, len(value)),
        )
    b.rule.flowbits.append(Flowbit(cmd, names, any_of))


# ------------------------------------------------------------------------------ match


def checks_pass(checks: Sequence[Flowbit], bits: set[str] | None) -> bool:
    current: set[str] = bits if bits is not None else set()
    for fb in checks:
        if fb.cmd is FlowbitCmd.ISSET:
            present = [name in current for name in fb.names]
            ok = any(present) if fb.any_of else all(present)
        else:  # ISNOTSET
            absent = [name not in current for name in fb.names]
            ok = any(absent) if fb.any_of else all(absent)
        if not ok:
            return False
    return True


def apply_actions(actions: Sequence[Flowbit], bits: set[str]) -> None:
    for fb in actions:
        if fb.cmd is FlowbitCmd.SET:
            bits.update(fb.names)
        elif fb.cmd is FlowbitCmd.UNSET:
            bits.difference_update(fb.names)
        elif fb.cmd is FlowbitCmd.TOGGLE:
            for name in fb.names:
                if name in bits:
                    bits.discard(name)
                else:
                    bits.add(name)


def order_class(flowbits: Sequence[Flowbit]) -> int:
    """Suricata's flowbits ordering value (``src/detect-engine-sigorder.c``)."""
    sets = any(fb.cmd in ACTIONS for fb in flowbits)
    return sigorder_class(sets=sets, reads=any(fb.is_check for fb in flowbits))


def sigorder_class(*, sets: bool, reads: bool) -> int:
    """Rules that only set bits come first (4), then set+read (3), read-only (2), none (1);
    flowbits and xbits alike."""
    if sets and reads:
        return 3
    if sets:
        return 4
    if reads:
        return 2
    return 1


ACTIONS = (FlowbitCmd.SET, FlowbitCmd.UNSET, FlowbitCmd.TOGGLE)


def _match(ctx: MatchContext, checks: tuple[Flowbit, ...]) -> bool:
    flow = ctx.flow
    return checks_pass(checks, flow.flowbits if flow is not None else None)


def _postmatch(ctx: MatchContext, actions: tuple[Flowbit, ...]) -> None:
    if ctx.flow is not None:
        apply_actions(actions, ctx.flow.flowbits)


_STEPS: CheckActionSteps[Flowbit] = CheckActionSteps(
    "flowbits", "flowbits", _match, _postmatch,
    is_action=lambda f: f.cmd in ACTIONS)  # noalert is neither a check nor an action
match_setup, postmatch_setup = _STEPS.match_setup, _STEPS.postmatch_setup
SPECS: tuple[KeywordSpec, ...] = (_STEPS.spec(setup_flowbits, MatchOrder.FLOWBITS),)
