"""Keywords own their match: the registry's match/postmatch setups, their order, and each
keyword's compiled steps on packets and a fake detection context."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ruleengine.keywords import REGISTRY, flow, flowbits, flowint, packet, stream_size, vars, xbits
from ruleengine.keywords.registry import KeywordSpec, MatchOrder, MatchStep, Registry, StepCache
from ruleengine.rules.model import Rule
from tests.detect.helpers import FakeFlow, pkt, rule, udp


@dataclass
class Ctx:
    """A ``MatchContext`` without an engine."""

    pkt: Any
    flow: Any = None
    to_server: bool = True
    state: Any = None
    xbits: Any = None
    fcache: dict[int, bool] = field(default_factory=dict)
    flowint_max: int = 256
    pktvars: dict[str, bytes] = field(default_factory=dict)

    def pktvar(self, name: str) -> bytes | None:
        return self.pktvars.get(name)


@dataclass
class State:
    flowints: dict[str, int] = field(default_factory=dict)
    flowvars: dict[str, bytes] = field(default_factory=dict)


def failed(steps: tuple[MatchStep, ...], ctx: Ctx) -> str | None:
    for match, arg, name in steps:
        if not match(ctx, arg):
            return name
    return None


def steps(text: str) -> tuple[MatchStep, ...]:
    r = rule(f"alert tcp any any -> any any ({text} sid:1;)")
    return tuple(s for setup in REGISTRY.match_setups() for s in setup(r))


def _none(_rule: Rule) -> tuple[MatchStep, ...]:
    return ()


def _other(_rule: Rule) -> tuple[MatchStep, ...]:
    return ()


def _setup(_b: object, _v: str | None) -> None:
    return None


def test_match_setups_follow_match_order_each_once() -> None:
    reg = Registry()
    reg.register(KeywordSpec("late", _setup, match=_none, match_order=MatchOrder.VARIABLES))
    reg.register(KeywordSpec("a", _setup, match=_other, match_order=MatchOrder.PACKET))
    reg.register(KeywordSpec("b", _setup, match=_other, match_order=MatchOrder.PACKET))
    reg.register(KeywordSpec("meta", _setup))
    assert reg.match_setups() == (_other, _none)


def test_the_registry_orders_cheap_tests_before_kept_state() -> None:
    assert REGISTRY.match_setups() == (
        flow.match_setup, packet.match_setup, flowbits.match_setup, xbits.match_setup,
        flowint.match_setup, stream_size.match_setup, vars.match_setup,
    )
    assert REGISTRY.postmatch_setups() == (
        flowbits.postmatch_setup, xbits.postmatch_setup, flowint.postmatch_setup,
    )


def test_a_rule_compiles_to_its_keywords_steps_in_match_order() -> None:
    s = steps('flowvar:u,"x"; stream_size:server,>,1; flowint:n,>,1; '
              "xbits:isset,b,track ip_src; flowbits:isset,a; ttl:64; dsize:>2; "
              "flow:to_server; flowbits:set,c;")
    assert [name for _, _, name in s] == ["flow", "ttl", "dsize", "flowbits", "xbits",
                                          "flowint", "stream_size", "flowvar"]
    assert steps('content:"x";') == ()


def test_packet_fields_are_compiled_per_condition() -> None:
    s = steps("dsize:>2; flags:S,12; ttl:64;")
    assert failed(s, Ctx(pkt(b"abc", flags=0x02))) is None
    assert failed(s, Ctx(pkt(b"ab", flags=0x02))) == "dsize"
    assert failed(s, Ctx(pkt(b"abc", flags=0x12))) == "tcp.flags"
    assert failed(steps("flags:S;"), Ctx(udp(b"abc"))) == "tcp.flags"  # not TCP: no match


def test_flow_results_are_shared_through_the_packet_cache() -> None:
    s = steps("flow:established,to_server;")
    ctx = Ctx(pkt(b"x"), FakeFlow(), True)
    assert failed(s, ctx) is None
    fc = s[0][1]
    assert ctx.fcache == {id(fc): True}
    ctx.fcache[id(fc)] = False  # a cached answer is used as is
    assert failed(s, ctx) == "flow"
    assert failed(s, Ctx(pkt(b"x"), FakeFlow(state="new"), True)) == "flow"
    assert failed(s, Ctx(pkt(b"x"), None, True)) == "flow"


def test_flowbits_match_and_postmatch() -> None:
    r = rule("alert tcp any any -> any any (flowbits:isnotset,a; flowbits:set,a; sid:1;)")
    s = flowbits.match_setup(r)
    (post, arg), = flowbits.postmatch_setup(r)
    f = FakeFlow()
    ctx = Ctx(pkt(b""), f)
    assert failed(s, ctx) is None
    post(ctx, arg)
    assert f.flowbits == {"a"} and failed(s, ctx) == "flowbits"
    post(Ctx(pkt(b"")), arg)  # no flow: nothing to set, no error


def test_flowint_and_variables_read_the_flow_state() -> None:
    s = steps('flowint:n,>,1; flowvar:u,"adm"; pktvar:p,"x";')
    st = State({"n": 2}, {"u": b"admin"})
    assert failed(s, Ctx(pkt(b""), FakeFlow(), state=st, pktvars={"p": b"xy"})) is None
    assert failed(s, Ctx(pkt(b""), FakeFlow(), state=st)) == "pktvar"
    assert failed(s, Ctx(pkt(b""), FakeFlow(), state=None)) == "flowint"
    r = rule("alert tcp any any -> any any (flowint:n,+,3; sid:1;)")
    (post, arg), = flowint.postmatch_setup(r)
    post(Ctx(pkt(b""), state=st), arg)
    assert st.flowints["n"] == 5


def test_stream_size_needs_a_tcp_session() -> None:
    s = steps("stream_size:client,>,0;")
    assert failed(s, Ctx(pkt(b""), FakeFlow())) == "stream_size"


def test_identical_arguments_share_their_compiled_steps() -> None:
    a = steps("flow:established,to_server; dsize:>2;")
    b = steps("flow:established,to_server; dsize:>2;")
    assert a == b and all(x is y for x, y in zip(a, b, strict=True))
    r1 = rule("alert tcp any any -> any any (flowbits:isset,x; sid:1;)")
    r2 = rule("alert tcp any any -> any any (flowbits:isset,x; sid:2;)")
    assert flowbits.match_setup(r1) is flowbits.match_setup(r2)


def test_the_step_cache_is_bounded() -> None:
    cache: StepCache[tuple[int, ...]] = StepCache(limit=2)
    made = [cache.get(n, lambda n=n: (n,)) for n in range(4)]  # type: ignore[misc]
    assert made == [(0,), (1,), (2,), (3,)]
    assert cache.get(0, lambda: (9,)) == (0,)  # kept
    assert cache.get(3, lambda: (9,)) == (9,)  # over the limit: made again, not kept
