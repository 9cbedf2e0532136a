"""Bypass of encrypted flows end to end on NFQUEUE: ``ruleengine run -q 0`` as an inline IPS.

nginx serves a 1 GiB (sparse) file over HTTPS in namespace B and curl fetches it from
namespace A (TLS 1.2 or 1.3, verified against a CA the test makes). The engine runs in B with
``--nfq-install-rules``: in B's mangle table every packet first gets its connection's mark
restored, a marked packet is accepted, the rest goes to queue 0, and a marked verdict is saved
to the connection (INPUT/POSTROUTING). Once the engine bypasses the flow, by
``app-layer.protocols.tls.encryption-handling: bypass`` after the handshake or by a
``tls.sni`` rule with ``bypass`` on the ClientHello, its verdict carries the bypass mark and
the kernel never queues that connection again.

The packets are counted three ways, each independent of the others:

* the iptables rule counters: the NFQUEUE rules count what went to user space, the
  mark-accept rules what the kernel let through without asking;
* the veth's own rx/tx counters: the wire frames. Netfilter (and so the queue) sees the
  stack's packets before GSO splits them (TCP always builds GSO packets), fewer than the
  frames; the 0.1 % bound is taken of netfilter's count, the stricter one;
* the engine: ``flow_bypassed.local_capture_pkts`` (packets of the flow already queued when
  the bypass verdict was given: they reached user space after the bypass) and the flow
  record's packet totals (what the engine saw of the flow).

As in the AF_PACKET test, nginx waits ``RESPONSE_DELAY`` before answering (``/delay/``, the
echo module): the decision is made before the data flows, as a real client's think time
allows. NFQ has no kernel flow counters, so the bypassed flow ends by the bypassed timeout
while the download still runs, with only the packets the engine saw in its record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import kernel
from tests.integration import afp_engine as ae
from tests.integration import tls_servers as ts
from tests.outputs.eve_schema import validate_line

pytestmark = [pytest.mark.kernel, pytest.mark.slow, pytest.mark.timeout(150)]

QUEUE = 0
HOST = "big.example"
TLS_PORT = 443
CLIENT_PORT = 40443
SIZE = ts.GIB
RESPONSE_DELAY = 1.0
BYPASSED_TIMEOUT = 2
BYPASS_MARK = 0x1  # nfq bypass-mark and bypass-mask
LEAK_RATIO = 0.001  # at most 0.1 % of the flow's packets may reach the queue after bypass
SID_SNI_BYPASS, SID_SNI_SEEN = 1, 2

RULES_ENCRYPTION = (
    f'alert tls any any -> any any (msg:"tls sni seen"; flow:established,to_server; '
    f'tls.sni; content:"{HOST}"; sid:{SID_SNI_SEEN}; rev:1;)\n')
RULES_SNI_BYPASS = (
    f'alert tls any any -> any any (msg:"sni bypass"; tls.sni; content:"{HOST}"; bypass; '
    f'sid:{SID_SNI_BYPASS};)\n')


def _require() -> None:
    kernel.require_netns()
    kernel.require_command("iptables", "ip6tables", "nginx", "curl")
    try:
        import netfilterqueue  # noqa: F401
    except ImportError:
        kernel.skip("netfilterqueue binding not installed (pip install '.[nfq]')")
    from ruleengine.applayer import registry

    if "tls" not in [p.name for p in registry.protocols()]:
        kernel.skip("the TLS app-layer parser is not registered (ruleengine/applayer/tls)")


def write_config(path: Path) -> Path:
    """suricata.yaml for one NFQ run: accept mode with a bypass mark, short bypassed
    timeout, eve-log with extended tls events, stats.log. JSON is valid YAML 1.1."""
    timeouts = {"new": 5, "established": 30, "closed": 1, "bypassed": BYPASSED_TIMEOUT}
    config = {
        "nfq": {"mode": "accept", "bypass-mark": BYPASS_MARK, "bypass-mask": BYPASS_MARK},
        "flow-timeouts": {"default": timeouts, "tcp": timeouts, "udp": timeouts},
        "outputs": [
            {"eve-log": {"enabled": True, "filetype": "regular", "filename": "eve.json",
                         "types": ["alert", {"tls": {"extended": True}}, "flow", "stats"]}},
            {"stats": {"enabled": True, "filename": "stats.log", "append": False}},
        ],
    }
    path.write_text("%YAML 1.1\n---\n" + json.dumps(config, indent=1) + "\n")
    return path


@dataclass
class RuleCounters:
    """Packets counted by the engine's iptables rules in B (both chains). The download is
    the only IPv4 traffic; IPv6 carries the namespaces' own ND/MLD packets."""

    queued: int  # IPv4 NFQUEUE rules: handed to user space
    bypassed: int  # IPv4 mark-accept rules: let through by the kernel alone
    queued_v6: int  # ip6tables NFQUEUE rules


