"""content and its modifiers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ruleengine.keywords.content import parse_content_value
from ruleengine.rules.errors import KeywordError
from ruleengine.rules.model import PAYLOAD, ContentMatch
from tests.rules.helpers import one_error, one_rule

H = "alert tcp any any -> any any (flow:to_server; "


def contents(text: str, buffer: str = PAYLOAD) -> list[ContentMatch]:
    rule = one_rule(H + text + " sid:1;)")
    buf = rule.buffer(buffer)
    assert buf is not None
    return [i for i in buf.items if isinstance(i, ContentMatch)]


@pytest.mark.parametrize(
    ("value", "pattern", "negated"),
    [
        ('"abc"', b"abc", False),
        ('!"abc"', b"abc", True),
        ('"|0D 0a|GET|20|"', b"\r\nGET ", False),
        ('"|0d0a|"', b"\r\n", False),
        (r'"a\"b\;c\\d\:e"', b'a"b;c\\d:e', False),
        ('"caf\u00e9"', "caf\u00e9".encode(), False),
        ("abc", b"abc", False),
    ],
)
def test_content_values(value: str, pattern: bytes, negated: bool) -> None:
    assert parse_content_value(value) == (pattern, negated)


@pytest.mark.parametrize(
    ("value", "code", "where"),
    [
        ('"a\\nb"', "bad-escape", (2, 4)),
        ('"ab|4"', "bad-hex", (3, 5)),
        ('"|4|"', "bad-hex", (2, 3)),
        ('"|zz|"', "bad-hex", (2, 3)),
        ('"a"b"', "unescaped-quote", (2, 3)),
        ('""', "empty-content", (0, 2)),
        ('"abc', "unterminated-quote", (0, 4)),
    ],
)
def test_content_value_errors(value: str, code: str, where: tuple[int, int]) -> None:
    with pytest.raises(KeywordError) as info:
        parse_content_value(value)
    assert info.value.code == code
    assert info.value.value_range == where


def test_modifiers_apply_to_previous_content() -> None:
    a, b = contents(
        'content:"abc"; nocase; offset:2; depth:10; content:"de"; distance:1; within:5;'
    )
    assert (a.nocase, a.offset, a.depth, a.relative) == (True, 2, 10, False)
    assert (b.nocase, b.distance, b.within, b.relative) == (False, 1, 5, True)


def test_startswith_endswith_rawbytes() -> None:
    (c,) = contents('content:"abc"; startswith; endswith; rawbytes;')
    assert c.startswith and c.endswith and c.rawbytes


def test_startswith_conflicts_with_depth() -> None:
    d = one_error(H + 'content:"abc"; depth:4; startswith; sid:1;)')
    assert d.code == "mixed-relative-absolute"


def test_duplicate_modifier() -> None:
    d = one_error(H + 'content:"abc"; depth:4; depth:5; sid:1;)')
    assert d.code == "duplicate-modifier"
    assert d.message == "'depth' is set twice for the same content"


def test_negative_distance_allowed_negative_depth_not() -> None:
    (_, c) = contents('content:"abc"; content:"x"; distance:-2;')
    assert c.distance == -2
    d = one_error(H + 'content:"abc"; offset:-1; sid:1;)')
    assert d.code == "out-of-range"


def test_within_smaller_than_content() -> None:
    d = one_error(H + 'content:"a"; content:"bcd"; within:2; sid:1;)')
    assert d.code == "within-too-small"
    assert d.message == "within (2) is smaller than the content length (3)"


def test_byte_extract_variable_in_positions() -> None:
    rule = one_rule(
        H + 'content:"len"; byte_extract:2,0,size,relative; content:"x"; distance:0; '
        "within:size; isdataat:size,relative; sid:1;)"
    )
    items = rule.buffer(PAYLOAD).items  # type: ignore[union-attr]
    assert items[2].within == "size"  # type: ignore[union-attr]
    assert items[3].offset == "size"  # type: ignore[union-attr]


def test_unknown_variable_in_position() -> None:
    r = H + 'content:"abc"; depth:nope; sid:1;)'
    d = one_error(r)
    assert d.code == "unknown-variable"
    assert d.column == r.index("nope") + 1


def test_fast_pattern_explicit_only_and_chop() -> None:
    rule = one_rule(H + 'content:"abcdef"; fast_pattern:1,3; content:"longer pattern"; sid:1;)')
    assert rule.fast_pattern is not None
    buf, c = rule.fast_pattern
    assert buf == PAYLOAD and c.pattern == b"abcdef" and c.fast_pattern_chop == (1, 3)
    assert c.mpm_pattern == b"bcd"
    (c,) = contents('content:"abcdef"; fast_pattern:only;')
    assert c.fast_pattern and c.fast_pattern_only


def test_fast_pattern_default_choice_longest_non_negated() -> None:
    rule = one_rule(
        H + 'content:!"a very long negated pattern"; content:"mid-size"; '
        'content:"longest-positive"; content:"x"; sid:1;)'
    )
    assert rule.fast_pattern is not None
    assert rule.fast_pattern[1].pattern == b"longest-positive"
    assert not rule.fast_pattern[1].fast_pattern  # chosen, not written


def test_fast_pattern_bad_value() -> None:
    d = one_error(H + 'content:"abcdef"; fast_pattern:1; sid:1;)')
    assert d.code == "invalid-keyword-value"


def test_content_cannot_be_unquoted_when_negated_keyword_does_not_allow() -> None:
    d = one_error(H + 'msg:!"x"; sid:1;)')
    assert d.code == "invalid-negation"


def test_uricontent_goes_to_http_uri() -> None:
    rule = one_rule(
        'alert http any any -> any any (flow:to_server; uricontent:"/admin"; nocase; sid:1;)'
    )
    buf = rule.buffer("http.uri")
    assert buf is not None
    (c,) = buf.items
    assert isinstance(c, ContentMatch) and c.pattern == b"/admin" and c.nocase


def test_relative_keywords_follow_a_moved_content() -> None:
    # Suricata puts relative isdataat/byte_*/pcre R in the list of the previous match.
    rule = one_rule(
        'alert tcp any any -> any any (flow:to_server; uricontent:"this"; '
        'byte_extract:1,2,one,string,dec,relative; uricontent:"ring"; distance:one; '
        'content:"/c/"; http_raw_uri; isdataat:4,relative; content:"body"; '
        'pcre:"/x/R"; isdataat:1; sid:1;)'
    )
    uri = [type(i).__name__ for i in rule.buffer("http.uri").items]  # type: ignore[union-attr]
    raw = [type(i).__name__ for i in rule.buffer("http.uri.raw").items]  # type: ignore[union-attr]
    payload = [type(i).__name__ for i in rule.buffer(PAYLOAD).items]  # type: ignore[union-attr]
    assert uri == ["ContentMatch", "ByteExtract", "ContentMatch"]
    assert raw == ["ContentMatch", "IsDataAt"]
    assert payload == ["ContentMatch", "PcreMatch", "IsDataAt"]


def _encode_content(data: bytes) -> str:
    """Bytes -> a content value as a rule writer would: printable ASCII as text (escaping
    the four escapable characters), everything else as |hex|."""
    out = []
    for byte in data:
        ch = chr(byte)
        if ch in '";\\:':
            out.append("\\" + ch)
        elif 0x20 <= byte < 0x7F and ch != "|":
            out.append(ch)
        else:
            out.append(f"|{byte:02x}|")
    return '"' + "".join(out) + '"'


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=40))
def test_content_roundtrip(data: bytes) -> None:
    assert parse_content_value(_encode_content(data)) == (data, False)
    rule = one_rule(H + f"content:{_encode_content(data)}; sid:1;)")
    assert rule.buffer(PAYLOAD).items[0].pattern == data  # type: ignore[union-attr]


def test_fast_pattern_prefers_http_buffers_over_payload_and_method() -> None:
    rule = one_rule(
        'alert http any any -> any any (flow:to_server; http.method; content:"POSTPOSTPOST"; '
        'content:"a long payload pattern"; http.uri; content:"/short"; sid:1;)'
    )
    assert rule.fast_pattern is not None
    assert rule.fast_pattern[0] == "http.uri" and rule.fast_pattern[1].pattern == b"/short"


def test_fast_pattern_strength_breaks_length_ties() -> None:
    from ruleengine.rules.parse import pattern_strength

    assert pattern_strength(b"aaaa") == 3 + 1 + 1 + 1
    assert pattern_strength(b"a1|\xfe") == 3 + 4 + 4 + 6
    rule = one_rule(H + 'content:"aaaaaa"; content:"abc123"; sid:1;)')
    assert rule.fast_pattern is not None and rule.fast_pattern[1].pattern == b"abc123"
