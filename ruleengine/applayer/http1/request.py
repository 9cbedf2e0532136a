"""The request side: request line, target normalisation, Host and the request body's
framing (libhtp's request parser)."""

from __future__ import annotations

from ruleengine.applayer.http1 import events as ev
from ruleengine.applayer.http1 import lexical as lex
from ruleengine.applayer.http1.normalize import (
    ParsedUri,
    normalize_host,
    normalize_path,
    normalize_uri,
    split_hostport,
)
from ruleengine.applayer.http1.parse_state import (
    Side,
    State,
)
from ruleengine.applayer.http1.tunnel import ConnectTunnel
from ruleengine.applayer.http1.tx import HttpTransaction, Progress


class RequestParsing(ConnectTunnel):
    """Request line and what follows from the request headers."""

    def _start_request(self, side: Side, line: bytes) -> bool:
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
                side.state = State.IGNORE
                return False
        side.state = State.HEADERS
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
        uri_norm, parsed = self._normalized_uri(tx, cfg.double_decode_path,
                                                cfg.double_decode_query)
        tx.uri_normalized = uri_norm
        if parsed.path is not None:
            tx.uri_path = normalize_path(parsed.path, lowercase=cfg.path_convert_lowercase,
                                         double_decode=cfg.double_decode_path)
        if cfg.double_decode_path or cfg.double_decode_query:
            single, _ = self._normalized_uri(tx, False, False)
            if single != uri_norm:
                self._event(tx, ev.DOUBLE_ENCODED_URI)
        if parsed.hostname is not None:
            tx.uri_host_raw = parsed.hostname
            # Suricata's http.host.raw reads libhtp's parsed_uri, whose host is normalised
            tx.host = tx.host_raw = normalize_host(parsed.hostname)
            tx.request_port = lex.port_number(parsed.port)
            if parsed.port is not None and tx.request_port is None:
                self._event(tx, ev.INVALID_AUTHORITY_PORT)

    def _normalized_uri(self, tx: HttpTransaction, double_path: bool,
                        double_query: bool) -> tuple[bytes | None, ParsedUri]:
        """The request target normalised with this parser's settings, decoded twice in the
        path / query as asked (a second, single-decoded pass tells a double-encoded URI)."""
        cfg = self.config
        return normalize_uri(
            tx.uri_raw or b"",
            method=tx.method_raw or b"",
            double_decode_path=double_path,
            double_decode_query=double_query,
            plusspace=cfg.query_plusspace_decode,
            lowercase=cfg.path_convert_lowercase,
            include_all=cfg.uri_include_all,
        )

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
    def _request_body_start(self, side: Side, tx: HttpTransaction) -> None:
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

    def _stop_request(self, side: Side) -> None:
        """Give up on the request direction; the transaction keeps its headers."""
        side.tx = None
        side.headers = []
        self._stop(side)
