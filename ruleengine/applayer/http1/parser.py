"""Lenient, bounded, sans-IO HTTP/1.x connection parser (libhtp behaviour for an IDS).

One :class:`HttpParser` per flow. The caller feeds reassembled stream bytes per direction;
the parser builds :class:`~ruleengine.applayer.http1.tx.HttpTransaction` objects (pipelined
requests, responses matched in order). Anomalies become event names in ``events`` (and in the
transaction's ``events``); nothing raises. A direction that cannot be resynchronised (a line
over ``field-limit``, a gap inside headers) stops quietly with an event.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable

from ruleengine.applayer.detect_proto import detect_app_proto
from ruleengine.applayer.files import FilePolicy
from ruleengine.applayer.http1 import events as ev
from ruleengine.applayer.http1 import lexical as lex
from ruleengine.applayer.http1.config import HttpConfig
from ruleengine.applayer.http1.decompress import Decompressor, parse_content_encoding
from ruleengine.applayer.http1.files import BodyFiles
from ruleengine.applayer.http1.normalize import (
    normalize_host,
    normalize_path,
    normalize_uri,
    split_hostport,
)
from ruleengine.applayer.http1.tx import HttpTransaction, Progress

_VALUE_WS = b" \t\r\n\x0b\x0c"
_SPACE_OR_NUL = b" \t\r\n\x0b\x0c\x00"  # libhtp's take_is_space_or_null
_MAX_REPETITIONS = 64
_MAX_TX_EVENTS = 32


class _State(enum.Enum):
    IDLE = "idle"  # waiting for a request/status line
    HEADERS = "headers"
    BODY_LENGTH = "body-length"
    BODY_CLOSE = "body-until-close"
    CHUNK_SIZE = "chunk-size"
    CHUNK_DATA = "chunk-data"
    CHUNK_END = "chunk-end"
    TRAILERS = "trailers"
    FINALIZE = "finalize"  # request done; lines that are not a request go to its body
    CONNECT_WAIT = "connect-wait"  # after CONNECT: hold client data until the response
    CONNECT_PROBE = "connect-probe"  # CONNECT accepted: is the tunnel HTTP again?
    IGNORE = "ignore"  # after HTTP/0.9, in a tunnel, after close
    STOPPED = "stopped"  # gave up on this direction


class _Side:
    """Parsing state of one direction."""

    __slots__ = (
        "buf",
        "chunked",
        "decomp",
        "files",
        "header_count",
        "headers",
        "is_request",
        "left",
        "pos",
        "raw",
        "state",
        "tx",
    )

    def __init__(self, is_request: bool) -> None:
        self.is_request = is_request
        self.buf = bytearray()
        self.pos = 0
        self.state = _State.IDLE
        self.tx: HttpTransaction | None = None
        self.headers: list[bytes] = []  # logical header lines (folds joined)
        self.header_count = 0
        self.raw = bytearray()
        self.left = 0
        self.chunked = False
        self.decomp: Decompressor | None = None
        self.files = BodyFiles(to_server=is_request)

    def available(self) -> int:
        return len(self.buf) - self.pos

    def take(self, count: int) -> bytes:
        data = bytes(self.buf[self.pos : self.pos + count])
        self.pos += len(data)
        return data

    def compact(self) -> None:
        if self.pos:
            del self.buf[: self.pos]
            self.pos = 0


class HttpParser:
    """HTTP/1.x parser for one flow (both directions)."""

    def __init__(self, config: HttpConfig | None = None) -> None:
        self.config = config or HttpConfig()
        # which hashes files get (set by the engine from outputs.eve-log files: force-hash)
        self.file_policy = FilePolicy()
        self.transactions: list[HttpTransaction] = []
        self.events: list[str] = []
        self.events_dropped = 0
        self._req = _Side(is_request=True)
        self._resp = _Side(is_request=False)
        self._next_tx_id = 0
        self._awaiting_response: deque[HttpTransaction] = deque()
        self._awaiting_request: deque[HttpTransaction] = deque()
        self._ts = 0.0
        self._connect_tx: HttpTransaction | None = None
        self._handlers: dict[_State, Callable[[_Side], bool]] = {
            _State.IDLE: self._on_idle,
            _State.HEADERS: self._on_headers,
            _State.BODY_LENGTH: self._on_body_length,
            _State.BODY_CLOSE: self._on_body_close,
            _State.CHUNK_SIZE: self._on_chunk_size,
            _State.CHUNK_DATA: self._on_chunk_data,
            _State.CHUNK_END: self._on_chunk_end,
            _State.TRAILERS: self._on_trailers,
            _State.FINALIZE: self._on_finalize,
            _State.CONNECT_WAIT: self._on_connect_wait,
            _State.CONNECT_PROBE: self._on_connect_probe,
        }

    # ------------------------------------------------------------------ public API
    @property
    def encrypted(self) -> bool:
        """HTTP is never encrypted (a CONNECT tunnel's TLS is not parsed)."""
        return False

    def feed(self, to_server: bool, data: bytes, ts: float = 0.0) -> None:
        """Stream bytes of one direction, in order."""
        side = self._req if to_server else self._resp
        self._ts = ts
        if not data or side.state in (_State.IGNORE, _State.STOPPED):
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
        if length <= 0 or side.state in (_State.IGNORE, _State.STOPPED):
            return
        if side.available() == 0 and side.state in (_State.BODY_LENGTH, _State.CHUNK_DATA):
            skipped = min(length, side.left)
            side.left -= skipped
            side.files.gap(fatal=False)
            if side.tx is not None:
                self._count_message(side, skipped)
            if side.left == 0:
                if side.state == _State.CHUNK_DATA:
                    side.state = _State.CHUNK_END
                else:
                    self._complete(side)
            if skipped == length:
                return
        elif side.available() == 0 and side.state == _State.BODY_CLOSE:
            return
        elif side.state == _State.FINALIZE:
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
            side.state = _State.IGNORE if side.state != _State.STOPPED else side.state
            side.buf.clear()
            side.pos = 0

    @property
    def request_state(self) -> str:
        return self._req.state.value

    @property
    def response_state(self) -> str:
        return self._resp.state.value

    # ------------------------------------------------------------------ events
    def _event(self, tx: HttpTransaction | None, name: str) -> None:
        if len(self.events) < self.config.max_events:
            self.events.append(name)
        else:
            self.events_dropped += 1
        if tx is not None and len(tx.events) < _MAX_TX_EVENTS:
            tx.events.append(name)

    def _stop(self, side: _Side) -> None:
        side.files.abort()
        side.state = _State.STOPPED
        side.buf.clear()
        side.pos = 0

    # ------------------------------------------------------------------ driver
    def _run(self, side: _Side) -> None:
        handlers = self._handlers
        while side.available():
            handler = handlers.get(side.state)
            if handler is None:  # IGNORE / STOPPED: drop the rest
                side.pos = len(side.buf)
                return
            if not handler(side):
                return

    def _read_line(self, side: _Side) -> bytes | None:
        """Next line including its terminator, or None (waiting / over the field limit)."""
        end = side.buf.find(b"\n", side.pos)
        if end == -1:
            if side.available() > self.config.field_limit:
                name = ev.REQUEST_FIELD_TOO_LONG if side.is_request else ev.RESPONSE_FIELD_TOO_LONG
                self._event(side.tx, name)
                self._stop(side)
            return None
        if end - side.pos > self.config.field_limit:
            name = ev.REQUEST_FIELD_TOO_LONG if side.is_request else ev.RESPONSE_FIELD_TOO_LONG
            self._event(side.tx, name)
            self._stop(side)
            return None
        return side.take(end + 1 - side.pos)

    def _read_header_line(self, side: _Side) -> bytes | None:
        """A header line: requests end lines at LF; responses as libhtp's RES_HEADERS does,
        also at a bare CR (one not followed by LF or CR, and not a line of its own) and
        taking a CR right after an LF into the terminator."""
        if side.is_request:
            return self._read_line(side)
        end = self._response_line_end(side.buf, side.pos)
        if end is None or end - side.pos > self.config.field_limit:
            return self._read_line(side)  # waiting, or over the limit: the LF rules apply
        return side.take(end - side.pos)

    @staticmethod
    def _response_line_end(buf: bytearray, pos: int) -> int | None:
        """End offset (exclusive) of the response header line at ``pos``, or None to wait."""
        lf = buf.find(b"\n", pos)
        cr = buf.find(b"\r", pos, lf if lf != -1 else len(buf))
        while cr != -1:
            if cr + 1 >= len(buf):
                return None  # libhtp waits for the byte after a CR
            if buf[cr + 1] not in (0x0A, 0x0D) and cr + 1 - pos >= 2:
                return cr + 1  # a bare CR ends the line ("CR" alone is not an empty line)
            if buf[cr + 1] == 0x0A:
                break
            cr = buf.find(b"\r", cr + 1, lf if lf != -1 else len(buf))
        if lf == -1:
            return None
        if lf + 1 < len(buf) and buf[lf + 1] == 0x0D and (lf == pos or buf[lf - 1] != 0x0D):
            return lf + 2  # LF CR is one line end (libhtp)
        return lf + 1

    # ------------------------------------------------------------------ transactions
    def _new_tx(self) -> HttpTransaction | None:
        if len(self.transactions) >= self.config.max_tx:
            self._event(None, ev.TOO_MANY_TRANSACTIONS)
            self._stop(self._req)
            self._stop(self._resp)
            return None
        tx = HttpTransaction(tx_id=self._next_tx_id, ts=self._ts)
        self._next_tx_id += 1
        self.transactions.append(tx)
        return tx

    def _request_tx(self) -> HttpTransaction | None:
        if self._awaiting_request:
            return self._awaiting_request.popleft()
        tx = self._new_tx()
        if tx is not None:
            self._awaiting_response.append(tx)
        return tx

    def _response_tx(self) -> HttpTransaction | None:
        if self._awaiting_response:
            return self._awaiting_response.popleft()
        tx = self._new_tx()
        if tx is not None:
            self._event(tx, ev.UNABLE_TO_MATCH_RESPONSE_TO_REQUEST)
            self._awaiting_request.append(tx)
        return tx

    # ------------------------------------------------------------------ start lines
    def _on_idle(self, side: _Side) -> bool:
        if not side.is_request and side.tx is None:
            # a response with no status line at all (HTTP/0.9 style) is all body
            rest = bytes(side.buf[side.pos : side.pos + 16]).lstrip(_SPACE_OR_NUL)
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

    def _start_request(self, side: _Side, line: bytes) -> bool:
        tx = self._request_tx()
        if tx is None:
            return False
        side.tx = tx
        self._parse_request_line(tx, line)
        tx.request_progress = Progress.LINE
        self._reset_headers(side)
        if tx.request_protocol is None:
            # libhtp: HTTP/0.9 unless more than whitespace follows in this chunk
            if side.buf[side.pos :].strip(b" \t\r\n"):
                self._event(tx, ev.REQUEST_LINE_MISSING_PROTOCOL)
            else:
                tx.is_http09 = True
                tx.request_progress = Progress.HEADERS
                self._complete(side)
                side.state = _State.IGNORE
                return False
        side.state = _State.HEADERS
        return True

    def _parse_request_line(self, tx: HttpTransaction, line: bytes) -> None:
        """libhtp's generic request-line parser (IDS personality: leading whitespace ignored;
        the URI ends at the first SP, other whitespace only when no SP follows)."""
        tx.request_line = line
        n = len(line)
        pos = lex.skip_space(line, 0)
        if pos:
            self._event(tx, ev.REQUEST_LINE_LEADING_WHITESPACE)
        start = pos
        while pos < n and line[pos] not in lex.SPACE:
            pos += 1
        tx.method_raw = line[start:pos]
        delim_start = pos
        pos = lex.skip_space(line, pos)
        if pos < n and line[delim_start:pos] != b" ":
            self._event(tx, ev.METHOD_DELIM_NON_COMPLIANT)
        start = pos
        space = line.find(b" ", start)
        end = n if space == -1 else space
        if any(c in lex.SPACE for c in line[start:end]):
            self._event(tx, ev.URI_DELIM_NON_COMPLIANT)
            if space == -1:  # no SP at all: other whitespace delimits the URI
                end = start
                while end < n and line[end] not in lex.SPACE:
                    end += 1
        tx.uri_raw = line[start:end] if end > start or start < n else None
        pos = lex.skip_space(line, end)
        if pos < n:
            proto = line[pos:]
            tx.request_protocol = proto
            tx.request_protocol_number = lex.protocol_number(proto)
        self._normalize_request_target(tx)

    def _normalize_request_target(self, tx: HttpTransaction) -> None:
        cfg = self.config
        if tx.uri_raw is None:
            return
        uri_norm, parsed = normalize_uri(
            tx.uri_raw or b"",
            method=tx.method_raw or b"",
            double_decode_path=cfg.double_decode_path,
            double_decode_query=cfg.double_decode_query,
            plusspace=cfg.query_plusspace_decode,
            lowercase=cfg.path_convert_lowercase,
            include_all=cfg.uri_include_all,
        )
        tx.uri_normalized = uri_norm
        if parsed.path is not None:
            tx.uri_path = normalize_path(parsed.path, lowercase=cfg.path_convert_lowercase,
                                         double_decode=cfg.double_decode_path)
        if cfg.double_decode_path or cfg.double_decode_query:
            single, _ = normalize_uri(
                tx.uri_raw or b"",
                method=tx.method_raw or b"",
                plusspace=cfg.query_plusspace_decode,
                lowercase=cfg.path_convert_lowercase,
                include_all=cfg.uri_include_all,
            )
            if single != uri_norm:
                self._event(tx, ev.DOUBLE_ENCODED_URI)
        if parsed.hostname is not None:
            tx.uri_host_raw = parsed.hostname
            # Suricata's http.host.raw reads libhtp's parsed_uri, whose host is normalised
            tx.host = tx.host_raw = normalize_host(parsed.hostname)
            tx.request_port = lex.port_number(parsed.port)
            if parsed.port is not None and tx.request_port is None:
                self._event(tx, ev.INVALID_AUTHORITY_PORT)

    def _start_response(self, side: _Side, line: bytes, content: bytes) -> bool:
        tx = side.tx or self._response_tx()
        if tx is None:
            return False
        side.tx = tx
        if not lex.could_be_http(content.lstrip(_SPACE_OR_NUL)):
            if side.available() > 1 and (side.buf[side.pos] == 0x48 or len(content) <= 2):
                # libhtp: a junk line right before one that starts with "H" (or a line of
                # at most two bytes) is skipped, and the status line after it parsed
                tx.response_ignored_lines += 1
                return True
            # not a status line: libhtp treats the response as body (HTTP/0.9 style)
            side.pos -= len(line)
            return self._response_as_body(side)
        tx.response_line = content
        parts = content.lstrip(_SPACE_OR_NUL).split(None, 2) or [b""]
        tx.response_protocol = parts[0]
        tx.status_code = parts[1] if len(parts) > 1 else None
        # libhtp: the message runs to the end of the line (trailing whitespace kept)
        tx.status_msg = parts[2] if len(parts) > 2 else None
        if tx.status_code is None or not (
            len(tx.status_code) == 3 and tx.status_code.isdigit()
        ):
            self._event(tx, ev.RESPONSE_INVALID_STATUS)
        if lex.protocol_number(tx.response_protocol) is None:
            self._event(tx, ev.RESPONSE_INVALID_PROTOCOL)
        tx.response_progress = Progress.LINE
        self._reset_headers(side)
        side.state = _State.HEADERS
        return True

    def _response_as_body(self, side: _Side) -> bool:
        tx = side.tx or self._response_tx()
        if tx is None:
            return False
        side.tx = tx
        self._event(tx, ev.RESPONSE_INVALID_PROTOCOL)
        tx.response_progress = Progress.BODY
        tx.response_has_body = True
        side.decomp = None
        side.state = _State.BODY_CLOSE
        return True

    # ------------------------------------------------------------------ headers
    def _reset_headers(self, side: _Side) -> None:
        side.headers = []
        side.header_count = 0
        side.raw = bytearray()

    def _on_headers(self, side: _Side) -> bool:
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
    def _ends_header_block(side: _Side, line: bytes, content: bytes) -> bool:
        """htp_connp_is_line_terminator (libhtp 0.5.x): only LF or CRLF is an empty line, so
        CR CR LF is an (invalid, nameless) header; on responses a line of one space or tab
        before the LF also ends the block, when the next byte is there and is not an LF."""
        if not content:
            return len(line) <= 2
        if side.is_request or len(line) != 2 or line[0] not in (0x20, 0x09) or line[1] != 0x0A:
            return False
        return side.pos < len(side.buf) and side.buf[side.pos] != 0x0A

    def _append_raw(self, side: _Side, line: bytes) -> None:
        room = self.config.max_header_block - len(side.raw)
        if room > 0:
            side.raw += line[:room]

    def _add_header_line(self, side: _Side, content: bytes) -> None:
        """Collect logical header lines: a line starting with SP/HT continues the previous one
        (libhtp keeps the folding whitespace). On the response side a continuation that looks
        like ``token:`` is a new header with leading whitespace, not a fold (libhtp)."""
        tx = side.tx
        if content[:1] in (b" ", b"\t", b"\x00"):
            new_header = not side.is_request and lex.looks_like_header(content)
            if side.headers and not new_header:
                if len(side.headers[-1]) + len(content) > self.config.field_limit:
                    # a folded header stays bounded like any line (libhtp field limit)
                    name = ev.REQUEST_FIELD_TOO_LONG if side.is_request else (
                        ev.RESPONSE_FIELD_TOO_LONG
                    )
                    if side.tx is not None and name not in side.tx.events:
                        self._event(side.tx, name)
                    return
                side.headers[-1] += content
                return
            if not side.headers:
                name = ev.INVALID_REQUEST_FIELD_FOLDING if side.is_request else (
                    ev.INVALID_RESPONSE_FIELD_FOLDING
                )
                self._event(tx, name)
            content = content.lstrip(_VALUE_WS)
        side.header_count += 1
        if side.header_count > self.config.headers_limit:
            if side.header_count == self.config.headers_limit + 1:
                name = ev.REQUEST_TOO_MANY_HEADERS if side.is_request else (
                    ev.RESPONSE_TOO_MANY_HEADERS
                )
                self._event(tx, name)
            return
        side.headers.append(content)

    def _parse_header(self, side: _Side, line: bytes) -> tuple[bytes, bytes]:
        tx = side.tx
        colon = line.find(b":")
        if colon == -1:
            name = ev.REQUEST_FIELD_MISSING_COLON if side.is_request else (
                ev.RESPONSE_FIELD_MISSING_COLON
            )
            self._event(tx, name)
            return b"", line.strip(_VALUE_WS)
        raw_name = line[:colon]
        # trailing whitespace and NULs are not part of the name (libhtp trims them)
        header_name = raw_name.rstrip(_VALUE_WS + b"\x00")
        if header_name != raw_name or not header_name or not lex.is_token(header_name):
            name = ev.REQUEST_HEADER_INVALID if side.is_request else ev.RESPONSE_HEADER_INVALID
            self._event(tx, name)
        return header_name, line[colon + 1 :].strip(_VALUE_WS)

    def _merged_headers(self, side: _Side, into: list[tuple[bytes, bytes]]) -> None:
        """Fold the header lines into ``into`` libhtp style: repeated names joined with ", "
        (at most 64 repetitions), repeated Content-Length kept once (event if they differ)."""
        index = {name.lower(): i for i, (name, _) in enumerate(into)}
        repetitions: dict[bytes, int] = {}
        for line in side.headers:
            name, value = self._parse_header(side, line)
            key = name.lower()
            pos = index.get(key)
            if pos is None:
                index[key] = len(into)
                into.append((name, value))
                continue
            count = repetitions.get(key, 0) + 1
            repetitions[key] = count
            if count == 1:
                self._event(side.tx, ev.REQUEST_HEADER_REPETITION if side.is_request else (
                    ev.RESPONSE_HEADER_REPETITION
                ))
            if count > _MAX_REPETITIONS:
                continue
            old_name, old_value = into[pos]
            if key == b"content-length":
                if lex.content_length(old_value) != lex.content_length(value) or (
                    lex.content_length(value) is None
                ):
                    self._event(side.tx, ev.DUPLICATE_CONTENT_LENGTH_FIELD_IN_REQUEST
                                if side.is_request
                                else ev.DUPLICATE_CONTENT_LENGTH_FIELD_IN_RESPONSE)
                continue
            into[pos] = (old_name, old_value + b", " + value)

    def _headers_done(self, side: _Side) -> None:
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

    def _request_host(self, tx: HttpTransaction) -> None:
        header = tx.request_header(b"host")
        if tx.host_raw is None:
            tx.host_raw = header
        if header is None:
            if tx.host is None and (tx.request_protocol_number or 0) >= 1.1:
                self._event(tx, ev.MISSING_HOST_HEADER)
            return
        host, port = split_hostport(header)
        # libhtp parse_hostport: the Host header's name is only lowercased (no decoding, and
        # unlike a URI host a trailing dot is kept)
        host = host.lower()
        if tx.host is not None:
            # the absolute URI's host wins; a different Host header (or port) is ambiguous
            header_port = lex.port_number(port)
            if host != tx.host or (
                header_port is not None and tx.request_port is not None
                and header_port != tx.request_port
            ):
                self._event(tx, ev.HOST_HEADER_AMBIGUOUS)
            return
        tx.host = host
        tx.request_port = lex.port_number(port)

    # ------------------------------------------------------------------ bodies
    def _request_body_start(self, side: _Side, tx: HttpTransaction) -> None:
        te = tx.request_header(b"transfer-encoding")
        cl_value = tx.request_header(b"content-length")
        if te is not None and lex.mentions_chunked(te):
            if te.strip().lower() != b"chunked":
                self._event(tx, ev.INVALID_TRANSFER_ENCODING_VALUE_IN_REQUEST)
            tx.request_chunked = True
            self._begin_body(side, tx, chunked=True, length=0)
            return
        if te is not None:
            # libhtp: a T-E without "chunked" is an invalid request; parsing stops there
            self._event(tx, ev.INVALID_TRANSFER_ENCODING_VALUE_IN_REQUEST)
            self._stop_request(side)
            return
        if cl_value is not None:
            length = lex.content_length(cl_value)
            if length is None:
                # libhtp: an unusable C-L is an invalid request; parsing stops there
                self._event(tx, ev.INVALID_CONTENT_LENGTH_FIELD_IN_REQUEST)
                self._stop_request(side)
                return
            if length > 0:
                tx.request_content_length = length
                self._begin_body(side, tx, chunked=False, length=length)
                return
            else:
                tx.request_content_length = 0
        if tx.method_raw == b"CONNECT":
            self._complete(side)
            self._connect_wait(tx)
            return
        self._finish_message(side)

    # ------------------------------------------------------------------ CONNECT
    def _connect_wait(self, tx: HttpTransaction) -> None:
        """libhtp holds the client's data after a CONNECT until the response says whether a
        tunnel was opened (REQ_CONNECT_WAIT_RESPONSE)."""
        if tx.response_progress >= Progress.HEADERS:
            self._connect_decided(tx)
        else:
            self._connect_tx = tx
            self._req.state = _State.CONNECT_WAIT

    def _on_connect_wait(self, side: _Side) -> bool:
        if side.available() > self.config.field_limit:
            self._tunnel()  # no answer and a lot of client data: treat it as tunnelled
        return False

    def _connect_decided(self, tx: HttpTransaction) -> None:
        """The CONNECT response is known: resume HTTP parsing of the client side, or probe
        the tunnel (2xx) and stop if it does not carry HTTP."""
        self._connect_tx = None
        status = tx.status
        req = self._req
        if req.state in (_State.STOPPED, _State.IGNORE):
            return
        if status is not None and 200 <= status < 300:
            req.state = _State.CONNECT_PROBE
        else:
            req.state = _State.IDLE
        self._run(req)
        req.compact()

    def _on_connect_probe(self, side: _Side) -> bool:
        verdict = detect_app_proto(bytes(side.buf[side.pos : side.pos + 24]), True)
        if verdict is None:
            return False
        if verdict == "http":
            side.state = _State.IDLE  # HTTP inside the tunnel (libhtp REQ_CONNECT_PROBE_DATA)
            return True
        self._tunnel()
        return False

    def _stop_request(self, side: _Side) -> None:
        """Give up on the request direction; the transaction keeps its headers."""
        side.tx = None
        side.headers = []
        self._stop(side)

    def _response_body_start(self, side: _Side, tx: HttpTransaction) -> None:
        status = tx.status
        te = tx.response_header(b"transfer-encoding")
        cl_value = tx.response_header(b"content-length")
        framed = te is not None or cl_value is not None
        if status == 100 and te is None and not (lex.content_length(cl_value or b"") or 0) > 0:
            self._interim_response(side, tx)  # a 100 with a body is not an interim response
            return
        method = (tx.method_raw or b"").upper()
        if status == 101 and not framed:  # with a length libhtp warns and reads the body
            self._complete(side)
            self._tunnel()
            return
        if method == b"CONNECT":
            # no body either way; the client side waits for this verdict
            self._complete(side)
            if self._connect_tx is tx:
                self._connect_decided(tx)
            return
        if method == b"HEAD" or (
            not framed and status is not None and (100 <= status < 200 or status in (204, 304))
        ):
            # no body; with Content-Length or Transfer-Encoding libhtp reads one anyway
            # ("Unexpected Response body": browsers do)
            self._complete(side)
            return
        if te is not None and lex.mentions_chunked(te):
            if te.strip().lower() != b"chunked":
                self._event(tx, ev.RESPONSE_ABNORMAL_TRANSFER_ENCODING)
            if (lex.protocol_number(tx.response_protocol) or 0.0) < 1.1:
                self._event(tx, ev.RESPONSE_CHUNKED_OLD_PROTO)
            tx.response_chunked = True
            self._begin_body(side, tx, chunked=True, length=0)
            return
        if cl_value is not None:
            length = lex.content_length(cl_value)
            if length is not None:
                tx.response_content_length = length
                if length == 0:
                    self._complete(side)
                else:
                    self._begin_body(side, tx, chunked=False, length=length)
                return
            # libhtp returns an error here: the response direction is not parsed further
            self._event(tx, ev.INVALID_CONTENT_LENGTH_FIELD_IN_RESPONSE)
            self._complete(side)
            self._stop(side)
            return
        self._begin_body(side, tx, chunked=False, length=-1)

    def _interim_response(self, side: _Side, tx: HttpTransaction) -> None:
        """100 Continue (and other 1xx): forget it, the real response follows."""
        if tx.seen_100_continue:
            self._event(tx, ev.CONTINUE_ALREADY_SEEN)
        tx.seen_100_continue = True
        tx.response_line = tx.response_protocol = tx.status_code = tx.status_msg = None
        tx.response_headers = []
        tx.response_header_raw = b""
        tx.response_progress = Progress.NONE
        side.state = _State.IDLE

    def _tunnel(self) -> None:
        """CONNECT accepted or protocol switched: the rest is not HTTP/1.x."""
        for other in (self._req, self._resp):
            if other.state not in (_State.STOPPED,):
                if other.tx is not None and other.state != _State.IDLE:
                    self._complete(other)
                other.state = _State.IGNORE
                other.pos = len(other.buf)

    def _begin_body(self, side: _Side, tx: HttpTransaction, *, chunked: bool, length: int) -> None:
        cfg = self.config
        headers = tx.request_headers if side.is_request else tx.response_headers
        ce = lex.lookup(headers, b"content-encoding")
        side.decomp = None
        if ce is not None and (not side.is_request or cfg.request_decompression):
            codings, abnormal, too_many = parse_content_encoding(
                ce,
                lzma_enabled=cfg.lzma_enabled,
                layer_limit=cfg.response_body_decompress_layer_limit,
            )
            if abnormal:
                self._event(tx, ev.ABNORMAL_CE_HEADER)
            if too_many:
                self._event(tx, ev.TOO_MANY_ENCODING_LAYERS)
            if codings:
                side.decomp = Decompressor(codings, cfg.compression_bomb_limit)
        if side.is_request:
            tx.request_progress = Progress.BODY
            tx.request_has_body = True
        else:
            tx.response_progress = Progress.BODY
            tx.response_has_body = True
        side.chunked = chunked
        if chunked:
            side.state = _State.CHUNK_SIZE
        elif length < 0:
            side.state = _State.BODY_CLOSE
        else:
            side.left = length
            side.state = _State.BODY_LENGTH

    def _on_body_length(self, side: _Side) -> bool:
        data = side.take(min(side.left, side.available()))
        side.left -= len(data)
        self._body_data(side, data)
        if side.left == 0:
            self._finish_message(side)
        return True

    def _on_body_close(self, side: _Side) -> bool:
        self._body_data(side, side.take(side.available()))
        return False

    def _on_chunk_size(self, side: _Side) -> bool:
        if side.buf.find(b"\n", side.pos) == -1 and not lex.valid_chunk_start(
            bytes(side.buf[side.pos :])
        ):
            return self._invalid_chunk_len(side, None)
        line = self._read_line(side)
        if line is None:
            return False
        if not line.strip(lex.CHUNK_CTL):
            return True  # tolerate empty lines before a chunk size
        size, extension = lex.chunk_length(line)
        if extension:
            name = ev.REQUEST_CHUNK_EXTENSION if side.is_request else ev.RESPONSE_CHUNK_EXTENSION
            if side.tx is not None and name not in side.tx.events:
                self._event(side.tx, name)
        if size is None:
            return self._invalid_chunk_len(side, line)
        if size == 0:
            side.state = _State.TRAILERS
            side.headers = []
            return True
        side.left = size
        side.state = _State.CHUNK_DATA
        return True

    def _invalid_chunk_len(self, side: _Side, line: bytes | None) -> bool:
        name = ev.INVALID_REQUEST_CHUNK_LEN if side.is_request else ev.INVALID_RESPONSE_CHUNK_LEN
        self._event(side.tx, name)
        if side.is_request:
            self._complete(side)
            self._stop(side)
            return False
        # libhtp: an unparseable chunk length turns the rest into a plain body
        if line is not None:
            side.pos -= len(line)
        side.state = _State.BODY_CLOSE
        return True

    def _on_chunk_data(self, side: _Side) -> bool:
        data = side.take(min(side.left, side.available()))
        side.left -= len(data)
        self._body_data(side, data)
        if side.left == 0:
            side.state = _State.CHUNK_END
        return True

    def _on_chunk_end(self, side: _Side) -> bool:
        line = self._read_line(side)
        if line is None:
            return False
        side.state = _State.CHUNK_SIZE
        if lex.chomp(line):
            # data past the declared chunk size: treat the line as the next size line
            side.pos -= len(line)
        return True

    def _on_trailers(self, side: _Side) -> bool:
        line = self._read_line(side)
        if line is None:
            return False
        tx = side.tx
        assert tx is not None
        content = lex.chomp(line)
        room = self.config.max_header_block
        if side.is_request:
            if len(tx.request_header_raw) < room:
                tx.request_header_raw += line[: room - len(tx.request_header_raw)]
        elif len(tx.response_header_raw) < room:
            tx.response_header_raw += line[: room - len(tx.response_header_raw)]
        if content:
            self._add_header_line(side, content)
            return True
        self._merged_headers(side, tx.request_headers if side.is_request else tx.response_headers)
        side.headers = []
        self._finish_message(side)
        return True

    def _finish_message(self, side: _Side) -> None:
        """End of a message. libhtp (``request_finalize``) looks at what follows a request in
        the same data: lines that do not start with a known method are more request body."""
        if side.is_request and side.available():
            side.state = _State.FINALIZE
        else:
            self._complete(side)

    def _on_finalize(self, side: _Side) -> bool:
        end = side.buf.find(b"\n", side.pos)
        if end == -1:
            if side.available() > self.config.field_limit:
                self._complete(side)  # IDLE reports the over-long line
                return True
            return False
        line = bytes(side.buf[side.pos : end + 1])
        words = line.split(None, 1)
        if words and words[0] in lex.KNOWN_METHODS:
            self._complete(side)  # a new request: IDLE parses it
            return True
        tx = side.tx
        assert tx is not None
        if words and ev.REQUEST_BODY_UNEXPECTED not in tx.events:
            self._event(tx, ev.REQUEST_BODY_UNEXPECTED)
        side.pos = end + 1
        self._body_data(side, line)
        return True

    def _count_message(self, side: _Side, count: int) -> None:
        tx = side.tx
        assert tx is not None
        if side.is_request:
            tx.request_message_len += count
        else:
            tx.response_message_len += count

    def _body_data(self, side: _Side, data: bytes) -> None:
        tx = side.tx
        if tx is None or not data:
            return
        self._count_message(side, len(data))
        if side.decomp is not None:
            data = side.decomp.feed(data)
            self._decomp_events(side)
        self._store_body(side, tx, data)

    def _decomp_events(self, side: _Side) -> None:
        if side.decomp is not None and side.decomp.events:
            for name in side.decomp.events:
                self._event(side.tx, name)
            side.decomp.events.clear()

    def _store_body(self, side: _Side, tx: HttpTransaction, data: bytes) -> None:
        if not data:
            return
        if side.is_request:
            limit = self.config.request_body_limit
            stored = len(tx.request_body)
            tx.request_body_len_seen += len(data)
            room = limit - stored if limit else len(data)
            if room < len(data):
                tx.request_body_truncated = True
            if room > 0:
                tx.request_body += data[:room]
        else:
            limit = self.config.response_body_limit
            stored = len(tx.response_body)
            tx.response_body_len_seen += len(data)
            room = limit - stored if limit else len(data)
            if room < len(data):
                tx.response_body_truncated = True
            if room > 0:
                tx.response_body += data[:room]
        side.files.data(tx, data, stored, limit, self.file_policy)

    def _complete(self, side: _Side) -> None:
        tx = side.tx
        if tx is None:
            return
        if side.decomp is not None:
            self._store_body(side, tx, side.decomp.flush())
            self._decomp_events(side)
            side.decomp = None
        side.files.end(tx, self.file_policy)
        if side.is_request:
            tx.request_progress = Progress.COMPLETE
        else:
            tx.response_progress = Progress.COMPLETE
        side.tx = None
        side.headers = []
        side.raw = bytearray()
        side.state = _State.IDLE

    # ------------------------------------------------------------------ close
    def _close_side(self, side: _Side) -> None:
        state = side.state
        if state in (_State.IGNORE, _State.STOPPED):
            if side.tx is not None and state == _State.STOPPED:
                self._complete(side)
                side.state = _State.STOPPED
            return
        if state == _State.FINALIZE:
            rest = bytes(side.buf[side.pos :])
            words = rest.split(None, 1)
            if rest and not (words and words[0] in lex.KNOWN_METHODS):
                side.pos = len(side.buf)
                self._body_data(side, rest)
            self._complete(side)
            state = side.state
        if state == _State.IDLE and side.available():
            # an unterminated start line still counts (libhtp processes it at close)
            side.buf += b"\n"
            if side.is_request:
                self._event(None, ev.REQUEST_LINE_INCOMPLETE)
            self._run(side)
            state = side.state
        if state in (_State.HEADERS, _State.TRAILERS) and side.tx is not None:
            if side.available():
                side.buf += b"\n"
                self._run(side)
            if side.tx is not None and side.state in (_State.HEADERS, _State.TRAILERS):
                if side.state == _State.HEADERS:
                    self._headers_done(side)
                else:
                    self._merged_headers(side, side.tx.request_headers if side.is_request
                                         else side.tx.response_headers)
        if side.tx is not None:
            self._complete(side)
