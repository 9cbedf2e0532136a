"""Content inspection engine semantics (Suricata detect-engine-content-inspection.c)."""

from __future__ import annotations

import pytest

from tests.detect.helpers import buffer_matches, payload_matches


@pytest.mark.parametrize(
    ("opts", "data", "expected"),
    [
        ('content:"abc";', b"xxabcx", True),
        ('content:"abc";', b"xxabx", False),
        ('content:"ABC"; nocase;', b"xxabcx", True),
        ('content:"ABC";', b"xxabcx", False),
        ('content:"|00 ff|";', b"a\x00\xffb", True),
        # offset / depth: depth counts from offset
        ('content:"b"; offset:1; depth:1;', b"ab", True),
        ('content:"b"; offset:1; depth:1;', b"bab", False),
        ('content:"cd"; offset:2; depth:2;', b"abcd", True),
        ('content:"cd"; depth:3;', b"abcd", False),
        # distance / within
        ('content:"a"; content:"b"; distance:1;', b"axb", True),
        ('content:"a"; content:"b"; distance:2;', b"axb", False),
        ('content:"a"; content:"b"; within:2;', b"axb", True),
        ('content:"a"; content:"b"; within:1;', b"axb", False),
        ('content:"a"; content:"b"; distance:1; within:1;', b"axb", True),
        # backtracking: the first "a" fails the within, the second one matches
        ('content:"a"; content:"b"; within:1;', b"a....ab", True),
        ('content:"a"; content:"b"; within:1;', b"a....a.b", False),
        ('content:"ab"; content:"cd"; within:4; content:"ef"; within:2;', b"ab cd ab cdef", True),
        # negative distance reaches back before the previous match
        ('content:"bc"; content:"ab"; distance:-3; within:2;', b"abc", True),
        ('content:"bc"; content:"ab"; distance:-1; within:2;', b"abc", False),
        # negation
        ('content:!"x";', b"abc", True),
        ('content:!"x";', b"axc", False),
        ('content:"a"; content:!"b"; within:2;', b"ab ac", True),
        ('content:"a"; content:!"b"; within:2;', b"ab", False),
        ('content:"a"; content:!"b"; distance:0;', b"a b", False),
        ('content:"x"; content:!"y"; depth:3;', b"yyyx", False),
        ('content:"x"; content:!"y"; depth:3;', b"aaayx", True),
        # startswith / endswith
        ('content:"GET"; startswith;', b"GET /", True),
        ('content:"GET"; startswith;', b" GET /", False),
        ('content:"end"; endswith;', b"the end", True),
        ('content:"end"; endswith;', b"end of", False),
        ('content:"end"; endswith;', b"endend", True),
        ('content:"a"; content:"z"; distance:0; endswith;', b"a..z", True),
        ('content:"a"; content:"z"; distance:0; endswith;', b"a..z.", False),
    ],
)
def test_content_positions(opts: str, data: bytes, expected: bool) -> None:
    assert payload_matches(opts, data) is expected


@pytest.mark.parametrize(
    ("opts", "data", "expected"),
    [
        ('content:"a"; isdataat:2,relative;', b"a12", True),
        ('content:"a"; isdataat:3,relative;', b"a12", False),
        ('content:"a"; isdataat:!1,relative;', b"xa", True),
        ('content:"a"; isdataat:!1,relative;', b"ax", False),
        ('content:"a"; isdataat:2;', b"abc", True),
        ('content:"a"; isdataat:3;', b"abc", False),
        ('content:"a"; isdataat:!3;', b"abc", True),
        # relative isdataat uses the *last* match end, after backtracking too
        ('content:"a"; content:"b"; within:1; isdataat:1,relative;', b"ab", False),
        ('content:"a"; content:"b"; within:1; isdataat:1,relative;', b"abx", True),
    ],
)
def test_isdataat(opts: str, data: bytes, expected: bool) -> None:
    assert payload_matches(opts, data) is expected


@pytest.mark.parametrize(
    ("opts", "data", "expected"),
    [
        ('pcre:"/a.c/";', b"xxabcx", True),
        ('pcre:"/A.C/i";', b"xxabcx", True),
        ('pcre:"/A.C/";', b"xxabcx", False),
        ('pcre:"/a.c/";', b"a\nc", False),
        ('pcre:"/a.c/s";', b"a\nc", True),
        ('pcre:"/^c$/m";', b"a\nc\nd", True),
        ('pcre:"/^c$/";', b"a\nc\nd", False),
        ('pcre:"/b/A";', b"ab", False),
        ('pcre:"/a/A";', b"ab", True),
        ('pcre:"/b$/";', b"ab\n", True),
        ('pcre:"/b$/E";', b"ab\n", False),
        ('pcre:!"/zz/";', b"ab", True),
        ('pcre:!"/ab/";', b"ab", False),
        # R: relative to the previous match end; ^ anchors there
        ('content:"ab"; pcre:"/^c/R";', b"abc", True),
        ('content:"ab"; pcre:"/^c/R";', b"abdc", False),
        # the content is re-tried at its next occurrence for the relative pcre
        ('content:"ab"; pcre:"/^c/R";', b"abdabc", True),
        ('content:"a"; pcre:!"/^b/R";', b"ab", False),
        ('content:"a"; pcre:!"/^b/R";', b"abac", True),
        # a pcre followed by a relative content is re-tried too (next match start + 1)
        ('pcre:"/a./"; content:"X"; within:1;', b"a1 a2X", True),
        # greedy vs ungreedy (G) is visible through the relative position
        ('pcre:"/a.+b/"; content:"X"; within:1;', b"a1b2bX", True),
        ('pcre:"/a.+b/G"; content:"X"; within:1;', b"a1b2bX", False),
        ('content:"x"; pcre:"/(?<=x)y/R";', b"xy", False),
    ],
)
def test_pcre(opts: str, data: bytes, expected: bool) -> None:
    assert payload_matches(opts, data) is expected


