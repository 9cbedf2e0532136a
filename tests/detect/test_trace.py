"""The tracing hook: a traced inspection gives the engine's result, records the steps
the interpreter took, and leaves the interpreter as it was."""

from __future__ import annotations

import pytest

from ruleengine.commands.explain_findings import failed_step, match_path
from ruleengine.detect import content as ci
from ruleengine.detect.trace import RuleTrace
from ruleengine.rules.loader import load_rule_text

CASES = [
    ('content:"a"; content:"b"; within:1;', b"a a ab"),
    ('content:"GET"; content:"zzz"; distance:0;', b"GET /index"),
    ('content:"x"; pcre:"/y+z/R"; byte_test:1,>,0x30,0,relative;', b"..xyyz9"),
    ('content:"x"; pcre:"/y+z/R"; byte_test:1,>,0x39,0,relative;', b"..xyyz9"),
    ('content:!"evil"; content:"ok";', b"all ok"),
    ('content:"abc"; depth:3;', b"xxabc"),
]


def program(options: str) -> ci.CompiledBuffer:
    rules = load_rule_text(f'alert tcp any any -> any any (msg:"t"; {options} sid:1;)').rules
    assert rules, options
    return ci.compile_buffer(rules[0].buffers[0])


@pytest.mark.parametrize(("options", "data"), CASES)
def test_traced_result_is_the_engine_result(options: str, data: bytes) -> None:
    cb = program(options)
    real = ci._run
    trace = RuleTrace(1)
    assert ci.inspect(cb, data, {}, None, trace) == ci.inspect(cb, data, {})
    assert ci._run is real  # the recorder is gone
    (insp,) = trace._pending
    assert insp.matched == ci.inspect(cb, data, {})
    assert insp.steps.tries[0] >= 1


def test_match_path_is_the_matching_occurrence() -> None:
    """The first "a" (offset 0) has no "b" right after it: the match uses the "a" at 4."""
    trace = RuleTrace(1)
    assert ci.inspect(program(CASES[0][0]), CASES[0][1], {}, None, trace)
    insp = trace._pending[0]
    assert match_path(insp) == [(4, 5), (5, 6)]
    assert insp.steps.tries[1] == 3  # "b" tried after each "a"


def test_failed_step_is_the_item_not_passed() -> None:
    trace = RuleTrace(1)
    assert not ci.inspect(program(CASES[1][0]), CASES[1][1], {}, None, trace)
    insp = trace._pending[0]
    assert failed_step(insp) == 1
    assert insp.steps.tried[1] == [3]  # tried right after "GET"


def test_recorder_removed_when_inspection_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    real = ci._run

    def boom(*args: object) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(ci, "_content", boom)  # fails inside the interpreter
    with pytest.raises(RuntimeError):
        ci.inspect(program(CASES[0][0]), b"ab", {}, None, RuleTrace(1))
    assert ci._run is real
