"""The parser's buffers against Suricata's expected alert counts (suricata-verify HTTP tests).

Only tests with a rule the tiny test matcher understands (sticky buffers, legacy modifiers,
content/uricontent, nocase, flow direction) are replayed here, and only those rules are
checked. Every other suricata-verify test, and every check of these ones, is scored through the
whole engine by tests/accuracy/test_suricata_verify.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.accuracy.test_suricata_verify import KNOWN_FAILURES

from .pcapfeed import CORPUS
from .svmatch import SimpleRule, evaluate, load_index, supported_rules

# Tests this harness (no stream engine, no pipeline) cannot model, so they are not replayed
# here; the whole engine passes them in tests/accuracy/test_suricata_verify.py.
_ENGINE_ONLY = {
    "alert-max/alert-max-append-higher-priority": "packet alert queue limit (alert-max)",
    "alert-max/alert-max-verdict": "packet alert queue limit (alert-max)",
    "bug-4376": "retransmitted SYN with a new ISN needs real stream reassembly",
    "bug-7552/bug-7552-01": "midstream response seen first: flow direction reversal is "
    "the pipeline's job (detect_app_proto on the other direction)",
}
# Known parser differences from libhtp.
_KNOWN_DIFFERENCES = {
    "http-evader/http-evader-248": "folded Content-Length '34' + ' 68': libhtp 0.5 (C) "
    "reads 34 as we do; the expected alert is libhtp-rs's (Suricata 8) longer body",
}

_CASES: list[tuple[dict[str, Any], list[SimpleRule]]] = [
    (e, rules) for e in load_index() if "a" in e["classes"] and any(
        "http" in proto or proto == "tcp" for proto in e.get("rule_protocols", [])
    ) and e["name"] not in _ENGINE_ONLY and (rules := supported_rules(e))
]


def _marks(name: str) -> list[pytest.MarkDecorator]:
    if name in _KNOWN_DIFFERENCES:
        return [pytest.mark.xfail(reason=_KNOWN_DIFFERENCES[name], strict=True)]
    return []


@pytest.mark.skipif(not CORPUS.exists(), reason="../shared/corpus not available")
@pytest.mark.parametrize(
    ("entry", "rules"),
    [pytest.param(e, rules, id=e["name"], marks=_marks(e["name"])) for e, rules in _CASES],
)
def test_expected_alert_counts(entry: dict[str, Any], rules: list[SimpleRule]) -> None:
    result = evaluate(entry, rules)
    mismatches = {sid: counts for sid, counts in result.items() if counts[0] != counts[1]}
    assert not mismatches, f"sid: (expected, got) {mismatches}"


@pytest.mark.skipif(not CORPUS.exists(), reason="../shared/corpus not available")
def test_engine_only_tests_pass_in_the_accuracy_suite() -> None:
    """What is left out here is still checked: a corpus test the whole engine passes."""
    names = {e["name"] for e in load_index()}
    assert set(_ENGINE_ONLY) <= names
    assert not set(_ENGINE_ONLY) & set(KNOWN_FAILURES)
