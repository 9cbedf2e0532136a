"""``stream_size`` (``src/detect-stream_size.c``): compare the TCP stream sizes of a
flow, in sequence space as Suricata does (``next_seq - isn``: the SYN counts one, the
FIN one more), for the server, the client, both or either side."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ruleengine.rules.model import StreamSize


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
