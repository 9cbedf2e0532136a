"""stream.auto-bypass end to end on NFQ: ``ruleengine run -q 47 --nfq-install-rules`` with
rules that only read HTTP buffers; a 20 MB download the server answers with
``Connection: close`` is bypassed with reason ``auto`` once its body passed the
response-body-limit, and the connmark keeps the rest of it out of the queue (issue 14 §6).

Namespaces ``b14a-*``, queue 47; the engine and the HTTP server run in B, the client in A.
The share of the flow that was queued is read from the engine's own iptables rules.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import kernel
from tests.integration import afp_engine as ae
from tests.integration.test_nfq_operator_rules import _require, rule_counts
from tests.outputs.eve_schema import validate_line

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(180)]

QUEUE = 47  # unique to this test
PORT = 8080
CLIENT_PORT = 42047
SIZE = 20_000_000
SID_GET, SID_BODY = 9200001, 9200002
RULES = "\n".join([
    'alert http any any -> any any (msg:"get"; flow:to_server; http.method; content:"GET"; '
    f'sid:{SID_GET};)',
    'alert http any any -> any any (msg:"body"; flow:to_client; http.response_body; '
    f'content:"BODY-START"; sid:{SID_BODY};)',
]) + "\n"
BYPASSED_TIMEOUT = 2
TAG = f"ruleengine-{QUEUE}"


def _config(path: Path) -> Path:
    timeouts = {"new": 5, "established": 30, "closed": 1, "bypassed": BYPASSED_TIMEOUT}
    config = {
        "nfq": {"mode": "accept", "bypass-mark": 1, "bypass-mask": 1},
        # the depth is never reached: only the auto-bypass can take the flow
        "stream": {"bypass": True, "auto-bypass": True, "reassembly": {"depth": "64mb"}},
        "flow-timeouts": {"default": timeouts, "tcp": timeouts, "udp": timeouts},
        "outputs": [
            {"eve-log": {"enabled": True, "filetype": "regular", "filename": "eve.json",
                         "types": ["alert", "http", "flow", "stats"]}},
            {"stats": {"enabled": True, "filename": "stats.log", "append": False}},
        ],
    }
    path.write_text("%YAML 1.1\n---\n" + json.dumps(config, indent=1) + "\n")
    return path


def test_nfq_auto_bypass_keeps_a_download_out_of_the_queue(tmp_path: Path) -> None:
    _require()
    rules = tmp_path / "auto.rules"
    rules.write_text(RULES)
    config = _config(tmp_path / "suricata.yaml")
    with kernel.netns_pair("b14a") as net:
        engine = ae.NfqEngine(net, net.ns_b, QUEUE, rules, tmp_path / "log", config)
        stopped = False
        server: ae.HttpServer | None = None
        try:
            engine.wait_bound(net, net.ns_b)
            server = ae.HttpServer(net, net.ns_b, net.v4_b, PORT)
            transfer = ae.http_client(net, net.ns_a, (net.v4_b, PORT), (net.v4_a, CLIENT_PORT),
                                      f"/auto?size={SIZE}", timeout=120)
            queued, accepted, queued_bytes, accepted_bytes = rule_counts(net, net.ns_b, TAG)
            assert ae.wait_for_event(engine, lambda e: e.get("event_type") == "flow"
                                     and e.get("src_port") == CLIENT_PORT,
                                     timeout=BYPASSED_TIMEOUT + 8), engine.stderr()
            assert engine.stop() == 0, engine.stderr()
            stopped = True
        finally:
            if not stopped:
                engine.kill()
            if server is not None:
                server.close()
    err = engine.stderr()
    assert "Traceback" not in err, err
    for line in (engine.logdir / "eve.json").read_text().splitlines():
        validate_line(line)
    events, stats = engine.events(), engine.final_stats()
    print(f"NFQ auto-bypass: {transfer.received} bytes in {transfer.seconds:.2f}s; queued "
          f"{queued} packets ({queued_bytes} bytes), accepted on the mark {accepted} "
          f"({accepted_bytes} bytes); read from the queue after the bypass "
          f"{stats.get('flow_bypassed.local_capture_pkts', 0)}")
    assert transfer.received >= SIZE, transfer
    alerts = ae.alerts_by_sid(events)
    assert [a["src_port"] for a in alerts[SID_GET]] == [CLIENT_PORT]
    assert [a["dest_port"] for a in alerts[SID_BODY]] == [CLIENT_PORT]  # before the bypass
    assert stats["flow_bypassed.reason.auto"] == 1, stats
    assert stats["capture.bypass.ipv4_success"] == 1, stats
    flows = ae.flow_events_for(events, CLIENT_PORT, PORT)
    assert len(flows) == 1, flows  # a second record: the flow reached the queue again
    body = flows[0]["flow"]
    assert body["bypass"] == "capture" and body["state"] == "bypassed", body
    assert {"bypass_reason": "auto"} in flows[0]["metadata"]["flowvars"]
    # the engine saw the first ~100 KiB of the body (the limit) and what was queued
    # before its verdict; the connmark carried the rest past the queue
    assert accepted_bytes >= 0.9 * (accepted_bytes + queued_bytes), (queued_bytes,
                                                                      accepted_bytes)
    assert int(body["bytes_toclient"]) < 0.1 * SIZE, body  # what reached the engine