def _rule_packets(net: kernel.NetnsPair, ns: str, binary: str) -> tuple[int, int]:
    """(queued, accepted on the bypass mark) by ``binary``'s rules of the engine."""
    queued = bypassed = 0
    mark = f"mark match {BYPASS_MARK:#x}/{BYPASS_MARK:#x}"
    for chain in ("PREROUTING", "OUTPUT"):
        out = net.run(ns, binary, "-w", "5", "-t", "mangle", "-L", chain, "-n", "-v",
                      "-x").stdout
        for line in out.splitlines():
            fields = line.split()
            if f"ruleengine-{QUEUE}" not in line or len(fields) < 3:
                continue
            if fields[2] == "NFQUEUE":
                queued += int(fields[0])
            elif fields[2] == "ACCEPT" and mark in line:
                bypassed += int(fields[0])
    return queued, bypassed


def rule_counters(net: kernel.NetnsPair, ns: str) -> RuleCounters:
    queued, bypassed = _rule_packets(net, ns, "iptables")
    queued_v6, _ = _rule_packets(net, ns, "ip6tables")
    return RuleCounters(queued, bypassed, queued_v6)


def queue_sequence(net: kernel.NetnsPair, ns: str) -> int:
    """Packets queued so far on QUEUE (the kernel's id_sequence, IPv4 and IPv6)."""
    text = net.run(ns, "cat", "/proc/net/netfilter/nfnetlink_queue").stdout
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == str(QUEUE):
            return int(fields[7])
    return 0


class Run:
    """What one download through the engine produced."""

    def __init__(self, certs: ts.Certs, download: ts.Download, events: list[dict[str, Any]],
                 stats: dict[str, int], counters: RuleCounters, queue_ids: int,
                 link_packets: int) -> None:
        self.certs = certs
        self.download = download
        self.events = events
        self.stats = stats
        self.counters = counters
        self.queue_ids = queue_ids
        self.link_packets = link_packets

    def flow(self) -> dict[str, Any]:
        flows = ae.flow_events_for(self.events, CLIENT_PORT, TLS_PORT)
        assert len(flows) == 1, flows  # a second record: packets reached the queue later
        return flows[0]

    def tls_events(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event_type") == "tls"
                and e.get("src_port") == CLIENT_PORT]

    @property
    def total(self) -> int:
        return self.counters.queued + self.counters.bypassed

    @property
    def leaked(self) -> int:
        return self.stats.get("flow_bypassed.local_capture_pkts", 0)

    def report(self, label: str) -> str:
        line = (f"{label}: {self.download.size} bytes in {self.download.seconds:.2f}s "
                f"(handshake {self.download.handshake_seconds * 1000:.1f} ms, first byte "
                f"{self.download.first_byte_seconds:.2f}s); flow packets {self.total} in "
                f"netfilter ({self.link_packets} frames on the veth), queued "
                f"{self.counters.queued} (queue ids {self.queue_ids}), inspected before bypass "
                f"{self.counters.queued - self.leaked}, reached the queue after bypass "
                f"{self.leaked}, accepted by the kernel on the mark {self.counters.bypassed}")
        print(line)
        return line


def download_through_engine(tmp_path: Path, tls: str, rules: str, *,
                            overrides: tuple[str, ...] = ()) -> Run:
    certs = ts.make_certs(tmp_path / "certs", HOST)
    docroot = tmp_path / "www"
    ts.sparse_file(docroot / "big.bin", SIZE)
    rule_file = tmp_path / "tls.rules"
    rule_file.write_text(rules)
    config = write_config(tmp_path / "suricata.yaml")
    with kernel.netns_pair("nqt") as net:
        # the server first: its readiness check sends no packet
        server = ts.NginxServer(net, net.ns_b, net.v4_b, TLS_PORT, certs, docroot,
                                tmp_path / "nginx", delay=RESPONSE_DELAY)
        if not server.has_delay:
            kernel.skip(f"nginx echo module missing ({ts.ECHO_MODULE}): no response delay")
        engine = ae.NfqEngine(net, net.ns_b, QUEUE, rule_file, tmp_path / "log", config,
                           overrides=overrides)
        stopped = False
        try:
            engine.wait_bound(net, net.ns_b)
            rx0, tx0 = ae.link_packets(net, net.ns_b, net.if_b)
            ids0 = queue_sequence(net, net.ns_b)
            download = ts.curl_download(net, net.ns_a, certs, net.v4_b, TLS_PORT,
                                        "/delay/big.bin", tls=tls, local_port=CLIENT_PORT)
            rx1, tx1 = ae.link_packets(net, net.ns_b, net.if_b)
            # the rules go with the engine: read their counters while it runs
            counters = rule_counters(net, net.ns_b)
            ids = queue_sequence(net, net.ns_b) - ids0
            # the flow ended by the bypassed timeout during the download; let the flow
            # manager log it before stopping
            ae.wait_for_event(engine, lambda e: e.get("event_type") == "flow"
                              and e.get("src_port") == CLIENT_PORT, timeout=BYPASSED_TIMEOUT + 3)
            assert engine.stop() == 0, engine.stderr()
            stopped = True
            leftovers = net.run(net.ns_b, "iptables", "-t", "mangle", "-S").stdout
            assert "ruleengine" not in leftovers, leftovers
        finally:
            if not stopped:
                engine.kill()
            server.close()
    err = engine.stderr()
    assert "Traceback" not in err, err
    for line in (engine.logdir / "eve.json").read_text().splitlines():
        validate_line(line)
    assert download.returncode == 0 and download.http_code == 200, download.stderr
    assert download.size == SIZE, download
    assert download.tls_version == f"TLSv{tls}", download.tls_version
    return Run(certs, download, engine.events(), engine.final_stats(), counters, ids,
               (rx1 - rx0) + (tx1 - tx0))


