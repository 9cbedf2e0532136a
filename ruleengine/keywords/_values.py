"""Small shared value parsers for keywords (integers, integer conditions, option lists)."""

from __future__ import annotations

import re

from ruleengine.rules.errors import KeywordError
from ruleengine.rules.model import IntCondition, IntOp

_INT_RE = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F]+|\d+)\Z")
_VAR_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*\Z")


def match_syntax(pattern: re.Pattern[str], value: str, keyword: str,
                 usage: str) -> re.Match[str]:
    """``value`` matched against the keyword's syntax, or an error with ``usage`` as hint."""
    m = pattern.match(value)
    if m is None:
        raise KeywordError(
            f"{keyword}: invalid value '{value}'", value_range=(0, len(value)), hint=usage
        )
    return m


def parse_int(
    text: str,
    what: str,
    *,
    start: int = 0,
    lo: int | None = None,
    hi: int | None = None,
) -> int:
    """An integer (decimal or 0x hex) with optional bounds; ``start`` is the offset of
    ``text`` in the option value (for the error span)."""
    if text.isdigit() and text.isascii():  # the common case: a plain decimal
        value = int(text)
        if (lo is None or value >= lo) and (hi is None or value <= hi):
            return value
    stripped = text.strip()
    lead = start + (len(text) - len(text.lstrip()))
    if not _INT_RE.match(stripped):
        raise KeywordError(
            f"{what}: '{stripped}' is not an integer",
            code="invalid-integer",
            value_range=(lead, lead + max(len(stripped), 1)),
        )
    value = int(stripped, 16 if "x" in stripped.lower() else 10)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        bounds = f"{lo if lo is not None else '-inf'}-{hi if hi is not None else 'inf'}"
        raise KeywordError(
            f"{what}: {value} is outside the allowed range {bounds}",
            code="out-of-range",
            value_range=(lead, lead + len(stripped)),
        )
    return value


def parse_int_or_var(
    text: str, what: str, variables: set[str], *, start: int = 0, lo: int | None = None
) -> int | str:
    """An integer or the name of a byte_extract/byte_math variable set earlier."""
    stripped = text.strip()
    if _VAR_RE.match(stripped):
        lead = start + (len(text) - len(text.lstrip()))
        if stripped not in variables:
            raise KeywordError(
                f"{what}: unknown byte_extract variable '{stripped}'",
                code="unknown-variable",
                value_range=(lead, lead + len(stripped)),
                hint="variables come from an earlier byte_extract or byte_math",
            )
        return stripped
    return parse_int(text, what, start=start, lo=lo)


_COND_RE = re.compile(
    r"\s*(?:(?P<op><=|>=|<|>|!=|!|=|&|\^)\s*(?P<v>[0-9xXa-fA-F]+)(?:\s*=\s*(?P<mv>[0-9xXa-fA-F]+))?"
    r"|(?P<neg>!)?(?P<lo>\d+)\s*(?P<rop><>|-)\s*(?P<hi>\d+)"
    r"|(?P<eq>[0-9xXa-fA-F]+))\s*\Z"
)


def parse_int_condition(
    text: str, what: str, *, start: int = 0, hi: int | None = None
) -> IntCondition:
    """Suricata's integer keyword syntax: ``N``, ``=N``, ``!N``, ``<N``, ``<=N``, ``>N``,
    ``>=N``, ``N-M``/``N<>M`` (exclusive range), ``!N-M``, ``&mask[=value]``, ``^mask``."""
    m = _COND_RE.match(text)
    if m is None:
        raise KeywordError(
            f"{what}: invalid value '{text.strip()}' "
            "(expected N, <N, >N, <=N, >=N, !N, N-M or N<>M)",
            code="invalid-integer",
            value_range=(start, start + max(len(text), 1)),
        )
    if m.group("eq") is not None:
        return IntCondition(IntOp.EQ, parse_int(m.group("eq"), what, start=start, lo=0, hi=hi))
    if m.group("op") is not None:
        op = {"!=": "!"}.get(m.group("op"), m.group("op"))
        val = parse_int(m.group("v"), what, start=start, lo=0, hi=hi)
        if op in ("&", "^"):
            mv = m.group("mv")
            masked = parse_int(mv, what, start=start, lo=0) if mv is not None else val
            return IntCondition(IntOp.BITMASK_SET if op == "&" else IntOp.BITMASK_NOT, val, masked)
        return IntCondition(IntOp(op), val)
    lo_v = parse_int(m.group("lo"), what, start=start, lo=0, hi=hi)
    hi_v = parse_int(m.group("hi"), what, start=start, lo=0, hi=hi)
    if lo_v >= hi_v:
        raise KeywordError(
            f"{what}: range {lo_v}-{hi_v} is empty (the low bound must be below the high one)",
            code="invalid-range",
            value_range=(start, start + len(text)),
        )
    return IntCondition(IntOp.NOT_RANGE if m.group("neg") else IntOp.RANGE, lo_v, hi_v)


def split_args(value: str) -> list[tuple[str, int]]:
    """Comma-separated arguments with their offsets in ``value``; each stripped."""
    out: list[tuple[str, int]] = []
    pos = 0
    for part in value.split(","):
        lead = len(part) - len(part.lstrip())
        out.append((part.strip(), pos + lead))
        pos += len(part) + 1
    return out
