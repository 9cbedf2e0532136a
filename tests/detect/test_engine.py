"""DetectEngine: ordering, packet conditions, flow keyword, flowbits, thresholds,
pass, stream vs packet payload, IP-only rules, skipped rules."""

from __future__ import annotations

from ruleengine.detect.engine import DetectEngine, Match
from ruleengine.rules.model import Action
from tests.detect.helpers import FakeFlow, pkt, reply, rule, udp


def engine(*texts: str, **kw: object) -> DetectEngine:
    return DetectEngine([rule(t) for t in texts], **kw)  # type: ignore[arg-type]


def sids(matches: list[Match]) -> list[int]:
    return [m.rule.sid for m in matches]


def test_content_rule_fires_on_payload() -> None:
    e = engine('alert tcp any any -> any 80 (content:"evil"; sid:1;)')
    assert sids(e.inspect_packet(pkt(b"an evil thing"), None, True)) == [1]
    assert sids(e.inspect_packet(pkt(b"nice"), None, True)) == []
    assert sids(e.inspect_packet(pkt(b"evil", dport=81), None, True)) == []


def test_header_addresses_ports_and_bidirectional() -> None:
    e = engine(
        'alert tcp 10.0.0.0/24 any -> 10.0.0.2 80 (content:"x"; sid:1;)',
        'alert tcp 10.0.0.2 80 <> 10.0.0.1 any (content:"x"; sid:2;)',
        'alert tcp !10.0.0.1 any -> any any (content:"x"; sid:3;)',
    )
    assert sids(e.inspect_packet(pkt(b"x"), None, True)) == [1, 2]
    assert sids(e.inspect_packet(reply(b"x"), None, False)) == [2, 3]


def test_protocol_groups() -> None:
    e = engine(
        'alert udp any any -> any any (content:"q"; sid:1;)',
        'alert tcp any any -> any any (content:"q"; sid:2;)',
        'alert ip any any -> any any (content:"q"; sid:3;)',
    )
    assert sids(e.inspect_packet(udp(b"q"), None, True)) == [1, 3]
    assert sids(e.inspect_packet(pkt(b"q"), None, True)) == [2, 3]


def test_order_action_then_priority_then_load_order() -> None:
    e = engine(
        'alert tcp any any -> any any (content:"a"; priority:1; sid:1;)',
        'alert tcp any any -> any any (content:"a"; priority:3; sid:2;)',
        'drop tcp any any -> any any (content:"a"; priority:3; sid:3;)',
        'reject tcp any any -> any any (content:"a"; sid:4;)',
        'alert tcp any any -> any any (content:"a"; priority:3; sid:5;)',
    )
    assert sids(e.inspect_packet(pkt(b"a"), None, True)) == [3, 4, 1, 2, 5]


def test_pass_stops_later_rules_for_the_packet() -> None:
    e = engine(
        'alert tcp any any -> any any (content:"a"; sid:1;)',
        'pass tcp any any -> any any (content:"ab"; sid:2;)',
    )
    assert sids(e.inspect_packet(pkt(b"ab"), None, True)) == [2]
    assert sids(e.inspect_packet(pkt(b"a"), None, True)) == [1]


def test_flowbits_setter_runs_before_checker_in_same_packet() -> None:
    e = engine(
        'alert tcp any any -> any any (content:"b"; flowbits:isset,x; sid:1; priority:1;)',
        'alert tcp any any -> any any (content:"a"; flowbits:set,x; flowbits:noalert; sid:2;)',
    )
    flow = FakeFlow()
    out = e.inspect_packet(pkt(b"ab"), flow, True)
    assert [(m.rule.sid, m.alert) for m in out] == [(2, False), (1, True)]
    assert flow.flowbits == {"x"}


