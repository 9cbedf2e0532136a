"""DNS detection: sticky buffers (``rust/src/dns/detect.rs``, ``src/detect-dns-name.c``,
``src/detect-dns-response.c``) and the ``dns.opcode`` / ``dns.rcode`` / ``dns.rrtype``
keywords with Suricata's unsigned-integer syntax (``rust/src/detect/uint.rs``).

Multi buffers list one entry per name and, as Suricata's multi-buffer getters, stop at the
first empty name (the root). A getter returns None when its side of the transaction has
no message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ruleengine.applayer.base import BufferDirection, BufferSpec, TxKeyword, TxMatchContext
from ruleengine.applayer.dns.parser import DnsTransaction
from ruleengine.applayer.dns.wire import (
    RCODE_BY_NAME,
    RRTYPE_BY_NAME,
    DnsName,
    Message,
    Record,
    Soa,
)

_TS, _TC, _BOTH = BufferDirection.TO_SERVER, BufferDirection.TO_CLIENT, BufferDirection.BOTH


def _names(names: Iterable[DnsName]) -> list[bytes]:
    out: list[bytes] = []
    for name in names:
        if not name.value:
            break
        out.append(name.value)
    return out


def _msg(tx: Any, to_server: bool) -> Message | None:
    message = getattr(tx, "request" if to_server else "response", None)
    return message if isinstance(message, Message) else None


def _queries(to_server: bool) -> Callable[[Any], list[bytes] | None]:
    def get(tx: Any) -> list[bytes] | None:
        m = _msg(tx, to_server)
        return None if m is None else _names(q.name for q in m.queries)
    return get


def _answers(to_server: bool) -> Callable[[Any], list[bytes] | None]:
    def get(tx: Any) -> list[bytes] | None:
        m = _msg(tx, to_server)
        return None if m is None else _names(r.name for r in m.answers)
    return get


def _response_section(attr: str) -> Callable[[Any], list[bytes] | None]:
    """Authorities / additionals: always the response's (``SCDnsTxGetAuthorityName``)."""
    def get(tx: Any) -> list[bytes] | None:
        m = _msg(tx, False)
        return None if m is None else _names(r.name for r in getattr(m, attr))
    return get


def rdata_name(record: Record) -> DnsName | None:
    """``get_rdata_name``: CNAME, PTR, MX, NS targets and the SOA mname."""
    if isinstance(record.data, DnsName):
        return record.data
    if isinstance(record.data, Soa):
        return record.data.mname
    return None


def response_rrnames(tx: Any) -> list[bytes] | None:
    """``dns.response.rrname``: the response's query names, then for each answer,
    authority and additional its name and (when a name) its rdata."""
    m = _msg(tx, False)
    if m is None:
        return None
    out = _names(q.name for q in m.queries)
    for section in (m.answers, m.authorities, m.additionals):
        for record in section:
            if not record.name.value:
                break
            out.append(record.name.value)
            target = rdata_name(record)
            if target is not None and target.value:
                out.append(target.value)
    return out


BUFFERS: tuple[BufferSpec, ...] = (
    BufferSpec("dns.query", ("dns_query",), None, None, _TS, multi=True,
               getter=_queries(True)),
    BufferSpec("dns.query.name", (), None, None, _BOTH, multi=True,
               getter=_queries(True), getter_toclient=_queries(False)),
    BufferSpec("dns.queries.rrname", (), None, None, _BOTH, multi=True,
               getter=_queries(True), getter_toclient=_queries(False)),
    BufferSpec("dns.answer.name", (), None, None, _BOTH, multi=True,
               getter=_answers(True), getter_toclient=_answers(False)),
    BufferSpec("dns.answers.rrname", (), None, None, _BOTH, multi=True,
               getter=_answers(True), getter_toclient=_answers(False)),
    BufferSpec("dns.authorities.rrname", (), None, None, _BOTH, multi=True,
               getter=_response_section("authorities"),
               getter_toclient=_response_section("authorities")),
    BufferSpec("dns.additionals.rrname", (), None, None, _BOTH, multi=True,
               getter=_response_section("additionals"),
               getter_toclient=_response_section("additionals")),
    BufferSpec("dns.response.rrname", (), None, None, _TC, multi=True,
               getter=response_rrnames),
)


# --------------------------------------------------------------------- integers
@dataclass(frozen=True, slots=True)
class UintMatch:
    """One of Suricata's uint modes: eq, ne, lt, lte, gt, gte, range, nrange, bitmask,
    nbitmask (``arg1 <op> value`` as ``DetectUintData``)."""

    mode: str
    arg1: int
    arg2: int = 0

    def __call__(self, value: int) -> bool:
        a, b = self.arg1, self.arg2
        return {
            "eq": value == a, "ne": value != a, "lt": value < a, "lte": value <= a,
            "gt": value > a, "gte": value >= a, "range": a < value < b,
            "nrange": not a < value < b, "bitmask": (value & a) == b,
            "nbitmask": (value & a) != b,
        }[self.mode]


_NUM = r"(?:0[xX][0-9a-fA-F]+|\d+)"
_UINT_RE = [
    (re.compile(rf"^(!)?\s*({_NUM})\s*-\s*({_NUM})$"), "interval"),
    (re.compile(rf"^({_NUM})\s*<>\s*({_NUM})$"), "diamond"),
    (re.compile(rf"^&\s*({_NUM})\s*(!?=)\s*({_NUM})$"), "bitmask"),
    (re.compile(rf"^(>=|<=|>|<|!=|!|==|=)?\s*({_NUM})$"), "mode"),
]
_MODE = {None: "eq", "=": "eq", "==": "eq", "!": "ne", "!=": "ne", "<": "lt", "<=": "lte",
         ">": "gt", ">=": "gte"}


