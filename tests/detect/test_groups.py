"""The packet group resolved per flow and direction, and the payload-less short path:
same matches as evaluating every rule of the protocol group on every packet."""

from __future__ import annotations

from ruleengine.detect.engine import DetectEngine, Match
from tests.detect.helpers import FakeFlow, pkt, reply, rule

RULES = (
    'alert tcp any any -> any 80 (flags:S; sid:1;)',
    'alert tcp any any -> any 81 (flags:S; sid:2;)',
    'alert tcp any any -> any any (dsize:0; flags:A; sid:3;)',
    'alert tcp any any -> any any (dsize:>0; sid:4;)',
    'alert tcp any 80 -> any any (flow:to_client; dsize:<5; sid:5;)',
    'alert tcp any any -> any 80 (content:!"x"; sid:6;)',
    'alert tcp any any -> any 80 (prefilter; content:"abc"; sid:7;)',
)


def sids(matches: list[Match]) -> list[int]:
    return sorted(m.rule.sid for m in matches)


def both(*texts: str) -> tuple[DetectEngine, DetectEngine]:
    rules = [rule(t) for t in texts]
    return DetectEngine(rules), DetectEngine(rules, prefilter=False)


def test_resolved_group_keeps_header_results_per_direction() -> None:
    fast, ref = both(*RULES)
    flow_f, flow_r = FakeFlow(), FakeFlow()
    packets = [(pkt(flags=0x02), True), (pkt(flags=0x10), True), (pkt(b"abc", flags=0x18), True),
               (reply(b"ok", flags=0x18), False), (reply(flags=0x10), False),
               (pkt(b"x", flags=0x18), True), (pkt(flags=0x10), True)]
    for p, to_server in packets:
        got = sids(fast.inspect_packet(p, flow_f, to_server))
        assert got == sids(ref.inspect_packet(p, flow_r, to_server))
    # pure ACK to the server: dsize:0 rule and the negated content rule (empty payload)
    assert sids(fast.inspect_packet(pkt(flags=0x10), flow_f, True)) == [3, 6]
    assert sids(fast.inspect_packet(pkt(b"abc", flags=0x18), flow_f, True)) == [4, 6, 7]


def test_tuple_change_in_a_flow_resolves_again() -> None:
    fast, _ = both(*RULES)
    flow = FakeFlow()
    assert sids(fast.inspect_packet(pkt(flags=0x02), flow, True)) == [1, 6]
    # same flow object, other destination port (a reused slot): the group is resolved anew
    assert sids(fast.inspect_packet(pkt(flags=0x02, dport=81), flow, True)) == [2]
    assert sids(fast.inspect_packet(pkt(flags=0x02), flow, True)) == [1, 6]


def test_payloadless_short_path_skips_only_rules_that_need_data() -> None:
    fast, _ = both('alert tcp any any -> any any (dsize:>0; flags:A; sid:1;)',
                   'alert tcp any any -> any any (dsize:0; sid:2;)')
    flow = FakeFlow()
    assert sids(fast.inspect_packet(pkt(flags=0x10), flow, True)) == [2]
    assert sids(fast.inspect_packet(pkt(b"a", flags=0x10), flow, True)) == [1]
    # stream data on an ACK is data: the stream rule sees it
    fast2, _ = both('alert tcp any any -> any any (flow:only_stream; prefilter; '
                    'content:"zz"; sid:9;)')
    assert sids(fast2.inspect_packet(pkt(flags=0x10), FakeFlow(), True, b"zz")) == [9]
