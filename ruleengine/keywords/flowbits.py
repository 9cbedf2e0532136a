"""flowbits:set|unset|toggle|isset|isnotset,name[|name...] and flowbits:noalert."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ruleengine.keywords.registry import KeywordSpec, Quotes, Stage
from ruleengine.rules.errors import KeywordError
from ruleengine.rules.model import Flowbit, FlowbitCmd

if TYPE_CHECKING:
    from ruleengine.rules.builder import RuleBuilder

# Suricata (detect-flowbits.c) refuses only blanks in a name: "traffic/id/mozilla" is fine.
_NAME_RE = re.compile(r"[^\s|&]+\Z")


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


SPECS: tuple[KeywordSpec, ...] = (
    KeywordSpec("flowbits", setup_flowbits, quotes=Quotes.FORBIDDEN, stage=Stage.POSTMATCH),
)
