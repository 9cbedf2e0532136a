"""Live rule reload on real captures between two namespaces (netns names ``sock-*``):

* AF_PACKET (one worker, and two workers whose parent forwards the reload): downloads run
  while the rules are reloaded through the unix socket (or SIGUSR2); a flow bypassed in
  the kernel before the reload stays bypassed (its eBPF entry survives, ``bypass-list``
  shows it), a flow inspected before the reload keeps one flow record and does not alert
  again, the capture drops nothing, and a rule added by the reload fires on a new request.
* NFQUEUE (inline): curl downloads through the queue while the rules are reloaded; the
  download completes with every byte, the queue dropped nothing and holds no packet
  without a verdict, and the new rule fires (and drops, being a drop rule) after it.
* A rule file with an error: the reload answers NOK with the reason and the old rules run on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests import kernel
from tests.control.sc_client import ScClient
from tests.integration import afp_engine as ae

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(180)]

HTTP_PORT = 8080
QUEUE = 13  # NFQUEUE number of this test (namespaced anyway)
SID_BEFORE, SID_BYPASS, SID_AFTER, SID_NEW_DROP = 1301, 1302, 1303, 1304
RULES_V1 = (
    f'alert http any any -> any any (msg:"before"; http.uri; content:"/before"; '
    f'sid:{SID_BEFORE}; rev:1;)\n'
    f'alert http any any -> any any (msg:"bypass"; http.uri; content:"/bypass-me"; bypass; '
    f'sid:{SID_BYPASS}; rev:1;)\n')
RULE_AFTER = (f'alert http any any -> any any (msg:"after reload"; http.uri; content:"/after"; '
              f'sid:{SID_AFTER}; rev:1;)\n')
RULE_BROKEN = 'alert http any any -> any any (msg:"broken"; http.uri; content:; sid:1399;)\n'


def _require_afp() -> None:
    kernel.require_netns()
    kernel.require_bpf()
    from capture_backends import ebpf

    reason = ebpf.loader_unavailable("libbpf")
    if reason:
        kernel.skip(reason)


def _client(path: Path, timeout: float = 15.0) -> ScClient:
    deadline = time.monotonic() + timeout
    while True:
        try:
            client = ScClient(str(path), timeout=120)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert client.handshake() == {"return": "OK"}
    return client


def _wait_reloaded(client: ScClient, before: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.command("ruleset-reload-time")["message"][0]["last_reload"] != before:
            return
        time.sleep(0.1)
    raise AssertionError("the reload did not complete")


def _one_flow(events: list[dict[str, Any]], sport: int) -> dict[str, Any]:
    flows = ae.flow_events_for(events, sport, HTTP_PORT)
    assert len(flows) == 1, flows
    return flows[0]


@pytest.mark.parametrize(("workers", "how"), [(1, "socket"), (2, "socket"), (2, "sigusr2")])
def test_af_packet_reload_during_downloads(workers: int, how: str, tmp_path: Path) -> None:
    _require_afp()
    rules = tmp_path / "reload.rules"
    rules.write_text(RULES_V1)
    socket_path = tmp_path / "ctl.socket"
    size = 8_000_000
    with kernel.netns_pair("sock") as net:
        cfg = ae.write_config(tmp_path / "suricata.yaml", threads=workers, bypassed_timeout=2)
        engine = ae.Engine(net, net.ns_b, net.if_b, rules, tmp_path / "log", cfg,
                           workers=workers, overrides=(f"unix-command.filename={socket_path}",
                                                       "unix-command.enabled=yes"))
        engine.wait_ready(net, net.ns_b, net.if_b)
        server = ae.HttpServer(net, net.ns_b, net.v4_b, HTTP_PORT)
        client = _client(socket_path)
        assert client.command("running-mode")["message"] == ("single" if workers == 1
                                                             else "workers")
        # a bypassed download and an inspected one, both paced to last past the reload
        bypassed = ae.start_client(net, net.ns_a, (net.v4_b, HTTP_PORT), (net.v4_a, 41001),
                                   f"/bypass-me?size={size}&delay=0.5&rate=2000000")
        inspected = ae.start_client(net, net.ns_a, (net.v4_b, HTTP_PORT), (net.v4_a, 41002),
                                    f"/before?size={size // 4}&delay=0.5&rate=500000")
        time.sleep(1.5)  # both requests matched (EVE is flushed at idle: checked at the end)
        listed = client.command("bypass-list")["message"]
        assert listed["count"] >= 1, listed
        stamp = client.command("ruleset-reload-time")["message"][0]["last_reload"]

        rules.write_text(RULES_V1 + RULE_AFTER)
        if how == "socket":
            assert client.command("reload-rules") == {"return": "OK", "message": "done"}
        else:
            os.kill(engine.proc.pid, signal.SIGUSR2)
            _wait_reloaded(client, stamp)
        assert client.command("ruleset-stats")["message"][0]["rules_loaded"] == 3
        # the kernel still holds the bypassed flow
        after = client.command("bypass-list")["message"]
        assert any(41001 in (f["src_port"], f["dest_port"]) for f in after["flows"]), after
        got = ae.http_client(net, net.ns_a, (net.v4_b, HTTP_PORT), (net.v4_a, 41003),
                             "/after?size=1000")
        assert got.received > 1000
        assert ae.wait_for_alert(engine, SID_AFTER, 10), engine.stderr()
        done_bypassed = ae.finish_client(bypassed)
        done_inspected = ae.finish_client(inspected)
        assert done_bypassed.received > size and done_inspected.received > size // 4
        counters = client.command("dump-counters")["message"]  # workers: last snapshots
        assert counters["uptime"] >= 1 and "capture" in counters
        client.close()
        time.sleep(4.5)  # bypassed timeout: the kernel counters stopped
        assert engine.stop() == 0, engine.stderr()
        server.close()
    events = engine.events()
    stats = engine.final_stats()
    alerts = ae.alerts_by_sid(events)
    assert [a["src_port"] for a in alerts[SID_BEFORE]] == [41002]  # no second alert
    assert [a["src_port"] for a in alerts[SID_BYPASS]] == [41001]
    assert [a["src_port"] for a in alerts[SID_AFTER]] == [41003]
    flow = _one_flow(events, 41001)["flow"]
    assert flow["state"] == "bypassed" and flow["bypass"] == "capture"
    # most of the download went by the kernel, after the reload too
    assert int(flow["bypassed"]["bytes_toclient"]) > size // 2, flow
    _one_flow(events, 41002)  # one record for the flow that lived through the reload
    assert stats.get("capture.kernel_drops", 0) == 0, stats
    assert stats["detect.engine_reloads"] == workers  # every worker swapped its engine
    assert "rule reload complete" in engine.stderr()
    assert "Traceback" not in engine.stderr()


def test_af_packet_reload_with_a_broken_rule_keeps_the_old_rules(tmp_path: Path) -> None:
    _require_afp()
    rules = tmp_path / "reload.rules"
    rules.write_text(RULES_V1)
    socket_path = tmp_path / "ctl.socket"
    with kernel.netns_pair("sock") as net:
        cfg = ae.write_config(tmp_path / "suricata.yaml", threads=2)
        engine = ae.Engine(net, net.ns_b, net.if_b, rules, tmp_path / "log", cfg, workers=2,
                           overrides=(f"unix-command.filename={socket_path}",
                                      "unix-command.enabled=yes"))
        engine.wait_ready(net, net.ns_b, net.if_b)
        server = ae.HttpServer(net, net.ns_b, net.v4_b, HTTP_PORT)
        client = _client(socket_path)
        rules.write_text(RULES_V1 + RULE_BROKEN)
        answer = client.command("reload-rules")
        assert answer["return"] == "NOK", answer
        assert "old rules kept" in answer["message"] and "reload.rules:3" in answer["message"]
        assert client.command("ruleset-stats")["message"][0]["rules_loaded"] == 2
        ae.http_client(net, net.ns_a, (net.v4_b, HTTP_PORT), (net.v4_a, 41010),
                       "/before?size=100")
        assert ae.wait_for_alert(engine, SID_BEFORE, 10), engine.stderr()
        client.close()
        assert engine.stop() == 0, engine.stderr()
        server.close()
    assert "rule reload failed, old rules kept" in engine.stderr()


# --- NFQUEUE ------------------------------------------------------------------------------


class NfqEngine(ae.Engine):
    """``ruleengine run -q QUEUE --nfq-install-rules --unix-socket=...`` inside ``ns``."""

    def __init__(self, net: kernel.NetnsPair, ns: str, rules: Path, logdir: Path,
                 socket_path: Path) -> None:
        self.logdir = logdir
        self.workers = 1
        logdir.mkdir(parents=True, exist_ok=True)
        cmd = [*ae.ENGINE, "run", "-q", str(QUEUE), "--nfq-install-rules", "-S", str(rules),
               "-l", str(logdir), "--no-progress", f"--unix-socket={socket_path}",
               "--set", "outputs.1.eve-log.types.28=drop"]
        self._stderr_path = logdir / "engine.stderr"
        self._stderr = open(self._stderr_path, "wb")  # noqa: SIM115 (closed in stop())
        env = dict(os.environ, PYTHONPATH=str(ae.REPO))
        self.proc = net.popen(ns, *cmd, stdout=subprocess.DEVNULL, stderr=self._stderr,
                              env=env, cwd=str(ae.REPO))
        self.cpu_seconds = 0.0
        self.returncode: int | None = None


def _queue_state(net: kernel.NetnsPair, ns: str) -> dict[str, int]:
    """Our queue's line of /proc/net/netfilter/nfnetlink_queue (this namespace's):
    packets waiting for a verdict, dropped by the kernel, dropped for want of room."""
    text = net.run(ns, "cat", "/proc/net/netfilter/nfnetlink_queue").stdout
    for line in text.splitlines():
        fields = line.split()
        if fields and int(fields[0]) == QUEUE:
            return {"waiting": int(fields[2]), "dropped": int(fields[5]),
                    "user_dropped": int(fields[6]), "seq": int(fields[7])}
    raise AssertionError(f"queue {QUEUE} not bound: {text!r}")


def test_nfq_reload_during_a_curl_download(tmp_path: Path) -> None:
    kernel.require_netns()
    kernel.require_command("iptables", "ip6tables", "curl")
    try:
        import netfilterqueue  # noqa: F401
    except ImportError:
        kernel.skip("netfilterqueue binding not installed (pip install '.[nfq]')")
    rules = tmp_path / "reload.rules"
    rules.write_text(RULES_V1)
    socket_path = tmp_path / "ctl.socket"
    size = 6_000_000
    new_drop = (f'drop http any any -> any any (msg:"new drop"; http.uri; content:"/blocked"; '
                f'sid:{SID_NEW_DROP}; rev:1;)\n')
    with kernel.netns_pair("sock") as net:
        server = ae.HttpServer(net, net.ns_b, net.v4_b, HTTP_PORT)
        engine = NfqEngine(net, net.ns_b, rules, tmp_path / "log", socket_path)
        client = _client(socket_path, timeout=30)
        assert client.command("capture-mode")["message"] == "NFQ"
        assert client.command("iface-list")["message"]["ifaces"] == [f"NFQ#{QUEUE}"]
        # curl paced by the server to ~6 s: the reload happens in the middle of it
        url = f"http://{net.v4_b}:{HTTP_PORT}/before?size={size}&delay=0.3&rate=1000000"
        curl = net.popen(net.ns_a, "curl", "-s", "-o", "/dev/null", "-w", "%{size_download}",
                         "--max-time", "60", url, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
        time.sleep(1.5)
        seq_before = _queue_state(net, net.ns_b)["seq"]
        assert seq_before > 100  # the download is under way
        rules.write_text(RULES_V1 + RULE_AFTER + new_drop)
        t0 = time.monotonic()
        assert client.command("reload-rules") == {"return": "OK", "message": "done"}
        reload_s = time.monotonic() - t0
        # verdicts kept flowing while the new engine was built, and the download goes on
        assert _queue_state(net, net.ns_b)["seq"] > seq_before
        assert curl.poll() is None, "the download ended before the reload: not a test"
        out, err = curl.communicate(timeout=90)
        assert curl.returncode == 0, err
        body = size  # the server sends exactly ``size`` body bytes
        assert int(out) == body
        state = _queue_state(net, net.ns_b)
        assert state["dropped"] == 0 and state["user_dropped"] == 0, state
        after = subprocess.run(["ip", "netns", "exec", net.ns_a, "curl", "-s", "-o",
                                "/dev/null", "-w", "%{size_download}", "--max-time", "20",
                                f"http://{net.v4_b}:{HTTP_PORT}/after?size=1000"],
                               capture_output=True, text=True, timeout=60)
        assert after.stdout == "1000", after
        assert ae.wait_for_alert(engine, SID_AFTER, 10), engine.stderr()
        blocked = subprocess.run(["ip", "netns", "exec", net.ns_a, "curl", "-s", "-o",
                                  "/dev/null", "--max-time", "3",
                                  f"http://{net.v4_b}:{HTTP_PORT}/blocked?size=1000"],
                                 capture_output=True, text=True, timeout=60)
        assert blocked.returncode != 0  # the new drop rule holds the request
        assert ae.wait_for_alert(engine, SID_NEW_DROP, 10), engine.stderr()
        time.sleep(0.5)
        assert _queue_state(net, net.ns_b)["waiting"] == 0  # no packet left unjudged
        client.close()
        assert engine.stop() == 0, engine.stderr()
        server.close()
    events = engine.events()
    alerts = ae.alerts_by_sid(events)
    assert len(alerts[SID_BEFORE]) == 1  # the flow lived through the reload: no re-alert
    flows = ae.flow_events_for(events, int(alerts[SID_BEFORE][0]["src_port"]), HTTP_PORT)
    assert len(flows) == 1
    assert "Traceback" not in engine.stderr()
    print(f"reload-rules took {reload_s:.2f}s during the download")
