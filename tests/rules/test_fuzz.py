"""Hypothesis: no input, however broken, makes the loader raise (bounded example counts)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ruleengine.diagnostics import render_text, to_sarif
from ruleengine.rules.loader import load_rule_text

FRAGMENTS = [
    "alert",
    "drop:flow",
    "pass",
    "reject",
    "tcp",
    "http",
    "http1",
    "udp",
    "dns",
    " ",
    "  ",
    "any",
    "$HOME_NET",
    "!",
    "[",
    "]",
    ",",
    "1.2.3.4",
    "10.0.0.0/8",
    "::1",
    "80",
    "1024:",
    ":",
    "!80",
    "->",
    "<>",
    "=>",
    "(",
    ")",
    ";",
    ":",
    '"',
    "\\",
    "|",
    "|0d 0a|",
    "content:",
    "msg:",
    "sid:1;",
    "sid:0;",
    "rev:2;",
    "nocase;",
    "depth:3;",
    "distance:0;",
    "within:1;",
    "offset:",
    "fast_pattern;",
    "fast_pattern:1,2;",
    "http.uri;",
    "http_uri;",
    "http.host;",
    "pcre:",
    '"/a(b/"',
    '"/x/Ui"',
    "flow:established,to_server;",
    "flowbits:set,a;",
    "flowbits:isset,",
    "bypass;",
    "bypass:1;",
    "filestore;",
    "dsize:>10;",
    "bsize:<>;",
    "byte_test:4,>,1,0;",
    "byte_extract:1,0,v;",
    "isdataat:!v,relative;",
    "threshold:type limit;",
    "priority:300;",
    "\\\n",
    "\n",
    "#",
    "\t",
    "\x00",
    "\udcff",
    "é",
    "dns.query;",
    "to_lowercase;",
]

rule_soup = st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join)


def _check(text: str) -> None:
    rs = load_rule_text(text, file="fuzz.rules")
    assert rs.loaded == len(rs.rules)
    for d in rs.diagnostics:
        assert d.code != "internal-error", d.message
        assert d.line >= 1 and d.column >= 1 and d.end_column >= d.column
        render_text(d)
    to_sarif(rs.diagnostics, tool_version="t")


@settings(max_examples=300, deadline=None)
@given(rule_soup)
def test_rule_shaped_garbage_never_raises(text: str) -> None:
    _check(text)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=400))
def test_arbitrary_text_never_raises(text: str) -> None:
    _check(text)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    _check(data.decode("utf-8", "surrogateescape"))


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('abc"\\|;:! 0123456789aAfFgG')), max_size=40))
def test_content_values_never_raise(value: str) -> None:
    _check(f"alert tcp any any -> any any (content:{value}; sid:1;)")
    _check(f'alert tcp any any -> any any (content:"{value}"; sid:1;)')
    _check(f'alert tcp any any -> any any (pcre:"/{value}/"; sid:1;)')
