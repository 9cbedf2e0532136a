"""HttpParser behaviour, one feature per test."""

from __future__ import annotations

import gzip
import zlib

import pytest

from ruleengine.applayer.http1 import HttpConfig, HttpParser, HttpTransaction, Progress


def parse(
    request: bytes = b"",
    response: bytes = b"",
    *,
    config: HttpConfig | None = None,
    step: int = 0,
    close: bool = True,
) -> HttpParser:
    parser = HttpParser(config or HttpConfig())
    for to_server, data in ((True, request), (False, response)):
        if step:
            for i in range(0, len(data), step):
                parser.feed(to_server, data[i : i + step])
        elif data:
            parser.feed(to_server, data)
    if close:
        parser.close()
    return parser


def only_tx(parser: HttpParser) -> HttpTransaction:
    assert len(parser.transactions) == 1
    return parser.transactions[0]


GET = b"GET /index.html HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: test\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: unit\r\n\r\nhello"


def test_simple_transaction_fields() -> None:
    tx = only_tx(parse(GET, OK))
    assert tx.tx_id == 0
    assert tx.request_line == b"GET /index.html HTTP/1.1"
    assert (tx.method_raw, tx.uri_raw, tx.request_protocol) == (
        b"GET", b"/index.html", b"HTTP/1.1")
    assert tx.uri_normalized == b"/index.html"
    assert tx.host == b"www.example.com"
    assert tx.request_headers == [(b"Host", b"www.example.com"), (b"User-Agent", b"test")]
    assert tx.request_header_raw == b"Host: www.example.com\r\nUser-Agent: test\r\n\r\n"
    assert tx.response_line == b"HTTP/1.1 200 OK"
    assert (tx.response_protocol, tx.status_code, tx.status_msg) == (b"HTTP/1.1", b"200", b"OK")
    assert tx.response_body == b"hello"
    assert tx.request_progress == tx.response_progress == Progress.COMPLETE
    # EVE helpers
    assert (tx.hostname, tx.url, tx.method, tx.protocol, tx.status, tx.length) == (
        "www.example.com", "/index.html", "GET", "HTTP/1.1", 200, 5)
    assert tx.user_agent == "test"


def test_byte_by_byte_feeding_gives_the_same_result() -> None:
    whole = only_tx(parse(GET, OK))
    tiny = only_tx(parse(GET, OK, step=1))
    for field in ("request_line", "request_headers", "response_headers", "response_body",
                  "uri_normalized", "request_header_raw", "response_header_raw"):
        assert getattr(whole, field) == getattr(tiny, field), field


def test_progress_is_reported_while_data_arrives() -> None:
    parser = HttpParser()
    parser.feed(True, b"POST /up HTTP/1.1\r\nHost: a\r\n")
    tx = parser.transactions[0]
    assert tx.request_progress == Progress.LINE
    parser.feed(True, b"Content-Length: 10\r\n\r\n01234")
    assert tx.request_progress == Progress.BODY
    assert tx.request_body == b"01234" and not tx.request_body_complete
    parser.feed(True, b"56789")
    assert tx.request_progress == Progress.COMPLETE and tx.request_body_complete
    assert tx.request_body == b"0123456789"


def test_pipelined_requests_and_responses_pair_in_order() -> None:
    requests = b"".join(
        b"GET /%d HTTP/1.1\r\nHost: h\r\n\r\n" % i for i in range(3)
    )
    responses = b"".join(
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n%d" % i for i in range(3)
    )
    parser = parse(requests, responses)
    assert [tx.uri_raw for tx in parser.transactions] == [b"/0", b"/1", b"/2"]
    assert [tx.response_body for tx in parser.transactions] == [b"0", b"1", b"2"]
    assert [tx.tx_id for tx in parser.transactions] == [0, 1, 2]


