"""Reconciled bypass accounting: wire = inspected + leaked + bypassed, checked at flow end."""

from __future__ import annotations

from ruleengine.bypass_accounting import account, reason_and_sid
from ruleengine.capture import BypassCounters
from ruleengine.flow.table import _DEFAULTS, BYPASS_CAPTURE, Flow
from ruleengine.outputs.stats import Stats


def _flow() -> Flow:
    return Flow(("k",), 4, 6, b"\x01\x02\x03\x04", b"\x05\x06\x07\x08", 1000, 80, (), 0.0,
                _DEFAULTS["tcp"])


def test_capture_bypass_reconciles_and_attributes() -> None:
    flow = _flow()
    for _ in range(5):
        flow.count(True, 100)
    flow.bypass, flow.bypass_reason = BYPASS_CAPTURE, "rule:42"
    flow.mark_inspected()
    flow.count(False, 1500)  # in flight: reached user space after the bypass
    flow.count_leaked(1500)
    flow.add_capture_bypassed(BypassCounters(3, 300, 20, 30000))
    stats = Stats()
    acct = account(stats, flow)
    assert acct.ok and acct.leaked_pkts == 1 and acct.bypassed_pkts == 23
    snap = stats.snapshot()
    assert snap["flow_bypassed.accounting.ok"] == 1
    assert snap["flow_bypassed.by_sid.42.pkts"] == 23
    assert snap["flow_bypassed.by_reason.rule.bytes"] == 30300
    assert snap["flow_bypassed.by_reason.rule.leaked_pkts"] == 1


def test_a_packet_counted_on_no_path_is_a_mismatch() -> None:
    flow = _flow()
    flow.count(True, 100)
    flow.bypass, flow.bypass_reason = BYPASS_CAPTURE, "stream-depth"
    flow.mark_inspected()
    flow.count(True, 100)  # seen after the bypass but neither leaked nor bypassed
    stats = Stats()
    assert not account(stats, flow).ok
    assert stats.get("flow_bypassed.accounting.mismatch") == 1


def test_reason_and_sid() -> None:
    assert reason_and_sid("rule:7") == ("rule", 7)
    assert reason_and_sid("encryption") == ("encryption", None)
    assert reason_and_sid(None) == ("unknown", None)
