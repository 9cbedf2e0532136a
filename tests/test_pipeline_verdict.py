"""What the pipeline writes about a packet's fate: alert verdicts (eve-log alert
``verdict: yes``), action-order, packet-alert-max overflow, the flow's action, drop events,
exception policies, app-layer anomaly events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from capture_backends.base import Capability
from capture_backends.memory import MemoryBackend
from ruleengine.detect.engine import DetectEngine
from ruleengine.outputs.eve import EveWriter
from ruleengine.outputs.stats import Stats
from ruleengine.pipeline import Pipeline
from ruleengine.rules.loader import load_rule_text
from ruleengine.settings import EngineSettings

REQUEST = b"GET /index.html HTTP/1.0\r\nHost: h\r\nBroken header line\r\n\r\n"
RESPONSE = b"HTTP/1.0 302 Found\r\nLocation: /main.php\r\nContent-Length: 0\r\n\r\n"


def _frames(*, handshake: bool = True) -> list[tuple[float, bytes]]:
    out: list[tuple[float, bytes]] = []
    seq = {True: 100, False: 900}

    def add(to_server: bool, flags: str, data: bytes = b"") -> None:
        ip = IP(src="10.0.0.1", dst="10.0.0.2") if to_server else IP(src="10.0.0.2",
                                                                      dst="10.0.0.1")
        tcp = TCP(sport=4000 if to_server else 80, dport=80 if to_server else 4000,
                  flags=flags, seq=seq[to_server], ack=seq[not to_server])
        out.append((1.0 + len(out) / 1000, bytes(Ether() / ip / tcp / data)))
        seq[to_server] += len(data) + (1 if "S" in flags or "F" in flags else 0)

    if handshake:
        add(True, "S")
        add(False, "SA")
        add(True, "A")
    add(True, "PA", REQUEST)
    add(False, "PA", RESPONSE)
    add(True, "FA")
    add(False, "FA")
    add(True, "A")
    return out


def _run(tmp_path: Path, rules: str, **settings: Any) -> tuple[list[dict[str, Any]], Stats]:
    options = settings.pop("eve_options", {"alert": {"verdict": "yes"}})
    order = settings.pop("action_order", ("pass", "drop", "reject", "alert"))
    handshake = settings.pop("handshake", True)
    engine = DetectEngine(load_rule_text(rules).rules, action_order=order)
    eve = EveWriter(tmp_path / "eve.json", type_options=options)
    stats = Stats()
    pipeline = Pipeline(EngineSettings(eve_options=options, **settings), engine, eve=eve,
                        stats=stats, classify=lambda _c: None)
    pipeline.run(MemoryBackend(_frames(handshake=handshake), capabilities=Capability.OFFLINE))
    eve.close()
    lines = (tmp_path / "eve.json").read_text().splitlines()
    return [json.loads(line) for line in lines], stats


def _alerts(events: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {e["alert"]["signature_id"]: e for e in events if e["event_type"] == "alert"}


RULES = """\
alert tcp any any -> any any (msg:"first"; flow:to_server; dsize:>0; sid:1;)
alert http any any -> any any (msg:"uri"; http.uri; content:"/index.html"; sid:2;)
pass http any any -> any any (msg:"pass it"; http.request_line; content:"GET /index"; sid:3;)
"""


def test_default_order_pass_first_silences_the_alerts(tmp_path: Path) -> None:
    events, _ = _run(tmp_path, RULES)
    # pass rules are evaluated first: sid 2 is silenced on the packet the pass rule matched;
    # sid 1 fired earlier, on the request packet (the transaction is inspected later)
    assert set(_alerts(events)) == {1}
    (flow,) = [e for e in events if e["event_type"] == "flow"]
    assert flow["flow"]["action"] == "pass"


def test_alert_first_order_logs_alerts_with_the_pass_verdict(tmp_path: Path) -> None:
    events, _ = _run(tmp_path, RULES, action_order=("alert", "pass", "drop", "reject"))
    alerts = _alerts(events)
    assert set(alerts) == {1, 2}
    # sid 2 fired on the packet the pass rule then passed; sid 1 on another (no pass)
    assert alerts[2]["verdict"] == {"action": "pass"}
    assert alerts[1]["verdict"] == {"action": "alert"}


def test_no_verdict_unless_configured(tmp_path: Path) -> None:
    events, _ = _run(tmp_path, RULES, action_order=("alert", "pass", "drop", "reject"),
                     eve_options={})
    assert all("verdict" not in e for e in _alerts(events).values())


def test_alerts_over_packet_alert_max_are_counted(tmp_path: Path) -> None:
    rules = "".join(f'alert http any any -> any any (msg:"m{i}"; http.uri; content:"/index"; '
                    f"sid:{10 + i};)\n" for i in range(5))
    events, stats = _run(tmp_path, rules, packet_alert_max=2)
    assert len(_alerts(events)) == 2
    assert stats.snapshot()["detect.alert_queue_overflow"] == 3


def test_ips_drop_verdict_and_flow_action(tmp_path: Path) -> None:
    rules = 'drop http any any -> any any (msg:"d"; http.uri; content:"/index"; sid:5;)\n'
    events, _ = _run(tmp_path, rules, ips=True)
    (alert,) = _alerts(events).values()
    assert alert["verdict"] == {"action": "drop"}
    assert alert["alert"]["action"] == "blocked"
    (flow,) = [e for e in events if e["event_type"] == "flow"]
    assert flow["flow"]["action"] == "drop"


def test_http_event_logs_the_redirect(tmp_path: Path) -> None:
    # redirect and status are extended fields (output-json-http.c)
    events, _ = _run(tmp_path, "", eve_options={"http": {"extended": "yes"}})
    (http,) = [e for e in events if e["event_type"] == "http"]
    assert http["http"]["redirect"] == "/main.php" and http["http"]["status"] == 302


def _drops(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["event_type"] == "drop"]


# a rule of no more than a header drops the whole flow (bug-4663)
DROP_FLOW = "drop tcp any any -> any any (noalert; sid:7;)\n"


def test_drop_events_flows_start_logs_rule_drop_then_one_per_direction(tmp_path: Path) -> None:
    events, _ = _run(tmp_path, DROP_FLOW, ips=True,
                     eve_options={"drop": {"alerts": "yes"}})
    drops = _drops(events)
    first = drops[0]
    assert first["drop"]["reason"] == "rules" and first["alert"]["signature_id"] == 7
    assert first["pcap_cnt"] == 1 and first["src_ip"] == "10.0.0.1"  # the SYN
    later = drops[1:]
    # the flow is dropped as a whole from then on: one "flow drop" per direction not yet
    # logged (the client side already has its rule drop)
    assert [(d["drop"]["reason"], d["src_ip"]) for d in later] == [("flow drop", "10.0.0.2")]
    assert all("alert" not in d for d in later)


def test_drop_events_flows_all_logs_every_dropped_packet(tmp_path: Path) -> None:
    events, stats = _run(tmp_path, DROP_FLOW, ips=True, eve_options={"drop": {"flows": "all"}})
    drops = _drops(events)
    assert len(drops) == 8 == stats.snapshot()["ips.blocked"]  # every packet of the flow
    assert "alert" not in drops[0]  # alerts: no (the default)


def test_no_drop_events_in_ids_mode(tmp_path: Path) -> None:
    events, _ = _run(tmp_path, DROP_FLOW, eve_options={"drop": {"flows": "all"}})
    assert _drops(events) == []


def test_midstream_drop_flow_policy_is_logged_in_drop_flow_and_stats(tmp_path: Path) -> None:
    events, stats = _run(tmp_path, "", ips=True, handshake=False,
                         midstream_policy="drop-flow", eve_options={"drop": {"flows": "all"}})
    drops = _drops(events)
    assert drops[0]["drop"]["reason"] == "stream midstream"
    assert {d["drop"]["reason"] for d in drops[1:]} == {"flow drop"}
    (flow,) = [e for e in events if e["event_type"] == "flow"]
    assert flow["flow"]["action"] == "drop"
    assert flow["flow"]["exception_policy"] == [{"target": "stream_midstream",
                                                 "policy": "drop_flow"}]
    assert stats.snapshot()["exception_policy.tcp.midstream.drop_flow"] == 1


def test_midstream_pass_flow_counts_each_refused_packet(tmp_path: Path) -> None:
    events, stats = _run(tmp_path, "", ips=True, handshake=False, midstream_policy="pass-flow")
    (flow,) = [e for e in events if e["event_type"] == "flow"]
    assert flow["flow"]["action"] == "pass"
    assert flow["flow"]["exception_policy"] == [{"target": "stream_midstream",
                                                 "policy": "pass_flow"}]
    assert stats.snapshot()["exception_policy.tcp.midstream.pass_flow"] == 5


def test_app_layer_events_become_anomaly_events_once(tmp_path: Path) -> None:
    events, _ = _run(tmp_path, "")
    (anomaly,) = [e for e in events if e["event_type"] == "anomaly"]
    # Suricata's HTTP event table spells the names in capitals
    assert anomaly["anomaly"] == {"app_proto": "http", "type": "applayer",
                                  "event": "REQUEST_FIELD_MISSING_COLON",
                                  "layer": "proto_parser"}
    # logged on the packet whose processing parsed the request: in IDS mode the server's
    # packet that ACKs it (LOG_DIR_PACKET addresses)
    assert anomaly["tx_id"] == 0 and anomaly["src_ip"] == "10.0.0.2"


def test_anomaly_applayer_type_can_be_turned_off(tmp_path: Path) -> None:
    events, _ = _run(tmp_path, "", eve_options={"anomaly": {"types": {"applayer": "no"}}})
    assert [e for e in events if e["event_type"] == "anomaly"] == []
