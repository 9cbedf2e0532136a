"""``bypass-lists:`` in a pcap run (``-r``): address and port entries are matched on each
new flow in user space; a listed flow is bypassed locally before its first packet is
inspected (no alert, no app-layer record), still tracked (its flow record, reason
``list``), and its packets count for the entry (stats.log, EVE stats with
``bypass-lists: yes``, the final summary). Single process and pcap workers agree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap

from ruleengine.cli import main as cli_main

T0 = 1_700_000_000.0
MAC_C, MAC_S = "02:00:00:00:14:01", "02:00:00:00:14:02"
RULE = 'alert http any any -> any any (msg:"secret uri"; http.uri; content:"/secret"; sid:1401;)\n'
BODY = b"x" * 3000


def http_flow(cli: str, srv: str, cport: int, sport: int, t0: float) -> list[Packet]:
    """Handshake, GET /secret, a 3,000-byte response in three segments, FINs."""
    req = b"GET /secret HTTP/1.1\r\nHost: example.test\r\n\r\n"
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n" + BODY

    def c(flags: str, seq: int, ack: int, data: bytes = b"") -> Packet:
        p = Ether(src=MAC_C, dst=MAC_S) / IP(src=cli, dst=srv) / TCP(
            sport=cport, dport=sport, flags=flags, seq=seq, ack=ack)
        return p / Raw(data) if data else p

    def s(flags: str, seq: int, ack: int, data: bytes = b"") -> Packet:
        p = Ether(src=MAC_S, dst=MAC_C) / IP(src=srv, dst=cli) / TCP(
            sport=sport, dport=cport, flags=flags, seq=seq, ack=ack)
        return p / Raw(data) if data else p

    cs, ss = 1001, 5001
    pkts = [c("S", 1000, 0), s("SA", 5000, cs), c("A", cs, ss), c("PA", cs, ss, req)]
    cs += len(req)
    for at in range(0, len(resp), 1100):
        part = resp[at:at + 1100]
        pkts.append(s("PA", ss, cs, part))
        ss += len(part)
        pkts.append(c("A", cs, ss))
    pkts += [c("FA", cs, ss), s("FA", ss, cs + 1), c("A", cs + 1, ss + 1)]
    for i, p in enumerate(pkts):
        p.time = t0 + i * 0.01
    return pkts


FLOWS = {  # name: (client, server, client port, server port)
    "cidr": ("10.14.0.1", "10.99.1.1", 40000, 80),    # server in 10.99.0.0/16
    "port": ("10.14.0.2", "10.14.0.100", 40001, 8080),  # port 8080
    "host": ("10.14.0.7", "10.14.0.100", 40002, 80),  # client 10.14.0.7/32 (line 3)
    "free": ("10.14.0.3", "10.14.0.100", 40003, 80),  # not listed: inspected
}


def _case(tmp: Path) -> tuple[Path, Path, Path]:
    pkts: list[Packet] = []
    for n, (cli, srv, cport, sport) in enumerate(FLOWS.values()):
        pkts += http_flow(cli, srv, cport, sport, T0 + n)
    pkts.sort(key=lambda p: float(p.time))
    pcap = tmp / "case.pcap"
    wrpcap(str(pcap), pkts)
    rules = tmp / "case.rules"
    rules.write_text(RULE)
    (tmp / "nets.list").write_text("# nets\n10.99.0.0/16\n10.14.0.7\n")
    (tmp / "ports.list").write_text("port 8080\nbogus\n")
    cfg = tmp / "suricata.yaml"
    cfg.write_text("%YAML 1.1\n---\nbypass-lists:\n  - nets.list\n  - ports.list\n"
                   "outputs:\n  - eve-log:\n      enabled: yes\n      filename: eve.json\n"
                   "      types:\n        - alert\n        - http\n        - flow\n"
                   "        - stats:\n            bypass-lists: yes\n"
                   "  - stats:\n      enabled: yes\n      filename: stats.log\n")
    return pcap, rules, cfg


def _run(tmp: Path, *extra: str) -> list[dict[str, Any]]:
    pcap, rules, cfg = _case(tmp)
    out = tmp / "out"
    out.mkdir()
    assert cli_main(["run", "-c", str(cfg), "-r", str(pcap), "-S", str(rules), "-l", str(out),
                     "--no-progress", *extra]) == 0
    return [json.loads(line) for line in (out / "eve.json").read_text().splitlines()]


def _flow_of(events: list[dict[str, Any]], name: str) -> dict[str, Any]:
    cli, _srv, cport, _sport = FLOWS[name]
    (ev,) = [e for e in events if e["event_type"] == "flow"
             and {e["src_ip"], e["dest_ip"]} >= {cli} and cport in (e["src_port"], e["dest_port"])]
    return ev


@pytest.mark.parametrize("runmode", ["single", "workers"])
def test_listed_flows_are_not_inspected_and_counted_per_entry(
        tmp_path: Path, runmode: str, capsys: pytest.CaptureFixture[str]) -> None:
    extra = ("--runmode", "workers", "--set", "threading.detect-thread-ratio=2") \
        if runmode == "workers" else ()
    events = _run(tmp_path, *extra)
    said = capsys.readouterr()
    assert said.err.count("ports.list:2") == 1  # the bad line is said once, the rest loads
    assert ("worker processes" in said.err) == (runmode == "workers"), said.err

    alerts = [e for e in events if e["event_type"] == "alert"]
    assert {e["src_port"] for e in alerts} | {e["dest_port"] for e in alerts} >= {40003}
    assert all(40003 in (e["src_port"], e["dest_port"]) for e in alerts), alerts
    assert len(alerts) == 1
    http = [e for e in events if e["event_type"] == "http"]
    assert [e["src_port"] for e in http] == [40003]

    per_flow = {}
    for name in ("cidr", "port", "host"):
        ev = _flow_of(events, name)
        flow = ev["flow"]
        assert flow["state"] == "bypassed", ev
        flowvars = ev["metadata"]["flowvars"]
        assert {"bypass_reason": "list"} in flowvars, ev
        (accounting,) = [v["bypass_accounting"] for v in flowvars if "bypass_accounting" in v]
        assert accounting["inspected_pkts"] == 0 and accounting["reconciled"], accounting
        assert "app_proto" not in ev or ev["app_proto"] == "failed", ev
        pkts = flow["pkts_toserver"] + flow["pkts_toclient"]
        assert pkts == 13  # every packet of it tracked, all counted as bypassed
        assert flow["bypassed"]["pkts_toserver"] + flow["bypassed"]["pkts_toclient"] == pkts
        per_flow[name] = (pkts, flow["bytes_toserver"] + flow["bytes_toclient"])
    free = _flow_of(events, "free")
    assert free["flow"]["state"] != "bypassed" and free["app_proto"] == "http"

    stats = [e for e in events if e["event_type"] == "stats"][-1]["stats"]
    lists = stats["bypass_list"]
    assert lists["entries"] == 3 and lists["errors"] == 1
    hits = {h["entry"]: (h["pkts"], h["bytes"]) for h in lists["entries_hit"]}
    assert hits == {"nets.list:2": per_flow["cidr"], "nets.list:3": per_flow["host"],
                    "ports.list:1": per_flow["port"]}
    assert stats["flow_bypassed"]["local_pkts"] == 39
    stats_log = (tmp_path / "out" / "stats.log").read_text()
    assert "bypass_list.nets.list:2.pkts" in stats_log