def test_flowbits_across_packets_and_or_and_unset() -> None:
    e = engine(
        'alert tcp any any -> any any (content:"login"; flowbits:set,auth; noalert; sid:1;)',
        'alert tcp any any -> any any (content:"cmd"; flowbits:isset,auth|admin; sid:2;)',
        'alert tcp any any -> any any (content:"cmd"; flowbits:isnotset,auth; sid:3;)',
        'alert tcp any any -> any any (content:"logout"; flowbits:unset,auth; sid:4;)',
    )
    flow = FakeFlow()
    assert sids(e.inspect_packet(pkt(b"cmd"), flow, True)) == [3]
    out = e.inspect_packet(pkt(b"login"), flow, True)
    assert sids(out) == [1] and not out[0].alert
    assert sids(e.inspect_packet(pkt(b"cmd"), flow, True)) == [2]
    e.inspect_packet(pkt(b"logout"), flow, True)
    assert sids(e.inspect_packet(pkt(b"cmd"), flow, True)) == [3]


def test_flow_keyword() -> None:
    e = engine(
        'alert tcp any any -> any any (content:"a"; flow:to_server,established; sid:1;)',
        'alert tcp any any -> any any (content:"a"; flow:to_client; sid:2;)',
        'alert tcp any any -> any any (content:"a"; flow:not_established; sid:3;)',
        'alert tcp any any -> any any (content:"a"; flow:stateless; sid:4;)',
    )
    est, new = FakeFlow(), FakeFlow(state="new")
    assert sids(e.inspect_packet(pkt(b"a"), est, True)) == [1, 4]
    assert sids(e.inspect_packet(reply(b"a"), est, False)) == [2, 4]
    assert sids(e.inspect_packet(pkt(b"a"), new, True)) == [3, 4]
    assert sids(e.inspect_packet(pkt(b"a"), None, True)) == [3, 4]


def test_packet_conditions() -> None:
    e = engine(
        "alert tcp any any -> any any (dsize:>3; sid:1;)",
        "alert tcp any any -> any any (flags:S; sid:2;)",
        "alert tcp any any -> any any (flags:S+; sid:3;)",
        "alert tcp any any -> any any (ack:0; sid:4;)",
        "alert ip any any -> any any (ttl:<10; sid:5;)",
        "alert udp any any -> any any (dsize:0; sid:6;)",
    )
    syn = pkt(b"", flags=0x02)
    synack = pkt(b"", flags=0x12)
    synack.ack = 5
    assert sids(e.inspect_packet(syn, None, True)) == [2, 3, 4]
    assert sids(e.inspect_packet(synack, None, True)) == [3]
    assert sids(e.inspect_packet(pkt(b"abcd"), None, True)) == [1, 4]
    low = udp(b"")
    low.ttl = 3
    assert sids(e.inspect_packet(low, None, True)) == [5, 6]


def test_stream_rules_use_the_stream_chunk_packet_rules_the_payload() -> None:
    e = engine(
        'alert tcp any any -> any any (content:"split"; sid:1;)',
        'alert tcp any any -> any any (content:"spl"; dsize:3; sid:2;)',
        'alert tcp any any -> any any (content:"split"; flow:only_stream; sid:3;)',
        'alert tcp any any -> any any (content:"it"; flow:no_stream; sid:4;)',
    )
    flow = FakeFlow()
    out = e.inspect_packet(pkt(b"it"), flow, True, stream_chunk=b"split")
    assert sids(out) == [1, 3, 4]
    assert out[0].stream
    assert sids(e.inspect_packet(pkt(b"spl"), flow, True, stream_chunk=b"")) == [2]
    # no stream data at all: stream rules fall back to the packet payload
    assert sids(e.inspect_packet(pkt(b"split"), flow, True)) == [1, 4]