@pytest.mark.parametrize(
    ("opts", "data", "expected"),
    [
        ("byte_test:2,>,0x100,0;", b"\x01\x01", True),
        ("byte_test:2,>,0x101,0;", b"\x01\x01", False),
        ("byte_test:2,=,0x0201,0,little;", b"\x01\x02", True),
        ("byte_test:2,!=,0x0201,0,little;", b"\x01\x02", False),
        ("byte_test:3,=,123,0,string,dec;", b"123", True),
        ("byte_test:3,=,0x1f,0,string,hex;", b"1fz", True),
        ("byte_test:3,=,7,0,string,oct;", b"007", True),
        ("byte_test:3,=,0,0,string,dec;", b"abc", False),
        ("byte_test:1,&,0x80,0;", b"\x81", True),
        ("byte_test:1,&,0x80,0;", b"\x01", False),
        ("byte_test:2,=,0x01,0,bitmask 0x0ff0;", b"\x00\x10", True),
        ('content:"L"; byte_test:1,=,5,0,relative;', b"L\x05", True),
        ('content:"L"; byte_test:1,=,5,0,relative;', b"L", False),
        ("byte_test:4,=,1,0;", b"\x00\x00\x01", False),
        ('content:"L"; byte_jump:1,0,relative; content:"Z"; within:1;', b"L\x02abZ", True),
        ('content:"L"; byte_jump:1,0,relative; content:"Z"; within:1;', b"L\x01abZ", False),
        (
            'content:"L"; byte_jump:1,0,relative,multiplier 2; content:"Z"; within:1;',
            b"L\x01abZ",
            True,
        ),
        ('byte_jump:1,0,from_beginning; content:"Z"; within:1;', b"\x03abZ", True),
        ('byte_jump:1,0,align; content:"Z"; within:1;', b"\x01abcdZ", True),
        ('byte_jump:1,0,post_offset 1; content:"Z"; within:1;', b"\x01aaZ", True),
        ("byte_jump:1,0;", b"\x05ab", False),  # jump beyond the buffer
        ('byte_jump:2,0,string,dec; content:"Z"; within:1;', b"02abZ", True),
        ('byte_extract:1,0,len; content:"A"; offset:1; depth:len;', b"\x03xxA", True),
        ('byte_extract:1,0,len; content:"A"; offset:1; depth:len;', b"\x02xxA", False),
        ('byte_extract:1,0,n; content:"B"; distance:n; within:1;', b"\x02xB", False),
        ('byte_extract:1,0,n; content:"B"; distance:n; within:1;', b"\x01xB", True),
        ("byte_extract:1,0,v; byte_test:1,=,v,1;", b"\x07\x07", True),
        ("byte_extract:1,0,v; byte_test:1,=,v,1;", b"\x07\x08", False),
        (
            "byte_math:bytes 1,offset 0,oper +,rvalue 2,result r; byte_test:1,=,r,1;",
            b"\x03\x05",
            True,
        ),
        ("byte_math:bytes 1,offset 0,oper /,rvalue 0,result r;", b"\x03", False),
    ],
)
def test_byte_keywords(opts: str, data: bytes, expected: bool) -> None:
    assert payload_matches(opts, data) is expected


@pytest.mark.parametrize(
    ("opts", "data", "expected"),
    [
        ('http.uri; content:"/"; bsize:<5;', b"/abc", True),
        ('http.uri; content:"/"; bsize:<5;', b"/abcd", False),
        ("http.uri; bsize:0;", b"", True),
        ('http.uri; content:"/a"; urilen:4;', b"/abc", True),
        ('http.uri; content:"/a"; urilen:>4;', b"/abc", False),
        ('http.method; content:"GET";', b"GET", True),
    ],
)
def test_buffer_size(opts: str, data: bytes, expected: bool) -> None:
    name = "http.method" if "method" in opts else "http.uri"
    assert buffer_matches(opts, name, data) is expected


def test_pathological_recursion_is_bounded() -> None:
    data = b"a" * 2000
    opts = 'content:"a"; content:"a"; within:1; content:"a"; within:1; content:"b"; within:1;'
    assert payload_matches(opts, data) is False
