"""stream.auto-bypass on the real kernel: ``ruleengine run --af-packet`` with rules that only
read HTTP buffers; a download that says ``Connection: close`` is handed to the eBPF bypass
once its body passed the response-body-limit, and stays out of user space (issue 14 §6).

Namespaces ``ab-*``; the engine captures in B, curl and the HTTP client run in A.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests import kernel
from tests.integration import afp_engine as ae
from tests.integration.test_af_packet_bypass import (
    BYPASSED_TIMEOUT,
    _bypassed_pkts,
    _only,
    _pkts,
    _require,
    _stop,
)

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(120)]

PORT = 8080
SID_GET, SID_BODY = 9200001, 9200002
RULES = "\n".join([
    'alert http any any -> any any (msg:"get"; flow:to_server; http.method; content:"GET"; '
    f'sid:{SID_GET};)',
    'alert http any any -> any any (msg:"body"; flow:to_client; http.response_body; '
    f'content:"BODY-START"; sid:{SID_BODY};)',
]) + "\n"
SIZE = 20_000_000
RATE = 5_000_000  # bytes/s: the Python engine keeps up with the first part


def test_a_download_no_rule_can_still_match_is_auto_bypassed_in_the_kernel(
        tmp_path: Path) -> None:
    _require()
    rules = tmp_path / "auto.rules"
    rules.write_text(RULES)
    cfg = ae.write_config(tmp_path / "suricata.yaml", bypassed_timeout=BYPASSED_TIMEOUT,
                          stream_bypass=True, depth="64mb")  # the depth is never reached
    with kernel.netns_pair("ab") as net:
        engine = ae.Engine(net, net.ns_b, net.if_b, rules, tmp_path / "log", cfg,
                           loader="libbpf", overrides=("stream.auto-bypass=yes",))
        engine.wait_ready(net, net.ns_b, net.if_b)
        server = ae.HttpServer(net, net.ns_b, net.v4_b, PORT)
        url = f"http://{net.v4_b}:{PORT}/auto?size={SIZE}&rate={RATE}"
        curl = net.popen(net.ns_a, "curl", "-s", "-o", "/dev/null", "-w", "%{size_download}",
                         "--max-time", "30", "-H", "Connection: close",
                         "--local-port", "40101", url, stdout=subprocess.PIPE)
        # the same download without the client's Connection: close: the test server
        # answers with one (it closes after each response), which is enough too
        keep = ae.start_client(net, net.ns_a, (net.v4_b, PORT), (net.v4_a, 40102),
                               f"/keep?size=2000000&rate={RATE}")
        out, _ = curl.communicate(timeout=60)
        kept = ae.finish_client(keep)
        time.sleep(BYPASSED_TIMEOUT + 2.5)  # kernel counters still -> the flow times out
        events, stats = _stop(engine)
        server.close()

    assert int(out) == SIZE and kept.received > 2_000_000
    alerts = ae.alerts_by_sid(events)
    assert sorted(a["src_port"] for a in alerts[SID_GET]) == [40101, 40102]
    # the response-body rule saw the body up to the limit before the bypass
    assert sorted(a["dest_port"] for a in alerts[SID_BODY]) == [40101, 40102]

    flow = _only(ae.flow_events_for(events, 40101, PORT))
    body = flow["flow"]
    assert body["state"] == "bypassed" and body["bypass"] == "capture", body
    assert {"bypass_reason": "auto"} in flow["metadata"]["flowvars"]
    assert stats["flow_bypassed.reason.auto"] == 2  # both downloads
    assert stats["capture.bypass.ipv4_success"] == 2
    # the kernel took the download after the first ~100 KiB: the rest never reached the ring
    assert body["bypassed"]["bytes_toclient"] > SIZE - (1 << 20), body
    assert _bypassed_pkts(body) > 0.9 * _pkts(body), body
    kernel_pkts = stats["flow_bypassed.pkts"]
    leaked = stats.get("flow_bypassed.local_capture_pkts", 0)
    # what was already in the ring when the engine decided reaches user space (fast path):
    # ~100 packets here when the VM is idle, 1 % under load on a shared 2-core VM
    assert leaked <= 0.03 * kernel_pkts, (leaked, kernel_pkts)
    assert stats["flow_bypassed.by_reason.auto.flows"] == 2

    other = _only(ae.flow_events_for(events, 40102, PORT))
    assert other["flow"]["state"] == "bypassed", other  # the server's close decided it
    assert {"bypass_reason": "auto"} in other["metadata"]["flowvars"]
