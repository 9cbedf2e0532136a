"""Message bodies of both directions: Content-Length, chunked and until-close framing,
trailers, decompression and the end of a message (libhtp's body states)."""

from __future__ import annotations

from ruleengine.applayer.http1 import events as ev
from ruleengine.applayer.http1 import lexical as lex
from ruleengine.applayer.http1.decompress import Decompressor, parse_content_encoding
from ruleengine.applayer.http1.parse_state import (
    ParserBase,
    Side,
    State,
)
from ruleengine.applayer.http1.tx import HttpTransaction, Progress


class BodyFraming(ParserBase):
    """Body framing and message completion, for requests and responses alike."""

    def _begin_body(self, side: Side, tx: HttpTransaction, *, chunked: bool, length: int) -> None:
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
            side.state = State.CHUNK_SIZE
        elif length < 0:
            side.state = State.BODY_CLOSE
        else:
            side.left = length
            side.state = State.BODY_LENGTH

    def _on_body_length(self, side: Side) -> bool:
        data = side.take(min(side.left, side.available()))
        side.left -= len(data)
        self._body_data(side, data)
        if side.left == 0:
            self._finish_message(side)
        return True

    def _on_body_close(self, side: Side) -> bool:
        self._body_data(side, side.take(side.available()))
        return False

    def _on_chunk_size(self, side: Side) -> bool:
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
            side.state = State.TRAILERS
            side.headers = []
            return True
        side.left = size
        side.state = State.CHUNK_DATA
        return True

    def _invalid_chunk_len(self, side: Side, line: bytes | None) -> bool:
        name = ev.INVALID_REQUEST_CHUNK_LEN if side.is_request else ev.INVALID_RESPONSE_CHUNK_LEN
        self._event(side.tx, name)
        if side.is_request:
            self._complete(side)
            self._stop(side)
            return False
        # libhtp: an unparseable chunk length turns the rest into a plain body
        if line is not None:
            side.pos -= len(line)
        side.state = State.BODY_CLOSE
        return True

    def _on_chunk_data(self, side: Side) -> bool:
        data = side.take(min(side.left, side.available()))
        side.left -= len(data)
        self._body_data(side, data)
        if side.left == 0:
            side.state = State.CHUNK_END
        return True

    def _on_chunk_end(self, side: Side) -> bool:
        line = self._read_line(side)
        if line is None:
            return False
        side.state = State.CHUNK_SIZE
        if lex.chomp(line):
            # data past the declared chunk size: treat the line as the next size line
            side.pos -= len(line)
        return True

    def _on_trailers(self, side: Side) -> bool:
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

    def _finish_message(self, side: Side) -> None:
        """End of a message. libhtp (``request_finalize``) looks at what follows a request in
        the same data: lines that do not start with a known method are more request body."""
        if side.is_request and side.available():
            side.state = State.FINALIZE
        else:
            self._complete(side)

    def _on_finalize(self, side: Side) -> bool:
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

    def _count_message(self, side: Side, count: int) -> None:
        tx = side.tx
        assert tx is not None
        if side.is_request:
            tx.request_message_len += count
        else:
            tx.response_message_len += count

    def _body_data(self, side: Side, data: bytes) -> None:
        tx = side.tx
        if tx is None or not data:
            return
        self._count_message(side, len(data))
        if side.decomp is not None:
            data = side.decomp.feed(data)
            self._decomp_events(side)
        self._store_body(side, tx, data)

    def _decomp_events(self, side: Side) -> None:
        if side.decomp is not None and side.decomp.events:
            for name in side.decomp.events:
                self._event(side.tx, name)
            side.decomp.events.clear()

    def _store_body(self, side: Side, tx: HttpTransaction, data: bytes) -> None:
        if not data:
            return
        cfg = self.config
        limit = cfg.request_body_limit if side.is_request else cfg.response_body_limit
        stored = tx.add_body(side.is_request, data, limit)
        side.files.data(tx, data, stored, limit, self.file_policy)

    def _complete(self, side: Side) -> None:
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
        side.state = State.IDLE
