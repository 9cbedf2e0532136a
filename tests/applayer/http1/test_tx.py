"""The transaction's memo (header indexes, built buffers): a value is reused only while
what it was made from is unchanged, so every buffer equals one built from scratch."""

from __future__ import annotations

import copy
import random

from ruleengine.applayer.http1 import HttpConfig, HttpParser, HttpTransaction, getters

NAMES = sorted(set(getters.TOSERVER) | set(getters.TOCLIENT))


def _fresh(tx: HttpTransaction) -> HttpTransaction:
    clone = copy.copy(tx)
    clone.memo = {}
    return clone


def test_header_lookup_follows_in_place_changes() -> None:
    tx = HttpTransaction(tx_id=0)
    tx.request_headers = [(b"Host", b"a"), (b" User-Agent\x00", b"x")]
    assert tx.request_header(b"user-agent") == b"x"
    assert tx.request_header(b"HOST") == b"a"
    tx.request_headers[1] = (b"User-Agent", b"x, y")  # merged in place, same length
    assert tx.request_header(b"user-agent") == b"x, y"
    tx.request_headers.append((b"Host", b"second"))  # the first of a name wins
    tx.request_headers.append((b"Referer", b"r"))
    assert tx.request_header(b"host") == b"a" and tx.request_header(b"referer") == b"r"
    tx.request_headers = []  # a new list (an interim response resets it so)
    assert tx.request_header(b"host") is None
    assert tx.response_header(b"host") is None  # the sides have their own index


def test_an_unchanged_buffer_is_the_same_object_and_a_changed_one_is_rebuilt() -> None:
    tx = HttpTransaction(tx_id=0, request_line=b"GET / HTTP/1.1")
    tx.request_headers = [(b"Host", b"a"), (b"Cookie", b"c")]
    first = tx.buffer("http.header", True)
    assert first == b"Host: a\r\n" and tx.buffer("http.header", True) is first
    start = tx.buffer("http.start", True)
    assert tx.buffer("http.start", True) is start
    tx.request_headers[0] = (b"Host", b"a, b")
    assert tx.buffer("http.header", True) == b"Host: a, b\r\n"
    tx.request_line = b"POST / HTTP/1.1"
    assert tx.buffer("http.start", True) == _fresh(tx).buffer("http.start", True)
    assert tx.buffer("http.start", True).startswith(b"POST")  # type: ignore[union-attr]


def _messages(r: random.Random) -> tuple[bytes, bytes]:
    """A keep-alive exchange with repeated headers (merged in place), chunked bodies
    with trailers (merged late), a multipart POST and an interim 100 response."""
    boundary = b"xYz"
    part = (b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"f\"; "
            b"filename=\"a.txt\"\r\n\r\nfile-content\r\n--" + boundary + b"--\r\n")
    req = (b"GET /a?b=1 HTTP/1.1\r\nHost: h\r\nAccept: x\r\nAccept: y\r\nCookie: c=1\r\n\r\n"
           b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary="
           + boundary + b"\r\nContent-Length: " + str(len(part)).encode() + b"\r\n\r\n" + part
           + b"PUT /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"3\r\nabc\r\n0\r\nX-Trailer: t\r\nAccept: z\r\n\r\n")
    body = bytes(r.choice(b"ab\r\n") for _ in range(40))
    resp = (b"HTTP/1.1 200 OK\r\nServer: s\r\nSet-Cookie: a\r\nSet-Cookie: b\r\n"
            b"Content-Length: 40\r\n\r\n" + body
            + b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nLocation: /x\r\n"
            b"Content-Length: 0\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwxyz\r\n0\r\n"
            b"Server: late\r\nX-T: 1\r\n\r\n")
    return req, resp


def test_memoised_buffers_equal_fresh_ones_at_every_step() -> None:
    for seed in range(8):
        r = random.Random(seed)
        req, resp = _messages(r)
        parser = HttpParser(HttpConfig())
        pos = {True: 0, False: 0}
        steps = 0
        while pos[True] < len(req) or pos[False] < len(resp):
            side = r.random() < 0.5
            data = req if side else resp
            if pos[side] >= len(data):
                side = not side
                data = req if side else resp
            n = r.randint(1, 12)
            parser.feed(side, data[pos[side]:pos[side] + n], float(steps))
            pos[side] += n
            steps += 1
            for tx in parser.transactions:
                fresh = _fresh(tx)
                for name in NAMES:
                    for to_server in (True, False):
                        assert tx.buffer(name, to_server) == fresh.buffer(name, to_server), (
                            seed, steps, name, to_server)
        assert len(parser.transactions) == 3
        assert parser.transactions[2].response_header(b"server") == b"late"
        assert parser.transactions[1].buffer("file.data", True) == b"file-content"