def test_depth_offset_and_stream_size_rules_inspect_packet_and_stream() -> None:
    """SigValidate: a content with depth/offset (startswith) or a stream_size makes a
    stream rule a pkt_stream rule, inspected on the packet payload and on the stream
    (detect-bytetest-02: two alerts, one per engine; stream_size: test_state_pipeline)."""
    e = engine(
        'alert tcp any any -> any any (content:"GET "; depth:4; sid:1;)',
        'alert tcp any any -> any any (content:"GET "; sid:2;)',
        'alert tcp any any -> any any (content:"ET"; offset:1; sid:3;)',
        'alert tcp any any -> any any (content:"GET"; startswith; sid:4;)',
    )
    flow = FakeFlow()
    # the packet's data went to the stream, none ready: only pkt_stream rules see it
    assert sids(e.inspect_packet(pkt(b"GET /"), flow, True, stream_chunk=b"")) == [1, 3, 4]
    # the stream data arrives later (flow end): every stream rule matches it once
    out = e.inspect_packet(pkt(b""), flow, True, stream_chunk=b"GET /")
    assert sids(out) == [1, 2, 3, 4] and all(m.stream for m in out)


def test_stream_rule_falls_back_to_a_packet_not_added_to_the_stream() -> None:
    """DetectEngineInspectRulePayloadMatches: without a stream match, a stream rule
    inspects the packet payload when the packet was not added to the stream."""
    e = engine('alert tcp any any -> any any (content:"abc"; sid:1;)')
    flow = FakeFlow()
    assert sids(e.inspect_packet(pkt(b"abc"), flow, True, stream_chunk=b"zzz",
                                 stream_add=False)) == [1]
    assert sids(e.inspect_packet(pkt(b"abc"), flow, True, stream_chunk=b"zzz")) == []


def test_packet_keywords_make_a_rule_packet_only() -> None:
    """flags, ttl, seq and dsize set SIG_FLAG_REQUIRE_PACKET: such a rule sees the packet
    payload (a TCP Fast Open SYN's data, tcp-fastopen-08) and never the stream."""
    e = engine(
        'alert tcp any any -> any any (flags:S; content:"GET"; sid:1;)',
        'alert tcp any any -> any any (ttl:64; content:"GET"; sid:2;)',
        'alert tcp any any -> any any (content:"GET"; sid:3;)',
    )
    syn = pkt(b"GET /", flags=0x02)
    flow = FakeFlow()
    assert sids(e.inspect_packet(syn, flow, True, stream_chunk=b"")) == [1, 2]
    later = pkt(b"", flags=0x10)
    assert sids(e.inspect_packet(later, flow, True, stream_chunk=b"GET /")) == [3]


def test_analysis_kind_follows_the_payload_sources() -> None:
    e = engine(
        'alert tcp any any -> any any (content:"a"; sid:1;)',
        'alert tcp any any -> any any (content:"a"; depth:4; sid:2;)',
        'alert tcp any any -> any any (content:"a"; dsize:>1; sid:3;)',
        'alert tcp any any -> any any (content:"a"; stream_size:client,>,1; sid:4;)',
        'alert tcp any any -> any any (content:"a"; depth:4; flow:only_stream; sid:5;)',
    )
    kinds = {a.rule.sid: (a.kind, a.requires_packet, a.requires_stream)
             for a in e.analysis()}
    assert kinds == {1: ("stream", False, True), 2: ("pkt_stream", True, True),
                     3: ("pkt", True, False), 4: ("pkt_stream", True, True),
                     5: ("stream", False, True)}


def test_ip_only_rule_once_per_direction() -> None:
    e = engine("alert ip 10.0.0.1 any -> any any (sid:1;)", "alert ip any any <> any any (sid:2;)")
    flow = FakeFlow()
    assert sids(e.inspect_packet(pkt(b"a"), flow, True)) == [1, 2]
    assert sids(e.inspect_packet(pkt(b"b"), flow, True)) == []
    assert sids(e.inspect_packet(reply(b"c"), flow, False)) == [2]


def test_drop_on_ip_only_and_stream_applies_to_flow() -> None:
    e = engine(
        "drop ip 10.0.0.1 any -> any any (sid:1;)",
        'drop tcp any any -> any any (content:"x"; sid:2;)',
    )
    out = e.inspect_packet(pkt(b"x"), FakeFlow(), True, stream_chunk=b"x")
    assert [(m.rule.sid, m.apply_to_flow) for m in out] == [(1, True), (2, True)]
    out = e.inspect_packet(pkt(b"x", dport=81), FakeFlow(), True)
    assert [(m.rule.sid, m.apply_to_flow) for m in out] == [(1, True), (2, False)]


