"""One HTTP/1.x request/response pair as libhtp exposes it to Suricata's detection."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from ruleengine.applayer.files import AppFile


class Progress(enum.IntEnum):
    """Per-direction progress (libhtp's request/response progress, simplified)."""

    NONE = 0
    LINE = 1
    HEADERS = 2
    BODY = 3
    COMPLETE = 4


# header names as sent -> as compared: a handful of spellings recur in every transaction,
# and every header lookup (detection, EVE http and fileinfo) compares each name of the list
_LOWER: dict[bytes, bytes] = {}
_LOWER_MAX = 4096  # bounded: a hostile peer may send endless distinct (or long) names
_LOWER_LEN = 64


def _lower_name(name: bytes) -> bytes:
    low = _LOWER.get(name)
    if low is None:
        low = name.replace(b"\x00", b"").strip(b" \t").lower()
        if len(name) > _LOWER_LEN:
            return low
        if len(_LOWER) >= _LOWER_MAX:
            _LOWER.clear()
        _LOWER[name] = low
    return low


BufferGetter = Callable[["HttpTransaction"], "bytes | list[bytes] | None"]

Headers = list[tuple[bytes, bytes]]
Memo = dict[object, tuple[object, object]]
"""Values derived from a transaction, by key: (the inputs they were made from, value)."""


@dataclass(slots=True, eq=False)
class HttpTransaction:
    """Request and response fields. Header lists keep the first spelling of each name with the
    values of repeated headers joined by ``", "`` (Content-Length is not joined); bodies are
    dechunked, decompressed and bounded by the body limits (``*_body_truncated`` tells)."""

    # Buffer getters of each side (to-server, to-client), by canonical buffer name. They read
    # the transaction, so ``http1/getters.py`` hands them in when it loads (the package
    # imports it) instead of this module importing its own readers back.
    buffer_getters: ClassVar[tuple[Mapping[str, BufferGetter], Mapping[str, BufferGetter]]] = (
        {}, {})

    tx_id: int
    ts: float = 0.0
    request_progress: int = Progress.NONE
    response_progress: int = Progress.NONE
    # --- request
    request_line: bytes | None = None
    method_raw: bytes | None = None
    uri_raw: bytes | None = None
    request_protocol: bytes | None = None
    request_protocol_number: float | None = None
    is_http09: bool = False
    uri_normalized: bytes | None = None
    uri_path: bytes | None = None
    host: bytes | None = None  # http.host: normalised (URI host wins over the Host header)
    host_raw: bytes | None = None  # http.host.raw: URI host (normalised) else the Host header
    uri_host_raw: bytes | None = None
    request_port: int | None = None
    request_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    request_header_raw: bytes = b""
    request_body: bytes = b""
    request_body_len_seen: int = 0
    request_message_len: int = 0
    request_body_truncated: bool = False
    request_content_length: int | None = None
    request_chunked: bool = False
    request_has_body: bool = False
    # --- response
    response_line: bytes | None = None
    response_protocol: bytes | None = None
    status_code: bytes | None = None
    status_msg: bytes | None = None
    response_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    response_header_raw: bytes = b""
    response_body: bytes = b""
    response_body_len_seen: int = 0
    response_message_len: int = 0
    response_body_truncated: bool = False
    response_content_length: int | None = None
    response_chunked: bool = False
    response_has_body: bool = False
    seen_100_continue: bool = False
    response_ignored_lines: int = 0  # junk lines skipped before the status line (libhtp)
    events: list[str] = field(default_factory=list)
    # files of the bodies, both directions, in the order they were opened (``files.py``)
    files: list[AppFile] = field(default_factory=list)
    # Detection bookkeeping the pipeline may use (inspected progress per direction).
    inspected_request: int = 0
    inspected_response: int = 0
    # Derived values (header indexes, built buffers: ``getters.py``), each kept with the
    # inputs it was made from and reused while they are equal: detection asks for the same
    # buffers at every progress step, and an unchanged buffer is then the same object,
    # which the engine's per-buffer MPM cache recognises without scanning again.
    memo: Memo = field(default_factory=dict, repr=False, compare=False)

    # ------------------------------------------------------------------ header lookup
    def request_header(self, name: bytes) -> bytes | None:
        return header_index(self, self.request_headers, True).get(name.lower())

    def response_header(self, name: bytes) -> bytes | None:
        return header_index(self, self.response_headers, False).get(name.lower())

    # ------------------------------------------------------------------ bodies
    def add_body(self, to_server: bool, data: bytes, limit: int) -> int:
        """Keep what fits under ``limit`` (0: no limit) of a chunk of the request
        (``to_server``) or response body, counting all of it as seen; the number of body
        bytes stored before it."""
        body = self.request_body if to_server else self.response_body
        room = limit - len(body) if limit else len(data)
        kept = body + data[:room] if room > 0 else body
        cut = room < len(data)
        if to_server:
            self.request_body = kept
            self.request_body_len_seen += len(data)
            self.request_body_truncated |= cut
        else:
            self.response_body = kept
            self.response_body_len_seen += len(data)
            self.response_body_truncated |= cut
        return len(body)

    # ------------------------------------------------------------------ completion
    @property
    def request_complete(self) -> bool:
        return self.request_progress >= Progress.COMPLETE

    @property
    def response_complete(self) -> bool:
        return self.response_progress >= Progress.COMPLETE

    @property
    def request_body_complete(self) -> bool:
        """No more request body will come (complete, or nothing was expected)."""
        return self.request_progress >= Progress.COMPLETE

    @property
    def response_body_complete(self) -> bool:
        return self.response_progress >= Progress.COMPLETE

    @property
    def complete(self) -> bool:
        return self.request_complete and self.response_complete

    # ------------------------------------------------------------------ EVE helpers
    @property
    def hostname(self) -> str | None:
        return None if self.host is None else self.host.decode("utf-8", "replace")

    @property
    def url(self) -> str:
        return "" if self.uri_raw is None else self.uri_raw.decode("utf-8", "replace")

    @property
    def user_agent(self) -> str | None:
        value = self.request_header(b"user-agent")
        return None if value is None else value.decode("utf-8", "replace")

    @property
    def method(self) -> str:
        return "" if self.method_raw is None else self.method_raw.decode("utf-8", "replace")

    @property
    def protocol(self) -> str:
        proto = self.request_protocol
        return "" if proto is None else proto.decode("utf-8", "replace")

    @property
    def status(self) -> int | None:
        code = self.status_code
        if code is None or len(code) != 3 or not code.isdigit():
            return None  # libhtp: not a valid status number (100-999)
        value = int(code)
        return value if value >= 100 else None

    @property
    def http_content_type(self) -> str | None:
        """Response Content-Type without parameters (EVE ``http.http_content_type``)."""
        value = self.response_header(b"content-type")
        if value is None:
            return None
        return value.split(b";", 1)[0].strip().decode("utf-8", "replace")

    @property
    def http_refer(self) -> str | None:
        value = self.request_header(b"referer")
        return None if value is None else value.decode("utf-8", "replace")

    @property
    def redirect(self) -> str | None:
        value = self.response_header(b"location")
        return None if value is None else value.decode("utf-8", "replace")

    @property
    def host_port(self) -> int | None:
        """Port given in the Host header or absolute URI (EVE ``http.http_port``)."""
        return self.request_port

    @property
    def length(self) -> int:
        """Response body bytes seen on the wire after dechunking (EVE ``http.length``)."""
        return self.response_message_len

    def buffer(self, name: str, to_server: bool | None = None) -> bytes | list[bytes] | None:
        """The named inspection buffer (canonical name from ``ruleengine.buffers``). For buffers
        that exist in both directions ``to_server`` picks the side (default: request side)."""
        toserver, toclient = self.buffer_getters
        table = toclient if to_server is False else toserver
        getter = table.get(name)
        if getter is None:
            other = toserver if to_server is False else toclient
            getter = other.get(name) if to_server is None else None
        return None if getter is None else getter(self)

    def buffer_table(self, to_server: bool) -> Mapping[str, BufferGetter]:
        """The getters ``buffer(name, to_server)`` dispatches to for that side: detection
        fetches a side's dozen MPM buffers per inspection and calls them directly (a
        buffer not in the table is absent, as ``buffer`` returns None for it)."""
        return self.buffer_getters[0 if to_server else 1]


def header_index(tx: HttpTransaction, headers: Headers, request: bool) -> dict[bytes, bytes]:
    """Lowered header name (NULs and surrounding blanks dropped) -> the value of its first
    header, for the header list ``headers`` of ``tx`` (``request``: which one). Rebuilt only
    when the list's content changed (headers are merged into it in place, trailers late)."""
    snapshot = tuple(headers)
    hit = tx.memo.get(request)
    if hit is not None and hit[0] == snapshot:
        return hit[1]  # type: ignore[return-value]
    index: dict[bytes, bytes] = {}
    for key, value in headers:
        index.setdefault(_lower_name(key), value)
    tx.memo[request] = (snapshot, index)
    return index
