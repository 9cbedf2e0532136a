"""The HTTP buffer registry: one entry per inspectable buffer.

Each entry names the buffer (canonical dotted sticky-buffer name), its keyword
aliases, the legacy content modifier that maps to it, its pcre letter, the
direction it exists in, and the getter that extracts it from an HTTP transaction.
A new sticky buffer is one entry here. Rule parsing reads names/aliases/modifiers/
letters; detection reads directions and getters.

``getter`` takes a transaction (``ruleengine.applayer.http1`` type) and returns the
buffer bytes or None when absent. ``multi`` buffers (one buffer per header) return a
list of bytes instead.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class BufferDirection(enum.Enum):
    TO_SERVER = "toserver"
    TO_CLIENT = "toclient"
    BOTH = "both"


Getter = Callable[[Any], "bytes | list[bytes] | None"]


@dataclass(frozen=True)
class BufferSpec:
    name: str
    aliases: tuple[str, ...] = ()
    legacy_modifier: str | None = None
    pcre_letter: str | None = None
    direction: BufferDirection = BufferDirection.TO_SERVER
    multi: bool = False
    # Suricata rejects nocase / uppercase patterns on these (normalised lowercase).
    lowercase_only: bool = False
    # A space in a pattern is a rule error (http.method, http.protocol).
    no_spaces: bool = False
    getter: Getter | None = None


_TS, _TC, _BOTH = BufferDirection.TO_SERVER, BufferDirection.TO_CLIENT, BufferDirection.BOTH

_SPECS: tuple[BufferSpec, ...] = (
    BufferSpec("http.uri", ("http_uri",), "http_uri", "U", _TS),
    BufferSpec("http.uri.raw", ("http_raw_uri",), "http_raw_uri", "I", _TS),
    BufferSpec("http.method", ("http_method",), "http_method", "M", _TS, no_spaces=True),
    BufferSpec("http.request_line", ("http_request_line",), None, None, _TS),
    BufferSpec("http.request_body", ("http_client_body",), "http_client_body", "P", _TS),
    BufferSpec("http.response_line", ("http_response_line",), None, None, _TC),
    BufferSpec("http.response_body", ("http_server_body",), "http_server_body", None, _TC),
    BufferSpec("file.data", ("file_data",), None, "Q", _BOTH),
    BufferSpec("http.header", ("http_header",), "http_header", "H", _BOTH),
    BufferSpec("http.header.raw", ("http_raw_header",), "http_raw_header", "D", _BOTH),
    BufferSpec("http.header_names", ("http_header_names",), None, None, _BOTH),
    BufferSpec("http.start", ("http_start",), None, None, _BOTH),
    BufferSpec("http.request_header", ("http_request_header",), None, None, _TS, multi=True),
    BufferSpec("http.response_header", ("http_response_header",), None, None, _TC, multi=True),
    BufferSpec("http.host", ("http_host",), "http_host", "W", _TS, lowercase_only=True),
    BufferSpec("http.host.raw", ("http_raw_host",), "http_raw_host", "Z", _TS),
    BufferSpec("http.user_agent", ("http_user_agent",), "http_user_agent", "V", _TS),
    BufferSpec("http.cookie", ("http_cookie",), "http_cookie", "C", _BOTH),
    BufferSpec("http.stat_code", ("http_stat_code",), "http_stat_code", "S", _TC),
    BufferSpec("http.stat_msg", ("http_stat_msg",), "http_stat_msg", "Y", _TC),
    BufferSpec("http.protocol", ("http_protocol",), None, None, _BOTH, no_spaces=True),
    BufferSpec("http.content_type", ("http_content_type",), None, None, _BOTH),
    BufferSpec("http.content_len", ("http_content_len",), None, None, _BOTH),
    BufferSpec("http.referer", ("http_referer",), None, None, _TS),
    BufferSpec("http.accept", ("http_accept",), None, None, _TS),
    BufferSpec("http.accept_enc", ("http_accept_enc",), None, None, _TS),
    BufferSpec("http.accept_lang", ("http_accept_lang",), None, None, _TS),
    BufferSpec("http.connection", ("http_connection",), None, None, _BOTH),
    BufferSpec("http.location", ("http_location",), None, None, _TC),
    BufferSpec("http.server", ("http_server",), None, None, _TC),
)

BUFFERS: dict[str, BufferSpec] = {spec.name: spec for spec in _SPECS}
"""Canonical name -> spec."""

STICKY_KEYWORDS: dict[str, str] = {
    alias: spec.name for spec in _SPECS for alias in (spec.name, *spec.aliases)
}
"""Every sticky-buffer keyword (dotted name or underscore alias) -> canonical name."""

LEGACY_MODIFIERS: dict[str, str] = {
    spec.legacy_modifier: spec.name for spec in _SPECS if spec.legacy_modifier
}
"""Legacy content modifier (``http_uri``...) -> canonical buffer name.
Note: ``http_uri`` etc. are both a legacy modifier (after a content) and a sticky
alias (before it); the rule parser tells them apart by position."""

PCRE_LETTERS: dict[str, str] = {spec.pcre_letter: spec.name for spec in _SPECS if spec.pcre_letter}
"""pcre buffer flag letter -> canonical buffer name."""


def set_getter(name: str, getter: Getter) -> None:
    """Attach the transaction getter of a buffer (done by the HTTP layer at import)."""
    spec = BUFFERS[name]
    BUFFERS[name] = BufferSpec(**{**spec.__dict__, "getter": getter})
