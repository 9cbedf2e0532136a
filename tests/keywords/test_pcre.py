"""pcre: parsing, flags, buffer letters, PCRE2 compilation."""

from __future__ import annotations

import pytest

from ruleengine.buffers import PCRE_LETTERS
from ruleengine.keywords.pcre import CompiledPcre
from ruleengine.rules.model import PAYLOAD, PcreMatch
from tests.rules.helpers import codes, load, one_error, one_rule

H = "alert http any any -> any any (flow:to_server; "


def pcre_of(text: str) -> tuple[str, PcreMatch]:
    rule = one_rule(H + 'content:"zzzz"; ' + text + " sid:1;)")
    for buf in rule.buffers:
        for item in buf.items:
            if isinstance(item, PcreMatch):
                return buf.buffer, item
    raise AssertionError("no pcre")


def test_basic_pcre_and_flags() -> None:
    buf, p = pcre_of(r'pcre:"/a b+ c/ismxR";')
    assert buf == PAYLOAD
    assert (p.regex, p.flags, p.relative, p.negated) == ("a b+ c", "ismx", True, False)
    assert p.compiled.search(b"xxABBC") is not None  # i + x (pattern spaces ignored)


def test_negated_pcre() -> None:
    _, p = pcre_of(r'pcre:!"/evil/";')
    assert p.negated


@pytest.mark.parametrize(("letter", "buffer"), sorted(PCRE_LETTERS.items()))
def test_buffer_letters(letter: str, buffer: str) -> None:
    buf, p = pcre_of(f'pcre:"/abc/{letter}";')
    assert buf == buffer and p.flags == ""


def test_letter_naming_the_active_sticky_buffer_is_fine() -> None:
    rule = one_rule(H + 'http.uri; content:"/a"; pcre:"/a+/U"; sid:1;)')
    assert len(rule.buffer("http.uri").items) == 2  # type: ignore[union-attr]


def test_letter_conflicting_with_sticky_buffer() -> None:
    d = one_error(H + 'http.uri; content:"/a"; pcre:"/a+/H"; sid:1;)')
    assert d.code == "conflicting-buffer"


def test_anchored_flag() -> None:
    _, p = pcre_of(r'pcre:"/abc/A";')
    assert p.compiled.search(b"abcd") is not None
    assert p.compiled.search(b"xabc") is None
    assert p.compiled.search(b"xabc", 1) is not None  # anchored at the start offset


def test_dollar_endonly_and_ungreedy() -> None:
    _, p = pcre_of(r'pcre:"/abc$/E";')
    assert p.compiled.search(b"abc") is not None and p.compiled.search(b"abc\n") is None
    _, p = pcre_of(r'pcre:"/a.+c/G";')
    assert p.compiled.search(b"abcc").group(0) == b"abc"


def test_b_and_o_flags_accepted() -> None:
    _, p = pcre_of(r'pcre:"/abc/BO";')
    assert p.flags == "O"


def test_pcre_compile_error_position() -> None:
    r = H + 'pcre:"/a(b/"; sid:1;)'
    d = one_error(r)
    assert d.code == "pcre-compile"
    assert d.message.startswith("pcre does not compile: ")
    assert r.index("a(b") + 1 <= d.column <= r.index("a(b") + 4


def test_unknown_flag() -> None:
    r = H + 'pcre:"/abc/iq"; sid:1;)'
    d = one_error(r)
    assert d.code == "invalid-pcre" and d.message == "unknown pcre flag 'q'"
    assert d.column == r.index("iq") + 2


@pytest.mark.parametrize("value", ['"abc"', '"/abc"', '/abc/"', "abc"])
def test_malformed_pcre(value: str) -> None:
    d = one_error(H + f"pcre:{value}; sid:1;)")
    assert d.code in ("invalid-pcre", "missing-quotes")


def test_pcre_without_quotes_is_accepted_like_suricata() -> None:
    rule = one_rule(H + "pcre:/super/U; sid:1;)")
    item = rule.buffers[0].items[0]
    assert rule.buffers[0].buffer == "http.uri"
    assert isinstance(item, PcreMatch) and item.regex == "super"


def test_pcre_without_content_warns() -> None:
    rs = load(H + 'pcre:"/abc/"; sid:1;)')
    assert "pcre-no-content" in codes(rs)


def test_compiled_pcre_pickles_lazily() -> None:
    import pickle

    c = CompiledPcre(b"a+b", 0)
    clone = pickle.loads(pickle.dumps(c))
    assert clone._code is None
    assert clone.search(b"xaab").span() == (1, 4)
