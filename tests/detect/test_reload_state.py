"""State a rule reload carries from the running engine to the new one
(``DetectEngine.adopt_state``): per-flow memory of fired rules renumbered, thresholds of
the rules both sets have, rules that are gone forgotten."""

from __future__ import annotations

from ruleengine.detect.engine import DetectEngine, Match
from tests.detect.helpers import FakeFlow, FakeTx, pkt, rule, udp

URI_A = 'alert http any any -> any any (msg:"a"; http.uri; content:"/a"; sid:10; rev:1;)'
# a drop rule sorts before alerts (action order): it shifts URI_A's index in the new set
FIRST = 'drop http any any -> any any (msg:"first"; http.uri; content:"/zzz"; sid:5;)'
LIMIT = ('alert udp any any -> any any (msg:"l"; content:"x"; '
         'threshold: type limit, track by_src, count 1, seconds 600; sid:20; rev:1;)')


def engine(*texts: str) -> DetectEngine:
    return DetectEngine([rule(t) for t in texts])


def sids(matches: list[Match]) -> list[int]:
    """The rules that alerted (a limited threshold still matches, silently)."""
    return [m.rule.sid for m in matches if m.alert]


def test_a_rule_that_fired_on_a_transaction_does_not_fire_again_after_reload() -> None:
    old = engine(URI_A)
    flow, tx = FakeFlow(), FakeTx(0, {"http.uri": b"/a"})
    assert sids(old.inspect_tx(pkt(), flow, True, tx, False, False)) == [10]
    new = engine(FIRST, URI_A)
    assert new.rules[0].rule.sid == 5  # URI_A moved from index 0 to 1
    new.adopt_state(old)
    assert new.inspect_tx(pkt(), flow, True, tx, True, False) == []
    # another transaction still alerts under the new numbering
    assert sids(new.inspect_tx(pkt(), flow, True, FakeTx(1, {"http.uri": b"/a"}),
                               True, False)) == [10]


def test_thresholds_survive_for_the_same_rule_and_restart_for_a_new_revision() -> None:
    old = engine(LIMIT)
    flow = FakeFlow(alproto=None)
    assert sids(old.inspect_packet(udp(b"x"), flow, True)) == [20]
    assert sids(old.inspect_packet(udp(b"x"), flow, True)) == []  # limited
    same = engine(FIRST, LIMIT)
    same.adopt_state(old)
    assert sids(same.inspect_packet(udp(b"x"), flow, True)) == []  # still limited
    bumped = engine(LIMIT.replace("rev:1", "rev:2"))
    bumped.adopt_state(same)
    assert sids(bumped.inspect_packet(udp(b"x"), flow, True)) == [20]  # a new rule


def test_a_flow_two_reloads_behind_starts_over() -> None:
    first = engine(URI_A)
    flow, tx = FakeFlow(), FakeTx(0, {"http.uri": b"/a"})
    assert sids(first.inspect_tx(pkt(), flow, True, tx, False, False)) == [10]
    second = engine(URI_A)
    second.adopt_state(first)
    third = engine(URI_A)
    third.adopt_state(second)  # the flow was not inspected by the second engine
    assert third.generation == 2
    assert sids(third.inspect_tx(pkt(), flow, True, tx, True, False)) == [10]
