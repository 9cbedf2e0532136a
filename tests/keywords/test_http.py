"""HTTP sticky buffers, legacy modifiers and buffer rules (from ruleengine.buffers)."""

from __future__ import annotations

import pytest

from ruleengine.buffers import BUFFERS, LEGACY_MODIFIERS
from ruleengine.keywords import REGISTRY
from ruleengine.keywords.registry import Stage
from ruleengine.rules.model import PAYLOAD, ContentMatch
from tests.rules.helpers import codes, load, one_error, one_rule

H = "alert http any any -> any any (flow:to_server; "


@pytest.mark.parametrize("buffer", sorted(BUFFERS))
def test_every_sticky_buffer(buffer: str) -> None:
    spec = REGISTRY.get(buffer)
    assert spec is not None and spec.stage is Stage.STICKY
    proto = BUFFERS[buffer].alproto or "http"  # shared buffers (file.data): any owner
    header = H.replace("alert http", f"alert {proto}")
    rule = one_rule(header + f'{buffer}; content:"abcd"; sid:1;)')
    buf = rule.buffer(buffer)
    assert buf is not None and isinstance(buf.items[0], ContentMatch)
    assert rule.app_proto == proto


@pytest.mark.parametrize(("modifier", "buffer"), sorted(LEGACY_MODIFIERS.items()))
def test_every_legacy_modifier_moves_the_content(modifier: str, buffer: str) -> None:
    rule = one_rule(
        H
        + f'content:"first"; content:"abcd"; {modifier}; nocase_placeholder sid:1;)'.replace(
            "nocase_placeholder ", ""
        )
    )
    moved = rule.buffer(buffer)
    assert moved is not None
    assert [i.pattern for i in moved.items if isinstance(i, ContentMatch)] == [b"abcd"]
    payload = rule.buffer(PAYLOAD)
    assert payload is not None and [i.pattern for i in payload.items] == [b"first"]  # type: ignore[union-attr]


def test_sticky_aliases() -> None:
    for alias, canonical in (
        ("file_data", "file.data"),
        ("http_header_names", "http.header_names"),
        ("http_request_line", "http.request_line"),
        ("http_start", "http.start"),
    ):
        rule = one_rule(H + f'{alias}; content:"abcd"; sid:1;)')
        assert rule.buffer(canonical) is not None


def test_modifiers_after_legacy_move_still_apply() -> None:
    rule = one_rule(H + 'content:"/ADMIN"; http_uri; nocase; depth:10; sid:1;)')
    (c,) = rule.buffer("http.uri").items  # type: ignore[union-attr]
    assert isinstance(c, ContentMatch) and c.nocase and c.depth == 10


def test_legacy_modifier_with_sticky_buffer_active() -> None:
    r = H + 'http.uri; content:"/a"; http_uri; sid:1;)'
    d = one_error(r)
    assert d.code == "modifier-after-sticky"
    assert d.message == "'http_uri' keyword seen with a sticky buffer still set"
    assert d.column == r.index("http_uri") + 1


def test_two_legacy_modifiers_on_one_content() -> None:
    d = one_error(H + 'content:"/a"; http_uri; http_header; sid:1;)')
    assert d.code == "conflicting-modifier"


def test_pkt_data_resets_sticky_buffer() -> None:
    rule = one_rule(H + 'http.uri; content:"/a"; pkt_data; content:"body"; sid:1;)')
    assert [i.pattern for i in rule.buffer(PAYLOAD).items] == [b"body"]  # type: ignore[union-attr]


def test_same_sticky_buffer_twice_appends() -> None:
    rule = one_rule(
        H + 'http.uri; content:"/a"; http.header; content:"h"; http.uri; content:"b"; sid:1;)'
    )
    assert [i.pattern for i in rule.buffer("http.uri").items] == [b"/a", b"b"]  # type: ignore[union-attr]


def test_http_keyword_in_tcp_rule_sets_app_proto_and_warns() -> None:
    rs = load('alert tcp any any -> any 80 (flow:to_server; content:"/x"; http_uri; sid:1;)')
    assert rs.rules[0].app_proto == "http"
    assert "http-keyword-non-http-rule" in codes(rs)


def test_http_keyword_in_dns_rule_is_conflicting() -> None:
    d = one_error('alert dns any any -> any any (http.uri; content:"/x"; sid:1;)')
    assert d.code == "conflicting-alproto"


def test_http_stat_code_lowercase_host_ok() -> None:
    rule = one_rule(H + 'http.host; content:"example.com"; http.method; content:"GET"; sid:1;)')
    assert rule.buffer("http.host") is not None


def test_absent() -> None:
    rule = one_rule(H + "http.referer; absent; sid:1;)")
    assert rule.buffer("http.referer") is not None
    d = one_error(H + "absent; sid:1;)")
    assert d.code == "absent-without-buffer"


def test_fast_pattern_before_legacy_modifier_follows_the_move() -> None:
    rule = one_rule(H + 'content:"/admin"; fast_pattern; http_uri; content:"xyz"; sid:1;)')
    assert rule.fast_pattern is not None
    assert rule.fast_pattern[0] == "http.uri" and rule.fast_pattern[1].pattern == b"/admin"
