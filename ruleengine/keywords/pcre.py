"""pcre:"[!]/regex/flags" (``src/detect-pcre.c``), compiled with PCRE2 as Suricata does.

Flags: i m s x A E G O (PCRE options; ``O`` only overrides match limits), R (relative),
B (no-op), and the HTTP buffer letters of ``ruleengine.buffers.PCRE_LETTERS``.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pcre2

from ruleengine.buffers import PCRE_LETTERS
from ruleengine.keywords.registry import KeywordSpec, Quotes, Stage
from ruleengine.rules.errors import KeywordError
from ruleengine.rules.model import PcreMatch

if TYPE_CHECKING:
    from ruleengine.rules.builder import RuleBuilder

# PCRE2 compile options (pcre2.h); the python binding passes unknown bits through.
_CASELESS = 0x00000008
_MULTILINE = 0x00000400
_DOTALL = 0x00000020
_EXTENDED = 0x00000080
_DOLLAR_ENDONLY = 0x00000010
_UNGREEDY = 0x00040000
_OPTION_BITS = {
    "i": _CASELESS,
    "m": _MULTILINE,
    "s": _DOTALL,
    "x": _EXTENDED,
    "E": _DOLLAR_ENDONLY,
    "G": _UNGREEDY,
}
GENERAL_FLAGS = frozenset("imsxAEGO")


class CompiledPcre:
    """A PCRE2 pattern, compiled at load time (so a bad regex is a load error), JIT-compiled
    on first use (most rules never reach their pcre), and pickled as its source (the rule
    cache stores no compiled code; it is recompiled on first use)."""

    __slots__ = ("_code", "_jitted", "options", "pattern")

    def __init__(self, pattern: bytes, options: int, *, compile_now: bool = True) -> None:
        self.pattern = pattern
        self.options = options
        self._jitted = False
        self._code: Any = _compile(pattern, options) if compile_now else None

    @property
    def code(self) -> Any:
        """The ``pcre2.Pattern``, JIT-compiled when the library supports it."""
        if self._code is None:
            self._code = _compile(self.pattern, self.options)
        if not self._jitted:
            self._jitted = True
            with contextlib.suppress(Exception):  # no JIT on this platform: interpret
                self._code.jit_compile()
        return self._code

    def search(self, subject: bytes, pos: int = 0, endpos: int = sys.maxsize) -> Any:
        return self.code.search(subject, pos, endpos)

    def match(self, subject: bytes, pos: int = 0, endpos: int = sys.maxsize) -> Any:
        return self.code.match(subject, pos, endpos)

    def __getstate__(self) -> tuple[bytes, int]:
        return (self.pattern, self.options)

    def __setstate__(self, state: tuple[bytes, int]) -> None:
        self.pattern, self.options = state
        self._code = None
        self._jitted = False

    def __repr__(self) -> str:
        return f"CompiledPcre({self.pattern!r}, {self.options:#x})"


def _compile(pattern: bytes, options: int) -> Any:
    return pcre2.compile(pattern, pcre2.RegexFlag(options), jit=False)


def compile_regex(regex: str, flags: Iterable[str]) -> CompiledPcre:
    """``/regex/flags`` as Suricata compiles it; ``flags``: the general ones (i m s x A E G
    O, others are ignored). Raises ``pcre2.PatternError`` when it does not compile."""
    letters = set(flags)
    options = 0
    for letter in letters:
        options |= _OPTION_BITS.get(letter, 0)
    raw = regex.encode("utf-8", "surrogateescape")
    if "A" in letters:
        raw = _anchored(raw, bool(options & _EXTENDED))
    return CompiledPcre(raw, options)


def _anchored(regex: bytes, extended: bool) -> bytes:
    """PCRE2_ANCHORED (the ``A`` flag) as a pattern prefix: ``\\G`` anchors at the start
    offset like the option does. Leading ``(*VERB)`` settings must stay first."""
    head = b""
    while regex.startswith(b"(*"):
        close = regex.find(b")")
        if close < 0:
            break
        head, regex = head + regex[: close + 1], regex[close + 1 :]
    tail = b"\n)" if extended else b")"  # a trailing "# comment" must not eat the ")"
    return head + b"\\G(?:" + regex + tail


def parse_pcre(value: str) -> tuple[str, str, bool, int]:
    """-> (regex, flags, negated, offset of the regex in value)."""
    pos = 0
    negated = False
    if value.startswith("!"):
        negated = True
        pos = 1
    # Suricata takes the pattern quoted or bare (SIGMATCH_QUOTES_OPTIONAL): pcre:/a/U;
    if len(value) - pos >= 2 and value[pos] == '"' and value.endswith('"'):
        body_start = pos + 1
        body = value[body_start:-1]
    elif '"' in value[pos:]:
        raise KeywordError(
            "pcre value has an unbalanced double quote",
            code="missing-quotes",
            value_range=(0, len(value)),
        )
    else:
        body_start = pos
        body = value[body_start:]
    if not body.startswith("/"):
        raise KeywordError(
            "pcre must start with '/' (\"/regex/flags\")",
            code="invalid-pcre",
            value_range=(body_start, body_start + 1),
        )
    last = body.rfind("/")
    if last == 0:
        raise KeywordError(
            "pcre is missing its closing '/'",
            code="invalid-pcre",
            value_range=(body_start, len(value) - 1),
        )
    return body[1:last], body[last + 1 :], negated, body_start + 1


def setup_pcre(b: RuleBuilder, value: str | None) -> None:
    assert value is not None
    regex, flags, negated, regex_at = parse_pcre(value)
    flags_at = regex_at + len(regex) + 1
    flags, capture_vars = _capture_names(flags, flags_at)
    general = []
    relative = False
    buffer: str | None = None
    for i, flag in enumerate(flags):
        if flag in GENERAL_FLAGS:
            general.append(flag)
        elif flag == "R":
            relative = True
        elif flag == "B":
            pass
        elif flag in PCRE_LETTERS:
            wanted = PCRE_LETTERS[flag]
            if buffer is not None and buffer != wanted:
                raise KeywordError(
                    f"pcre flags select two buffers ({buffer} and {wanted})",
                    code="invalid-pcre",
                    value_range=(flags_at + i, flags_at + i + 1),
                )
            buffer = wanted
        else:
            raise KeywordError(
                f"unknown pcre flag '{flag}'",
                code="invalid-pcre",
                value_range=(flags_at + i, flags_at + i + 1),
                hint="valid: i m s x A E G R O B and the buffer letters "
                + " ".join(sorted(PCRE_LETTERS)),
            )
    if buffer is not None and b.sticky is not None and _same_buffer(b.sticky.name, buffer):
        buffer = None  # the letter names the active sticky buffer: nothing to switch
    if buffer is not None and b.sticky is not None:
        raise KeywordError(
            f"pcre buffer flag selects {buffer} but sticky buffer {b.sticky.name} is active",
            code="conflicting-buffer",
            value_range=(flags_at, flags_at + len(flags)),
        )
    try:
        compiled = compile_regex(regex, general)
    except pcre2.PatternError as exc:
        where = _error_offset(exc, len(regex))
        raise KeywordError(
            f"pcre does not compile: {_pcre_message(exc)}",
            code="pcre-compile",
            value_range=(regex_at + where, regex_at + where + 1),
        ) from None
    item = PcreMatch(
        regex=regex,
        flags="".join(general),
        negated=negated,
        relative=relative,
        compiled=compiled,
        span=b.option_span,
        capture_vars=capture_vars,
    )
    groups = int(getattr(compiled.code, "groups", 0) or 0) if capture_vars else 0
    if len(capture_vars) > groups:
        raise KeywordError(
            f"pcre names {len(capture_vars)} capture variables but has {groups} capture "
            "group(s)",
            code="invalid-pcre",
            value_range=(flags_at, flags_at + len(flags)),
        )
    if buffer is not None:
        target = b.buffer_list(buffer)
        target.items.append(item)
        b.last_match_buffer = target
    else:
        b.add_item(item)


_CAPTURE_SCOPES = (("flow:", "flow"), ("pkt:", "pkt"))


def _capture_names(flags: str, flags_at: int) -> tuple[str, tuple[tuple[str, str], ...]]:
    """Split ``"VG, flow:key,pkt:value"`` into the flags and the capture variables
    (DetectPcreParseCapture: each name is ``flow:<name>`` or ``pkt:<name>``)."""
    comma = flags.find(",")
    if comma == -1:
        return flags, ()
    out: list[tuple[str, str]] = []
    for name in flags[comma + 1:].split(","):
        name = name.strip()
        for prefix, scope in _CAPTURE_SCOPES:
            if name.startswith(prefix) and len(name) > len(prefix):
                out.append((scope, name[len(prefix):]))
                break
        else:
            raise KeywordError(
                f"pcre capture name '{name}' must be flow:<name> or pkt:<name>",
                code="invalid-pcre",
                value_range=(flags_at + comma + 1, flags_at + len(flags)),
            )
    return flags[:comma].rstrip(), tuple(out)


# Suricata 5+ inspects http_server_body / http.response_body as the file_data buffer.
_SAME = {frozenset({"file.data", "http.response_body"})}


def _same_buffer(a: str, b: str) -> bool:
    return a == b or frozenset({a, b}) in _SAME


def _error_offset(exc: Exception, limit: int) -> int:
    m = re.search(r"at position (\d+)", str(exc))
    # PCRE2 offsets count bytes; close enough for ASCII patterns, clamped otherwise.
    return max(0, min(int(m.group(1)), max(limit - 1, 0))) if m else 0


def _pcre_message(exc: Exception) -> str:
    text = str(exc)
    return text or exc.__class__.__name__


SPECS: tuple[KeywordSpec, ...] = (
    KeywordSpec(
        "pcre",
        setup_pcre,
        negatable=True,
        quotes=Quotes.OPTIONAL,
        stage=Stage.MATCH,
        doc="PCRE2 regular expression on the active buffer",
    ),
)
