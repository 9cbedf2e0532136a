"""Each of Suricata's semantic rule errors, with its exact position and message."""

from __future__ import annotations

from tests.rules.helpers import col_of, one_error, one_rule

H = "alert http any any -> any any "


def test_relative_and_absolute_on_one_content() -> None:
    r = H + '(msg:"x"; content:"abc"; depth:5; distance:1; sid:1;)'
    d = one_error(r)
    assert d.code == "mixed-relative-absolute"
    assert d.message == (
        "'distance' (relative) cannot be combined with offset/depth/startswith (absolute) "
        "on the same content"
    )
    assert (d.line, d.column, d.end_column) == (1, col_of(r, "distance"), col_of(r, "; sid") + 1)


def test_absolute_after_relative_on_one_content() -> None:
    r = H + '(content:"a"; content:"bc"; within:4; offset:2; sid:1;)'
    d = one_error(r)
    assert d.code == "mixed-relative-absolute"
    assert d.column == col_of(r, "offset")


def test_depth_smaller_than_content() -> None:
    r = H + '(content:"abcdef"; depth:3; sid:1;)'
    d = one_error(r)
    assert d.code == "depth-too-small"
    assert d.message == "depth (3) is smaller than the content length (6)"
    assert (d.column, d.end_column) == (col_of(r, "3;"), col_of(r, "3;") + 1)


def test_more_than_one_fast_pattern() -> None:
    r = H + '(content:"abcd"; fast_pattern; content:"efgh"; fast_pattern; sid:1;)'
    d = one_error(r)
    assert d.code == "duplicate-fast-pattern"
    assert d.message == "fast_pattern is used more than once in this rule"
    assert d.column == col_of(r, "fast_pattern", 1)
    assert d.hint is not None and str(col_of(r, "fast_pattern")) in d.hint


def test_fast_pattern_on_negated_relative_content() -> None:
    r = H + '(content:"abcd"; content:!"efgh"; distance:0; fast_pattern; sid:1;)'
    d = one_error(r)
    assert d.code == "fast-pattern-negated-relative"
    assert d.message == "fast_pattern cannot be used on a negated content with relative modifiers"
    assert d.column == col_of(r, "fast_pattern")


def test_fast_pattern_then_relative_on_negated_content() -> None:
    r = H + '(content:"abcd"; content:!"efgh"; fast_pattern; within:10; sid:1;)'
    d = one_error(r)
    assert d.code == "fast-pattern-negated-relative"
    assert d.column == col_of(r, "within")


def test_fast_pattern_chop_outside_pattern() -> None:
    r = H + '(content:"abcdef"; fast_pattern:4,5; sid:1;)'
    d = one_error(r)
    assert d.code == "fast-pattern-chop"
    assert d.message == "fast_pattern chop 4,5 is outside the pattern (length 6)"
    assert d.column == col_of(r, "4,5")


def test_nocase_on_http_host() -> None:
    r = H + '(http.host; content:"example.com"; nocase; sid:1;)'
    d = one_error(r)
    assert d.code == "nocase-on-lowercase-buffer"
    assert d.message == (
        "http.host is normalized to lowercase: 'nocase' is not allowed on its contents"
    )
    assert d.column == col_of(r, "nocase")


def test_uppercase_on_http_host_legacy_modifier() -> None:
    r = H + '(content:"Example.com"; http_host; sid:1;)'
    d = one_error(r)
    assert d.code == "uppercase-on-lowercase-buffer"
    assert d.message == (
        "http.host is normalized to lowercase: a pattern with uppercase characters can never match"
    )
    assert d.column == col_of(r, "content")


def test_space_in_http_method() -> None:
    r = H + '(http.method; content:"GET "; sid:1;)'
    d = one_error(r)
    assert d.code == "space-in-pattern"
    assert d.message == "http.method pattern with trailing space"
    assert d.column == col_of(r, "content")
    d = one_error(H + '(http.method; content:"\tGET"; sid:1;)')
    assert d.message == "http.method pattern with leading tab"


def test_space_in_http_protocol() -> None:
    r = H + '(http.protocol; content:"HTTP/1.1 "; sid:1;)'
    d = one_error(r)
    assert d.code == "space-in-pattern"
    assert d.message == "http.protocol pattern contains a space"


def test_modifier_without_content() -> None:
    r = H + '(msg:"x"; nocase; sid:1;)'
    d = one_error(r)
    assert d.code == "modifier-without-content"
    assert d.message == "'nocase' needs a preceding content"
    assert (d.column, d.end_column) == (col_of(r, "nocase"), col_of(r, "nocase") + 7)


def test_modifier_without_content_in_active_sticky_buffer() -> None:
    r = H + '(content:"abc"; http.uri; depth:3; sid:1;)'
    d = one_error(r)
    assert d.code == "modifier-without-content"
    assert d.column == col_of(r, "depth")


def test_legacy_modifier_without_content() -> None:
    r = H + '(http_uri; content:"abc"; sid:1;)'
    d = one_error(r)
    assert d.code == "modifier-without-content"
    assert d.message == "'http_uri' needs a preceding content"


