"""The parser's buffers against Suricata's expected alert counts (suricata-verify HTTP tests).

Only rules the tiny test matcher understands are checked (sticky buffers, legacy modifiers,
content/uricontent, nocase, flow direction); everything else in a test is skipped.
"""

from __future__ import annotations

import pytest

from .pcapfeed import CORPUS
from .svmatch import evaluate, load_index

# Not parser questions: the harness cannot model these tests.
_HARNESS_LIMITS = {
    "alert-max/alert-max-append-higher-priority": "packet alert queue limit (alert-max)",
    "alert-max/alert-max-verdict": "packet alert queue limit (alert-max)",
    "bug-4376": "retransmitted SYN with a new ISN needs real stream reassembly",
    "bug-7552/bug-7552-01": "midstream response seen first: flow direction reversal is "
    "the pipeline's job (detect_app_proto on the other direction)",
}
# Known parser differences from libhtp.
_KNOWN_DIFFERENCES = {
    "http-evader/http-evader-248": "folded Content-Length '34' + ' 68': libhtp ends up reading "
    "the body until close; we read 34 bytes",
}

_ENTRIES = [
    e for e in load_index() if "a" in e["classes"] and any(
        "http" in proto or proto == "tcp" for proto in e.get("rule_protocols", [])
    )
]


def _marks(name: str) -> list[pytest.MarkDecorator]:
    if name in _HARNESS_LIMITS:
        return [pytest.mark.skip(reason=_HARNESS_LIMITS[name])]
    if name in _KNOWN_DIFFERENCES:
        return [pytest.mark.xfail(reason=_KNOWN_DIFFERENCES[name], strict=True)]
    return []


@pytest.mark.skipif(not CORPUS.exists(), reason="../shared/corpus not available")
@pytest.mark.parametrize(
    "entry", [pytest.param(e, id=e["name"], marks=_marks(e["name"])) for e in _ENTRIES]
)
def test_expected_alert_counts(entry: dict) -> None:
    result = evaluate(entry)
    if result is None:
        pytest.skip("no rule here the test matcher understands")
    mismatches = {sid: counts for sid, counts in result.items() if counts[0] != counts[1]}
    assert not mismatches, f"sid: (expected, got) {mismatches}"
