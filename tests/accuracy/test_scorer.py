"""The scorer's matching rules on hand-made events: the public corpus uses few of the match
operators (no ``__len``, no ``stats`` checks), so each is pinned here, and held to
sv_score.py's own ``field_matches`` when ../shared is present."""

from __future__ import annotations

import importlib.util
from types import ModuleType
from typing import Any

import pytest

from tests.accuracy.suricata_verify import (
    FAIL,
    NOT_APPLICABLE,
    NOT_SCORED,
    PASS,
    field_matches,
    lookup,
    score_filter,
    score_stats,
    version_applies,
)
from tests.shared import SV_SCORE

EVENT: dict[str, Any] = {
    "event_type": "alert",
    "pcap_cnt": 7,
    "alert": {"signature_id": 2, "metadata": {"tag": ["a", "b"]}},
    "vlan": [100, 200],
    "smtp": {"rcpt_to": ["x@example.com", "y@example.com"]},
    "http": {"url": "/index.html", "hostname": "www.example.com"},
    "matrix": [[1, 2], [3, 4]],
}

# (key, expected, whether run.py's FilterCheck.match accepts EVENT)
CASES = [
    ("event_type", "alert", True),
    ("event_type", "flow", False),
    ("pcap_cnt", 7, True),
    ("alert.signature_id", 2, True),
    ("alert.signature_id", 3, False),
    ("vlan[1]", 200, True),
    ("vlan[2]", 200, False),
    ("smtp.rcpt_to[0]", "x@example.com", True),
    ("matrix[1][0]", 3, True),
    ("alert.metadata.tag.__len", 2, True),
    ("alert.metadata.tag.__len", 3, False),
    ("pcap_cnt.__len", -1, True),  # a number has no length: -1
    ("http.url.__len", 11, True),
    ("alert.metadata.tag.__contains", "b", True),
    ("alert.metadata.tag.__contains", "c", False),
    ("http.hostname.__contains", "example", True),
    ("pcap_cnt.__contains", 7, False),
    ("http.url.__find", "index", True),
    ("http.url.__find", "nothere", False),
    ("http.url.__startswith", "/index", True),
    ("http.url.__startswith", "index", False),
    ("http.url.__endswith", ".html", True),
    ("http.url.__endswith", ".htm", False),
    ("http.url.__find", 5, False),  # a number searched in a string: no match, no crash
    ("has-key", "alert.metadata", True),
    ("has-key", "alert.nothere", False),
    ("has-key", ["alert", "http.url"], True),
    ("not-has-key", "alert.nothere", True),
    ("not-has-key", "alert", False),
    ("missing.path", None, True),  # an absent field reads as null, as in run.py
]


@pytest.mark.parametrize(("key", "expected", "matches"), CASES)
def test_field_matches(key: str, expected: Any, matches: bool) -> None:
    assert field_matches(EVENT, key, expected) is matches


def _sv_score() -> ModuleType:
    if not SV_SCORE.is_file():
        pytest.skip(f"reference scorer not found at {SV_SCORE}")
    spec = importlib.util.spec_from_file_location("sv_score", SV_SCORE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("key", "expected", "matches"), CASES)
def test_field_matches_as_sv_score(key: str, expected: Any, matches: bool) -> None:
    assert _sv_score().safe_match(EVENT, key, expected) is field_matches(EVENT, key, expected)


def test_lookup_stops_at_missing_steps() -> None:
    assert lookup(EVENT, "alert.metadata.tag[1]") == "b"
    assert lookup(EVENT, "http.url.deeper") is None
    assert lookup(EVENT, "vlan[0].x") is None


def test_filter_counts_events_of_any_type() -> None:
    events = [EVENT, {"event_type": "flow"}, dict(EVENT, pcap_cnt=8)]
    spec = {"count": 2, "match": {"event_type": "alert"}}
    assert score_filter(0, spec, events).status == PASS
    assert score_filter(0, dict(spec, count=1), events).status == FAIL
    assert score_filter(0, {"count": 3, "match": {}}, events).status == PASS


def test_filter_requires_and_files() -> None:
    spec: dict[str, Any] = {"count": 0, "match": {"event_type": "alert"}}
    assert score_filter(0, dict(spec, requires={"min-version": "7.0.12"}), []).status == PASS
    assert score_filter(0, dict(spec, requires={"min-version": 9}), []).status == NOT_APPLICABLE
    assert score_filter(0, dict(spec, requires={"lt-version": 8}), []).status == NOT_APPLICABLE
    assert score_filter(0, dict(spec, requires={"features": ["X"]}), []).status == NOT_SCORED
    assert score_filter(0, dict(spec, filename="files.json"), []).status == NOT_SCORED
    assert score_filter(0, spec, "eve.json was not written").status == FAIL


def test_version_applies_reads_keys_in_order() -> None:
    assert version_applies({}) is True
    assert version_applies({"min-version": "8.0.1", "lt-version": "9"}) is True
    assert version_applies({"min-version": 9, "features": ["X"]}) is False
    assert version_applies({"features": ["X"], "min-version": 9}) is None


def test_stats_uses_the_last_stats_event() -> None:
    events = [{"event_type": "stats", "stats": {"decoder": {"pkts": 1}}},
              {"event_type": "stats", "stats": {"decoder": {"pkts": 10, "invalid": 0}}}]
    assert score_stats(0, {"decoder.pkts": 10}, events).status == PASS
    assert score_stats(0, {"decoder.pkts": 1}, events).status == FAIL
    assert score_stats(0, {"decoder.pkts.__gt": 9, "decoder.pkts.__lte": 10}, events).status \
        == PASS
    assert score_stats(0, {"decoder.pkts.__lt": 10}, events).status == FAIL
    assert score_stats(0, {"decoder.pkts.__gte": 11}, events).status == FAIL
    assert score_stats(0, {"decoder.missing.__gte": 0}, events).status == FAIL
    assert score_stats(0, {"decoder.invalid": 0}, []).status == FAIL
