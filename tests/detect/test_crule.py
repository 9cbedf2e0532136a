"""CRule: the rule's match list is what its keywords' registry entries compile, and the
engine only walks that list (a keyword added to the registry needs no engine change)."""

from __future__ import annotations

import pytest

from ruleengine.detect import crule
from ruleengine.detect.engine import DetectEngine
from ruleengine.detect.trace import RuleTrace
from ruleengine.keywords.registry import MatchContext, MatchStep
from ruleengine.rules.model import Rule
from tests.detect.helpers import FakeFlow, FakeTx, pkt, rule

SEEN: list[tuple[int, bool]] = []


def _odd_ttl(ctx: MatchContext, sid: int) -> bool:
    SEEN.append((sid, ctx.to_server))
    return bool(ctx.pkt.ttl % 2)


def _setup(r: Rule) -> tuple[MatchStep, ...]:
    return ((_odd_ttl, r.sid, "odd-ttl"),) if r.sid >= 100 else ()


@pytest.fixture
def odd_ttl_keyword(monkeypatch: pytest.MonkeyPatch) -> None:
    SEEN.clear()
    monkeypatch.setattr(crule, "_MATCH_SETUPS", (*crule._MATCH_SETUPS, _setup))


@pytest.mark.usefixtures("odd_ttl_keyword")
def test_the_engine_walks_the_steps_its_keywords_compiled() -> None:
    e = DetectEngine([rule('alert tcp any any -> any any (content:"a"; sid:1;)'),
                      rule('alert tcp any any -> any any (content:"a"; sid:100;)')])
    p = pkt(b"a")
    p.ttl = 64
    assert [m.rule.sid for m in e.inspect_packet(p, None, True)] == [1]
    p.ttl = 63
    assert [m.rule.sid for m in e.inspect_packet(p, None, True)] == [1, 100]
    assert SEEN == [(100, True), (100, True)]


@pytest.mark.usefixtures("odd_ttl_keyword")
def test_a_failed_step_is_named_in_the_trace_and_tx_rules_walk_the_same_list() -> None:
    e = DetectEngine([rule('alert http any any -> any any (http.uri; content:"x"; '
                           'flow:to_server; sid:100;)')])
    trace = RuleTrace(100)
    assert e.trace_rule(trace)
    p = pkt(b"")
    p.ttl = 64
    tx = FakeTx(0, {"http.uri": b"/x"})
    assert e.inspect_tx(p, FakeFlow(), True, tx, True, False) == []
    assert [ev.outcome for ev in trace.evaluations] == ["odd-ttl"]
    p.ttl = 65
    tx = FakeTx(1, {"http.uri": b"/x"})
    assert [m.rule.sid for m in e.inspect_tx(p, FakeFlow(), True, tx, True, False)] == [100]


def test_compiled_steps_follow_the_registry_order() -> None:
    e = DetectEngine([rule("alert tcp any any -> any any (flowbits:isset,a; dsize:>1; "
                           "flow:established; flowbits:set,b; sid:1;)")])
    (cr,) = e.rules
    assert [name for _, _, name in cr.matches] == ["flow", "dsize", "flowbits"]
    assert len(cr.postmatches) == 1
