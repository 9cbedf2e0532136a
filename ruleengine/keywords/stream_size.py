"""``stream_size:<server|client|both|either>,<op>,<bytes>`` (``src/detect-stream_size.c``):
the TCP stream sizes of the flow in sequence space (``next_seq - isn``), op one of
``< <= = != >= >``. The SYN counts one, the FIN one more, for the server, the client,
both or either side."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ruleengine.keywords._values import match_syntax, parse_int
from ruleengine.keywords.registry import (
    KeywordSpec,
    MatchContext,
    MatchOrder,
    MatchStep,
    Quotes,
    Stage,
    StepCache,
)
from ruleengine.rules.errors import KeywordError
from ruleengine.rules.model import Rule, StreamSize

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


# ------------------------------------------------------------------------------ match

def compare(value: int, op: str, target: int) -> bool:
    if op == "<":
        return value < target
    if op == "<=":
        return value <= target
    if op == "=":
        return value == target
    if op == "!=":
        return value != target
    if op == ">=":
        return value >= target
    return value > target


def half_size(half: Any) -> int:
    """``next_seq - isn`` of one direction (``ruleengine.flow.tcp_session.HalfStream``): 0 before
    the side's first packet, the SYN counts one, then every contiguous byte and the FIN."""
    if not getattr(half, "base_set", True):
        return 0
    size = 1 + int(getattr(half, "ctg_end", 0))
    fin = int(getattr(half, "fin_off", -1))
    if 0 <= fin <= int(getattr(half, "ctg_end", 0)):
        size += 1
    return size & 0xFFFFFFFF


def matches(cond: StreamSize, session: Any) -> bool:
    """``session``: the flow's ``TcpSession`` (None: no TCP session, no match)."""
    if session is None:
        return False
    client = getattr(session, "client", None)
    server = getattr(session, "server", None)
    if client is None or server is None:
        return False
    cs, ss = half_size(client), half_size(server)
    if cond.side == "server":
        return compare(ss, cond.op, cond.value)
    if cond.side == "client":
        return compare(cs, cond.op, cond.value)
    a, b = compare(ss, cond.op, cond.value), compare(cs, cond.op, cond.value)
    return (a and b) if cond.side == "both" else (a or b)


def all_match(conds: Sequence[StreamSize], pkt_proto: int, session: Any) -> bool:
    if pkt_proto != 6:
        return False
    return all(matches(c, session) for c in conds)


def _match(ctx: MatchContext, conds: tuple[StreamSize, ...]) -> bool:
    pkt = ctx.pkt
    return all_match(conds, pkt.proto, getattr(ctx.flow, "tcp", None))


def match_setup(rule: Rule) -> tuple[MatchStep, ...]:
    if not rule.stream_size:
        return ()
    conds = tuple(rule.stream_size)
    return _STEPS.get(conds, lambda: ((_match, conds, "stream_size"),))


_STEPS: StepCache[tuple[MatchStep, ...]] = StepCache()


SPECS: tuple[KeywordSpec, ...] = (
    KeywordSpec("stream_size", setup_stream_size, quotes=Quotes.FORBIDDEN, stage=Stage.MATCH,
                match=match_setup, match_order=MatchOrder.STREAM_SIZE),
)
