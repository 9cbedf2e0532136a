"""Buffer registry getters: exact Suricata buffer contents from a parsed transaction."""

from __future__ import annotations

import pytest

from ruleengine.applayer.http1 import HttpParser, HttpTransaction
from ruleengine.buffers import BUFFERS, BufferDirection, getter_for

REQUEST = (
    b"POST /a/../b%20c?x=%41 HTTP/1.1\r\n"
    b"Host: WWW.Example.com:8080\r\n"
    b"User-Agent: UA/1.0\r\n"
    b"Cookie: session=1\r\n"
    b"Accept: text/html\r\n"
    b"Accept: */*\r\n"
    b"Accept-Encoding: gzip\r\n"
    b"Accept-Language: en\r\n"
    b"Referer: http://ref.example/\r\n"
    b"Connection: keep-alive\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Length: 4\r\n"
    b"\r\n"
    b"body"
)
RESPONSE = (
    b"HTTP/1.1 302 Found\r\n"
    b"Server: nginx\r\n"
    b"Set-Cookie: id=2\r\n"
    b"Location: /elsewhere\r\n"
    b"Content-Type: text/html\r\n"
    b"Content-Length: 3\r\n"
    b"Connection: close\r\n"
    b"\r\n"
    b"bye"
)


@pytest.fixture(scope="module")
def tx() -> HttpTransaction:
    parser = HttpParser()
    parser.feed(True, REQUEST)
    parser.feed(False, RESPONSE)
    parser.close()
    assert len(parser.transactions) == 1
    return parser.transactions[0]


def get(tx: HttpTransaction, name: str, to_server: bool) -> object:
    getter = getter_for(name, to_server)
    assert getter is not None, (name, to_server)
    return getter(tx)


EXPECTED_TOSERVER: dict[str, object] = {
    "http.uri": b"/b c?x=A",
    "http.uri.raw": b"/a/../b%20c?x=%41",
    "http.method": b"POST",
    "http.request_line": b"POST /a/../b%20c?x=%41 HTTP/1.1",
    "http.request_body": b"body",
    "file.data": b"body",
    "http.header": (
        b"Host: WWW.Example.com:8080\r\nUser-Agent: UA/1.0\r\nAccept: text/html, */*\r\n"
        b"Accept-Encoding: gzip\r\nAccept-Language: en\r\nReferer: http://ref.example/\r\n"
        b"Connection: keep-alive\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n"
    ),
    "http.header.raw": REQUEST[REQUEST.index(b"\r\n") + 2 : REQUEST.index(b"\r\n\r\n") + 4],
    "http.header_names": (
        b"\r\nHost\r\nUser-Agent\r\nCookie\r\nAccept\r\nAccept-Encoding\r\nAccept-Language"
        b"\r\nReferer\r\nConnection\r\nContent-Type\r\nContent-Length\r\n\r\n"
    ),
    "http.start": (
        b"POST /a/../b%20c?x=%41 HTTP/1.1\r\nHost: WWW.Example.com:8080\r\n"
        b"User-Agent: UA/1.0\r\nCookie: session=1\r\nAccept: text/html, */*\r\n"
        b"Accept-Encoding: gzip\r\nAccept-Language: en\r\nReferer: http://ref.example/\r\n"
        b"Connection: keep-alive\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\n"
    ),
    "http.request_header": [
        b"Host: WWW.Example.com:8080", b"User-Agent: UA/1.0", b"Cookie: session=1",
        b"Accept: text/html, */*", b"Accept-Encoding: gzip", b"Accept-Language: en",
        b"Referer: http://ref.example/", b"Connection: keep-alive",
        b"Content-Type: text/plain", b"Content-Length: 4",
    ],
    "http.host": b"www.example.com",
    "http.host.raw": b"WWW.Example.com:8080",
    "http.user_agent": b"UA/1.0",
    "http.cookie": b"session=1",
    "http.protocol": b"HTTP/1.1",
    "http.content_type": b"text/plain",
    "http.content_len": b"4",
    "http.referer": b"http://ref.example/",
    "http.accept": b"text/html, */*",
    "http.accept_enc": b"gzip",
    "http.accept_lang": b"en",
    "http.connection": b"keep-alive",
}

