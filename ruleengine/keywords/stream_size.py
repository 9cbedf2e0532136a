"""``stream_size:<server|client|both|either>,<op>,<bytes>`` (``src/detect-stream_size.c``):
the TCP stream sizes of the flow in sequence space (``next_seq - isn``), op one of
``< <= = != >= >``."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ruleengine.keywords._values import match_syntax, parse_int
from ruleengine.keywords.registry import KeywordSpec, Quotes, Stage
from ruleengine.rules.errors import KeywordError
from ruleengine.rules.model import StreamSize

if TYPE_CHECKING:
    from ruleengine.rules.builder import RuleBuilder

SIDES = ("server", "client", "both", "either")
OPS = ("<", "<=", "=", "!=", ">=", ">")
_RE = re.compile(r"\s*(?P<side>[A-Za-z_]+)\s*,\s*(?P<op>[<=>!]+)\s*,\s*(?P<val>\S+)\s*\Z")


def setup_stream_size(b: RuleBuilder, value: str | None) -> None:
    assert value is not None
    m = match_syntax(_RE, value, "stream_size",
                     "write stream_size:<server|client|both|either>,<op>,<bytes>")
    side = m.group("side").lower()
    if side not in SIDES:
        raise KeywordError(
            f"stream_size: unknown side '{m.group('side')}'",
            value_range=(m.start("side"), m.end("side")),
            hint="valid: server, client, both, either",
        )
    op = {"==": "="}.get(m.group("op"), m.group("op"))
    if op not in OPS:
        raise KeywordError(
            f"stream_size: unknown operator '{m.group('op')}'",
            value_range=(m.start("op"), m.end("op")),
            hint="valid: < <= = != >= >",
        )
    val = parse_int(m.group("val"), "stream_size", start=m.start("val"), lo=0, hi=0xFFFFFFFF)
    b.rule.stream_size.append(StreamSize(side, op, val))


SPECS: tuple[KeywordSpec, ...] = (
    KeywordSpec("stream_size", setup_stream_size, quotes=Quotes.FORBIDDEN, stage=Stage.MATCH),
)
