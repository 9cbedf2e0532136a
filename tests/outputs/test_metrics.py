"""The Prometheus endpoint, scraped over loopback."""

from __future__ import annotations

import urllib.request

import pytest

from ruleengine.outputs.metrics import METRICS, MetricsExporter

pytest.importorskip("prometheus_client")


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return resp.read().decode()


def test_scrape_shows_documented_counters_with_labels() -> None:
    exporter = MetricsExporter(0)
    try:
        exporter.update({"decoder.pkts": 1234, "flow_bypassed.reason.rule": 3,
                         "flow_bypassed.by_reason.stream-depth.pkts": 9000,
                         "flow_bypassed.by_sid.9100001.bytes": 777,
                         "flow_bypassed.local_capture_pkts": 5, "eve.lines_written": 42,
                         "worker.0.capture.kernel_packets": 10,
                         "worker.1.capture.kernel_packets": 20,
                         "flow_bypassed.accounting.ok": 2,
                         "bypass_list.nets.list:3.pkts": 18272,
                         "bypass_list.nets.list:3.bytes": 22200000,
                         "bypass_list.ports.v1.list:12.pkts": 7,
                         "bypass_list.entries": 4, "bypass_list.reloads": 2,
                         "bypass_list.errors": 1})
        text = _scrape(exporter.port)
    finally:
        exporter.close()
    for line in ('ruleengine_decoder_packets_total 1234.0',
                 'ruleengine_bypass_flows_total{reason="rule"} 3.0',
                 'ruleengine_bypass_packets_total{reason="stream-depth"} 9000.0',
                 'ruleengine_bypass_rule_bytes_total{sid="9100001"} 777.0',
                 'ruleengine_bypass_leaked_packets_total 5.0',
                 'ruleengine_eve_lines_written_total 42.0',
                 'ruleengine_capture_kernel_packets_total{worker="1"} 20.0',
                 'ruleengine_bypass_accounting_total{result="ok"} 2.0',
                 'ruleengine_bypass_list_packets_total{entry="nets.list:3"} 18272.0',
                 'ruleengine_bypass_list_bytes_total{entry="nets.list:3"} 2.22e+07',
                 'ruleengine_bypass_list_packets_total{entry="ports.v1.list:12"} 7.0',
                 'ruleengine_bypass_list_entries 4.0',
                 'ruleengine_bypass_list_reloads_total 2.0',
                 'ruleengine_bypass_list_errors 1.0',
                 'ruleengine_bypass_list_kernel_errors 0.0'):
        assert line in text, line
    for name in METRICS:
        assert f"# TYPE {name.removesuffix('_total')}" in text, name


def test_live_source_is_read_at_scrape_time() -> None:
    counters = {"detect.alert": 1}
    exporter = MetricsExporter(0, source=lambda: dict(counters))
    try:
        assert "ruleengine_alerts_total 1.0" in _scrape(exporter.port)
        counters["detect.alert"] = 5
        assert "ruleengine_alerts_total 5.0" in _scrape(exporter.port)
    finally:
        exporter.close()
