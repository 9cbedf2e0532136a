"""libhtp 0.5.x's leniency on responses, class by class (issue 12 §2): each case is the byte
stream a server sends and what libhtp's response parser (htp_response.c, htp_util.c) makes
of it, so an evasion that fools a strict parser reads here as it reads in Suricata."""

from __future__ import annotations

import gzip
import lzma

import pytest

from ruleengine.applayer.http1 import HttpConfig, HttpParser, HttpTransaction

GET = b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n"


def response(raw: bytes, *, request: bytes = GET, config: HttpConfig | None = None,
             step: int = 0) -> HttpTransaction:
    parser = HttpParser(config or HttpConfig())
    parser.feed(True, request)
    if step:
        for i in range(0, len(raw), step):
            parser.feed(False, raw[i:i + step])
    else:
        parser.feed(False, raw)
    parser.close()
    return parser.transactions[0]


# -- line endings: LF, CRLF, bare CR, LF-CR (RES_HEADERS) -------------------------------
@pytest.mark.parametrize(("eol", "name"), [
    (b"\n", "LF"), (b"\r\n", "CRLF"), (b"\r", "bare CR"), (b"\n\r", "LF-CR")])
def test_each_line_ending_ends_a_header_line(eol: bytes, name: str) -> None:
    raw = b"HTTP/1.1 200 OK\r\nServer: s" + eol + b"Content-Length: 2\r\n\r\nok"
    tx = response(raw)
    assert (b"Server", b"s") in tx.response_headers, name
    assert tx.response_body == b"ok", name


# htp_connp_is_line_terminator: only "\n" and "\r\n" are empty lines. CR CR LF is a header
# line with no colon (an empty name), so the block goes on; a line of one space or tab and LF
# ends the block on a response when the next byte is there and is not an LF, else it folds.
def test_cr_cr_lf_is_a_nameless_header_not_the_end_of_the_block() -> None:
    tx = response(b"HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\r\nContent-Length: 2\r\n\r\nok")
    assert (b"Content-Length", b"2") in tx.response_headers
    assert tx.response_body == b"ok"
    assert "http.response_field_missing_colon" in tx.events


@pytest.mark.parametrize("ws", [b" ", b"\t"])
def test_a_whitespace_lf_line_ends_the_block_when_data_follows(ws: bytes) -> None:
    tx = response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + ws + b"\nokX-B: 2\r\n\r\n")
    assert tx.response_body == b"ok"
    assert all(name != b"X-B" for name, _ in tx.response_headers)


def test_a_whitespace_lf_line_at_the_end_of_the_data_is_a_fold() -> None:
    # nothing after " \n" yet: libhtp cannot look ahead, the line folds into X-A
    parser = HttpParser(HttpConfig())
    parser.feed(True, GET)
    parser.feed(False, b"HTTP/1.1 200 OK\r\nX-A: 1\r\n \n")
    parser.feed(False, b"Content-Length: 2\r\n\r\nok")
    parser.close()
    tx = parser.transactions[0]
    assert tx.response_body == b"ok"
    assert (b"Content-Length", b"2") in tx.response_headers


def test_a_whitespace_lf_line_in_a_request_is_a_fold() -> None:
    parser = HttpParser(HttpConfig())
    parser.feed(True, b"GET / HTTP/1.1\r\nHost: h\r\n \nX-B: 2\r\n\r\n")
    parser.close()
    assert (b"X-B", b"2") in parser.transactions[0].request_headers


def test_a_whitespace_crlf_line_is_a_fold_not_the_end() -> None:
    tx = response(b"HTTP/1.1 200 OK\r\nX-A: 1\r\n \r\nContent-Length: 2\r\n\r\nok")
    assert tx.response_body == b"ok"
    assert (b"Content-Length", b"2") in tx.response_headers


# -- Content-Length as htp_parse_content_length reads it --------------------------------
@pytest.mark.parametrize(("value", "length"), [
    (b"34 68", 34), (b"34( 68)", 34), (b" 34", 34), (b"x34", 34), (b"34xyz", 34)])
def test_content_length_with_junk_reads_the_first_digits(value: bytes, length: int) -> None:
    body = bytes(range(65, 65 + 60))
    tx = response(b"HTTP/1.1 200 OK\r\nContent-Length: " + value + b"\r\n\r\n" + body)
    assert tx.response_body == body[:length]


def test_folded_content_length_joins_the_fold() -> None:
    # the fold is appended to the header ("34" + " 68") and read as 34
    body = b"A" * 68
    tx = response(b"HTTP/1.1 200 OK\r\nContent-Length: 34\r\n 68\r\n\r\n" + body)
    assert len(tx.response_body) == 34


