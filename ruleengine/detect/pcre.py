"""``pcre`` keyword: PCRE2 (JIT) compilation and matching with Suricata's semantics.

Suricata compiles ``/re/flags`` with PCRE2 options i m s x A E G and matches on the
buffer (or, with ``R``, on the buffer from the previous match end). We use the PyPI
``pcre2`` binding with JIT, never Python's ``re`` (different dialect).
"""

from __future__ import annotations

from typing import Any

import pcre2

from ruleengine.rules.model import PcreMatch

# PCRE2 compile option bits (pcre2.h); the binding keeps unknown IntFlag bits.
_CASELESS = 0x00000008
_DOLLAR_ENDONLY = 0x00000010
_DOTALL = 0x00000020
_EXTENDED = 0x00000080
_MULTILINE = 0x00000400
_UNGREEDY = 0x00040000

_FLAG_BITS = {
    "i": _CASELESS,
    "m": _MULTILINE,
    "s": _DOTALL,
    "x": _EXTENDED,
    "E": _DOLLAR_ENDONLY,
    "G": _UNGREEDY,
}


class PcreCompileError(ValueError):
    """The regex does not compile with PCRE2 (the rule is skipped with this reason)."""


def _anchor(body: bytes) -> bytes:
    """Emulate PCRE2_ANCHORED (the binding drops that bit): ``\\G`` anchors at the
    start offset, exactly like the option does. Leading ``(*VERB)`` items must stay first."""
    prefix = b""
    while body.startswith(b"(*"):
        end = body.find(b")")
        if end < 0:
            break
        prefix += body[: end + 1]
        body = body[end + 1 :]
    return prefix + b"\\G(?:" + body + b")"


def compile_pcre(item: PcreMatch) -> Any:
    """Compile (once; cached in ``item.compiled``) and return the PCRE2 pattern."""
    if item.compiled is not None:
        return item.compiled
    options = 0
    for letter in item.flags:
        options |= _FLAG_BITS.get(letter, 0)
    body = item.regex.encode("utf-8", "surrogateescape")
    if "A" in item.flags:
        body = _anchor(body)
    try:
        item.compiled = pcre2.compile(body, pcre2.RegexFlag(options))
    except Exception as exc:  # PatternError, LibraryError, ValueError...
        raise PcreCompileError(f"pcre /{item.regex}/{item.flags}: {exc}") from exc
    return item.compiled


def pcre_search(code: Any, subject: bytes, start: int) -> tuple[int, int] | None:
    """First match at or after ``start`` as (start, end), or None. A PCRE2 matching
    error (match limit...) counts as no match, as in Suricata."""
    try:
        m = code.search(subject, start)
    except Exception:
        return None
    if m is None:
        return None
    span: tuple[int, int] = m.span()
    return span
