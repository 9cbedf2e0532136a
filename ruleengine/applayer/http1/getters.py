"""Buffer getters: transaction -> inspection buffer bytes, exactly as Suricata builds them
(``src/detect-http-*.c``). ``TOSERVER``/``TOCLIENT`` map canonical buffer names (see
``ruleengine.buffers``) to the getter of that direction."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, cast

from ruleengine.applayer.files import magics_in, names_in
from ruleengine.applayer.http1.files import multipart_boundary, multipart_file_parts
from ruleengine.applayer.http1.tx import BufferGetter, Headers, HttpTransaction

_V = TypeVar("_V")


def _memo(tx: HttpTransaction, key: object, inputs: object, build: Callable[..., _V],
          *args: object) -> _V:
    """``build(*args)``, made from ``inputs``: the value kept in ``tx.memo`` under ``key``
    while the inputs are equal (the same object again: see ``HttpTransaction.memo``)."""
    hit = tx.memo.get(key)
    if hit is not None and hit[0] == inputs:
        return cast(_V, hit[1])
    value = build(*args)
    tx.memo[key] = (inputs, value)
    return value


def header_buffer(headers: Headers, skip: bytes) -> bytes | None:
    """``http.header``: ``Name: value\\r\\n`` per header, without the cookie header of that
    direction (``skip``: Cookie to server, Set-Cookie to client; ``detect-http-header.c``)."""
    parts = [
        name + b": " + value + b"\r\n"
        for name, value in headers
        if name.lower() != skip
    ]
    return b"".join(parts) if parts else None


def header_names_buffer(headers: Headers) -> bytes | None:
    """``http.header_names``: ``\\r\\nN1\\r\\nN2\\r\\n\\r\\n``."""
    if not headers:
        return None
    return b"\r\n" + b"".join(name + b"\r\n" for name, _ in headers) + b"\r\n"


def start_buffer(line: bytes | None, headers: Headers) -> bytes | None:
    """``http.start``: line, CRLF, ``Name: value\\r\\n`` per header, CRLF."""
    if line is None:
        return None
    return line + b"\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in headers) + b"\r\n"


def _header_list(headers: Headers) -> list[bytes] | None:
    return [name + b": " + value for name, value in headers] or None


# ------------------------------------------------------------------ request side
def get_uri(tx: HttpTransaction) -> bytes | None:
    return tx.uri_normalized


def get_uri_raw(tx: HttpTransaction) -> bytes | None:
    return tx.uri_raw


def get_method(tx: HttpTransaction) -> bytes | None:
    return tx.method_raw


def get_request_line(tx: HttpTransaction) -> bytes | None:
    return tx.request_line


def get_request_body(tx: HttpTransaction) -> bytes | None:
    return tx.request_body if tx.request_body_len_seen else None


def get_request_header(tx: HttpTransaction) -> bytes | None:
    headers = tx.request_headers
    return _memo(tx, ("http.header", True), tuple(headers), header_buffer, headers, b"cookie")


def get_request_header_raw(tx: HttpTransaction) -> bytes | None:
    return tx.request_header_raw or None


def get_request_header_names(tx: HttpTransaction) -> bytes | None:
    headers = tx.request_headers
    return _memo(tx, ("http.header_names", True), tuple(headers), header_names_buffer, headers)


def get_request_start(tx: HttpTransaction) -> bytes | None:
    line, headers = tx.request_line, tx.request_headers
    return _memo(tx, ("http.start", True), (line, tuple(headers)), start_buffer, line, headers)


def get_request_header_list(tx: HttpTransaction) -> list[bytes] | None:
    return _header_list(tx.request_headers)


def get_host(tx: HttpTransaction) -> bytes | None:
    return tx.host


def get_host_raw(tx: HttpTransaction) -> bytes | None:
    """The absolute URI's host (libhtp's parsed_uri: normalised, no port), else the Host
    header value as sent (with its port); ``src/detect-http-host.c`` GetRawData."""
    return tx.host_raw


def get_request_protocol(tx: HttpTransaction) -> bytes | None:
    return tx.request_protocol


def _request_header_getter(name: bytes) -> BufferGetter:
    def getter(tx: HttpTransaction) -> bytes | None:
        return tx.request_header(name)

    getter.__name__ = "get_request_" + name.decode().replace("-", "_")
    return getter


# ------------------------------------------------------------------ response side
def get_response_line(tx: HttpTransaction) -> bytes | None:
    return tx.response_line


def get_response_body(tx: HttpTransaction) -> bytes | None:
    return tx.response_body if tx.response_body_len_seen else None


def get_response_header(tx: HttpTransaction) -> bytes | None:
    headers = tx.response_headers
    return _memo(tx, ("http.header", False), tuple(headers), header_buffer, headers,
                 b"set-cookie")


def get_response_header_raw(tx: HttpTransaction) -> bytes | None:
    return tx.response_header_raw or None


def get_response_header_names(tx: HttpTransaction) -> bytes | None:
    headers = tx.response_headers
    return _memo(tx, ("http.header_names", False), tuple(headers), header_names_buffer, headers)


def get_response_start(tx: HttpTransaction) -> bytes | None:
    line, headers = tx.response_line, tx.response_headers
    return _memo(tx, ("http.start", False), (line, tuple(headers)), start_buffer, line, headers)


def get_response_header_list(tx: HttpTransaction) -> list[bytes] | None:
    return _header_list(tx.response_headers)


def get_stat_code(tx: HttpTransaction) -> bytes | None:
    return tx.status_code


def get_stat_msg(tx: HttpTransaction) -> bytes | None:
    return tx.status_msg


def get_response_protocol(tx: HttpTransaction) -> bytes | None:
    return tx.response_protocol


def _response_header_getter(name: bytes) -> BufferGetter:
    def getter(tx: HttpTransaction) -> bytes | None:
        return tx.response_header(name)

    getter.__name__ = "get_response_" + name.decode().replace("-", "_")
    return getter


get_user_agent = _request_header_getter(b"user-agent")
get_request_cookie = _request_header_getter(b"cookie")
get_referer = _request_header_getter(b"referer")
get_accept = _request_header_getter(b"accept")
get_accept_enc = _request_header_getter(b"accept-encoding")
get_accept_lang = _request_header_getter(b"accept-language")
get_request_connection = _request_header_getter(b"connection")
get_request_content_type = _request_header_getter(b"content-type")
get_request_content_len = _request_header_getter(b"content-length")
get_response_cookie = _response_header_getter(b"set-cookie")
get_response_connection = _response_header_getter(b"connection")
get_response_content_type = _response_header_getter(b"content-type")
get_response_content_len = _response_header_getter(b"content-length")
get_location = _response_header_getter(b"location")
get_server = _response_header_getter(b"server")


# ------------------------------------------------------------------ request files (file.data)
def get_request_file_data(tx: HttpTransaction) -> bytes | None:
    """``file.data`` to server: Suricata only tracks files in requests for POST and PUT. A PUT
    or non-multipart POST body is one file; a multipart/form-data POST holds the contents of
    its parts that carry a ``filename`` (``src/app-layer-htp.c`` request body handling).
    Several files are concatenated here."""
    if not tx.request_body_len_seen:
        return None
    method = (tx.method_raw or b"").upper()
    if method == b"PUT":
        return tx.request_body
    if method != b"POST":
        return None
    body, content_type = tx.request_body, tx.request_header(b"content-type")
    return _memo(tx, ("file.data", True), (body, content_type), _post_file_data, body,
                 content_type)


def _post_file_data(body: bytes, content_type: bytes | None) -> bytes | None:
    boundary = multipart_boundary(content_type)
    if boundary is None:
        return body
    files = multipart_file_parts(body, boundary)
    return b"".join(content for _, content, _ in files) if files else None


def get_request_file_names(tx: HttpTransaction) -> list[bytes] | None:
    return names_in(tx.files, True)


def get_response_file_names(tx: HttpTransaction) -> list[bytes] | None:
    return names_in(tx.files, False)


def get_request_file_magic(tx: HttpTransaction) -> list[bytes] | None:
    return magics_in(tx.files, True)


def get_response_file_magic(tx: HttpTransaction) -> list[bytes] | None:
    return magics_in(tx.files, False)


TOSERVER: dict[str, BufferGetter] = {
    "http.uri": get_uri,
    "http.uri.raw": get_uri_raw,
    "http.method": get_method,
    "http.request_line": get_request_line,
    "http.request_body": get_request_body,
    "file.data": get_request_file_data,
    "file.name": get_request_file_names,
    "file.magic": get_request_file_magic,
    "http.header": get_request_header,
    "http.header.raw": get_request_header_raw,
    "http.header_names": get_request_header_names,
    "http.start": get_request_start,
    "http.request_header": get_request_header_list,
    "http.host": get_host,
    "http.host.raw": get_host_raw,
    "http.user_agent": get_user_agent,
    "http.cookie": get_request_cookie,
    "http.protocol": get_request_protocol,
    "http.content_type": get_request_content_type,
    "http.content_len": get_request_content_len,
    "http.referer": get_referer,
    "http.accept": get_accept,
    "http.accept_enc": get_accept_enc,
    "http.accept_lang": get_accept_lang,
    "http.connection": get_request_connection,
}
"""Request-side getters by canonical buffer name."""

TOCLIENT: dict[str, BufferGetter] = {
    "http.response_line": get_response_line,
    "http.response_body": get_response_body,
    "file.data": get_response_body,
    "file.name": get_response_file_names,
    "file.magic": get_response_file_magic,
    "http.header": get_response_header,
    "http.header.raw": get_response_header_raw,
    "http.header_names": get_response_header_names,
    "http.start": get_response_start,
    "http.response_header": get_response_header_list,
    "http.cookie": get_response_cookie,
    "http.stat_code": get_stat_code,
    "http.stat_msg": get_stat_msg,
    "http.protocol": get_response_protocol,
    "http.content_type": get_response_content_type,
    "http.content_len": get_response_content_len,
    "http.connection": get_response_connection,
    "http.location": get_location,
    "http.server": get_server,
}
"""Response-side getters by canonical buffer name."""

# ``tx.buffer(name, to_server)`` answers from these tables.
HttpTransaction.buffer_getters = (TOSERVER, TOCLIENT)