def _num(text: str, bits: int) -> int:
    value = int(text, 16) if text[:2].lower() == "0x" else int(text)
    if value >= 1 << bits:
        raise ValueError(f"{text}: out of range for an unsigned {bits}-bit integer")
    return value


def parse_uint(text: str | None, bits: int, names: dict[str, int] | None = None) -> UintMatch:
    """``detect_parse_uint`` (plus ``_enum``: a name, or ``!name``)."""
    if text is None or not text.strip():
        raise ValueError("a value is required")
    raw = text.strip()
    for pattern, kind in _UINT_RE:
        found = pattern.match(raw)
        if not found:
            continue
        if kind == "interval":
            lo, hi = _num(found.group(2), bits), _num(found.group(3), bits)
            if lo >= hi:
                raise ValueError(f"{raw}: range needs min < max")
            return UintMatch("nrange" if found.group(1) else "range", lo, hi)
        if kind == "diamond":
            lo, hi = _num(found.group(1), bits), _num(found.group(2), bits)
            if lo >= hi:
                raise ValueError(f"{raw}: range needs min < max")
            return UintMatch("range", lo, hi)
        if kind == "bitmask":
            mask, val = _num(found.group(1), bits), _num(found.group(3), bits)
            return UintMatch("bitmask" if found.group(2) == "=" else "nbitmask", mask, val)
        mode = _MODE[found.group(1)]
        value = _num(found.group(2), bits)
        if (mode == "lt" and value == 0) or (mode == "gt" and value == (1 << bits) - 1):
            raise ValueError(f"{raw}: can never match")
        return UintMatch(mode, value)
    if names is not None:
        negated = raw.startswith("!")
        key = raw[1:].strip().lower() if negated else raw.lower()
        if key in names:
            return UintMatch("ne" if negated else "eq", names[key])
    raise ValueError(f"invalid value {raw!r}")


@dataclass(frozen=True, slots=True)
class MultiUint:
    """A multi-integer (``dns.rrtype``): ``value[,index]``; index ``any`` (default),
    ``all``, ``all1`` (all, and at least one), or a position (negative: from the end)."""

    match: UintMatch
    index: str | int = "any"

    def __call__(self, values: list[int]) -> bool:
        if self.index == "any":
            return any(self.match(v) for v in values)
        if self.index == "all":
            return all(self.match(v) for v in values)
        if self.index == "all1":
            return bool(values) and all(self.match(v) for v in values)
        assert isinstance(self.index, int)
        try:
            return self.match(values[self.index])
        except IndexError:
            return False


def parse_multi_uint(text: str | None, bits: int, names: dict[str, int]) -> MultiUint:
    if text is None or not text.strip():
        raise ValueError("a value is required")
    value, _, index = text.partition(",")
    index = index.strip().lower()
    position: str | int = "any"
    if index:
        if index in ("any", "all", "all1"):
            position = index
        else:
            try:
                position = int(index)
            except ValueError:
                raise ValueError(f"invalid index {index!r}") from None
    return MultiUint(parse_uint(value, bits, names), position)


# --------------------------------------------------------------------- keywords
def _header_flags(tx: Any, ctx: TxMatchContext) -> int | None:
    m = _msg(tx, ctx.to_server)
    return None if m is None else m.header.flags


def _missing(tx: Any, to_server: bool) -> bool | None:
    """The side has no message: None while it may still come, else no match."""
    done = getattr(tx, "request_complete" if to_server else "response_complete", True)
    return False if done else None


def _match_opcode(arg: UintMatch, tx: Any, ctx: TxMatchContext) -> bool | None:
    flags = _header_flags(tx, ctx)
    if flags is None:
        return _missing(tx, ctx.to_server)
    return arg((flags >> 11) & 0xF)


def _match_rcode(arg: UintMatch, tx: Any, ctx: TxMatchContext) -> bool | None:
    flags = _header_flags(tx, ctx)
    if flags is None:
        return _missing(tx, ctx.to_server)
    return arg(flags & 0xF)


def _match_rrtype(arg: MultiUint, tx: Any, ctx: TxMatchContext) -> bool | None:
    """To server: the request's query types; to client: the response's answer types."""
    m = _msg(tx, ctx.to_server)
    if m is None:
        return _missing(tx, ctx.to_server)
    values = [q.rrtype for q in m.queries] if ctx.to_server else [a.rrtype for a in m.answers]
    return arg(values)


KEYWORDS: tuple[TxKeyword, ...] = (
    TxKeyword("dns.opcode", lambda v: parse_uint(v, 8), _match_opcode, _BOTH,
              negatable=True, doc="DNS header opcode (uint8)"),
    TxKeyword("dns.rcode", lambda v: parse_uint(v, 16, RCODE_BY_NAME), _match_rcode, _BOTH,
              negatable=True, doc="DNS header rcode (uint, or a name such as NXDOMAIN)"),
    TxKeyword("dns.rrtype", lambda v: parse_multi_uint(v, 16, RRTYPE_BY_NAME), _match_rrtype,
              _BOTH, negatable=True,
              doc="query types (to server) / answer types (to client); uint or name"),
)

__all__ = ["BUFFERS", "KEYWORDS", "DnsTransaction", "parse_multi_uint", "parse_uint",
           "response_rrnames"]
