"""Which HTTP bodies become files, their names, sizes and states (app-layer-htp.c)."""

from __future__ import annotations

import gzip
import hashlib

import pytest

from ruleengine.applayer.files import AppFile, FilePolicy, FileState
from ruleengine.applayer.http1 import HttpConfig, HttpParser
from ruleengine.applayer.http1.files import disposition_param


def files_of(request: bytes, response: bytes = b"", *, config: HttpConfig | None = None,
             close: bool = True, policy: FilePolicy | None = None) -> list[AppFile]:
    parser = HttpParser(config or HttpConfig())
    if policy is not None:
        parser.file_policy = policy
    parser.feed(True, request)
    if response:
        parser.feed(False, response)
    if close:
        parser.close()
    return [f for tx in parser.transactions for f in tx.files]


def response(body: bytes, *headers: bytes) -> bytes:
    head = b"".join(h + b"\r\n" for h in headers)
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), head, body)


GET = b"GET /dl/%C3%A9t%C3%A9.bin?x=1 HTTP/1.1\r\nHost: h\r\n\r\n"


@pytest.mark.parametrize(("value", "name"), [
    (b'attachment; filename="eicar.txt"', b"eicar.txt"),
    (b"attachment;filename=plain.exe", b"plain.exe"),
    (b'  inline; FILENAME="a;b.txt"; size=3', b"a;b.txt"),  # ; inside quotes
    (b'attachment; filename="x\\";y"', b'x\\";y'),  # escaped quote: kept as is
    (b"attachment", None),
    (b"attachment; name=x", None),
    (b"", None),
    (b"filename=", None),  # nothing after the name
])
def test_content_disposition_filename(value: bytes, name: bytes | None) -> None:
    assert disposition_param(value) == name


def test_response_file_named_by_disposition_else_uri_path() -> None:
    (named,) = files_of(GET, response(b"hello", b'Content-Disposition: attachment; '
                                                b'filename="eicar.txt"'))
    assert (named.name, named.size, named.state, named.to_server, named.tx_id) == (
        b"eicar.txt", 5, FileState.CLOSED, False, 0)
    (by_path,) = files_of(GET, response(b"hello"))
    # libhtp's normalised path: decoded, UTF-8 best-fit to single bytes, no query
    assert by_path.name == b"/dl/\xe9t\xe9.bin"


def test_bodyless_responses_and_requests_have_no_file() -> None:
    assert files_of(GET, b"HTTP/1.1 304 Not Modified\r\n\r\n") == []
    assert files_of(b"HEAD /a HTTP/1.1\r\nHost: h\r\n\r\n",
                    b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n") == []
    # a GET body is inspected but is not a file (only POST and PUT are)
    get_body = b"GET /g HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
    assert files_of(get_body) == []


def test_put_and_plain_post_are_one_file_each() -> None:
    (put,) = files_of(b"PUT /up/a.dat HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nDATA")
    assert (put.name, put.size, put.to_server, put.state) == (
        b"/up/a.dat", 4, True, FileState.CLOSED)
    (post,) = files_of(b"POST /form HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\n"
                       b"Content-Length: 2\r\n\r\nhi")
    assert (post.name, post.size) == (b"/form", 2)


def test_multipart_post_has_a_file_per_named_part() -> None:
    body = (b"--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nfield\r\n"
            b"--XX\r\nContent-Disposition: form-data; name=\"f\"; filename=\"one.exe\"\r\n"
            b"Content-Type: application/octet-stream\r\n\r\nMZ1\r\n"
            b"--XX\r\nContent-Disposition: form-data; name=\"g\"; filename=\"two.txt\"\r\n\r\n"
            b"second\r\n--XX--\r\n")
    request = (b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; "
               b"boundary=XX\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    files = files_of(request)
    assert [(f.name, f.size, f.state) for f in files] == [
        (b"one.exe", 3, FileState.CLOSED), (b"two.txt", 6, FileState.CLOSED)]


def test_body_limit_truncates_the_file_at_the_limit() -> None:
    config = HttpConfig(response_body_limit=10)
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"8\r\n01234567\r\n8\r\n89abcdef\r\n8\r\nghijklmn\r\n0\r\n\r\n")
    (cut,) = files_of(GET, chunked, config=config)
    assert (cut.size, cut.state) == (10, FileState.TRUNCATED)
    # a body of exactly the limit is complete
    (exact,) = files_of(GET, response(b"0123456789"), config=config)
    assert (exact.size, exact.state) == (10, FileState.CLOSED)


def test_file_content_is_the_decompressed_body_and_hashed_on_demand() -> None:
    content = b"A" * 5000
    packed = gzip.compress(content)
    policy = FilePolicy(frozenset({"md5", "sha256"}))
    (f,) = files_of(GET, response(packed, b"Content-Encoding: gzip"), policy=policy)
    assert f.size == len(content)
    assert f.hexdigest("md5") == hashlib.md5(content).hexdigest()
    assert f.hexdigest("sha256") == hashlib.sha256(content).hexdigest()


def test_gaps_in_a_length_body_are_marked() -> None:
    parser = HttpParser()
    parser.feed(True, GET)
    parser.feed(False, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    parser.gap(False, 4)
    parser.feed(False, b"xyz")
    (f,) = parser.transactions[0].files
    assert (f.size, f.gaps, f.state) == (6, True, FileState.CLOSED)


def test_unrecoverable_gap_truncates_the_file() -> None:
    parser = HttpParser()
    parser.feed(True, GET)
    parser.feed(False, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab")
    parser.gap(False, 100)  # inside chunk framing it cannot resynchronise
    parser.close()
    (f,) = parser.transactions[0].files
    assert (f.gaps, f.state) == (True, FileState.TRUNCATED)


def test_open_file_stays_open_until_the_message_ends() -> None:
    files = files_of(GET, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial", close=False)
    assert [(f.size, f.state) for f in files] == [(7, FileState.OPENED)]


def test_junk_before_a_response_line_is_not_a_file() -> None:
    # HTTP/1.1 request, response without a status line: libhtp reads it as body, but
    # Suricata opens a file only after a response line (or for an HTTP/0.9 request)
    assert files_of(GET, b"no status line here\r\n") == []
    (old,) = files_of(b"GET /old.txt\r\n", b"raw body of a 0.9 reply")
    assert old.name == b"/old.txt"