def test_sticky_buffer_without_match() -> None:
    r = H + '(http.uri; http.header; content:"x"; sid:1;)'
    d = one_error(r)
    assert d.code == "empty-sticky-buffer"
    assert d.message == "sticky buffer 'http.uri' is set but no match was added to it"
    assert (d.column, d.end_column) == (col_of(r, "http.uri"), col_of(r, "http.uri") + 9)


def test_sticky_buffer_without_match_at_end() -> None:
    r = H + '(content:"x"; http.cookie; sid:1;)'
    d = one_error(r)
    assert d.code == "empty-sticky-buffer"
    assert d.column == col_of(r, "http.cookie")


def test_bypass_with_value() -> None:
    r = H + '(content:"abcd"; bypass:yes; sid:1;)'
    d = one_error(r)
    assert d.code == "unexpected-value"
    assert d.message == "'bypass' does not take a value"
    assert d.column == col_of(r, "bypass")
    assert d.hint == "write 'bypass;'"


def test_bypass_with_filestore() -> None:
    r = H + '(content:"abcd"; bypass; filestore; sid:1;)'
    d = one_error(r)
    assert d.code == "bypass-with-filestore"
    assert d.message == "'bypass' cannot be used together with 'filestore'"
    assert d.column == col_of(r, "bypass")


def test_sid_missing() -> None:
    r = H + '(msg:"x"; content:"abcd"; rev:1;)'
    d = one_error(r)
    assert d.code == "missing-sid"
    assert d.message == "signature is missing required value 'sid'"
    assert d.column == len(r)  # the closing parenthesis


def test_sid_zero() -> None:
    r = H + '(msg:"x"; sid:0;)'
    d = one_error(r)
    assert d.code == "sid-zero"
    assert d.message == "sid value 0 is invalid"
    assert d.column == col_of(r, "0;")


def test_rev_zero() -> None:
    r = H + '(msg:"x"; sid:5; rev:0;)'
    d = one_error(r)
    assert d.code == "rev-zero"
    assert d.message == "rev value 0 is invalid"
    assert d.sid == 5


def test_priority_out_of_range() -> None:
    for value in ("0", "256"):
        r = H + f'(msg:"x"; priority:{value}; sid:1;)'
        d = one_error(r)
        assert d.code == "out-of-range"
        assert d.message == f"priority: {value} is outside the allowed range 1-255"
        assert d.column == col_of(r, value + ";")


def test_negated_any_address() -> None:
    r = "alert tcp !any any -> any any (sid:1;)"
    d = one_error(r)
    assert d.code == "negated-any"
    assert d.message == "'!any' is not allowed: it matches no address"
    assert (d.column, d.end_column) == (11, 15)


def test_negated_any_port() -> None:
    r = "alert tcp any any -> any !any (sid:1;)"
    d = one_error(r)
    assert d.code == "negated-any"
    assert d.message == "'!any' is not allowed: it matches no port"
    assert d.column == col_of(r, "!any")


def test_bad_escape_in_content() -> None:
    r = H + r'(content:"ab\xcd"; sid:1;)'
    d = one_error(r)
    assert d.code == "bad-escape"
    assert d.message == "'\\' has to be escaped: only \\\" \\; \\\\ \\: are allowed in content"
    assert (d.column, d.end_column) == (col_of(r, "\\x"), col_of(r, "\\x") + 2)


def test_unescaped_quote_in_content() -> None:
    r = H + '(content:"ab"cd"; sid:1;)'
    d = one_error(r)
    assert d.code == "unescaped-quote"
    assert d.column == col_of(r, '"cd')


def test_odd_pipes_in_content() -> None:
    r = H + '(content:"ab|0d 0a"; sid:1;)'
    d = one_error(r)
    assert d.code == "bad-hex"
    assert d.message == "odd number of '|' in content: hex block is not closed"
    assert d.column == col_of(r, "|0d")


def test_half_hex_byte_in_content() -> None:
    r = H + '(content:"|0d 0|"; sid:1;)'
    d = one_error(r)
    assert d.code == "bad-hex"
    assert d.message == "incomplete hex byte in content (odd number of hex digits)"
    assert d.column == col_of(r, "0|")


def test_invalid_hex_char_in_content() -> None:
    r = H + '(content:"|0g|"; sid:1;)'
    d = one_error(r)
    assert d.code == "bad-hex"
    assert d.column == col_of(r, "g|")


def test_raw_header_needs_flow_direction() -> None:
    r = H + '(http.header.raw; content:"X-Forwarded"; sid:1;)'
    d = one_error(r)
    assert d.code == "raw-header-without-direction"
    assert d.message == "http.header.raw without a flow direction"
    assert d.column == 1
    r = H + '(flow:established; content:"X-A"; http_raw_header; sid:1;)'
    assert one_error(r).code == "raw-header-without-direction"
    assert one_rule(H + '(flow:to_client; http.header.raw; content:"X-A"; sid:1;)').sid == 1
