"""URI and host normalisation cases (libhtp IDS personality as configured by Suricata)."""

from __future__ import annotations

import pytest

from ruleengine.applayer.http1.normalize import (
    normalize_host,
    normalize_uri,
    parse_uri,
    remove_dot_segments,
    utf8_bestfit,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"/index.html", b"/index.html"),
        (b"/a%20b", b"/a b"),
        (b"/%41%42C", b"/ABC"),
        (b"/a%2fb", b"/a/b"),  # encoded separator decoded
        (b"/a%5cb", b"/a/b"),  # encoded backslash -> slash
        (b"/a\\b\\c", b"/a/b/c"),
        (b"//a///b//", b"/a/b/"),  # separators compressed
        (b"/%u0041%U0042", b"/AB"),  # %u decoding
        (b"/%uFF21", b"/A"),  # fullwidth best fit
        (b"/%uFFFFx", b"/?x"),  # unmapped code point -> '?'
        (b"/a/./b/../c", b"/a/c"),
        (b"/../../etc/passwd", b"/etc/passwd"),
        (b"/a/%2e%2e/b", b"/b"),  # dot segments after decoding
        (b"/%zz%4", b"/%zz%4"),  # invalid encodings keep the '%'
        (b"/%u12", b"/%u12"),
        (b"/A/B", b"/A/B"),  # no lowercasing
        (b"/caf%c3%a9", b"/caf\xe9"),  # UTF-8 best fit to one byte
        (b"/%c0%af", b"//"),  # overlong UTF-8 for "/" decoded after separator compression
        (b"/x?a=%41+b&c=%u0044", b"/x?a=A+b&c=D"),  # query decoded once, '+' kept
        (b"/x?a=%2541", b"/x?a=%41"),  # ... and only once
        (b"/x?q#frag%41", b"/x?q#fragA"),  # fragment decoded like the query
        (b"http://Host.Example:8080/p?x=1", b"/p?x=1"),  # absolute URI: path part only
        (b"*", b"*"),
    ],
)
def test_uri_normalisation(raw: bytes, expected: bytes) -> None:
    assert normalize_uri(raw)[0] == expected


def test_double_decode_options() -> None:
    assert normalize_uri(b"/a%252fb", double_decode_path=True)[0] == b"/a/b"
    assert normalize_uri(b"/a%252fb")[0] == b"/a%2fb"
    assert normalize_uri(b"/?x=%2541", double_decode_query=True)[0] == b"/?x=A"


def test_plusspace_and_include_all_options() -> None:
    assert normalize_uri(b"/?a+b", plusspace=True)[0] == b"/?a b"
    uri, _ = normalize_uri(b"HTTP://user:pw@WWW.EXAMPLE.com.:81/p", include_all=True)
    assert uri == b"http://user:pw@www.example.com/p"  # libhtp drops the port here


def test_absolute_uri_without_path_has_no_normalized_uri() -> None:
    assert normalize_uri(b"http://example.com")[0] is None


def test_parse_uri_parts() -> None:
    parsed = parse_uri(b"http://u@h.example:8080/a/b?c=d#e")
    assert (parsed.scheme, parsed.userinfo, parsed.hostname, parsed.port) == (
        b"http", b"u", b"h.example", b"8080")
    assert (parsed.path, parsed.query, parsed.fragment) == (b"/a/b", b"c=d", b"e")
    connect = parse_uri(b"mail.example:443", method=b"CONNECT")
    assert (connect.hostname, connect.port, connect.path) == (b"mail.example", b"443", None)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"WWW.Example.COM", b"www.example.com"),
        (b"example.com.", b"example.com"),
        (b"example.com...", b"example.com"),
        (b"ex%41mple.com", b"example.com"),
    ],
)
def test_host_normalisation(raw: bytes, expected: bytes) -> None:
    assert normalize_host(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [  # libhtp's own test vectors (rust/htp/src/uri.rs)
        (b"/a/b/c/./../../g", b"/a/g"),
        (b"mid/content=5/../6", b"mid/6"),
        (b"./one", b"one"),
        (b"../one", b"one"),
        (b".", b""),
        (b"..", b""),
        (b"one/.", b"one"),
        (b"one/..", b""),
        (b"/", b"/"),
        (b"one/../", b""),
        (b"/../../../images.gif", b"/images.gif"),
    ],
)
def test_remove_dot_segments(raw: bytes, expected: bytes) -> None:
    assert remove_dot_segments(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [  # libhtp's own test vectors (rust/htp/src/utf8_decoder.rs)
        (b"\xf1.\xf1\xef\xbd\x9dabcd", b"?.?}abcd"),
        (b"\xf0\x90\x8d\xff", b"??"),
        (b"\xe2\x82", b"?"),
        (b"\xc2\xff\xf0", b"??"),
        (b"\xf0\x90\x28\xbc", b"?(?"),
        (b"plain", b"plain"),
    ],
)
def test_utf8_bestfit(raw: bytes, expected: bytes) -> None:
    assert utf8_bestfit(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"/%u0100", b"/A"),  # Latin Extended-A folds to its base letter
        (b"/%u0107", b"/c"),
        (b"/%u2080", b"/0"),  # subscript digit
        (b"/%u4e00", b"/?"),  # no best fit
        (b"/\xc4\x80", b"/A"),  # the same through UTF-8
    ],
)
def test_bestfit_mapping(raw: bytes, expected: bytes) -> None:
    assert normalize_uri(raw)[0] == expected
