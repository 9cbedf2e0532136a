"""Lenient, bounded, sans-IO HTTP/1.x connection parser (libhtp behaviour for an IDS).

One :class:`HttpParser` per flow. The caller feeds reassembled stream bytes per direction;
the parser builds :class:`~ruleengine.applayer.http1.tx.HttpTransaction` objects (pipelined
requests, responses matched in order). Anomalies become event names in ``events`` (and in the
transaction's ``events``); nothing raises. A direction that cannot be resynchronised (a line
over ``field-limit``, a gap inside headers) stops quietly with an event.
"""

from __future__ import annotations

from ruleengine.applayer.http1 import events as ev
from ruleengine.applayer.http1 import lexical as lex
from ruleengine.applayer.http1.config import HttpConfig
from ruleengine.applayer.http1.parse_state import (
    SPACE_OR_NUL,
    Side,
    State,
)
from ruleengine.applayer.http1.request import RequestParsing
from ruleengine.applayer.http1.response import ResponseParsing
from ruleengine.applayer.http1.tx import Progress


class HttpParser(RequestParsing, ResponseParsing):
    """HTTP/1.x parser for one flow (both directions).

    Assembled from its parts, each a class over the shared state (``parse_state``):
    ``framing`` (bodies, message end), ``tunnel`` (CONNECT), ``request`` and ``response``
    (start lines and what their headers decide). This class drives them: the state table,
    the public API, idle and header lines, close."""

    def __init__(self, config: HttpConfig | None = None) -> None:
        super().__init__(config)
        self._handlers.update({
            State.IDLE: self._on_idle,
            State.HEADERS: self._on_headers,
            State.BODY_LENGTH: self._on_body_length,
            State.BODY_CLOSE: self._on_body_close,
            State.CHUNK_SIZE: self._on_chunk_size,
            State.CHUNK_DATA: self._on_chunk_data,
            State.CHUNK_END: self._on_chunk_end,
            State.TRAILERS: self._on_trailers,
            State.FINALIZE: self._on_finalize,
            State.CONNECT_WAIT: self._on_connect_wait,
            State.CONNECT_PROBE: self._on_connect_probe,
        })

    # ------------------------------------------------------------------ public API
    @property
    def encrypted(self) -> bool:
        """HTTP is never encrypted (a CONNECT tunnel's TLS is not parsed)."""
        return False

    def feed(self, to_server: bool, data: bytes, ts: float = 0.0) -> None:
        """Stream bytes of one direction, in order."""
        side = self._req if to_server else self._resp
        self._ts = ts
        if not data or side.state in (State.IGNORE, State.STOPPED):
            return
        side.buf += data
        try:
            self._run(side)
        except Exception:  # a parser bug must never stop the flow: record it and stop
            self._event(side.tx, ev.UNKNOWN_ERROR)
            self._stop(side)
        side.compact()

    def gap(self, to_server: bool, length: int) -> None:
        """``length`` stream bytes are missing in one direction."""
        side = self._req if to_server else self._resp
        if length <= 0 or side.state in (State.IGNORE, State.STOPPED):
            return
        if side.available() == 0 and side.state in (State.BODY_LENGTH, State.CHUNK_DATA):
            skipped = min(length, side.left)
            side.left -= skipped
            side.files.gap(fatal=False)
            if side.tx is not None:
                self._count_message(side, skipped)
            if side.left == 0:
                if side.state == State.CHUNK_DATA:
                    side.state = State.CHUNK_END
                else:
                    self._complete(side)
            if skipped == length:
                return
        elif side.available() == 0 and side.state == State.BODY_CLOSE:
            return
        elif side.state == State.FINALIZE:
            self._complete(side)  # libhtp: a gap ends a finished request
        self._event(side.tx, ev.DATA_GAP)
        side.files.gap(fatal=True)
        self._stop(side)

    def close(self, to_server: bool | None = None) -> None:
        """End of stream for one direction (``None``: both)."""
        sides = [self._req, self._resp] if to_server is None else (
            [self._req] if to_server else [self._resp]
        )
        for side in sides:
            try:
                self._close_side(side)
            except Exception:
                self._event(side.tx, ev.UNKNOWN_ERROR)
            side.state = State.IGNORE if side.state != State.STOPPED else side.state
            side.buf.clear()
            side.pos = 0

    @property
    def request_state(self) -> str:
        return self._req.state.value

    @property
    def response_state(self) -> str:
        return self._resp.state.value

    # ------------------------------------------------------------------ start lines
    def _on_idle(self, side: Side) -> bool:
        if not side.is_request and side.tx is None:
            # a response with no status line at all (HTTP/0.9 style) is all body
            rest = bytes(side.buf[side.pos : side.pos + 16]).lstrip(SPACE_OR_NUL)
            if rest and not lex.could_be_http(rest) and side.buf.find(b"\n", side.pos) == -1:
                return self._response_as_body(side)
        line = self._read_line(side)
        if line is None:
            return False
        content = lex.chomp(line)
        if not content.strip(b" \t\r\n\x0b\x0c"):
            return True  # empty lines between messages are ignored
        if side.is_request:
            return self._start_request(side, content)
        cr = content.find(b"\r")
        if cr != -1:
            # libhtp ends a status line at a lone CR too; the rest is the next line
            side.pos -= len(line) - cr - 1
            line, content = line[: cr + 1], content[:cr]
            if not content.strip(b" \t\x0b\x0c"):
                return True
        return self._start_response(side, line, content)

    def _on_headers(self, side: Side) -> bool:
        self._plain_header_lines(side)
        line = self._read_header_line(side)
        if line is None:
            return False
        self._append_raw(side, line)
        content = lex.chomp(line)
        if self._ends_header_block(side, line, content):
            self._headers_done(side)
            return True
        self._add_header_line(side, content)
        return True

    @staticmethod
    def _ends_header_block(side: Side, line: bytes, content: bytes) -> bool:
        """htp_connp_is_line_terminator (libhtp 0.5.x): only LF or CRLF is an empty line, so
        CR CR LF is an (invalid, nameless) header; on responses a line of one space or tab
        before the LF also ends the block, when the next byte is there and is not an LF."""
        if not content:
            return len(line) <= 2
        if side.is_request or len(line) != 2 or line[0] not in (0x20, 0x09) or line[1] != 0x0A:
            return False
        return side.pos < len(side.buf) and side.buf[side.pos] != 0x0A

    def _headers_done(self, side: Side) -> None:
        tx = side.tx
        assert tx is not None
        if side.is_request:
            self._merged_headers(side, tx.request_headers)
            tx.request_header_raw = bytes(side.raw)
            tx.request_progress = Progress.HEADERS
            self._request_host(tx)
            self._request_body_start(side, tx)
        else:
            self._merged_headers(side, tx.response_headers)
            tx.response_header_raw = bytes(side.raw)
            tx.response_progress = Progress.HEADERS
            self._response_body_start(side, tx)

    # ------------------------------------------------------------------ close
    def _close_side(self, side: Side) -> None:
        state = side.state
        if state in (State.IGNORE, State.STOPPED):
            if side.tx is not None and state == State.STOPPED:
                self._complete(side)
                side.state = State.STOPPED
            return
        if state == State.FINALIZE:
            rest = bytes(side.buf[side.pos :])
            words = rest.split(None, 1)
            if rest and not (words and words[0] in lex.KNOWN_METHODS):
                side.pos = len(side.buf)
                self._body_data(side, rest)
            self._complete(side)
            state = side.state
        if state == State.IDLE and side.available():
            # an unterminated start line still counts (libhtp processes it at close)
            side.buf += b"\n"
            if side.is_request:
                self._event(None, ev.REQUEST_LINE_INCOMPLETE)
            self._run(side)
            state = side.state
        if state in (State.HEADERS, State.TRAILERS) and side.tx is not None:
            if side.available():
                side.buf += b"\n"
                self._run(side)
            if side.tx is not None and side.state in (State.HEADERS, State.TRAILERS):
                if side.state == State.HEADERS:
                    self._headers_done(side)
                else:
                    self._merged_headers(side, side.tx.request_headers if side.is_request
                                         else side.tx.response_headers)
        if side.tx is not None:
            self._complete(side)
