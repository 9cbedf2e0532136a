"""The rule-set analysis of stream.auto-bypass: which rule sets allow a phase, which packet
rules hold which flows (issue 14 §6)."""

from __future__ import annotations

import socket
from types import SimpleNamespace
from typing import Any

import pytest

from ruleengine.detect.auto_bypass import AutoBypassPlan
from ruleengine.detect.engine import DetectEngine
from ruleengine.rules.loader import load_rule_text

GET = 'alert http any any -> any any (msg:"get"; http.method; content:"GET"; sid:1;)'
BODY = ('alert http any any -> any any (msg:"body"; flow:to_client; file.data; '
        'content:"MZ"; sid:2;)')
SNI = 'alert tls any any -> any any (msg:"sni"; tls.sni; content:"evil"; sid:3;)'


def _plan(*rules: str, variables: dict[str, str] | None = None) -> AutoBypassPlan:
    text = "\n".join(rules)
    for name, value in (variables or {}).items():
        text = text.replace(f"${name}", value)
    ruleset = load_rule_text(text)
    assert not ruleset.errors, ruleset.errors
    engine = DetectEngine(ruleset.rules)
    assert not engine.skipped, engine.skipped
    return AutoBypassPlan.build(engine.rules)


def _flow(alproto: str = "http", *, sport: int = 40000, dport: int = 80, proto: int = 6,
          src: str = "10.0.0.1", dst: str = "192.0.2.7") -> Any:
    return SimpleNamespace(src=socket.inet_aton(src), dst=socket.inet_aton(dst), sport=sport,
                           dport=dport, proto=proto, alproto=alproto, alproto_ts=alproto,
                           alproto_tc=alproto, app=object())


def test_http_and_tls_rules_on_their_buffers_allow_both_phases() -> None:
    plan = _plan(GET, BODY, SNI)
    assert plan.why_not("http") is None and plan.why_not("encrypted:tls") is None
    assert plan.blocker_for(_flow()) is None
    watch = plan.watch(_flow())
    assert watch is not None and not watch.never and watch.http


@pytest.mark.parametrize(("rule", "why"), [
    ('alert http any any -> any any (flow:to_client; file.data; content:"MZ"; '
     'content:"PE"; pkt_data; content:"x"; sid:20;)', "raw content"),
    ('alert http any any -> any any (flow:to_client; file.data; content:"MZ"; dsize:>0; '
     'sid:21;)', "packet keyword"),
    ('alert http any any -> any any (flow:to_client; file.data; content:"MZ"; '
     'xbits:isset,seen,track ip_src; sid:22;)', "xbits"),
    ('alert http any any -> any any (flow:to_client; file.data; content:"MZ"; '
     'threshold:type limit, track by_src, count 1, seconds 60; sid:23;)', "threshold"),
    ('alert http any any -> any any (flow:to_client; http.stat_code; content:"200"; '
     'file.data; absent; sid:24;)', "absent"),
    ('alert http any any -> any any (flow:to_client; '
     'app-layer-event:http.request_field_too_long; sid:25;)', "app-layer-event"),
])
def test_response_rules_whose_result_can_still_change_refuse_http(rule: str, why: str) -> None:
    plan = _plan(GET, rule)
    assert plan.why_not("http") is not None and why in str(plan.why_not("http"))
    watch = plan.watch(_flow())
    assert watch is not None and watch.never


def test_a_request_only_rule_with_a_threshold_does_not_refuse_http() -> None:
    """Request rules are evaluated for the last time when the request completes, before
    any response body exists: what they depend on does not matter after it."""
    rule = ('alert http any any -> any any (flow:to_server; http.user_agent; content:"sqlmap"; '
            'threshold:type limit, track by_src, count 1, seconds 60; sid:30;)')
    plan = _plan(rule, BODY)
    assert plan.why_not("http") is None
    assert plan.why_not("encrypted:http") is not None  # the other phase is stricter


