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


KEYWORD_RULES = (
    'alert tcp any any -> any any (flags:S; sid:21;)',
    'alert tcp any any -> any any (flags:S,12; sid:22;)',
    'alert tcp any any -> any any (flags:SA; flow:to_client; sid:23;)',
    'alert tcp any any -> any any (flags:!R; dsize:>2; sid:24;)',
    'alert tcp any any -> any any (flags:*FR; flow:to_server; sid:25;)',
    'alert tcp any any -> any any (dsize:0; ack:0; sid:26;)',
    'alert tcp any any -> any any (seq:1000; sid:27;)',
    'alert ip any any -> any any (ttl:<10; sid:28;)',
    'alert icmp any any -> any any (itype:8; icode:0; sid:29;)',
    'alert icmp any any -> any any (itype:>2; sid:30;)',
    'alert icmp any any -> any any (icode:3; sid:31;)',
    'alert tcp any any -> any any (flow:to_server; sid:32;)',
    'alert tcp any any -> any any (flow:to_client,established; sid:33;)',
    'alert tcp any any -> any 80 (flags:S; dsize:0; sid:34;)',
)


def test_prefilter_keywords_and_flow_direction_give_the_reference_matches() -> None:
    import random

    fast, ref = both(*KEYWORD_RULES)
    group = fast._pkt_groups[6]
    assert sum(cr.pf_cond is not None for cr in group.rules) >= 8
    rng = random.Random(4)
    fired = 0
    for _ in range(300):
        flow_f, flow_r = FakeFlow(alproto=None), FakeFlow(alproto=None)
        icmp = rng.random() < 0.25
        for _ in range(6):
            to_server = rng.random() < 0.5
            make = pkt if to_server else reply
            p = make(rng.choice([b"", b"ab", b"abcd"]), proto=1 if icmp else 6,
                     flags=rng.choice([0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0xC2]))
            p.ttl = rng.choice([5, 64])
            p.ack = rng.choice([0, 7])
            p.seq = rng.choice([1000, 5])
            p.icmp_type = rng.choice([0, 3, 8])
            p.icmp_code = rng.choice([0, 3])
            got = sids(fast.inspect_packet(p, flow_f, to_server))
            assert got == sids(ref.inspect_packet(p, flow_r, to_server))
            fired += len(got)
    assert fired > 500
    assert fast.errors == ref.errors == 0


def test_flow_direction_is_part_of_the_resolved_group() -> None:
    fast, _ = both('alert tcp any any -> any any (flow:to_client; sid:1;)',
                   'alert tcp any any -> any any (flow:to_server; flags:S; sid:2;)')
    flow = FakeFlow()
    assert sids(fast.inspect_packet(pkt(flags=0x02), flow, True)) == [2]
    res = flow.detect.sgh[(True, True)]  # type: ignore[union-attr]
    assert res.plain == [] and [len(p) for _, p in res.keyed] == [1]
    assert sids(fast.inspect_packet(reply(flags=0x12), flow, False)) == [1]
    assert flow.detect.sgh[(False, True)].plain == [0]  # type: ignore[union-attr]


def test_a_rule_reload_resolves_the_flows_groups_anew() -> None:
    old, _ = both('alert tcp any any -> any 80 (flags:S; sid:1;)',
                  'alert tcp any any -> any 80 (dsize:0; sid:2;)')
    new, ref = both('alert tcp any any -> any 80 (dsize:0; sid:3;)',
                    'alert tcp any any -> any 81 (dsize:0; sid:4;)',
                    'alert tcp any any -> any 80 (flags:S; sid:5;)')
    new.adopt_state(old)
    flow, flow_r = FakeFlow(), FakeFlow()
    assert sids(old.inspect_packet(pkt(flags=0x02), flow, True)) == [1, 2]
    got = sids(new.inspect_packet(pkt(flags=0x02), flow, True))
    assert got == sids(ref.inspect_packet(pkt(flags=0x02), flow_r, True)) == [3, 5]
    # the old set's resolved groups are dropped with its numbering, not kept beside
    old.inspect_packet(pkt(flags=0x10), flow, True)
    new2, _ = both('alert tcp any any -> any 80 (content:"a"; sid:6;)')
    new2.adopt_state(old)
    new2.inspect_packet(pkt(b"a", flags=0x18), flow, True)
    groups = set(map(id, new2._pkt_groups.values()))
    assert all(id(r.group) in groups for r in flow.detect.sgh.values())  # type: ignore[union-attr]
