"""The header state's fast path (plain ``name: value CRLF`` lines) must leave the parser
exactly where the lenient libhtp path would: same transactions, header lists, raw header
blocks, events and states, for every line shape the leniency rules care about, whole or
fed in pieces."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from ruleengine.applayer.http1 import HttpConfig, HttpParser
from ruleengine.applayer.http1.parse_state import ParserBase, Side

REQUEST_BLOCKS = [
    b"Host: a\r\nUser-Agent: u\r\nAccept: */*\r\n\r\n",
    b"Host: a\r\nX-Folded: one\r\n two\r\n\tthree\r\nB: c\r\n\r\n",
    b"Host: a\nLf-Only: x\r\nC: d\n\r\n",
    b"Host: a\r\nCr-Cr: x\r\r\nD: e\r\n\r\n",
    b"Host: a\r\nBare: x\ry\r\nE: f\r\n\r\n",
    b"Host: a\r\n\x00Nul: x\r\n Lead: y\r\nF: g\r\n\r\n",
    b"Host: a\r\nNo colon here\r\nName : v\r\nBad[name]: v\r\n: empty\r\n\r\n",
    b"Host: a\r\nContent-Length: 3\r\nContent-Length: 4\r\nRep: 1\r\nrep: 2\r\n\r\nabc",
    b"Host: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nTrailer: t\r\n\r\n",
    b"Host: a\r\n" + b"".join(b"H%d: v\r\n" % i for i in range(12)) + b"\r\n",
    b"Host: a\r\nLong: " + b"x" * 120 + b"\r\nAfter: y\r\n\r\n",
    b"Host: a\r\nNot-ended: yet",
]
RESPONSE_BLOCKS = [
    b"Server: s\r\nContent-Length: 2\r\n\r\nok",
    b"Server: s\r\nBare-Cr: x\rContent-Length: 2\r\n\r\nok",
    b"Server: s\nLf-Cr: x\n\rContent-Length: 2\r\n\r\nok",
    b"Server: s\r\n Content-Type: text/plain\r\n folded more\r\nContent-Length: 2\r\n\r\nok",
    b"Server: s\r\nContent-Length: 2\r\n \nok",
    b"Server: s\r\nContent-Length: 2\r\n\r\r\nok",
    b"Server: s\r\nX: y\r\r\nContent-Length: 2\r\n\r\nok",
    b"Server: s\r\n" + b"".join(b"H%d: v\r\n" % i for i in range(12)) + b"\r\n",
    b"Server: s\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nT: 1\r\n\r\n",
]
CONFIGS = [
    HttpConfig(),
    HttpConfig(headers_limit=5),  # the header count limit falls inside the block
    HttpConfig(field_limit=100),  # a line over the field limit
    HttpConfig(max_header_block=40),  # the raw block is cut mid-line
]


def _lenient_only(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_fast_path(self: ParserBase, side: Side) -> None:
        return None

    monkeypatch.setattr(ParserBase, "_plain_header_lines", no_fast_path)


def _state(request: bytes, response: bytes, config: HttpConfig, step: int) -> Any:
    parser = HttpParser(config)
    for to_server, data in ((True, request), (False, response)):
        for i in range(0, len(data), step or max(1, len(data))):
            parser.feed(to_server, data[i : i + (step or len(data))])
    before_close = (parser.request_state, parser.response_state, list(parser.events))
    parser.close()
    txs = [
        {f.name: getattr(tx, f.name) for f in dataclasses.fields(tx) if f.name != "files"}
        | {"files": [(f.name, f.size, f.state) for f in tx.files]}
        for tx in parser.transactions
    ]
    return before_close, txs, parser.events


@pytest.mark.parametrize("config", CONFIGS, ids=["default", "headers5", "field100", "block40"])
@pytest.mark.parametrize("step", [0, 1, 7])
def test_fast_path_changes_nothing(monkeypatch: pytest.MonkeyPatch, config: HttpConfig,
                                   step: int) -> None:
    cases = [(b"GET /r HTTP/1.1\r\n" + block, b"HTTP/1.1 200 OK\r\n" + RESPONSE_BLOCKS[0])
             for block in REQUEST_BLOCKS]
    cases += [(b"GET /r HTTP/1.1\r\nHost: a\r\n\r\n", b"HTTP/1.1 200 OK\r\n" + block)
              for block in RESPONSE_BLOCKS]
    fast = [_state(req, resp, config, step) for req, resp in cases]
    with monkeypatch.context() as patch:
        _lenient_only(patch)
        lenient = [_state(req, resp, config, step) for req, resp in cases]
    for (req, resp), got, want in zip(cases, fast, lenient, strict=True):
        assert got == want, (req, resp)


def test_fast_path_takes_plain_lines_and_stops_at_the_first_unusual_one() -> None:
    parser = HttpParser()
    side = parser._req  # white box: what the fast path alone consumed
    side.buf += b"A: 1\r\nB: 2\r\nC: 3\n\r\nD: 4\r\n"
    parser._plain_header_lines(side)
    assert side.headers == [b"A: 1", b"B: 2"]
    assert bytes(side.raw) == b"A: 1\r\nB: 2\r\n"
    assert side.header_count == 2
    assert bytes(side.buf[side.pos :]) == b"C: 3\n\r\nD: 4\r\n"