EXPECTED_TOCLIENT: dict[str, object] = {
    "http.response_line": b"HTTP/1.1 302 Found",
    "http.response_body": b"bye",
    "file.data": b"bye",
    "http.header": (
        b"Server: nginx\r\nLocation: /elsewhere\r\nContent-Type: text/html\r\n"
        b"Content-Length: 3\r\nConnection: close\r\n"
    ),
    "http.header.raw": RESPONSE[RESPONSE.index(b"\r\n") + 2 : RESPONSE.index(b"\r\n\r\n") + 4],
    "http.header_names": (
        b"\r\nServer\r\nSet-Cookie\r\nLocation\r\nContent-Type\r\nContent-Length\r\n"
        b"Connection\r\n\r\n"
    ),
    "http.start": RESPONSE[: RESPONSE.index(b"\r\n\r\n") + 4],
    "http.response_header": [
        b"Server: nginx", b"Set-Cookie: id=2", b"Location: /elsewhere",
        b"Content-Type: text/html", b"Content-Length: 3", b"Connection: close",
    ],
    "http.cookie": b"id=2",
    "http.stat_code": b"302",
    "http.stat_msg": b"Found",
    "http.protocol": b"HTTP/1.1",
    "http.content_type": b"text/html",
    "http.content_len": b"3",
    "http.connection": b"close",
    "http.location": b"/elsewhere",
    "http.server": b"nginx",
}


@pytest.mark.parametrize("name", sorted(EXPECTED_TOSERVER))
def test_request_side_buffers(tx: HttpTransaction, name: str) -> None:
    assert get(tx, name, True) == EXPECTED_TOSERVER[name]
    assert tx.buffer(name, True) == EXPECTED_TOSERVER[name]


@pytest.mark.parametrize("name", sorted(EXPECTED_TOCLIENT))
def test_response_side_buffers(tx: HttpTransaction, name: str) -> None:
    assert get(tx, name, False) == EXPECTED_TOCLIENT[name]
    assert tx.buffer(name, False) == EXPECTED_TOCLIENT[name]


def test_every_buffer_has_the_getters_of_its_directions() -> None:
    for name, spec in BUFFERS.items():
        assert spec.getter is not None, name
        if spec.direction is BufferDirection.BOTH:
            assert spec.getter_toclient is not None, name
        if spec.alproto == "http":  # the expected values below are an HTTP exchange
            assert name in EXPECTED_TOSERVER or name in EXPECTED_TOCLIENT, name


def test_getter_for_refuses_the_wrong_direction() -> None:
    assert getter_for("http.uri", False) is None
    assert getter_for("http.stat_code", True) is None


def test_absent_buffers_are_none() -> None:
    parser = HttpParser()
    parser.feed(True, b"GET / HTTP/1.1\r\n\r\n")
    tx = parser.transactions[0]
    for name in ("http.request_body", "http.host", "http.user_agent", "http.cookie",
                 "http.header", "http.header_names", "http.request_header"):
        assert tx.buffer(name, True) is None, name
    assert tx.buffer("http.stat_code", False) is None
    assert tx.buffer("http.response_line", False) is None


def test_buffer_default_side_for_one_direction_buffers(tx: HttpTransaction) -> None:
    assert tx.buffer("http.uri") == b"/b c?x=A"
    assert tx.buffer("http.stat_code") == b"302"


def test_header_buffer_drops_only_the_cookie_header_of_its_direction() -> None:
    parser = HttpParser()
    parser.feed(True, b"GET / HTTP/1.1\r\nSet-Cookie: odd\r\nCookie: c=1\r\n\r\n")
    parser.feed(False, b"HTTP/1.1 200 OK\r\nCookie: odd\r\nSet-Cookie: s=2\r\n"
                       b"Content-Length: 0\r\n\r\n")
    tx = parser.transactions[0]
    assert tx.buffer("http.header", True) == b"Set-Cookie: odd\r\n"
    assert tx.buffer("http.header", False) == b"Cookie: odd\r\nContent-Length: 0\r\n"


def _request(head: bytes, body: bytes) -> HttpTransaction:
    parser = HttpParser()
    parser.feed(True, head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    return parser.transactions[0]


def test_request_file_data_follows_suricata_file_tracking() -> None:
    put = _request(b"PUT /f HTTP/1.1\r\nHost: h\r\n", b"file bytes")
    assert put.buffer("file.data", True) == b"file bytes"
    post = _request(b"POST /f HTTP/1.1\r\nHost: h\r\n", b"a=1&b=2")
    assert post.buffer("file.data", True) == b"a=1&b=2"
    assert post.buffer("http.request_body", True) == b"a=1&b=2"
    patch = _request(b"PATCH /f HTTP/1.1\r\nHost: h\r\n", b"delta")
    assert patch.buffer("file.data", True) is None
    assert patch.buffer("http.request_body", True) == b"delta"


def test_multipart_file_data_is_the_file_parts_only() -> None:
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"field\"\r\n\r\nplain value\r\n"
            b"--XyZ\r\nContent-Disposition: form-data; name=\"up\"; filename=\"a.txt\"\r\n"
            b"Content-Type: text/plain\r\n\r\nfile content\r\n--XyZ--\r\n")
    tx = _request(b"POST /u HTTP/1.1\r\nHost: h\r\n"
                  b"Content-Type: multipart/form-data; boundary=XyZ\r\n", body)
    assert tx.buffer("file.data", True) == b"file content"
    assert tx.buffer("http.request_body", True) == body
