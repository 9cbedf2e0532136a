"""libhtp's small parsers: Content-Length, chunk sizes, protocol versions, tokens."""

from __future__ import annotations

import pytest

from ruleengine.applayer.http1 import lexical as lex


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"12", 12),
        (b" 12 ", 12),
        (b"x12", 12),  # leading junk tolerated (libhtp warns)
        (b"12abc", 12),  # trailing junk tolerated
        (b"abc", None),
        (b"", None),
        (b"-5", 5),  # the sign is junk before the digits
    ],
)
def test_content_length(value: bytes, expected: int | None) -> None:
    assert lex.content_length(value) == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"1a\r\n", (26, False)),
        (b"f x\r\n", (15, False)),  # digits then junk (http-evader-014)
        (b"\x0cf\r\n", (15, False)),  # leading control chars skipped (http-evader-022)
        (b"5;name=v\r\n", (5, True)),
        (b"zz\r\n", (None, False)),
        (b"ffffffffff\r\n", (None, False)),  # above i32::MAX
    ],
)
def test_chunk_length(line: bytes, expected: tuple[int | None, bool]) -> None:
    assert lex.chunk_length(line) == expected


def test_valid_chunk_start() -> None:
    assert lex.valid_chunk_start(b"\r\n a")
    assert lex.valid_chunk_start(b"")
    assert not lex.valid_chunk_start(b"X5O!")


@pytest.mark.parametrize(
    ("proto", "number"),
    [(b"HTTP/1.1", 1.1), (b"http/1.0", 1.0), (b"HTTP/1.1 ", 1.1), (b"HTTP/x", None), (None, None)],
)
def test_protocol_number(proto: bytes | None, number: float | None) -> None:
    assert lex.protocol_number(proto) == number


def test_tokens_and_helpers() -> None:
    assert lex.is_token(b"Content-Type") and not lex.is_token(b"Header@Name")
    assert lex.looks_like_header(b" X-Name: v") and not lex.looks_like_header(b" 68")
    assert lex.mentions_chunked(b"chu\x00nked")
    assert lex.chomp(b"line\r\r\n") == b"line"
    assert lex.could_be_http(b"HT") and not lex.could_be_http(b"xzscxc")
    assert lex.lookup([(b"Content\x00-Type", b"v")], b"content-type") == b"v"