def test_threshold_limit() -> None:
    e = engine(
        'alert tcp any any -> any any (content:"a"; '
        "threshold:type limit,track by_src,count 2,seconds 60; sid:1;)"
    )
    got = [bool(e.inspect_packet(pkt(b"a", ts=t), None, True)) for t in (1, 2, 3, 4)]
    assert got == [True, True, True, True]  # matched; alerts silenced after 2
    alerts = [m.alert for t in (5, 6) for m in e.inspect_packet(pkt(b"a", ts=t), None, True)]
    assert alerts == [False, False]
    fresh = e.inspect_packet(pkt(b"a", ts=100), None, True)
    assert [m.alert for m in fresh] == [True]


def test_threshold_types() -> None:
    e = engine(
        'alert tcp any any -> any any (content:"t"; '
        "threshold:type threshold,track by_dst,count 3,seconds 60; sid:1;)",
        'alert tcp any any -> any any (content:"b"; '
        "threshold:type both,track by_src,count 2,seconds 60; sid:2;)",
        'alert tcp any any -> any any (content:"d"; '
        "detection_filter:track by_src,count 2,seconds 60; sid:3;)",
    )

    def run(data: bytes, n: int) -> list[bool]:
        res = []
        for i in range(n):
            out = e.inspect_packet(pkt(data, ts=float(i)), None, True)
            res.append(any(m.alert for m in out))
        return res

    assert run(b"t", 7) == [False, False, True, False, False, True, False]
    assert run(b"b", 4) == [False, True, False, False]
    assert run(b"d", 4) == [False, False, True, True]


def test_threshold_by_src_is_per_source() -> None:
    e = engine(
        'alert tcp any any -> any any (content:"a"; '
        "threshold:type limit,track by_src,count 1,seconds 60; sid:1;)"
    )
    assert e.inspect_packet(pkt(b"a"), None, True)[0].alert
    assert not e.inspect_packet(pkt(b"a"), None, True)[0].alert
    assert e.inspect_packet(pkt(b"a", src="10.9.9.9"), None, True)[0].alert


def test_skipped_rules_have_reasons() -> None:
    e = engine(
        'alert krb5 any any -> any any (krb5.cname; content:"x"; sid:1;)',
        'alert sip any any -> any any (sip.method; content:"x"; sid:2;)',
        'alert tcp any any -> any any (content:"x"; sid:3;)',
    )
    reasons = {r.sid: why for r, why in e.skipped}
    assert set(reasons) == {1, 2}
    assert all(reasons.values())
    assert sids(e.inspect_packet(pkt(b"x"), None, True)) == [3]


def test_app_layer_protocol_on_packet_rules() -> None:
    e = engine(
        'alert http any any -> any any (content:"x"; sid:1;)',
        'alert tcp any any -> any any (app-layer-protocol:!http; content:"x"; sid:2;)',
    )
    assert sids(e.inspect_packet(pkt(b"x"), FakeFlow(alproto="http"), True)) == [1]
    assert sids(e.inspect_packet(pkt(b"x"), FakeFlow(alproto="ftp"), True)) == [2]
    assert sids(e.inspect_packet(pkt(b"x"), FakeFlow(alproto=None), True)) == []


def test_invalid_packet_is_not_inspected() -> None:
    e = engine('alert tcp any any -> any any (content:"x"; sid:1;)')
    p = pkt(b"x")
    p.invalid = True
    assert e.inspect_packet(p, None, True) == []


def test_action_values() -> None:
    e = engine('reject tcp any any -> any any (content:"x"; sid:1;)')
    assert e.inspect_packet(pkt(b"x"), None, True)[0].rule.action is Action.REJECT


