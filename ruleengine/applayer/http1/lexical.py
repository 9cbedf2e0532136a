"""Lexical helpers of the HTTP/1.x parser: libhtp's notions of whitespace, tokens, methods,
line endings, Content-Length and chunk-size syntax."""

from __future__ import annotations

import re

SPACE = frozenset(b" \t\r\n\x0b\x0c")  # libhtp is_space


def skip_space(data: bytes, pos: int) -> int:
    while pos < len(data) and data[pos] in SPACE:
        pos += 1
    return pos


TOKEN = re.compile(rb'[^\x00-\x20\x7f-\xff()<>@,;:\\"/\[\]?={}]+')


def is_token(name: bytes) -> bool:
    """RFC 7230 token (libhtp ``is_token``)."""
    return TOKEN.fullmatch(name) is not None


def looks_like_header(continuation: bytes) -> bool:
    """libhtp's response-side peek: optional spaces, a non-empty token, optional spaces, ':'."""
    stripped = continuation.lstrip(b" \t")
    colon = stripped.find(b":")
    if colon <= 0:
        return False
    return is_token(stripped[:colon].rstrip(b" \t"))


# libhtp ``HtpMethod::new``: the methods it knows (exact, case-sensitive)
KNOWN_METHODS = frozenset(
    b"GET PUT POST DELETE CONNECT OPTIONS TRACE PATCH PROPFIND PROPPATCH MKCOL COPY MOVE LOCK "
    b"UNLOCK VERSION-CONTROL CHECKOUT UNCHECKOUT CHECKIN UPDATE LABEL REPORT MKWORKSPACE "
    b"MKACTIVITY BASELINE-CONTROL MERGE INVALID HEAD".split()
)


def mentions_chunked(value: bytes) -> bool:
    """libhtp ``index_of_nocase_nozero("chunked")``: NUL bytes are skipped while matching."""
    return b"chunked" in value.replace(b"\x00", b"").lower()


def chomp(line: bytes) -> bytes:
    """libhtp ``chomp``: every trailing CR and LF goes."""
    return line.rstrip(b"\r\n")


def could_be_http(data: bytes) -> bool:
    """Does a response start like a status line ("HTTP", case-insensitively)?"""
    head = data[:4].upper()
    return b"HTTP".startswith(head) if len(head) < 4 else head == b"HTTP"


def protocol_number(proto: bytes | None) -> float | None:
    if proto is None:
        return None
    text = proto.strip(b" \t").upper()
    if not text.startswith(b"HTTP/"):
        return None
    version = text[5:].strip(b" \t")
    major, dot, minor = version.partition(b".")
    if not (major.isdigit() and dot and minor.isdigit()):
        return None
    return int(major) + int(minor[:1]) / 10


def content_length(value: bytes) -> int | None:
    """libhtp ``parse_content_length``: the first run of digits; junk before or after is
    tolerated (libhtp only warns)."""
    start = 0
    while start < len(value) and not 0x30 <= value[start] <= 0x39:
        start += 1
    end = start
    while end < len(value) and 0x30 <= value[end] <= 0x39:
        end += 1
    if end == start or end - start > 18:
        return None
    return int(value[start:end])


CHUNK_CTL = b"\r\n \t\x0b\x0c"
HEXDIGITS = frozenset(b"0123456789abcdefABCDEF")


def valid_chunk_start(data: bytes) -> bool:
    """libhtp ``is_valid_chunked_length_data``: after control characters comes a hex digit
    (or nothing yet)."""
    rest = data.lstrip(CHUNK_CTL)
    return not rest or rest[0] in HEXDIGITS


def chunk_length(line: bytes) -> tuple[int | None, bool]:
    """libhtp ``parse_chunked_length``: control chars, hex digits, anything after; returns
    (length or None if invalid, has extension)."""
    rest = line.lstrip(CHUNK_CTL)
    end = 0
    while end < len(rest) and rest[end] in HEXDIGITS:
        end += 1
    if end == 0 or end > 16:
        return None, False
    value = int(rest[:end], 16)
    if value > 0x7FFFFFFF:
        return None, False
    return value, b";" in rest[end:]


def port_number(port: bytes | None) -> int | None:
    if port is None or not port.strip().isdigit():
        return None
    value = int(port.strip())
    return value if 0 < value < 65536 else None


def lookup(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """libhtp ``get_nocase_nozero``: case-insensitive, NUL bytes in the name ignored."""
    for key, value in headers:
        if key.replace(b"\x00", b"").lower() == name:
            return value
    return None
