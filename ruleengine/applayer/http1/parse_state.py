"""The HTTP/1 parser's shared state: each direction's buffer and position, the transaction
queues, events, line reading and header fields (libhtp's connection parser state)."""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable

from ruleengine.applayer.files import FilePolicy
from ruleengine.applayer.http1 import events as ev
from ruleengine.applayer.http1 import lexical as lex
from ruleengine.applayer.http1.config import HttpConfig
from ruleengine.applayer.http1.decompress import Decompressor
from ruleengine.applayer.http1.files import BodyFiles
from ruleengine.applayer.http1.tx import HttpTransaction

VALUE_WS = b" \t\r\n\x0b\x0c"
SPACE_OR_NUL = b" \t\r\n\x0b\x0c\x00"  # libhtp's take_is_space_or_null
MAX_REPETITIONS = 64
MAX_TX_EVENTS = 32
# header names already found clean (no trailing whitespace or NUL, a token): the same few
# recur in every message, so their checks are done once. Bounded: a peer may send endless
# distinct names.
_CLEAN_NAMES: set[bytes] = set()
_CLEAN_NAMES_MAX = 4096
_CLEAN_NAME_LEN = 64


class State(enum.Enum):
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

    # members are singletons: the identity hash is enough for the handler table, and unlike
    # Enum's own (hash of the name, in Python) it costs no call on every handler lookup
    __hash__ = object.__hash__


class Side:
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
        self.state = State.IDLE
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


class ParserBase:
    """What every part of the parser shares: the two sides, the transactions, events, lines
    and header fields. The request, response, body and CONNECT parts build on it."""

    def __init__(self, config: HttpConfig | None = None) -> None:
        self.config = config or HttpConfig()
        # which hashes files get (set by the engine from outputs.eve-log files: force-hash)
        self.file_policy = FilePolicy()
        self.transactions: list[HttpTransaction] = []
        self.events: list[str] = []
        self.events_dropped = 0
        self._req = Side(is_request=True)
        self._resp = Side(is_request=False)
        self._next_tx_id = 0
        self._awaiting_response: deque[HttpTransaction] = deque()
        self._awaiting_request: deque[HttpTransaction] = deque()
        self._ts = 0.0
        self._connect_tx: HttpTransaction | None = None
        # state -> handler; the assembled parser fills it in
        self._handlers: dict[State, Callable[[Side], bool]] = {}

    # ------------------------------------------------------------------ events
    def _event(self, tx: HttpTransaction | None, name: str) -> None:
        if len(self.events) < self.config.max_events:
            self.events.append(name)
        else:
            self.events_dropped += 1
        if tx is not None and len(tx.events) < MAX_TX_EVENTS:
            tx.events.append(name)

    def _stop(self, side: Side) -> None:
        side.files.abort()
        side.state = State.STOPPED
        side.buf.clear()
        side.pos = 0

    # ------------------------------------------------------------------ driver
    def _run(self, side: Side) -> None:
        handlers = self._handlers
        buf = side.buf
        while len(buf) > side.pos:
            handler = handlers.get(side.state)
            if handler is None:  # IGNORE / STOPPED: drop the rest
                side.pos = len(side.buf)
                return
            if not handler(side):
                return

    def _read_line(self, side: Side) -> bytes | None:
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
        return self._side_tx(self._awaiting_request, self._awaiting_response, None)

    def _response_tx(self) -> HttpTransaction | None:
        # a response before its request: the transaction waits for the request
        return self._side_tx(self._awaiting_response, self._awaiting_request,
                             ev.UNABLE_TO_MATCH_RESPONSE_TO_REQUEST)

    def _side_tx(self, waiting: deque[HttpTransaction], other: deque[HttpTransaction],
                 event: str | None) -> HttpTransaction | None:
        """The oldest transaction waiting for this side, else a new one, which then waits
        for the other side (``event`` set on it when that is an anomaly)."""
        if waiting:
            return waiting.popleft()
        tx = self._new_tx()
        if tx is not None:
            if event is not None:
                self._event(tx, event)
            other.append(tx)
        return tx

    # ------------------------------------------------------------------ headers
    def _reset_headers(self, side: Side) -> None:
        side.headers = []
        side.header_count = 0
        side.raw = bytearray()

    def _append_raw(self, side: Side, line: bytes) -> None:
        room = self.config.max_header_block - len(side.raw)
        if room > 0:
            side.raw += line[:room]

    def _plain_header_lines(self, side: Side) -> None:
        """Fast path of the header state: take every ``name: value CRLF`` line in a row that
        no leniency rule can touch (the only CR right before the LF, not starting with SP,
        HT or NUL, within the field limit and the header count), as the lenient path would
        take it: the line into the raw block, its content into the header lines. Anything
        else (the empty line ending the block, folds, bare CR, LF-only or LF CR endings, a
        line still arriving) is left to the lenient path."""
        buf = side.buf
        pos = side.pos
        cfg = self.config
        field_limit = cfg.field_limit
        room = cfg.headers_limit - side.header_count
        block_limit = cfg.max_header_block
        headers = side.headers
        raw = side.raw
        taken = 0
        while taken < room:
            lf = buf.find(b"\n", pos)
            size = lf - pos  # negative without an LF
            if size < 2 or size > field_limit or buf[lf - 1] != 0x0D or (
                buf[pos] in (0x20, 0x09, 0x00) or buf.find(b"\r", pos, lf - 1) != -1
            ):
                break
            left = block_limit - len(raw)
            if left > 0:
                raw += buf[pos : min(lf + 1, pos + left)]
            headers.append(bytes(buf[pos : lf - 1]))
            taken += 1
            pos = lf + 1
        side.header_count += taken
        side.pos = pos

    def _add_header_line(self, side: Side, content: bytes) -> None:
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
            content = content.lstrip(VALUE_WS)
        side.header_count += 1
        if side.header_count > self.config.headers_limit:
            if side.header_count == self.config.headers_limit + 1:
                name = ev.REQUEST_TOO_MANY_HEADERS if side.is_request else (
                    ev.RESPONSE_TOO_MANY_HEADERS
                )
                self._event(tx, name)
            return
        side.headers.append(content)

    def _parse_header(self, side: Side, line: bytes) -> tuple[bytes, bytes]:
        tx = side.tx
        colon = line.find(b":")
        if colon == -1:
            name = ev.REQUEST_FIELD_MISSING_COLON if side.is_request else (
                ev.RESPONSE_FIELD_MISSING_COLON
            )
            self._event(tx, name)
            return b"", line.strip(VALUE_WS)
        raw_name = line[:colon]
        if raw_name in _CLEAN_NAMES:
            return raw_name, line[colon + 1 :].strip(VALUE_WS)
        # trailing whitespace and NULs are not part of the name (libhtp trims them)
        header_name = raw_name.rstrip(VALUE_WS + b"\x00")
        if header_name != raw_name or not header_name or not lex.is_token(header_name):
            name = ev.REQUEST_HEADER_INVALID if side.is_request else ev.RESPONSE_HEADER_INVALID
            self._event(tx, name)
        elif len(header_name) <= _CLEAN_NAME_LEN:
            if len(_CLEAN_NAMES) >= _CLEAN_NAMES_MAX:
                _CLEAN_NAMES.clear()
            _CLEAN_NAMES.add(header_name)
        return header_name, line[colon + 1 :].strip(VALUE_WS)

    def _merged_headers(self, side: Side, into: list[tuple[bytes, bytes]]) -> None:
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
            if count > MAX_REPETITIONS:
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
