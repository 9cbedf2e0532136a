"""Prefilter equivalence on the real ET Open HTTP rules: transactions built from the
rules' own contents give the same alerts with prefilter off, hyperscan and Aho-Corasick."""

from __future__ import annotations

import random

import pytest

from ruleengine.buffers import BUFFERS, BufferDirection
from ruleengine.detect.engine import DetectEngine
from ruleengine.detect.prefilter import hyperscan_available
from ruleengine.rules.loader import load_rule_files
from ruleengine.rules.model import ContentMatch, Rule
from tests.detect.helpers import FakeFlow, FakeTx, pkt, reply
from tests.shared import SHARED

ET = SHARED / "corpus" / "rules" / "et-open-suricata-5.0.rules"


def _tx_from_rule(rule: Rule, tx_id: int) -> FakeTx:
    tx = FakeTx(tx_id)
    for bm in rule.buffers:
        spec = BUFFERS.get(bm.buffer)
        if spec is None:
            continue
        parts = [it.pattern for it in bm.items if isinstance(it, ContentMatch) and not it.negated]
        data = b"".join(parts) or b"x"
        side = tx.response if spec.direction is BufferDirection.TO_CLIENT else tx.request
        side[bm.buffer] = [data] if spec.multi else data
    return tx


@pytest.mark.slow
@pytest.mark.skipif(not ET.exists(), reason="ET corpus not found")
def test_et_http_rules_same_alerts_with_and_without_prefilter() -> None:
    rules = [
        r for r in load_rule_files([ET]).rules if any(b.buffer != "payload" for b in r.buffers)
    ]
    backends = ["ac", "hs"] if hyperscan_available() else ["ac"]
    engines = [DetectEngine(rules, prefilter=False)] + [
        DetectEngine(rules, mpm=b) for b in backends
    ]
    # FakeTx carries HTTP buffers and FakeFlow is an HTTP flow: sample HTTP rules only
    tx_rules = [cr.rule for cr in engines[0].rules if cr.is_tx and cr.alproto == "http"]
    rng = random.Random(7)
    fired = 0
    for tx_id, rule in enumerate(rng.sample(tx_rules, 200)):
        tx = _tx_from_rule(rule, tx_id)
        results = []
        for e in engines:
            flow = FakeFlow()
            out = e.inspect_tx(pkt(), flow, True, tx, True, False)
            out += e.inspect_tx(reply(), flow, False, tx, True, True)
            results.append(sorted(m.rule.sid for m in out))
        assert all(r == results[0] for r in results[1:]), rule.raw
        fired += len(results[0])
    assert fired > 25
    assert all(e.errors == 0 for e in engines), [e.last_error for e in engines]


@pytest.mark.slow
@pytest.mark.skipif(not ET.exists(), reason="ET corpus not found")
def test_et_packet_rules_same_alerts_with_and_without_prefilter() -> None:
    rules = [
        r
        for r in load_rule_files([ET]).rules
        if r.protocol in ("tcp", "udp") and all(b.buffer == "payload" for b in r.buffers)
    ]
    backends = ["ac", "hs"] if hyperscan_available() else ["ac"]
    engines = [DetectEngine(rules, prefilter=False)] + [
        DetectEngine(rules, mpm=b) for b in backends
    ]
    with_payload = [cr.rule for cr in engines[0].rules if cr.payload is not None]
    rng = random.Random(11)
    fired = 0
    for rule in rng.sample(with_payload, 200):
        bm = rule.buffers[0]
        data = b"".join(
            it.pattern for it in bm.items if isinstance(it, ContentMatch) and not it.negated
        )
        results = []
        for e in engines:
            flow = FakeFlow(alproto=None)
            p = pkt(data, dst="93.184.216.34", dport=rule_port(rule))
            out = e.inspect_packet(p, flow, True, data)
            results.append(sorted(m.rule.sid for m in out))
        assert all(r == results[0] for r in results[1:]), rule.raw
        fired += len(results[0])
    assert fired > 25
    assert all(e.errors == 0 for e in engines), [e.last_error for e in engines]


def rule_port(rule: Rule) -> int:
    ports = rule.dst_ports.include
    return ports[0][0] if ports else 80
