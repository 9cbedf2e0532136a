"""eve-log options end to end (``ruleengine run -r`` with a suricata.yaml): ``netflow``
records (one per direction, output-json-netflow.c), alert ``payload`` /
``payload-printable`` / ``payload-length`` / ``packet``, and ``stats.log`` on a pcap run
with ``totals`` / ``threads`` / ``null-values``. Every EVE line is checked against
Suricata's schema."""

from __future__ import annotations

import base64
import contextlib
import io
from pathlib import Path
from typing import Any

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from ruleengine.cli import main as cli_main
from tests.commands.test_explain import http_flow, request, response
from tests.outputs.eve_schema import validate_line

T0 = 1_700_000_000.0


def run(tmp: Path, yaml_body: str, rules: str, pcap: Path,
        log: str = "log") -> tuple[list[dict[str, Any]], Path]:
    rule_file, yaml, out = tmp / "r.rules", tmp / "s.yaml", tmp / log
    rule_file.write_text(rules)
    yaml.write_text("%YAML 1.1\n---\n" + yaml_body)
    with contextlib.redirect_stderr(io.StringIO()):
        assert cli_main(["run", "-r", str(pcap), "-S", str(rule_file), "-l", str(out),
                         "-c", str(yaml), "--no-progress"]) == 0
    return [validate_line(x) for x in (out / "eve.json").read_text().splitlines()], out


def http_pcap(tmp: Path) -> Path:
    pcap = tmp / "h.pcap"
    wrpcap(str(pcap), http_flow(40000, request(b"/x"), response(b"hello"), T0))
    return pcap


EVE = "outputs:\n  - eve-log:\n      enabled: yes\n      types:\n"


def test_netflow_one_record_per_direction(tmp_path: Path) -> None:
    events, _ = run(tmp_path, EVE + "        - flow\n        - netflow\n", "", http_pcap(tmp_path))
    flows = [e for e in events if e["event_type"] == "flow"]
    netflows = [e for e in events if e["event_type"] == "netflow"]
    assert len(flows) == 1 and len(netflows) == 2
    flow = flows[0]
    ts, tc = netflows
    assert (ts["src_ip"], ts["src_port"], ts["dest_port"]) == (flow["src_ip"], 40000, 80)
    assert (tc["src_ip"], tc["src_port"], tc["dest_port"]) == (flow["dest_ip"], 80, 40000)
    assert ts["netflow"]["pkts"] == flow["flow"]["pkts_toserver"]
    assert tc["netflow"]["bytes"] == flow["flow"]["bytes_toclient"]
    assert ts["netflow"]["min_ttl"] == ts["netflow"]["max_ttl"] == 64  # scapy's TTL
    assert ts["flow_id"] == tc["flow_id"] == flow["flow_id"]
    assert ts["app_proto"] == "http"
    assert ts["tcp"]["syn"] is True and "syn" in tc["tcp"] and tc["tcp"]["ack"] is True


def test_netflow_needs_the_type(tmp_path: Path) -> None:
    events, _ = run(tmp_path, EVE + "        - flow\n", "", http_pcap(tmp_path))
    assert not [e for e in events if e["event_type"] == "netflow"]


def test_netflow_without_answer_has_one_record(tmp_path: Path) -> None:
    pcap = tmp_path / "u.pcap"
    pkt = Ether() / IP(src="10.9.0.1", dst="10.9.0.2", ttl=33) / UDP(sport=5000, dport=53) / b"q"
    pkt.time = T0
    wrpcap(str(pcap), [pkt])
    events, _ = run(tmp_path, EVE + "        - netflow\n", "", pcap)
    netflows = [e for e in events if e["event_type"] == "netflow"]
    assert len(netflows) == 1
    assert netflows[0]["netflow"]["min_ttl"] == 33 and "tcp" not in netflows[0]


RULE = 'alert http any any -> any any (msg:"uri"; http.uri; content:"/x"; sid:1;)\n' \
       'alert udp any any -> any any (msg:"udp"; content:"q|00|"; sid:2;)\n'


def test_alert_payload_options(tmp_path: Path) -> None:
    pcap = tmp_path / "u.pcap"
    pkt = Ether() / IP(src="10.9.0.1", dst="10.9.0.2") / UDP(sport=5000, dport=53) / b"q\x00\r\nz"
    pkt.time = T0
    wrpcap(str(pcap), [pkt])
    yaml = EVE + ("        - alert:\n            payload: yes\n            payload-printable: yes\n"
                  "            payload-length: yes\n            packet: yes\n")
    events, _ = run(tmp_path, yaml, RULE, pcap)
    alert = next(e for e in events if e["event_type"] == "alert")
    assert base64.b64decode(alert["payload"]) == b"q\x00\r\nz"
    assert alert["payload_printable"] == "q.\r\nz"
    assert alert["payload_length"] == 5 and alert["stream"] == 0
    assert base64.b64decode(alert["packet"]) == bytes(pkt)
    assert alert["packet_info"] == {"linktype": 1}


def test_alert_payload_off_by_default_and_stream_flag(tmp_path: Path) -> None:
    events, _ = run(tmp_path, EVE + "        - alert\n", RULE, http_pcap(tmp_path))
    alert = next(e for e in events if e["event_type"] == "alert")
    assert not {"payload", "payload_printable", "packet", "stream"} & set(alert)
    events, _ = run(tmp_path, EVE + "        - alert:\n            payload-printable: yes\n",
                    RULE, http_pcap(tmp_path), log="log2")
    alert = next(e for e in events if e["event_type"] == "alert")
    assert alert["stream"] == 1  # a transaction match on TCP
    assert "GET /x HTTP/1.1" in alert["payload_printable"]


def test_stats_log_on_a_pcap_run(tmp_path: Path) -> None:
    yaml = EVE + "        - stats\n  - stats:\n      enabled: yes\n      filename: stats.log\n" \
        "      totals: yes\n      threads: yes\n"
    _, out = run(tmp_path, yaml, "", http_pcap(tmp_path))
    text = (out / "stats.log").read_text()
    assert text.count("Date: ") == 1  # the run's last stats
    rows = [tuple(c.strip() for c in line.split("|")) for line in text.splitlines()
            if line.count("|") == 2 and not line.startswith("Counter")]
    names = {(c, tm) for c, tm, _ in rows}
    assert ("decoder.pkts", "Total") in names and ("decoder.pkts", "W#01") in names
    assert all(v != "0" for _, _, v in rows)  # null-values: no
    _, out = run(tmp_path, yaml.replace("threads: yes", "null-values: yes"), "",
                 http_pcap(tmp_path), log="log2")
    rows2 = [line for line in (out / "stats.log").read_text().splitlines()
             if "| Total" in line and line.rstrip().endswith("| 0")]
    assert rows2 and "W#01" not in (out / "stats.log").read_text()
