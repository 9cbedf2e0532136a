"""RuleBuilder: the state a rule's keywords act on while its options are set up in order.

It mirrors Suricata's signature init data: the active sticky buffer (``list``), the
most recent content (what modifiers like ``nocase``/``http_uri`` apply to), and what
the final validation needs (fast_pattern, spans of modifiers for positioned errors).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ruleengine.buffers import BUFFERS
from ruleengine.rules.errors import KeywordError, RuleError
from ruleengine.rules.model import (
    PAYLOAD,
    BufferMatch,
    ContentMatch,
    InspectItem,
    PcreMatch,
    Rule,
    Span,
)

HTTP_APP_PROTOS = frozenset({"http", "http2"})


@dataclass(slots=True)
class Finding:
    """A warning found while building (errors are raised instead)."""

    message: str
    code: str
    span: Span
    hint: str | None = None


@dataclass(slots=True)
class StickyState:
    name: str
    match: re.Match[str] | None  # the sticky keyword's option (span built on error only)
    items_at_set: int
    supported: bool
    buf: BufferMatch


@dataclass
class RuleBuilder:
    rule: Rule
    file: str
    line: int
    # The option being set up (the parser's match, groups "name" and "value"); positions
    # and spans are derived from it only when a keyword needs them.
    match: re.Match[str] | None = None
    sticky: StickyState | None = None
    last_content: ContentMatch | None = None
    last_content_buffer: BufferMatch | None = None
    # The list of the last content/pcre: where a relative isdataat/byte_*/pcre goes when no
    # sticky buffer is active (Suricata's DetectGetLastSMFromLists).
    last_match_buffer: BufferMatch | None = None
    explicit_fast_pattern: tuple[str, ContentMatch, Span] | None = None
    # Spans of modifiers, for errors found after the fact (id(content) -> span).
    nocase_spans: dict[int, re.Match[str] | None] = field(default_factory=dict)
    moved: set[int] = field(default_factory=set)
    lists: dict[str, BufferMatch] = field(default_factory=dict)  # rule.buffers by name
    warnings: list[Finding] = field(default_factory=list)
    # an app-layer buffer or keyword was used (historic name), and its protocol
    uses_http_buffers: bool = False
    keyword_alproto: str | None = None
    sid_seen: bool = False
    # byte_extract / byte_math result names usable by later offset/depth/... values.
    variables: set[str] = field(default_factory=set)
    bypass_span: Span | None = None
    filestore_span: Span | None = None
    fast_pattern_spans: dict[int, re.Match[str] | None] = field(default_factory=dict)
    first_http_match: re.Match[str] | None = None

    # --- buffers --------------------------------------------------------------------

    def buffer_list(self, name: str) -> BufferMatch:
        buf = self.lists.get(name)
        if buf is not None:
            return buf
        buf = self.lists[name] = BufferMatch(name)
        self.rule.buffers.append(buf)
        spec = BUFFERS.get(name)
        if spec is not None and name != "file.data" and not self.uses_http_buffers:
            self.note_app_keyword(spec.alproto)
        return buf

    def note_app_keyword(self, alproto: str) -> None:
        """An app-layer buffer or keyword of ``alproto``: the rule's protocol follows from it
        (Suricata's DetectSignatureSetAppProto), the first one decides."""
        if not self.uses_http_buffers:
            self.uses_http_buffers = True
            self.keyword_alproto = alproto
            self.first_http_match = self.match

    def current_list(self) -> BufferMatch:
        """Where a new match goes: the active sticky buffer, else the payload."""
        sticky = self.sticky
        return sticky.buf if sticky is not None else self.buffer_list(PAYLOAD)

    def add_item(self, item: InspectItem) -> BufferMatch:
        if (
            self.sticky is None
            and self.last_match_buffer is not None
            and not isinstance(item, ContentMatch)
            and getattr(item, "relative", False)
        ):
            buf = self.last_match_buffer  # relative to a content moved by http_uri etc.
        else:
            buf = self.current_list()
        buf.items.append(item)
        if isinstance(item, ContentMatch):
            self.last_content = item
            self.last_content_buffer = buf
            self.last_match_buffer = buf
        elif isinstance(item, PcreMatch):
            self.last_match_buffer = buf
        return buf

    def set_sticky(self, name: str, *, supported: bool = True) -> None:
        """Switch the active buffer (``http.uri``, ``pkt_data`` resets with name PAYLOAD)."""
        self.check_sticky_used()
        if name == PAYLOAD:
            self.sticky = None
            return
        buf = self.buffer_list(name)
        self.sticky = StickyState(name, self.match, len(buf.items), supported, buf)

    def check_sticky_used(self) -> None:
        """Suricata: "setup buffer %s but didn't add matches to it"."""
        st = self.sticky
        if st is None:
            return
        if len(st.buf.items) == st.items_at_set:
            raise RuleError(
                f"sticky buffer '{st.name}' is set but no match was added to it",
                self.span_of(st.match),
                code="empty-sticky-buffer",
                hint="add a content/pcre/bsize after the buffer keyword, or remove it",
            )

    def content_for_modifier(self, keyword: str) -> tuple[ContentMatch, BufferMatch]:
        """The content a modifier applies to: the last content of the active sticky buffer,
        or the most recent content when no sticky buffer is set."""
        content, buf = self.last_content, self.last_content_buffer
        if self.sticky is not None:
            active = self.sticky.buf
            if buf is not active:
                content = next(
                    (i for i in reversed(active.items) if isinstance(i, ContentMatch)), None
                )
                buf = active
        if content is None or buf is None:
            raise KeywordError(
                f"'{keyword}' needs a preceding content",
                code="modifier-without-content",
                hint="content modifiers apply to the content option before them",
            )
        return content, buf

    @property
    def opt_start(self) -> int:
        return self.match.start("name") if self.match is not None else 0

    @property
    def opt_end(self) -> int:
        return self.match.end() if self.match is not None else 0

    @property
    def val_start(self) -> int:
        """0-based start of the stripped value, -1 when the option has no value."""
        m = self.match
        if m is None or m.group("value") is None:
            return -1
        raw = m.group("value")
        return m.start("value") + len(raw) - len(raw.lstrip())

    @property
    def val_end(self) -> int:
        m = self.match
        if m is None or m.group("value") is None:
            return -1
        return self.val_start + len(m.group("value").strip())

    def span_of(self, match: re.Match[str] | None) -> Span:
        """The span of an option from its parser match (kept instead of a Span so the
        common, error-free path allocates nothing)."""
        if match is None:
            return self.rule.span
        return Span(self.file, self.line, match.start("name") + 1, match.end() + 1)

    @property
    def first_http_span(self) -> Span | None:
        return self.span_of(self.first_http_match) if self.first_http_match else None

    @property
    def option_span(self) -> Span:
        return Span(self.file, self.line, self.opt_start + 1, self.opt_end + 1)

    @property
    def value_span(self) -> Span | None:
        if self.val_start < 0:
            return None
        return Span(self.file, self.line, self.val_start + 1, self.val_end + 1)

    def warn(
        self, message: str, code: str, span: Span | None = None, hint: str | None = None
    ) -> None:
        self.warnings.append(Finding(message, code, span or self.option_span, hint))

    def value_subspan(self, start: int, end: int) -> Span:
        base = self.val_start if self.val_start >= 0 else self.opt_start
        return Span(self.file, self.line, base + 1 + start, base + 1 + end)