def _check_bypassed_flow(run: Run, reason: str) -> dict[str, Any]:
    """The flow record: capture-bypassed for ``reason``, ended by the bypassed timeout, its
    packets exactly those the queue carried (the rule counters and the queue's own ids
    agree)."""
    flow = run.flow()
    body = flow["flow"]
    assert flow["app_proto"] == "tls", flow
    assert body["state"] == "bypassed" and body["bypass"] == "capture", body
    assert body["reason"] == "timeout", body
    assert flow.get("metadata", {}).get("flowvars", [{}])[0] == {"bypass_reason": reason}, flow
    stats = run.stats
    assert stats["capture.bypass.ipv4_success"] == 1, stats
    assert stats.get("capture.bypass.ipv4_fail", 0) == 0, stats
    seen = int(body["pkts_toserver"]) + int(body["pkts_toclient"])
    assert seen == run.counters.queued, (seen, run.counters, run.report("flow"))
    # the queue's ids count IPv6 ND/MLD too, which goes on while the counters are read
    assert run.counters.queued <= run.queue_ids <= run.counters.queued + run.counters.queued_v6, \
        (run.queue_ids, run.counters)
    # netfilter sees the stack's GSO super-packets (TCP always builds them, the veth
    # splits them on transmit): fewer than the wire frames the veth counts
    assert run.link_packets > SIZE // 1500, run.link_packets
    assert SIZE // 65536 < run.total <= run.link_packets, (run.counters, run.link_packets)
    return body


def _check_leak(run: Run) -> None:
    leaked = run.leaked
    assert leaked <= LEAK_RATIO * run.total, (leaked, run.total, run.report("leak"))
    # user space saw the handshakes and little else: at least the TCP handshake and the
    # ClientHello (an inline engine bypasses on the ClientHello packet itself), at most the
    # TLS handshake with its ACKs
    inspected = run.counters.queued - leaked
    assert 4 <= inspected <= 60, (inspected, run.report("inspected"))
    assert run.stats.get("capture.kernel_drops", 0) == 0, run.stats


# --------------------------------------------------------------------------------------------
# encryption-handling: bypass
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_nfq_encryption_handling_bypass_1gib_download(tls: str, tmp_path: Path) -> None:
    _require()
    run = download_through_engine(
        tmp_path, tls, RULES_ENCRYPTION,
        overrides=("app-layer.protocols.tls.encryption-handling=bypass",))
    run.report(f"NFQ encryption-handling=bypass TLS {tls}")
    _check_bypassed_flow(run, "encryption")
    _check_leak(run)
    assert run.stats["flow_bypassed.reason.encryption"] == 1, run.stats
    assert run.stats["app_layer.tls.encrypted"] == 1, run.stats
    # logged when the handshake was done, just before the bypass
    (event,) = run.tls_events()
    info = event["tls"]
    expected = run.certs.eve_tls(tls)
    assert {k: info.get(k) for k in expected} == expected, info
    if tls == "1.3":
        assert "subject" not in info and "serial" not in info, info
    (alert,) = ae.alerts_by_sid(run.events)[SID_SNI_SEEN]
    assert alert["src_port"] == CLIENT_PORT and alert["app_proto"] == "tls", alert
    assert alert["alert"]["action"] == "allowed", alert
    assert alert["tls"]["sni"] == HOST, alert


# --------------------------------------------------------------------------------------------
# encryption-handling: default, a bypass rule on the SNI
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_nfq_sni_bypass_rule_1gib_download(tls: str, tmp_path: Path) -> None:
    _require()
    run = download_through_engine(tmp_path, tls, RULES_SNI_BYPASS)
    run.report(f"NFQ tls.sni bypass rule TLS {tls}")
    body = _check_bypassed_flow(run, f"rule:{SID_SNI_BYPASS}")
    _check_leak(run)
    assert run.stats["flow_bypassed.reason.rule"] == 1, run.stats
    assert "flow_bypassed.reason.encryption" not in run.stats, run.stats
    (alert,) = ae.alerts_by_sid(run.events)[SID_SNI_BYPASS]
    assert alert["src_port"] == CLIENT_PORT and alert["dest_port"] == TLS_PORT, alert
    assert alert["alert"]["signature"] == "sni bypass", alert
    assert alert["tls"]["sni"] == HOST, alert
    assert body["alerted"] is True, body
    # bypassed before the handshake was done, and a bypassed flow that times out gets no
    # flow-end inspection (Suricata): its TLS transaction is never logged
    assert run.tls_events() == [], run.tls_events()
