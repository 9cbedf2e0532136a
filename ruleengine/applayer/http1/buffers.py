"""HTTP/1 detection buffers (``src/detect-http-*.c``): one entry per sticky buffer, with its
aliases, legacy content modifier, pcre letter, direction and transaction getter."""

from __future__ import annotations

from ruleengine.applayer.base import BufferDirection, BufferSpec
from ruleengine.applayer.http1 import getters as _http

_TS, _TC, _BOTH = BufferDirection.TO_SERVER, BufferDirection.TO_CLIENT, BufferDirection.BOTH

BUFFERS: tuple[BufferSpec, ...] = (
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
        "file.name", (), None, None, _BOTH, multi=True,
        getter=_http.TOSERVER["file.name"],
        getter_toclient=_http.TOCLIENT["file.name"],
    ),
    BufferSpec(
        "file.magic", (), None, None, _BOTH, multi=True,
        getter=_http.TOSERVER["file.magic"],
        getter_toclient=_http.TOCLIENT["file.magic"],
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