def test_header_protocol_is_the_flows_and_the_keyword_per_direction() -> None:
    # ``alert http``: Suricata compares the flow's protocol (FlowGetAppProtocol), so the
    # server's bare ACK matches once the request made the flow HTTP
    e = engine("alert http any any -> any any (sid:1;)")
    flow = FakeFlow(alproto="http")
    assert sids(e.inspect_packet(pkt(b"GET / HTTP/1.1\r\n\r\n"), flow, True)) == [1]
    assert sids(e.inspect_packet(reply(b"", flags=0x10), flow, False)) == [1]
    # the keyword's default mode is the packet direction's protocol, known once that
    # direction carried data
    e = engine("alert tcp any any -> any any (app-layer-protocol:http; flow:established; sid:2;)")
    flow = FakeFlow(alproto="http")
    assert sids(e.inspect_packet(pkt(b"GET / HTTP/1.1\r\n\r\n"), flow, True)) == [2]
    assert e.inspect_packet(reply(b"", flags=0x10), flow, False) == []  # server ACK



def test_packet_alert_max_keeps_the_first_alerts_in_order() -> None:
    texts = [f'alert tcp any any -> any any (content:"a"; sid:{i};)' for i in range(1, 6)]
    e = DetectEngine([rule(t) for t in texts], packet_alert_max=2)
    out = e.inspect_packet(pkt(b"a"), FakeFlow(), True)
    assert [(m.rule.sid, m.alert) for m in out] == [
        (1, True), (2, True), (3, False), (4, False), (5, False)
    ]  # fmt: skip
    assert e.alerts_discarded == 3


def test_ip4_ip6_header_protocols() -> None:
    e = engine(
        'alert ip4 any any -> any any (content:"v"; sid:1;)',
        'alert ip6 any any -> any any (content:"v"; sid:2;)',
    )
    assert sids(e.inspect_packet(pkt(b"v"), None, True)) == [1]
    assert sids(e.inspect_packet(pkt(b"v", src="2001:db8::1", dst="2001:db8::2"), None, True)) == [
        2
    ]


def test_prefilter_keyword_and_fast_pattern_chop() -> None:
    e = engine(
        "alert tcp any any -> any any (flags:S; prefilter; sid:1;)",
        'alert tcp any any -> any any (content:"abcdefgh"; fast_pattern:2,3; sid:2;)',
        'alert tcp any any -> any any (content:"zz"; content:"cde"; fast_pattern; sid:3;)',
    )
    assert sids(e.inspect_packet(pkt(b"", flags=0x02), None, True)) == [1]
    assert sids(e.inspect_packet(pkt(b"xxabcdefghxx"), None, True)) == [2]
    assert sids(e.inspect_packet(pkt(b"xxcdexx"), None, True)) == []  # chop found, rule not
    assert sids(e.inspect_packet(pkt(b"cde zz"), None, True)) == [3]


def test_counters() -> None:
    e = engine(
        'alert tcp any any -> any any (content:"x"; sid:1;)',
        'alert sip any any -> any any (sip.method; content:"x"; sid:2;)',
    )
    assert e.counters() == {
        "detect.rules_loaded": 1,
        "detect.rules_skipped": 1,
        "detect.alerts_discarded": 0,
        "detect.internal_errors": 0,
        "detect.getter_errors": 0,
        "detect.xbits_entries": 0,
        "detect.xbits_evicted": 0,
        "detect.tag_hosts": 0,
        "detect.tagged_packets": 0,
    }


def test_packet_keyword_drop_on_http_rule_does_not_drop_the_flow() -> None:
    e = engine(
        "drop http any any -> any any (dsize:0; sid:1;)",
        "drop http any any -> any any (sid:2;)",
    )
    flow = FakeFlow()
    flow.detect = None
    e.inspect_packet(pkt(b"GET /"), flow, True)
    out = e.inspect_packet(pkt(b"", flags=0x10), flow, True)
    assert [(m.rule.sid, m.apply_to_flow) for m in out] == [(1, False), (2, True)]
