"""Alerts on tunnelled traffic end to end (``ruleengine run -r`` on a pcap written to a
tmp dir): an HTTP request inside VXLAN (and GRE) matches content and http rules as the
same request outside would, and the alert carries Suricata's ``tunnel`` object
(output-json-alert.c AlertJsonTunnel: the root packet's addresses and protocol, the
depth, the root's pcap_cnt and pkt_src) while the alert's own addresses are the inner
packet's. Every line is checked against Suricata's EVE schema."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import GRE
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet
from scapy.utils import wrpcap

from ruleengine.cli import main as cli_main
from tests.commands.test_explain import http_flow, request, response
from tests.decode.frames import eth
from tests.outputs.eve_schema import validate_line

T0 = 1_700_000_000.0
VTEP_C, VTEP_S = "192.0.2.10", "192.0.2.20"
RULES = ('alert http any any -> any any (msg:"uri in tunnel"; http.uri; content:"/tunnelled";'
         ' sid:1;)\n'
         'alert tcp any any -> any 80 (msg:"raw in tunnel"; flow:established,to_server;'
         ' content:"GET /tunnelled"; sid:2;)\n')
YAML = ("%YAML 1.1\n---\noutputs:\n  - eve-log:\n      enabled: yes\n      types:\n"
        "        - alert\n        - http\n        - flow\n")


# explicit MACs everywhere: an Ether() without them makes scapy ARP for the address
def _vxlan(pkt: Packet) -> Packet:
    to_server = pkt["IP"].dport == 80
    outer = eth() / IP(src=VTEP_C if to_server else VTEP_S, dst=VTEP_S if to_server
                         else VTEP_C) / UDP(sport=49152 + pkt["TCP"].sport % 1000 if to_server
                                            else 50000, dport=4789)
    wrapped: Packet = outer / VXLAN(flags=0x08, vni=77) / eth() / pkt["IP"]
    wrapped.time = pkt.time
    return wrapped


def _gre(pkt: Packet) -> Packet:
    wrapped: Packet = eth() / IP(src=VTEP_C, dst=VTEP_S) / GRE() / pkt["IP"]
    wrapped.time = pkt.time
    return wrapped


def _run(tmp: Path, pkts: list[Packet]) -> list[dict[str, Any]]:
    tmp.mkdir(exist_ok=True)
    pcap, rules, yaml, out = tmp / "t.pcap", tmp / "t.rules", tmp / "s.yaml", tmp / "log"
    wrpcap(str(pcap), pkts)
    rules.write_text(RULES)
    yaml.write_text(YAML)
    with contextlib.redirect_stderr(io.StringIO()):
        assert cli_main(["run", "-r", str(pcap), "-S", str(rules), "-l", str(out),
                         "-c", str(yaml), "--no-progress"]) == 0
    return [validate_line(x) for x in (out / "eve.json").read_text().splitlines()]


def _flow() -> list[Packet]:
    pkts = []
    for p in http_flow(40001, request(b"/tunnelled"), response(b"inside"), T0):
        q: Packet = eth() / p["IP"]
        q.time = p.time
        pkts.append(q)
    return pkts


def _alerts(events: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {e["alert"]["signature_id"]: e for e in events if e["event_type"] == "alert"}


def test_vxlan_http_request_alerts_with_the_tunnel_object(tmp_path: Path) -> None:
    plain_events = _run(tmp_path / "plain", _flow())
    plain = _alerts(plain_events)
    events = _run(tmp_path / "vxlan", [_vxlan(p) for p in _flow()])
    alerts = _alerts(events)
    assert set(alerts) == set(plain) == {1, 2}
    for sid, alert in alerts.items():
        # the alert describes the inner packet
        assert (alert["src_ip"], alert["dest_ip"]) == ("10.1.0.1", "10.1.0.2")
        assert (alert["src_port"], alert["dest_port"], alert["proto"]) == (40001, 80, "TCP")
        assert alert["app_proto"] == "http" and alert["direction"] == "to_server"
        # the inner packet has no pcap_cnt of its own: the root's is in the tunnel object
        assert "pcap_cnt" not in alert
        assert alert["tunnel"] == {
            "src_ip": VTEP_C, "src_port": 49153, "dest_ip": VTEP_S, "dest_port": 4789,
            "proto": "UDP", "depth": 1, "pcap_cnt": plain[sid]["pcap_cnt"],
            "pkt_src": "wire/pcap",
        }
        assert "tunnel" not in plain[sid]
    assert alerts[1]["http"] == plain[1]["http"] and alerts[1]["http"]["url"] == "/tunnelled"

    def of(evs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
        return [e for e in evs if e["event_type"] == kind]

    assert [e["http"] for e in of(events, "http")] == [e["http"] for e in of(plain_events,
                                                                              "http")]
    # one flow, the inner TCP one (the outer VXLAN packets are not a flow of their own),
    # counted as the tunnel packets: the bytes from the inner IP header on (the plain
    # frames also carry 14 bytes of Ethernet each)
    (flow,), (plain_flow,) = of(events, "flow"), of(plain_events, "flow")
    assert (flow["src_ip"], flow["dest_port"], flow["proto"]) == ("10.1.0.1", 80, "TCP")
    assert flow["app_proto"] == "http"
    for side in ("toserver", "toclient"):
        pkts = plain_flow["flow"]["pkts_" + side]
        assert flow["flow"]["pkts_" + side] == pkts
        assert flow["flow"]["bytes_" + side] == plain_flow["flow"]["bytes_" + side] - 14 * pkts


def test_gre_tunnel_object_has_no_ports(tmp_path: Path) -> None:
    alerts = _alerts(_run(tmp_path, [_gre(p) for p in _flow()]))
    assert set(alerts) == {1, 2}
    assert alerts[2]["tunnel"]["proto"] == "GRE"
    assert (alerts[2]["tunnel"]["src_port"], alerts[2]["tunnel"]["dest_port"]) == (0, 0)
    assert alerts[2]["src_ip"] == "10.1.0.1"


def test_vxlan_on_another_port_is_not_decoded_by_default(tmp_path: Path) -> None:
    """decoder.vxlan.ports defaults to 4789: on 8472 the packets are plain UDP, so the
    HTTP rules do not see the request (a UDP content rule would)."""
    pkts = []
    for p in _flow():
        w = _vxlan(p)
        w["UDP"].dport = 8472
        pkts.append(w)
    assert not _alerts(_run(tmp_path, pkts))
