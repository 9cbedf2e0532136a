"""Hostile input never raises out of the parser, and the parser stays bounded."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ruleengine.applayer.http1 import HttpConfig, HttpParser

_FRAGMENTS = [
    b"GET / HTTP/1.1\r\n", b"POST /x HTTP/1.0\r\n", b"HTTP/1.1 200 OK\r\n", b"HTTP/1.1 100 x\r\n",
    b"Host: a\r\n", b"Content-Length: 5\r\n", b"Content-Length: -1\r\n",
    b"Transfer-Encoding: chunked\r\n", b"Content-Encoding: gzip, deflate\r\n",
    b"\r\n", b"\n", b"\r", b" folded\r\n", b"5\r\nhello\r\n", b"0\r\n\r\n", b"zz\r\n",
    b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", b"\x00", b"%u12%zz%c0%af", b":", b"CONNECT ",
    b"HTTP/1.1 101 Switching\r\n",
]

_CONFIG = HttpConfig(field_limit=256, max_header_block=512, headers_limit=16, max_tx=32,
                     request_body_limit=64, response_body_limit=64, max_events=64)


@st.composite
def stream_ops(draw: st.DrawFn) -> list[tuple[str, bool, bytes, int]]:
    ops = []
    for _ in range(draw(st.integers(1, 40))):
        kind = draw(st.sampled_from(["feed", "feed", "feed", "frag", "gap", "close"]))
        to_server = draw(st.booleans())
        if kind == "frag":
            data = b"".join(draw(st.lists(st.sampled_from(_FRAGMENTS), max_size=6)))
            kind = "feed"
        else:
            data = draw(st.binary(max_size=80))
        ops.append((kind, to_server, data, draw(st.integers(0, 300))))
    return ops


@settings(max_examples=300, deadline=None)
@given(stream_ops())
def test_nothing_raises_and_everything_stays_bounded(ops: list) -> None:
    parser = HttpParser(_CONFIG)
    for kind, to_server, data, number in ops:
        if kind == "feed":
            parser.feed(to_server, data)
        elif kind == "gap":
            parser.gap(to_server, number)
        else:
            parser.close(to_server)
    parser.close()
    assert "http.unknown_error" not in parser.events
    assert len(parser.transactions) <= _CONFIG.max_tx
    assert len(parser.events) <= _CONFIG.max_events
    for tx in parser.transactions:
        assert len(tx.request_body) <= _CONFIG.request_body_limit
        assert len(tx.response_body) <= _CONFIG.response_body_limit
        assert len(tx.request_header_raw) <= 2 * _CONFIG.max_header_block
        assert len(tx.request_headers) <= _CONFIG.headers_limit
        for name in ("http.uri", "http.header", "http.start", "http.header_names",
                     "http.request_header", "http.host", "file.data"):
            tx.buffer(name, True)
            tx.buffer(name, False)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400), st.integers(1, 50))
def test_random_bytes_both_directions(data: bytes, step: int) -> None:
    parser = HttpParser(_CONFIG)
    for i in range(0, len(data), step):
        parser.feed(bool(i % 2), data[i : i + step])
    parser.close()
    assert "http.unknown_error" not in parser.events
