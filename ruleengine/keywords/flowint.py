"""``flowint:<name>,<op>[,<value|variable>]`` (``src/detect-flowint.c``).

``= + -`` change the variable after the whole rule matched; ``== != < <= > >=`` compare
it (a missing variable never matches) and ``isset`` / ``notset`` (``isnotset``) test it.
The value is an unsigned 32-bit number or the name of another flowint (0 when unset).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ruleengine.keywords._values import match_syntax
from ruleengine.keywords.registry import KeywordSpec, Quotes, Stage
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


SPECS: tuple[KeywordSpec, ...] = (
    KeywordSpec("flowint", setup_flowint, quotes=Quotes.FORBIDDEN, stage=Stage.POSTMATCH),
)
