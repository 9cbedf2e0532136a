"""The HTTP buffer registry: one entry per inspectable buffer.

Each entry names the buffer (canonical dotted sticky-buffer name), its keyword
aliases, the legacy content modifier that maps to it, its pcre letter, the
direction it exists in, and the getter that extracts it from an HTTP transaction.
A new sticky buffer is one entry here. Rule parsing reads names/aliases/modifiers/
letters; detection reads directions and getters.

``getter`` takes a transaction (``ruleengine.applayer.http1`` type) and returns the
buffer bytes or None when absent. ``multi`` buffers (one buffer per header) return a
list of bytes instead. ``getter`` reads the side named by ``direction``; for ``BOTH``
buffers it is the request (to-server) side and ``getter_toclient`` the response side.
Use :func:`getter_for` to pick by direction.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ruleengine.applayer.http1 import getters as _http


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
    # Response-side getter of a BOTH buffer (``getter`` is then the request side).
    getter_toclient: Getter | None = None


_TS, _TC, _BOTH = BufferDirection.TO_SERVER, BufferDirection.TO_CLIENT, BufferDirection.BOTH

_SPECS: tuple[BufferSpec, ...] = (
    BufferSpec(
        "http.uri", ("http_uri",), "http_uri", "U", _TS,
        getter=_http.TOSERVER["http.uri"],
    ),
    BufferSpec(
        "http.uri.raw", ("http_raw_uri",), "http_raw_uri", "I", _TS,
        getter=_http.TOSERVER["http.uri.raw"],
    ),
    BufferSpec(
        "http.method", ("http_method",), "http_method", "M", _TS, no_spaces=True,
        getter=_http.TOSERVER["http.method"],
    ),
    BufferSpec(
        "http.request_line", ("http_request_line",), None, None, _TS,
        getter=_http.TOSERVER["http.request_line"],
    ),
    BufferSpec(
        "http.request_body", ("http_client_body",), "http_client_body", "P", _TS,
        getter=_http.TOSERVER["http.request_body"],
    ),
    BufferSpec(
        "http.response_line", ("http_response_line",), None, None, _TC,
        getter=_http.TOCLIENT["http.response_line"],
    ),
    BufferSpec(
        "http.response_body", ("http_server_body",), "http_server_body", None, _TC,
        getter=_http.TOCLIENT["http.response_body"],
    ),
    BufferSpec(
        "file.data", ("file_data",), None, "Q", _BOTH,
        getter=_http.TOSERVER["file.data"],
        getter_toclient=_http.TOCLIENT["file.data"],
    ),
    BufferSpec(
        "http.header", ("http_header",), "http_header", "H", _BOTH,
        getter=_http.TOSERVER["http.header"],
        getter_toclient=_http.TOCLIENT["http.header"],
    ),
    BufferSpec(
        "http.header.raw", ("http_raw_header",), "http_raw_header", "D", _BOTH,
        getter=_http.TOSERVER["http.header.raw"],
        getter_toclient=_http.TOCLIENT["http.header.raw"],
    ),
    BufferSpec(
        "http.header_names", ("http_header_names",), None, None, _BOTH,
        getter=_http.TOSERVER["http.header_names"],
        getter_toclient=_http.TOCLIENT["http.header_names"],
    ),
    BufferSpec(
        "http.start", ("http_start",), None, None, _BOTH,
        getter=_http.TOSERVER["http.start"],
        getter_toclient=_http.TOCLIENT["http.start"],
    ),
    BufferSpec(
        "http.request_header", ("http_request_header",), None, None, _TS, multi=True,
        getter=_http.TOSERVER["http.request_header"],
    ),
    BufferSpec(
        "http.response_header", ("http_response_header",), None, None, _TC, multi=True,
        getter=_http.TOCLIENT["http.response_header"],
    ),
    BufferSpec(
        "http.host", ("http_host",), "http_host", "W", _TS, lowercase_only=True,
        getter=_http.TOSERVER["http.host"],
    ),
    BufferSpec(
        "http.host.raw", ("http_raw_host",), "http_raw_host", "Z", _TS,
        getter=_http.TOSERVER["http.host.raw"],
    ),
    BufferSpec(
        "http.user_agent", ("http_user_agent",), "http_user_agent", "V", _TS,
        getter=_http.TOSERVER["http.user_agent"],
    ),
    BufferSpec(
        "http.cookie", ("http_cookie",), "http_cookie", "C", _BOTH,
        getter=_http.TOSERVER["http.cookie"],
        getter_toclient=_http.TOCLIENT["http.cookie"],
    ),
    BufferSpec(
        "http.stat_code", ("http_stat_code",), "http_stat_code", "S", _TC,
        getter=_http.TOCLIENT["http.stat_code"],
    ),
    BufferSpec(
        "http.stat_msg", ("http_stat_msg",), "http_stat_msg", "Y", _TC,
        getter=_http.TOCLIENT["http.stat_msg"],
    ),
    BufferSpec(
        "http.protocol", ("http_protocol",), None, None, _BOTH, no_spaces=True,
        getter=_http.TOSERVER["http.protocol"],
        getter_toclient=_http.TOCLIENT["http.protocol"],
    ),
    BufferSpec(
        "http.content_type", ("http_content_type",), None, None, _BOTH,
        getter=_http.TOSERVER["http.content_type"],
        getter_toclient=_http.TOCLIENT["http.content_type"],
    ),
    BufferSpec(
        "http.content_len", ("http_content_len",), None, None, _BOTH,
        getter=_http.TOSERVER["http.content_len"],
        getter_toclient=_http.TOCLIENT["http.content_len"],
    ),
    BufferSpec(
        "http.referer", ("http_referer",), None, None, _TS,
        getter=_http.TOSERVER["http.referer"],
    ),
    BufferSpec(
        "http.accept", ("http_accept",), None, None, _TS,
        getter=_http.TOSERVER["http.accept"],
    ),
    BufferSpec(
        "http.accept_enc", ("http_accept_enc",), None, None, _TS,
        getter=_http.TOSERVER["http.accept_enc"],
    ),
    BufferSpec(
        "http.accept_lang", ("http_accept_lang",), None, None, _TS,
        getter=_http.TOSERVER["http.accept_lang"],
    ),
    BufferSpec(
        "http.connection", ("http_connection",), None, None, _BOTH,
        getter=_http.TOSERVER["http.connection"],
        getter_toclient=_http.TOCLIENT["http.connection"],
    ),
    BufferSpec(
        "http.location", ("http_location",), None, None, _TC,
        getter=_http.TOCLIENT["http.location"],
    ),
    BufferSpec(
        "http.server", ("http_server",), None, None, _TC,
        getter=_http.TOCLIENT["http.server"],
    ),
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


def getter_for(name: str, to_server: bool) -> Getter | None:
    """The getter of buffer ``name`` for one direction (None if it has no such side)."""
    spec = BUFFERS[name]
    if spec.direction is BufferDirection.BOTH:
        return spec.getter if to_server else spec.getter_toclient
    if (spec.direction is BufferDirection.TO_SERVER) != to_server:
        return None
    return spec.getter


def set_getter(name: str, getter: Getter) -> None:
    """Attach the transaction getter of a buffer (done by the HTTP layer at import)."""
    spec = BUFFERS[name]
    BUFFERS[name] = BufferSpec(**{**spec.__dict__, "getter": getter})