# -- before the status line ---------------------------------------------------------------
def test_empty_lines_before_the_status_line_are_ignored() -> None:
    tx = response(b"\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert tx.status_code == b"200" and tx.response_body == b"ok"


@pytest.mark.parametrize("junk", [b"\x00\x00junk\r\n", b"FOO 200 OK\r\n", b"x\r\n"])
def test_a_junk_line_before_the_status_line_is_skipped(junk: bytes) -> None:
    # treat_response_line_as_body, but the next line starts with "H": skip the junk
    tx = response(junk + b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert tx.status_code == b"200" and tx.response_body == b"ok"
    assert tx.response_ignored_lines == 1


def test_nul_and_space_before_http_still_make_a_status_line() -> None:
    tx = response(b"\x00 HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert tx.status_code == b"200"


def test_a_junk_first_line_followed_by_more_junk_makes_the_response_body() -> None:
    raw = b"FOO 200 OK\r\nnot http either\r\n\r\nok"
    tx = response(raw)
    assert tx.status_code is None
    assert tx.response_body == raw


# -- responses that carry a body they must not have ---------------------------------------
@pytest.mark.parametrize("status", [b"204 No Content", b"304 Not Modified"])
def test_bodyless_status_with_data_after_it(status: bytes) -> None:
    # RES_FINALIZE: bytes that do not start a response line are "Unexpected response body"
    tx = response(b"HTTP/1.1 " + status + b"\r\nContent-Length: 5\r\n\r\nhello")
    assert tx.response_body == b"hello"  # libhtp only warns: Suricata has no event for it


@pytest.mark.parametrize("status", [b"204 No Content", b"304 Not Modified", b"102 Processing"])
def test_bodyless_status_without_framing_has_no_body(status: bytes) -> None:
    parser = HttpParser(HttpConfig())
    parser.feed(True, GET + GET)
    parser.feed(False, b"HTTP/1.1 " + status + b"\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2"
                b"\r\n\r\nok")
    parser.close()
    assert [tx.status for tx in parser.transactions] == [int(status[:3]), 200]
    assert parser.transactions[1].response_body == b"ok"


def test_interim_1xx_is_skipped_and_the_final_response_parsed() -> None:
    tx = response(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert tx.status_code == b"200" and tx.response_body == b"ok"


def test_101_switching_protocols_stops_parsing_both_ways() -> None:
    parser = HttpParser(HttpConfig())
    parser.feed(True, b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n")
    parser.feed(False, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
                b"\x81\x05hello")
    parser.feed(True, b"GET /not-http HTTP/1.1\r\n\r\n")
    parser.close()
    assert len(parser.transactions) == 1
    assert parser.transactions[0].status_code == b"101"
    assert parser.transactions[0].response_body == b""


# -- content encodings ------------------------------------------------------------------
def test_lzma_is_decoded_only_when_enabled() -> None:
    # a small dictionary: libhtp's lzma-memlimit (1 MiB by default) refuses the default 8 MiB
    body = lzma.compress(b"secret payload", format=lzma.FORMAT_ALONE,
                         filters=[{"id": lzma.FILTER_LZMA1, "dict_size": 1 << 16}])
    raw = (b"HTTP/1.1 200 OK\r\nContent-Encoding: lzma\r\nContent-Length: "
           + str(len(body)).encode() + b"\r\n\r\n" + body)
    assert response(raw).response_body == body  # libhtp's default: lzma off
    enabled = HttpConfig(lzma_enabled=True)
    assert response(raw, config=enabled).response_body == b"secret payload"


def test_lzma_over_the_memlimit_passes_the_data_through() -> None:
    # the default 8 MiB dictionary is over libhtp's 1 MiB lzma-memlimit: the decoder fails
    # and libhtp hands on the body as it came (passthrough), with the failure logged
    body = lzma.compress(b"secret payload", format=lzma.FORMAT_ALONE)
    raw = (b"HTTP/1.1 200 OK\r\nContent-Encoding: lzma\r\nContent-Length: "
           + str(len(body)).encode() + b"\r\n\r\n" + body)
    tx = response(raw, config=HttpConfig(lzma_enabled=True))
    assert tx.response_body == body
    assert "http.gzip_decompression_failed" in tx.events


def test_stacked_encodings_stop_at_the_layer_limit() -> None:
    # response-body-decompress-layer-limit (2): the third gzip stays encoded
    once = gzip.compress(b"deep secret")
    body = gzip.compress(gzip.compress(once))
    raw = (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip, gzip, gzip\r\nContent-Length: "
           + str(len(body)).encode() + b"\r\n\r\n" + body)
    tx = response(raw)
    assert tx.response_body == once
    assert "http.too_many_encoding_layers" in tx.events
    deeper = response(raw, config=HttpConfig(response_body_decompress_layer_limit=3))
    assert deeper.response_body == b"deep secret"


# -- chunked framing ------------------------------------------------------------------------
@pytest.mark.parametrize(("size_line", "ok"), [
    (b"5\r\n", True), (b"5;ext=1\r\n", True), (b"  5  \r\n", True), (b"05\r\n", True),
    (b"zz\r\n", False), (b"-5\r\n", False)])
def test_chunk_size_lines_with_junk(size_line: bytes, ok: bool) -> None:
    raw = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + size_line
           + b"hello\r\n0\r\n\r\n")
    tx = response(raw, step=3)
    assert (tx.response_body == b"hello") is ok
