"""Differential test against h11 on well-formed messages: both parsers must agree on the
request line, headers (h11 lowercases names; it does not join repeats) and bodies."""

from __future__ import annotations

import h11
from hypothesis import given, settings
from hypothesis import strategies as st

from ruleengine.applayer.http1 import HttpParser

_TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-",
                 min_size=1, max_size=12)
_VALUE = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789 ;=/.,", min_size=0, max_size=30)
_PATH = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789/._-~%", min_size=0, max_size=30)
_RESERVED = {"host", "content-length", "transfer-encoding", "content-encoding", "expect",
             "connection", "upgrade"}


@st.composite
def requests(draw: st.DrawFn) -> tuple[bytes, str, str, list[tuple[str, str]], bytes, bool]:
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "OPTIONS"]))
    target = "/" + draw(_PATH)
    names = draw(st.lists(_TOKEN, max_size=6, unique_by=str.lower))
    headers = [(n, draw(_VALUE).strip()) for n in names if n.lower() not in _RESERVED]
    headers.insert(0, ("Host", "example.com"))
    body = draw(st.binary(max_size=200))
    chunked = draw(st.booleans())
    if chunked:
        headers.append(("Transfer-Encoding", "chunked"))
        sizes = draw(st.lists(st.integers(1, 40), max_size=6))
        chunks, pos = [], 0
        for size in sizes:
            piece = body[pos : pos + size]
            pos += size
            if piece:
                chunks.append(b"%x\r\n%s\r\n" % (len(piece), piece))
        if pos < len(body):
            chunks.append(b"%x\r\n%s\r\n" % (len(body) - pos, body[pos:]))
        wire_body = b"".join(chunks) + b"0\r\n\r\n"
    else:
        headers.append(("Content-Length", str(len(body))))
        wire_body = body
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers)
    return head.encode() + b"\r\n" + wire_body, method, target, headers, body, chunked


def _h11_view(wire: bytes) -> tuple[bytes, bytes, list[tuple[bytes, bytes]], bytes]:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(wire)
    request = None
    body = b""
    while True:
        event = conn.next_event()
        if isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif event is h11.NEED_DATA or isinstance(event, h11.EndOfMessage):
            break
    assert request is not None
    return request.method, request.target, list(request.headers), body


@settings(max_examples=150, deadline=None)
@given(requests(), st.integers(1, 64))
def test_agrees_with_h11(case: tuple, step: int) -> None:
    wire, method, target, headers, body, _chunked = case
    h_method, h_target, h_headers, h_body = _h11_view(wire)
    assert (h_method, h_target) == (method.encode(), target.encode())
    assert h_headers == [(n.lower().encode(), v.encode()) for n, v in headers]
    parser = HttpParser()
    for i in range(0, len(wire), step):
        parser.feed(True, wire[i : i + step])
    assert len(parser.transactions) == 1
    tx = parser.transactions[0]
    assert tx.request_complete
    assert (tx.method_raw, tx.uri_raw) == (h_method, h_target)
    assert [(n.lower(), v) for n, v in tx.request_headers] == h_headers
    assert tx.request_body == h_body == body


@settings(max_examples=100, deadline=None)
@given(st.integers(100, 599).filter(lambda s: s >= 200 and s not in (204, 304)),
       st.binary(max_size=300), st.booleans())
def test_response_bodies_agree_with_h11(status: int, body: bytes, chunked: bool) -> None:
    framing = (b"Transfer-Encoding: chunked\r\n\r\n" + (b"%x\r\n%s\r\n" % (len(body), body)
               if body else b"") + b"0\r\n\r\n") if chunked else (
        b"Content-Length: %d\r\n\r\n" % len(body) + body)
    wire = b"HTTP/1.1 %d Reason Phrase\r\nServer: x\r\n" % status + framing
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("Host", "h")]))
    client.send(h11.EndOfMessage())
    client.receive_data(wire)
    got = b""
    response = None
    while True:
        event = client.next_event()
        if isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.Data):
            got += event.data
        elif isinstance(event, h11.EndOfMessage) or event is h11.NEED_DATA:
            break
    parser = HttpParser()
    parser.feed(True, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    parser.feed(False, wire)
    tx = parser.transactions[0]
    assert response is not None
    assert tx.status == response.status_code
    assert tx.status_msg == response.reason
    assert tx.response_body == got == body
    assert tx.response_complete
