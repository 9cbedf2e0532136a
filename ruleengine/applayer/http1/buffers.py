"""HTTP/1 detection buffers (``src/detect-http-*.c``): one entry per sticky buffer, with its
aliases, legacy content modifier, pcre letter, direction and transaction getter."""

from __future__ import annotations

from ruleengine.applayer.base import BufferDirection, BufferSpec
from ruleengine.applayer.http1 import getters as _http

_TS, _TC, _BOTH = BufferDirection.TO_SERVER, BufferDirection.TO_CLIENT, BufferDirection.BOTH


def _buffer(
    name: str, alias: str | None, modifier: str | None, pcre: str | None,
    direction: BufferDirection, *, multi: bool = False, lowercase_only: bool = False,
    no_spaces: bool = False,
) -> BufferSpec:
    """A buffer and its getters: the getter tables' entry of the same name for each side
    the buffer is inspected on (request side first for a BOTH buffer)."""
    to_server = _http.TOSERVER[name] if direction is not _TC else None
    to_client = _http.TOCLIENT[name] if direction is not _TS else None
    return BufferSpec(
        name, (alias,) if alias else (), modifier, pcre, direction, multi=multi,
        lowercase_only=lowercase_only, no_spaces=no_spaces,
        getter=to_server if to_server is not None else to_client,
        getter_toclient=to_client if direction is _BOTH else None,
    )


# name, alias, legacy content modifier, pcre letter, direction, flags
BUFFERS: tuple[BufferSpec, ...] = (
    _buffer("http.uri", "http_uri", "http_uri", "U", _TS),
    _buffer("http.uri.raw", "http_raw_uri", "http_raw_uri", "I", _TS),
    _buffer("http.method", "http_method", "http_method", "M", _TS, no_spaces=True),
    _buffer("http.request_line", "http_request_line", None, None, _TS),
    _buffer("http.request_body", "http_client_body", "http_client_body", "P", _TS),
    _buffer("http.response_line", "http_response_line", None, None, _TC),
    _buffer("http.response_body", "http_server_body", "http_server_body", None, _TC),
    _buffer("file.data", "file_data", None, "Q", _BOTH),
    _buffer("file.name", None, None, None, _BOTH, multi=True),
    _buffer("file.magic", None, None, None, _BOTH, multi=True),
    _buffer("http.header", "http_header", "http_header", "H", _BOTH),
    _buffer("http.header.raw", "http_raw_header", "http_raw_header", "D", _BOTH),
    _buffer("http.header_names", "http_header_names", None, None, _BOTH),
    _buffer("http.start", "http_start", None, None, _BOTH),
    _buffer("http.request_header", "http_request_header", None, None, _TS, multi=True),
    _buffer("http.response_header", "http_response_header", None, None, _TC, multi=True),
    _buffer("http.host", "http_host", "http_host", "W", _TS, lowercase_only=True),
    _buffer("http.host.raw", "http_raw_host", "http_raw_host", "Z", _TS),
    _buffer("http.user_agent", "http_user_agent", "http_user_agent", "V", _TS),
    _buffer("http.cookie", "http_cookie", "http_cookie", "C", _BOTH),
    _buffer("http.stat_code", "http_stat_code", "http_stat_code", "S", _TC),
    _buffer("http.stat_msg", "http_stat_msg", "http_stat_msg", "Y", _TC),
    _buffer("http.protocol", "http_protocol", None, None, _BOTH, no_spaces=True),
    _buffer("http.content_type", "http_content_type", None, None, _BOTH),
    _buffer("http.content_len", "http_content_len", None, None, _BOTH),
    _buffer("http.referer", "http_referer", None, None, _TS),
    _buffer("http.accept", "http_accept", None, None, _TS),
    _buffer("http.accept_enc", "http_accept_enc", None, None, _TS),
    _buffer("http.accept_lang", "http_accept_lang", None, None, _TS),
    _buffer("http.connection", "http_connection", None, None, _BOTH),
    _buffer("http.location", "http_location", None, None, _TC),
    _buffer("http.server", "http_server", None, None, _TC),
)
