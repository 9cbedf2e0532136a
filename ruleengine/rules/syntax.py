"""The Lark LALR parser of ``grammar/rules.lark`` and the option scanner built from it."""

from __future__ import annotations

import re
from functools import cache

from lark import Lark

START_RULES = ["start", "rule", "header", "addresses", "ports"]


@cache
def parser() -> Lark:
    """The LALR parser (contextual lexer), built once per process; lark caches the
    grammar analysis on disk (``cache=True``) so later processes start faster."""
    return Lark.open_from_package(
        "ruleengine.grammar",
        "rules.lark",
        parser="lalr",
        lexer="contextual",
        start=START_RULES,
        cache=True,
        maybe_placeholders=False,
    )


@cache
def option_regex() -> re.Pattern[str]:
    """The grammar's OPTION terminal, with the name and value captured as groups.

    One source of truth: the pattern is taken from ``rules.lark`` and only split into
    ``name``/``value`` groups here."""
    source = parser().get_terminal("OPTION").pattern.to_regexp()
    expected = r'[^\s;:()"]+[ 	]*(:((\\.)|[^\\;])*)?;'
    if source != expected:  # grammar changed: keep the scanner in step with it
        raise RuntimeError(f"OPTION terminal changed: {source!r}")
    # Same language as the terminal; the value loop is unrolled ("normal* (escaped normal*)*")
    # because the plain alternation steps through its group once per character.
    return re.compile(
        r'[ \t\r\n]*(?P<name>[^\s;:()"]+)[ \t]*'
        r"(?::(?P<value>[^\\;]*(?:\\.[^\\;]*)*))?;",
        re.S,
    )