def test_raw_stream_and_header_rules_hold_the_flows_they_fit() -> None:
    raw = 'alert tcp any any -> any 80 (msg:"raw"; flow:established; content:"zzz"; sid:40;)'
    flags = 'alert tcp any any -> any 443 (msg:"fin"; flags:F; sid:41;)'
    plan = _plan(GET, raw, flags)
    assert plan.blocker_for(_flow()) == 40
    assert plan.blocker_for(_flow(sport=80, dport=40000)) == 40  # either direction
    assert plan.blocker_for(_flow(dport=8080)) is None
    assert plan.blocker_for(_flow("tls", dport=443)) == 41
    assert plan.blocker_for(_flow(proto=17)) is None
    watch = plan.watch(_flow())
    assert watch is not None and watch.never


def test_addresses_of_a_packet_rule_decide_which_flows_it_holds() -> None:
    rule = ('alert tcp 10.0.0.0/8 any -> 198.51.100.0/24 any (msg:"out"; content:"x"; '
            'sid:50;)')
    plan = _plan(GET, rule)
    assert plan.blocker_for(_flow(dst="198.51.100.9")) == 50
    assert plan.blocker_for(_flow(dst="192.0.2.7")) is None


def test_an_app_layer_protocol_condition_limits_a_packet_rule_to_its_protocol() -> None:
    http_raw = 'alert http any any -> any any (msg:"http raw"; content:"zzz"; sid:60;)'
    not_tls = ('alert tcp any any -> any any (msg:"not tls"; app-layer-protocol:!tls; '
               'content:"zzz"; sid:61;)')
    plan = _plan(http_raw)
    assert plan.blocker_for(_flow("http")) == 60
    assert plan.blocker_for(_flow("tls", dport=443)) is None
    plan = _plan(not_tls)
    assert plan.blocker_for(_flow("tls", dport=443)) is None
    assert plan.blocker_for(_flow("http")) == 61


def test_ip_only_and_protocol_detection_rules_do_not_hold_flows() -> None:
    """Both are evaluated on a flow's first packets / its protocol detection only."""
    iponly = 'alert ip 10.0.0.1 any -> any any (msg:"host"; sid:70;)'
    pd_only = 'alert tcp any any -> any any (msg:"tls"; app-layer-protocol:tls; sid:71;)'
    plan = _plan(iponly, pd_only)
    assert plan.blocker_for(_flow()) is None
    assert plan.blocker_for(_flow("tls", dport=443)) is None


def test_tag_rules_refuse_every_flow() -> None:
    rule = ('alert http any any -> any any (msg:"tag"; http.method; content:"GET"; '
            'tag:session,10,packets; sid:80;)')
    plan = _plan(rule, SNI)
    assert "tag" in str(plan.why_not("http"))
    assert "tag" in str(plan.why_not("encrypted:tls"))


def test_flowbits_set_by_other_rules_do_not_refuse_by_themselves() -> None:
    """Flowbits live on the flow: once no rule can match it, none can change them; the
    last evaluation of the response rules sees them as the completion would."""
    setter = ('alert http any any -> any any (msg:"set"; flow:to_server; http.uri; '
              'content:".exe"; flowbits:set,exe; flowbits:noalert; sid:90;)')
    checker = ('alert http any any -> any any (msg:"chk"; flow:to_client; flowbits:isset,exe; '
               'file.data; content:"MZ"; sid:91;)')
    plan = _plan(setter, checker)
    assert plan.why_not("http") is None
    # a packet rule setting the bit holds the flows it fits
    pkt_setter = ('alert tcp any any -> any 80 (msg:"pkt set"; content:"x"; flowbits:set,exe; '
                  'flowbits:noalert; sid:92;)')
    assert _plan(pkt_setter, checker).blocker_for(_flow()) == 92


def test_a_flow_whose_protocol_is_not_known_yet_is_not_watched() -> None:
    plan = _plan(GET)
    assert plan.watch(_flow(None)) is None  # type: ignore[arg-type]
