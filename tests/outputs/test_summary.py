"""End-of-run summary text."""

from __future__ import annotations

from types import SimpleNamespace

from ruleengine.outputs.summary import MAX_ALERT_ROWS, render_summary


def report(**kw: object) -> SimpleNamespace:
    base: dict[str, object] = dict(
        packets=1234, bytes=123456, invalid=1, flows=12, alerts_by_sid={}, msg_by_sid={},
        dropped=0, bypassed_flows_local=0, bypassed_flows_capture=0, duration=0.5,
        interrupted=False)
    base.update(kw)
    return SimpleNamespace(**base)


def test_basic_figures_and_alert_table():
    text = render_summary(
        report=report(alerts_by_sid={1: 5, 2100498: 12}, msg_by_sid={1: "one", 2100498: "GPL x"}),
        ruleset=SimpleNamespace(files=2, loaded=10, failed=1, skipped=0),
        skipped=[], counters={}, eve_path="out/eve.json")
    lines = text.splitlines()
    assert lines[0] == "Run summary"
    assert "Packets: 1,234 (120.6 KiB), 1 invalid in 0.50s, 2,468 pkt/s" in lines
    assert "Flows: 12" in lines
    assert "Rules: 10 loaded, 1 failed, 0 skipped (2 files)" in lines
    assert "Alerts: 17 from 2 rules" in lines
    table = lines[lines.index("Alerts: 17 from 2 rules") + 1:]
    assert table[0].split() == ["sid", "count", "msg"]
    assert table[1].split() == ["2100498", "12", "GPL", "x"]  # most alerts first
    assert table[2].split() == ["1", "5", "one"]
    assert lines[-1] == "Events: out/eve.json"
    assert "Bypass" not in text and "IPS" not in text


def test_skip_reasons_grouped_in_every_accepted_shape():
    rule = SimpleNamespace(sid=7)
    shapes = [
        {5: "unsupported keyword 'lua'", 6: "unsupported keyword 'lua'", 9: "bad pcre"},
        [(5, "unsupported keyword 'lua'"), (SimpleNamespace(sid=6), "unsupported keyword 'lua'"),
         (9, "bad pcre")],
        [SimpleNamespace(sid=5, reason="unsupported keyword 'lua'"),
         SimpleNamespace(rule=SimpleNamespace(sid=6), reason="unsupported keyword 'lua'"),
         SimpleNamespace(sid=9, reason="bad pcre")],
    ]
    for skipped in shapes:
        text = render_summary(report=report(), ruleset=None, skipped=skipped)
        assert "Rules: 3 skipped" in text
        assert "  skipped 2: unsupported keyword 'lua' (sid 5, 6)" in text
        assert "  skipped 1: bad pcre (sid 9)" in text
    text = render_summary(report=report(), skipped=[(rule, "x")] * 10)
    assert "(sid 7, 7, 7, 7, 7, 7, 7, 7, +2 more)" in text


def test_bypass_capture_and_ips_figures():
    counters = {
        "flow_bypassed.local_pkts": 100, "flow_bypassed.local_bytes": 2048,
        "flow_bypassed.local_capture_pkts": 3, "flow_bypassed.local_capture_bytes": 300,
        "flow_bypassed.pkts": 5000, "flow_bypassed.bytes": 5 << 20, "flow_bypassed.closed": 2,
        "capture.bypass.ipv4_success": 2, "capture.bypass.ipv4_fail": 1,
        "capture.bypass.ipv6_success": 0, "capture.bypass.ipv6_fail": 0,
        "capture.kernel_packets": 5200, "capture.kernel_drops": 7,
        "ips.accepted": 90, "ips.blocked": 4, "ips.rejected": 1,
    }
    text = render_summary(report=report(bypassed_flows_local=1, bypassed_flows_capture=2),
                          counters=counters)
    assert "Capture: 5,200 packets from the kernel, 7 dropped by it" in text
    assert "IPS: 90 accepted, 4 blocked, 1 rejected" in text
    assert "Bypass: 1 flows local, 2 flows in the kernel" in text
    assert "local: 100 pkts (2.0 KiB) not inspected" in text
    assert "5,000 pkts (5.0 MiB) dropped in the kernel; 2 flows closed" in text
    assert "kernel inserts: IPv4 2 ok / 1 failed, IPv6 0 ok / 0 failed" in text


def test_many_alerting_rules_are_cut_and_nothing_raises():
    alerts = {sid: 1 for sid in range(MAX_ALERT_ROWS + 5)}
    text = render_summary(report=report(alerts_by_sid=alerts, interrupted=True))
    assert text.startswith("Run summary (interrupted)")
    assert "... and 5 more rules" in text
    # odd input never raises
    assert "Packets: 0" in render_summary(report=object(), ruleset=object(), skipped=42)
    assert "Packets: 3 (1.0 KiB)" in render_summary(counters={"decoder.pkts": 3,
                                                              "decoder.bytes": 1024})


def test_local_bypass_only_shows_local_line():
    text = render_summary(report=report(bypassed_flows_local=1),
                          counters={"flow_bypassed.local_pkts": 1,
                                    "flow_bypassed.local_bytes": 128})
    assert "Bypass: 1 flows local, 0 flows in the kernel" in text
    assert "local: 1 pkts (128 B) not inspected" in text
    assert "capture:" not in text and "kernel inserts" not in text