def test_100_continue_is_skipped_and_the_final_response_kept() -> None:
    parser = HttpParser()
    parser.feed(True, b"POST /u HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
                      b"Content-Length: 4\r\n\r\n")
    parser.feed(False, b"HTTP/1.1 100 Continue\r\n\r\n")
    tx = parser.transactions[0]
    assert tx.seen_100_continue and tx.response_line is None
    parser.feed(True, b"data")
    parser.feed(False, b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
    assert len(parser.transactions) == 1
    assert tx.request_body == b"data"
    assert (tx.status_code, tx.response_body) == (b"201", b"ok")
    assert tx.response_headers == [(b"Content-Length", b"2")]


def test_chunked_with_extensions_and_trailers() -> None:
    request = (b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n")
    parser = parse(request)
    tx = only_tx(parser)
    assert tx.request_body == b"hello world"
    assert tx.request_chunked
    assert (b"X-Trailer", b"yes") in tx.request_headers
    assert tx.request_header_raw.endswith(b"X-Trailer: yes\r\n\r\n")
    assert "http.request_chunk_extension" in parser.events
    assert tx.request_complete


def test_chunked_response_split_everywhere() -> None:
    response = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n")
    for step in (1, 2, 3, 7):
        tx = only_tx(parse(GET, response, step=step))
        assert tx.response_body == b"abc0123456789abcdef"
        assert tx.response_message_len == 19


def test_invalid_response_chunk_length_turns_into_plain_body() -> None:
    response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nnot-hex\r\npayload"
    parser = parse(GET, response)
    assert only_tx(parser).response_body == b"not-hex\r\npayload"
    assert "http.invalid_response_chunk_len" in parser.events


def test_gzip_response_is_decompressed() -> None:
    body = gzip.compress(b"secret gzip payload")
    response = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(
        body) + body
    tx = only_tx(parse(GET, response, step=3))
    assert tx.response_body == b"secret gzip payload"
    assert tx.response_message_len == len(body)  # EVE length: bytes on the wire
    assert tx.length == len(body)


@pytest.mark.parametrize(
    "encoder",
    [
        pytest.param(zlib.compress, id="zlib"),
        pytest.param(lambda d: zlib.compress(d)[2:-4], id="raw-deflate"),
        pytest.param(gzip.compress, id="gzip-labelled-deflate"),
    ],
)
def test_deflate_response_in_any_framing(encoder) -> None:  # type: ignore[no-untyped-def]
    body = encoder(b"deflated content")
    response = (b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: %d\r\n\r\n"
                % len(body) + body)
    assert only_tx(parse(GET, response)).response_body == b"deflated content"


def test_nested_layers_respect_the_layer_limit() -> None:
    body = gzip.compress(gzip.compress(gzip.compress(b"three layers")))
    response = (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip, gzip, gzip\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body) + body)
    parser = parse(GET, response)  # default limit: 2 layers
    assert only_tx(parser).response_body != b"three layers"
    assert "http.too_many_encoding_layers" in parser.events
    three = HttpConfig(response_body_decompress_layer_limit=3)
    assert only_tx(parse(GET, response, config=three)).response_body == b"three layers"


def test_request_body_is_decompressed_too() -> None:
    body = gzip.compress(b"uploaded")
    request = (b"POST /u HTTP/1.1\r\nHost: h\r\nContent-Encoding: gzip\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body) + body)
    assert only_tx(parse(request)).request_body == b"uploaded"


def test_broken_compressed_data_passes_through_with_an_event() -> None:
    response = (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 11\r\n\r\n"
                b"not gzipped")
    parser = parse(GET, response)
    assert only_tx(parser).response_body == b"not gzipped"
    assert "http.gzip_decompression_failed" in parser.events


def test_header_folding_keeps_the_fold_whitespace() -> None:
    request = b"GET / HTTP/1.1\r\nHost: h\r\nX-Long: part1\r\n\tpart2\r\n  part3\r\n\r\n"
    tx = only_tx(parse(request))
    assert tx.request_header(b"x-long") == b"part1\tpart2  part3"


def test_repeated_headers_joined_content_length_not() -> None:
    request = (b"POST / HTTP/1.1\r\nHost: h\r\nAccept: a\r\naccept: b\r\nAccept: c\r\n"
               b"Content-Length: 2\r\nContent-Length: 2\r\n\r\nxy")
    parser = parse(request)
    tx = only_tx(parser)
    assert tx.request_headers[1] == (b"Accept", b"a, b, c")
    assert tx.request_header(b"content-length") == b"2"
    assert tx.request_body == b"xy"
    assert "http.request_header_repetition" in parser.events


def test_http09_request_has_no_headers_and_ignores_the_rest() -> None:
    parser = HttpParser()
    parser.feed(True, b"GET /old\r\n")
    tx = only_tx(parser)
    assert tx.is_http09 and tx.request_protocol is None
    assert tx.request_complete and tx.request_headers == []
    parser.feed(True, b"GET /ignored HTTP/1.1\r\n\r\n")
    assert len(parser.transactions) == 1


def test_missing_protocol_with_headers_following() -> None:
    request = b"GET /gen.php?x=1\r\nHost: 5.8.88.25\r\nUser-Agent: Mozilla\r\n\r\n"
    parser = parse(request)
    tx = only_tx(parser)
    assert not tx.is_http09
    assert tx.request_header(b"user-agent") == b"Mozilla"
    assert "http.request_line_missing_protocol" in parser.events


def test_response_without_status_line_is_body() -> None:
    parser = parse(b"GET / HTTP/1.0\r\n\r\n", b"garbage that is not a status line")
    tx = only_tx(parser)
    assert tx.response_line is None
    assert tx.response_body == b"garbage that is not a status line"
    assert "http.response_invalid_protocol" in parser.events


def test_response_before_request_still_gets_a_transaction() -> None:
    parser = HttpParser()
    parser.feed(False, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    assert parser.transactions[0].status_code == b"400"
    assert "http.unable_to_match_response_to_request" in parser.events
    parser.feed(True, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert len(parser.transactions) == 1 and parser.transactions[0].uri_raw == b"/"


def test_absolute_uri_host_wins_over_host_header() -> None:
    request = b"GET http://Abs.Example.COM:8080/p?q HTTP/1.1\r\nHost: other.example\r\n\r\n"
    parser = parse(request)
    tx = only_tx(parser)
    assert tx.host == b"abs.example.com"
    assert tx.host_port == 8080
    assert tx.uri_normalized == b"/p?q"
    assert tx.uri_host_raw == b"Abs.Example.COM"
    assert tx.host_raw == b"abs.example.com"  # libhtp's parsed_uri host (normalised)
    assert tx.request_port == 8080
    assert "http.host_header_ambiguous" in parser.events


@pytest.mark.parametrize(
    ("header", "host"),
    [
        (b"WWW.Example.Com", b"www.example.com"),
        (b"example.com:8080", b"example.com"),
        (b"example.com.", b"example.com."),  # libhtp keeps a Host header's trailing dot
        (b"[::1]:80", b"[::1]"),
        (b"ex%41mple.com", b"ex%41mple.com"),  # ... and does not URL-decode it
    ],
)
def test_host_header_normalisation(header: bytes, host: bytes) -> None:
    tx = only_tx(parse(b"GET / HTTP/1.1\r\nHost: " + header + b"\r\n\r\n"))
    assert tx.host == host
    assert tx.request_header(b"host") == tx.host_raw == header


def test_body_limits_bound_what_is_kept() -> None:
    config = HttpConfig(request_body_limit=4, response_body_limit=3)
    request = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789"
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabcdef"
    tx = only_tx(parse(request, response, config=config))
    assert tx.request_body == b"0123" and tx.request_body_truncated
    assert tx.request_body_len_seen == 10
    assert tx.response_body == b"abc" and tx.response_body_truncated
    assert tx.response_body_len_seen == 6


def test_zero_body_limit_means_unlimited() -> None:
    config = HttpConfig(response_body_limit=0)
    body = b"x" * 300_000
    response = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    assert only_tx(parse(GET, response, config=config)).response_body == body


def test_body_until_close_completes_on_close() -> None:
    parser = HttpParser()
    parser.feed(True, b"GET / HTTP/1.0\r\n\r\n")
    parser.feed(False, b"HTTP/1.0 200 OK\r\n\r\npart one ")
    tx = parser.transactions[0]
    assert tx.response_progress == Progress.BODY
    parser.feed(False, b"part two")
    parser.close(False)
    assert tx.response_complete and tx.response_body == b"part one part two"


def test_head_204_304_have_no_body() -> None:
    requests = (b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\nGET /a HTTP/1.1\r\nHost: h\r\n\r\n"
                b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n")
    responses = (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
                 b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\n")
    parser = parse(requests, responses, close=False)
    assert [tx.status for tx in parser.transactions] == [200, 204, 304]
    assert all(tx.response_complete for tx in parser.transactions)


def test_connect_tunnel_stops_parsing() -> None:
    parser = HttpParser()
    parser.feed(True, b"CONNECT mail.example:443 HTTP/1.1\r\nHost: mail.example:443\r\n\r\n")
    parser.feed(False, b"HTTP/1.1 200 Connection established\r\n\r\n")
    parser.feed(True, b"\x16\x03\x01 TLS bytes")
    parser.feed(False, b"\x16\x03\x03 more TLS")
    tx = only_tx(parser)
    assert tx.host == b"mail.example"
    assert parser.request_state == parser.response_state == "ignore"


def test_gap_in_body_is_skipped_gap_in_headers_stops() -> None:
    parser = HttpParser()
    parser.feed(True, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc")
    parser.gap(True, 4)
    parser.feed(True, b"xyz")
    tx = parser.transactions[0]
    assert tx.request_complete and tx.request_body == b"abcxyz"
    assert tx.request_message_len == 10
    parser.feed(True, b"GET /next HTTP/1.1\r\nHo")
    parser.gap(True, 100)
    assert "http.data_gap" in parser.events
    assert parser.request_state == "stopped"
    parser.feed(True, b"more data is ignored\r\n\r\n")


def test_field_limit_stops_the_direction_quietly() -> None:
    parser = HttpParser(HttpConfig(field_limit=100))
    parser.feed(True, b"GET /" + b"a" * 200)
    assert "http.request_field_too_long" in parser.events
    assert parser.request_state == "stopped"


def test_too_many_headers_are_dropped_with_an_event() -> None:
    headers = b"".join(b"X-%d: v\r\n" % i for i in range(50))
    parser = parse(b"GET / HTTP/1.1\r\n" + headers + b"\r\n", config=HttpConfig(headers_limit=10))
    assert len(only_tx(parser).request_headers) == 10
    assert "http.request_too_many_headers" in parser.events


def test_close_processes_an_unterminated_request_line() -> None:
    parser = HttpParser()
    parser.feed(True, b"GET /no-newline HTTP/1.1")
    assert parser.transactions == []
    parser.close(True)
    assert parser.transactions[0].uri_raw == b"/no-newline"
    assert "http.request_line_incomplete" in parser.events


def test_missing_colon_header_has_empty_name() -> None:
    parser = parse(b"GET / HTTP/1.1\r\nHost: h\r\njunk line\r\n\r\n")
    assert (b"", b"junk line") in only_tx(parser).request_headers
    assert "http.request_field_missing_colon" in parser.events


def test_events_are_bounded() -> None:
    parser = HttpParser(HttpConfig(max_events=5))
    parser.feed(True, b"GET / HTTP/1.1\r\n" + b"bad\r\n" * 3 + b"\r\n")
    for _ in range(10):
        parser.feed(False, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert len(parser.events) == 5
    assert parser.events_dropped > 0


def test_lf_only_line_endings() -> None:
    request = b"GET /lf HTTP/1.1\nHost: h\n\n"
    tx = only_tx(parse(request, b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok"))
    assert tx.host == b"h" and tx.response_body == b"ok"


def test_eve_helpers_for_optional_fields() -> None:
    request = b"GET / HTTP/1.1\r\nHost: h\r\nReferer: http://r.example/\r\n\r\n"
    response = (b"HTTP/1.1 301 Moved\r\nLocation: /new\r\n"
                b"Content-Type: text/html; charset=utf-8\r\nContent-Length: 0\r\n\r\n")
    tx = only_tx(parse(request, response))
    assert (tx.http_refer, tx.redirect, tx.http_content_type) == (
        "http://r.example/", "/new", "text/html")
    bare = only_tx(parse(b"GET / HTTP/1.0\r\n\r\n"))
    assert (bare.hostname, bare.user_agent, bare.status, bare.http_content_type) == (
        None, None, None, None)


@pytest.mark.parametrize(
    ("target", "host", "ambiguous", "hostname", "port"),
    [  # libhtp's 20-ambiguous-host test
        (b"http://example.com/1", b"example.com", False, b"example.com", None),
        (b"http://example.com/2", b"foo.com", True, b"example.com", None),
        (b"http://www.example.com:8001/3", b"www.example.com:8001", False,
         b"www.example.com", 8001),
        (b"http://www.example.com:8002/4", b"www.example.com:8003", True,
         b"www.example.com", 8002),
        (b"http://www.example.com:80/5", b"www.example.com", False, b"www.example.com", 80),
    ],
)
def test_ambiguous_host(target: bytes, host: bytes, ambiguous: bool, hostname: bytes,
                        port: int | None) -> None:
    parser = parse(b"GET " + target + b" HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    tx = only_tx(parser)
    assert ("http.host_header_ambiguous" in parser.events) is ambiguous
    assert (tx.host, tx.request_port) == (hostname, port)


@pytest.mark.parametrize(
    ("header", "event"),
    [
        (b"Content-Length: abc", "http.invalid_content_length_field_in_request"),
        (b"Transfer-Encoding: identity", "http.invalid_transfer_encoding_value_in_request"),
    ],
)
def test_invalid_request_framing_stops_the_request_side(header: bytes, event: str) -> None:
    parser = HttpParser()
    parser.feed(True, b"POST / HTTP/1.1\r\nHost: h\r\n" + header + b"\r\n\r\nbody")
    tx = only_tx(parser)
    assert event in parser.events
    assert tx.request_progress == Progress.HEADERS and tx.host == b"h"
    assert parser.request_state == "stopped"
    parser.feed(False, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    assert tx.status == 400


def test_lines_after_a_request_that_are_not_requests_are_its_body() -> None:
    # libhtp request_finalize (its 91-request-unexpected-body test)
    request = (b"POST / HTTP/1.1\r\nHost: h\r\n\r\nname=value\r\n"
               b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
    parser = parse(request)
    assert [tx.method_raw for tx in parser.transactions] == [b"POST", b"GET"]
    assert parser.transactions[0].request_body == b"name=value\r\n"
    assert parser.transactions[0].request_complete
    assert "http.request_body_unexpected" in parser.events


def test_empty_line_between_requests_belongs_to_the_previous_body() -> None:
    request = (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nab\r\n"
               b"GET /2 HTTP/1.1\r\nHost: h\r\n\r\n")
    parser = parse(request)
    assert len(parser.transactions) == 2
    assert parser.transactions[0].request_body == b"ab\r\n"
    assert parser.transactions[1].uri_raw == b"/2"


def test_a_request_ending_a_segment_is_complete_at_once() -> None:
    parser = HttpParser()
    parser.feed(True, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert parser.transactions[0].request_complete
    parser.feed(True, b"garbage\r\n")
    assert parser.transactions[0].request_body == b""


def test_response_transfer_encoding_anomalies() -> None:
    response = (b"HTTP/1.0 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n"
                b"3;ext=1\r\nabc\r\n0\r\n\r\n")
    parser = parse(GET, response)
    assert only_tx(parser).response_body == b"abc"
    for event in ("http.response_abnormal_transfer_encoding", "http.response_chunked_old_proto",
                  "http.response_chunk_extension"):
        assert event in parser.events


def test_double_encoded_uri_event_only_when_double_decoding() -> None:
    request = b"GET /a%252fb HTTP/1.1\r\nHost: h\r\n\r\n"
    plain = parse(request)
    assert only_tx(plain).uri_normalized == b"/a%2fb"
    assert "http.double_encoded_uri" not in plain.events
    double = parse(request, config=HttpConfig(double_decode_path=True))
    assert only_tx(double).uri_normalized == b"/a/b"
    assert "http.double_encoded_uri" in double.events


def test_method_only_request_is_http09_without_uri() -> None:
    parser = HttpParser()
    parser.feed(True, b"HELLO\r\n")
    tx = only_tx(parser)
    assert (tx.method_raw, tx.uri_raw, tx.uri_normalized) == (b"HELLO", None, None)
    assert tx.is_http09 and tx.request_complete
    assert tx.buffer("http.uri") is None and tx.url == ""


def test_gap_right_after_a_request_completes_it() -> None:
    parser = HttpParser()
    parser.feed(True, b"GET / HTTP/1.1\r\nHost: h\r\n\r\npartial")
    tx = parser.transactions[0]
    assert not tx.request_complete  # waiting to see whether "partial" is body
    parser.gap(True, 10)
    assert tx.request_complete
    assert "http.data_gap" in parser.events


@pytest.mark.parametrize(
    ("line", "method", "uri", "protocol", "event"),
    [  # libhtp's generic request-line parser
        (b"GET /a\tb HTTP/1.1", b"GET", b"/a\tb", b"HTTP/1.1", "http.uri_delim_non_compliant"),
        (b"GET\t/x\tHTTP/1.0", b"GET", b"/x", b"HTTP/1.0", "http.method_delim_non_compliant"),
        (b"  GET /y HTTP/1.1", b"GET", b"/y", b"HTTP/1.1", "http.request_line_leading_whitespace"),
        (b"GET /a b HTTP/1.1", b"GET", b"/a", b"b HTTP/1.1", None),
    ],
)
def test_request_line_parsing(line: bytes, method: bytes, uri: bytes, protocol: bytes,
                              event: str | None) -> None:
    parser = parse(line + b"\r\nHost: h\r\n\r\n")
    tx = only_tx(parser)
    assert (tx.method_raw, tx.uri_raw, tx.request_protocol) == (method, uri, protocol)
    assert tx.request_line == line
    if event:
        assert event in parser.events


CONNECT = b"CONNECT www.example.com:80 HTTP/1.1\r\nHost: www.example.com:80\r\n\r\n"


def test_connect_holds_client_data_until_the_response() -> None:
    parser = HttpParser()
    parser.feed(True, CONNECT + b"GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n")
    assert len(parser.transactions) == 1  # the GET waits for the CONNECT verdict
    assert parser.request_state == "connect-wait"
    parser.feed(False, b"HTTP/1.1 200 Connection established\r\n\r\n")
    # libhtp probes the tunnel: it carries HTTP, so parsing goes on (106-tunnelled-1)
    assert [tx.method_raw for tx in parser.transactions] == [b"CONNECT", b"GET"]
    parser.feed(False, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert parser.transactions[1].response_body == b"ok"


def test_refused_connect_goes_on_with_http() -> None:
    parser = HttpParser()
    parser.feed(True, CONNECT)
    parser.feed(True, b"GET /after HTTP/1.1\r\nHost: h\r\n\r\n")
    parser.feed(False, b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
    assert [tx.uri_raw for tx in parser.transactions] == [b"www.example.com:80", b"/after"]
    assert parser.transactions[0].status == 407


def test_endless_folding_stays_bounded() -> None:
    parser = HttpParser(HttpConfig(field_limit=1000))
    parser.feed(True, b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n" + b" more folded text\r\n" * 5000)
    parser.feed(True, b"\r\n")
    tx = only_tx(parser)
    value = tx.request_header(b"x")
    assert value is not None and len(value) <= 1000
    assert "http.request_field_too_long" in parser.events
    assert tx.request_complete


@pytest.mark.parametrize("step", [0, 1])
def test_response_header_lines_end_at_a_bare_cr_as_in_libhtp(step: int) -> None:
    # libhtp's RES_HEADERS ends a line at a CR that no LF follows: the evasion hides
    # Content-Disposition behind Content-Type's CR (http-evader-399)
    response = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\rContent-Disposition: attachment;"
                b" filename=eicar.txt\r\nContent-Length: 5\r\n\r\nhello")
    tx = only_tx(parse(GET, response, step=step))
    assert tx.response_headers[:2] == [
        (b"Content-Type", b"text/plain"),
        (b"Content-Disposition", b"attachment; filename=eicar.txt"),
    ]
    assert tx.response_body == b"hello"


def test_request_header_lines_keep_a_bare_cr() -> None:
    # REQ_HEADERS only ends lines at LF
    request = b"GET / HTTP/1.1\r\nHost: a\rX-Evil: 1\r\n\r\n"
    tx = only_tx(parse(request, OK))
    assert tx.request_headers == [(b"Host", b"a\rX-Evil: 1")]


def test_lf_cr_is_one_response_line_end() -> None:
    tx = only_tx(parse(GET, b"HTTP/1.1 200 OK\r\nServer: x\n\rVia: y\r\n\r\nhello"))
    assert tx.response_headers == [(b"Server", b"x"), (b"Via", b"y")]
    assert tx.response_body == b"hello"
