"""The bypass operator's tools against a live AF_PACKET engine on the real kernel:
``bypass list`` during a bypassed transfer, ``--metrics-port`` scraped over the namespace's
loopback, and ``bypass report`` on the run's eve.json (reconciled accounting)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests import kernel
from tests.integration import afp_engine as ae

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(180)]

PORT = 8080
METRICS_PORT = 19114
SID_BYPASS = 9100001


def _tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ruleengine", *args], capture_output=True,
                          text=True, timeout=60, cwd=kernel.REPO_ROOT)


def _scrape(net: kernel.NetnsPair) -> str:
    with net.entered(net.ns_b):  # the endpoint listens on B's loopback
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=5) as resp:
            return resp.read().decode()


def test_list_metrics_and_report_on_a_live_bypass(tmp_path: Path) -> None:
    kernel.require_netns()
    kernel.require_bpf()
    from capture_backends import ebpf

    if ebpf.loader_unavailable("libbpf"):
        kernel.skip(str(ebpf.loader_unavailable("libbpf")))
    logdir = tmp_path / "log"
    with kernel.netns_pair("bt-live") as net:
        cfg = ae.write_config(tmp_path / "suricata.yaml", bypassed_timeout=2)
        engine = ae.Engine(net, net.ns_b, net.if_b, ae.DATA / "bypass_http.rules", logdir, cfg,
                           overrides=("stats.interval=1",),
                           extra_args=("--metrics-port", str(METRICS_PORT)))
        engine.wait_ready(net, net.ns_b, net.if_b)
        server = ae.HttpServer(net, net.ns_b, net.v4_b, PORT)
        # 30 MB paced to 5 MB/s: about 6 s in the kernel table
        client = ae.start_client(net, net.ns_a, (net.v4_b, PORT), (net.v4_a, 40011),
                                 "/bypass-me?size=30000000&delay=0.5&rate=5000000")
        time.sleep(3.0)
        listed = _tool("bypass", "list", "-l", str(logdir), "--format", "json")
        text = _tool("bypass", "list", "-l", str(logdir))
        ae.finish_client(client, timeout=60)
        time.sleep(4.5)  # the bypassed flow times out; stats every second
        scraped = _scrape(net)
        assert engine.stop() == 0, engine.stderr()
        server.close()
    assert listed.returncode == 0, listed.stderr
    rows = [r for r in json.loads(listed.stdout) if r["dport"] == PORT or r["sport"] == PORT]
    assert len(rows) == 1, listed.stdout + listed.stderr
    row = rows[0]
    assert (row["src"], row["sport"], row["dst"], row["dport"]) == (net.v4_a, 40011, net.v4_b,
                                                                   PORT)
    assert row["reason"] == "rule" and row["sid"] == SID_BYPASS and row["in_kernel"]
    assert row["pkts"] > 1000 and row["bytes"] > 1_000_000 and 1.0 < row["age"] < 10
    assert "rule" in text.stdout and str(SID_BYPASS) in text.stdout
    # metrics: the bypass was counted by reason and sid once the flow ended
    assert 'ruleengine_bypass_flows_total{reason="rule"} 1.0' in scraped, scraped
    assert f'ruleengine_bypass_rule_flows_total{{sid="{SID_BYPASS}"}} 1.0' in scraped
    assert 'ruleengine_bypass_accounting_total{result="ok"} 1.0' in scraped
    assert 'ruleengine_capture_kernel_packets_total{worker="0"}' in scraped
    # the state file is gone with the engine
    assert not list(logdir.glob("bypassed-flows.*.json"))
    report = _tool("bypass", "report", str(logdir / "eve.json"), "--format", "json")
    assert report.returncode == 0, report.stderr
    doc = json.loads(report.stdout)
    sid = doc["by_sid"][str(SID_BYPASS)]
    assert sid["bypassed_flows"] == 1 and sid["not_delivered_bytes"] > 25_000_000
    assert doc["accounting"]["flows"] == {"ok": 1}
