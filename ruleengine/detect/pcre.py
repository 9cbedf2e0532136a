"""``pcre`` keyword: PCRE2 (JIT) compilation and matching with Suricata's semantics.

Suricata compiles ``/re/flags`` with PCRE2 options i m s x A E G and matches on the
buffer (or, with ``R``, on the buffer from the previous match end). The pattern is compiled
by the keyword (:func:`ruleengine.keywords.pcre.compile_regex`: the PyPI ``pcre2`` binding
with JIT, never Python's ``re``, a different dialect).
"""

from __future__ import annotations

from typing import Any

from ruleengine.keywords.pcre import compile_regex
from ruleengine.rules.model import PcreMatch


class PcreCompileError(ValueError):
    """The regex does not compile with PCRE2 (the rule is skipped with this reason)."""


def compile_pcre(item: PcreMatch) -> Any:
    """The item's compiled pattern: the one its keyword compiled at load time, else (an
    item built otherwise) compiled now, the same way, and cached in ``item.compiled``."""
    if item.compiled is not None:
        return item.compiled
    try:
        item.compiled = compile_regex(item.regex, item.flags)
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
