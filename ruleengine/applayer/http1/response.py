"""The response side: status line, header line ends, interim responses and the response
body's framing (libhtp's response parser)."""

from __future__ import annotations

from ruleengine.applayer.http1 import events as ev
from ruleengine.applayer.http1 import lexical as lex
from ruleengine.applayer.http1.parse_state import (
    SPACE_OR_NUL,
    Side,
    State,
)
from ruleengine.applayer.http1.tunnel import ConnectTunnel
from ruleengine.applayer.http1.tx import HttpTransaction, Progress


class ResponseParsing(ConnectTunnel):
    """Status line and what follows from the response headers."""

    def _read_header_line(self, side: Side) -> bytes | None:
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

    def _start_response(self, side: Side, line: bytes, content: bytes) -> bool:
        tx = side.tx or self._response_tx()
        if tx is None:
            return False
        side.tx = tx
        if not lex.could_be_http(content.lstrip(SPACE_OR_NUL)):
            if side.available() > 1 and (side.buf[side.pos] == 0x48 or len(content) <= 2):
                # libhtp: a junk line right before one that starts with "H" (or a line of
                # at most two bytes) is skipped, and the status line after it parsed
                tx.response_ignored_lines += 1
                return True
            # not a status line: libhtp treats the response as body (HTTP/0.9 style)
            side.pos -= len(line)
            return self._response_as_body(side)
        tx.response_line = content
        parts = content.lstrip(SPACE_OR_NUL).split(None, 2) or [b""]
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
        side.state = State.HEADERS
        return True

    def _response_as_body(self, side: Side) -> bool:
        tx = side.tx or self._response_tx()
        if tx is None:
            return False
        side.tx = tx
        self._event(tx, ev.RESPONSE_INVALID_PROTOCOL)
        tx.response_progress = Progress.BODY
        tx.response_has_body = True
        side.decomp = None
        side.state = State.BODY_CLOSE
        return True

    def _response_body_start(self, side: Side, tx: HttpTransaction) -> None:
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

    def _interim_response(self, side: Side, tx: HttpTransaction) -> None:
        """100 Continue (and other 1xx): forget it, the real response follows."""
        if tx.seen_100_continue:
            self._event(tx, ev.CONTINUE_ALREADY_SEEN)
        tx.seen_100_continue = True
        tx.response_line = tx.response_protocol = tx.status_code = tx.status_msg = None
        tx.response_headers = []
        tx.response_header_raw = b""
        tx.response_progress = Progress.NONE
        side.state = State.IDLE
