"""EVE writer: field shapes as Suricata writes them; every line validated against its schema."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ruleengine.decode.packet import Packet
from ruleengine.outputs.eve import (
    EveWriter,
    OutputError,
    eve_stats_counters,
    format_ip,
    format_ts,
    proto_name,
    text,
    verdict_object,
)
from ruleengine.outputs.stats import BASE_COUNTERS, BYPASS_INSERT_COUNTERS, IPS_COUNTERS, Stats
from tests.outputs.eve_schema import load_schema, stats_counter_names, validate_line

V4_CLIENT = socket.inet_aton("10.0.0.1")
V4_SERVER = socket.inet_aton("192.168.1.20")
V6_CLIENT = socket.inet_pton(socket.AF_INET6, "2001:db8::1")
V6_SERVER = socket.inet_pton(socket.AF_INET6, "2001:db8:0:0:1::2")


@dataclass
class FakeFlow:
    flow_id: int = 1234567890123
    proto: int = 6
    ip_version: int = 4
    src: bytes = V4_CLIENT
    dst: bytes = V4_SERVER
    sport: int = 40000
    dport: int = 80
    vlan: tuple[int, ...] = ()
    start_ts: float = 1764085322.5
    last_ts: float = 1764085330.25
    pkts_toserver: int = 5
    pkts_toclient: int = 4
    bytes_toserver: int = 600
    bytes_toclient: int = 2400
    state: str = "established"
    end_reason: str = "timeout"
    bypass: int = 0
    bypassed_pkts_toserver: int = 0
    bypassed_pkts_toclient: int = 0
    bypassed_bytes_toserver: int = 0
    bypassed_bytes_toclient: int = 0
    alproto: str | None = "http"
    tcp_flags_ts: int | None = None
    tcp_flags_tc: int | None = None


@dataclass
class FakeRule:
    sid: int = 2100498
    gid: int = 1
    rev: int = 7
    msg: str = "GPL ATTACK_RESPONSE id check returned root"
    metadata: list[str] = field(default_factory=list)


@dataclass
class FakeTx:
    tx_id: int = 0
    hostname: bytes | None = b"example.com"
    url: bytes | None = b"/index.html?a=1"
    user_agent: bytes | None = b"curl/8.0"
    method: bytes | None = b"GET"
    protocol: bytes | None = b"HTTP/1.1"
    status: int | None = 200
    length: int | None = 1234


def packet(src: bytes = V4_CLIENT, dst: bytes = V4_SERVER, proto: int = 6,
           sport: int = 40000, dport: int = 80, ts: float = 1764085323.000001) -> Packet:
    return Packet(ts, 0, 100, 4 if len(src) == 4 else 6, src, dst, proto, sport, dport, b"x")


def read_events(path: Path) -> list[dict[str, object]]:
    lines = path.read_text().splitlines()
    return [validate_line(line) for line in lines]


def test_timestamp_format_and_rounding():
    assert format_ts(0.0) == "1970-01-01T00:00:00.000000+0000"
    assert format_ts(1764085322.123456) == "2025-11-25T15:42:02.123456+0000"
    # a value that rounds up to the next second must not print 1000000 microseconds
    assert format_ts(1764085322.9999999) == "2025-11-25T15:42:03.000000+0000"
    assert format_ts(float("nan")) == format_ts(1e300) == "1970-01-01T00:00:00.000000+0000"


def test_addresses_as_inet_ntop_prints_them():
    assert format_ip(V4_CLIENT) == "10.0.0.1"
    assert format_ip(V6_SERVER) == "2001:db8::1:0:0:2"
    assert format_ip(socket.inet_pton(socket.AF_INET6, "::ffff:1.2.3.4")) == "::ffff:1.2.3.4"
    assert format_ip(socket.inet_pton(socket.AF_INET6, "2001:db8:0:1:1:1:1:1")) == (
        "2001:db8:0:1:1:1:1:1")  # a single zero group is not compressed
    assert format_ip(b"\x01\x02") == "0102"  # junk never raises


def test_proto_names():
    assert [proto_name(p) for p in (6, 17, 1, 58, 47, 253)] == [
        "TCP", "UDP", "ICMP", "IPv6-ICMP", "GRE", "253"]


def test_text_escapes_non_utf8_bytes():
    assert text(b"caf\xc3\xa9") == "café"
    assert text(b"a\xffb") == "a\\xffb"
    assert text(None) is None


def test_alert_event_fields(tmp_path: Path):
    path = tmp_path / "eve.json"
    rule = FakeRule(metadata=["created_at 2010_09_23", "updated_at 2019_07_26",
                              "signature_severity Major"])
    with EveWriter(path) as eve:
        eve.alert(ts=1764085323.000001, flow=FakeFlow(), pkt=packet(), rule=rule,
                  action="allowed", to_server=True, tx=FakeTx(tx_id=3), app_proto="http",
                  category="Potentially Bad Traffic", severity=2, pcap_cnt=7)
    (event,) = read_events(path)
    assert list(event)[:4] == ["timestamp", "flow_id", "pcap_cnt", "event_type"]
    assert event["event_type"] == "alert"
    assert event["timestamp"] == "2025-11-25T15:42:03.000001+0000"
    assert event["flow_id"] == 1234567890123
    assert event["pcap_cnt"] == 7
    assert (event["src_ip"], event["src_port"], event["dest_ip"], event["dest_port"]) == (
        "10.0.0.1", 40000, "192.168.1.20", 80)
    assert event["proto"] == "TCP"
    assert event["tx_id"] == 3
    assert event["alert"] == {
        "action": "allowed", "gid": 1, "signature_id": 2100498, "rev": 7,
        "signature": "GPL ATTACK_RESPONSE id check returned root",
        "category": "Potentially Bad Traffic", "severity": 2,
        "metadata": {"created_at": ["2010_09_23"], "updated_at": ["2019_07_26"],
                     "signature_severity": ["Major"]},
    }
    assert event["http"] == {
        "hostname": "example.com", "url": "/index.html?a=1", "http_user_agent": "curl/8.0",
        "http_method": "GET", "protocol": "HTTP/1.1", "status": 200, "length": 1234}
    assert event["app_proto"] == "http"
    assert event["direction"] == "to_server"
    assert event["flow"] == {
        "pkts_toserver": 5, "pkts_toclient": 4, "bytes_toserver": 600, "bytes_toclient": 2400,
        "start": "2025-11-25T15:42:02.500000+0000", "src_ip": "10.0.0.1",
        "dest_ip": "192.168.1.20", "src_port": 40000, "dest_port": 80}


def test_alert_to_client_blocked_partial_http_no_flow(tmp_path: Path):
    path = tmp_path / "eve.json"
    tx = FakeTx(hostname=None, user_agent=None, status=None, length=None, url=b"/\xff")
    with EveWriter(path) as eve:
        # packet from the server: top-level addresses are the packet's, flow{} the flow's
        eve.alert(ts=1.5, flow=FakeFlow(), pkt=packet(V4_SERVER, V4_CLIENT, 6, 80, 40000),
                  rule=FakeRule(msg=""), action="blocked", to_server=False, tx=tx,
                  app_proto=None, category=None, severity=3, tx_id=0)
        eve.alert(ts=1.5, flow=None, pkt=packet(proto=17, sport=53, dport=5353), rule=FakeRule(),
                  action="allowed", to_server=True, tx=None, app_proto=None, category=None,
                  severity=3)
    first, second = read_events(path)
    assert first["src_ip"] == "192.168.1.20" and first["direction"] == "to_client"
    assert first["flow"]["src_ip"] == "10.0.0.1"  # type: ignore[index]
    assert first["alert"]["action"] == "blocked"  # type: ignore[index]
    assert first["alert"]["signature"] == "" and first["alert"]["category"] == ""  # type: ignore[index]
    # Suricata always writes length (htp_tx_response_message_len, 0 before a response)
    assert first["http"] == {"url": "/\\xff", "http_method": "GET", "protocol": "HTTP/1.1",
                             "length": 0}
    assert "app_proto" not in first and first["tx_id"] == 0
    assert "flow_id" not in second and "flow" not in second and "pcap_cnt" not in second
    assert "direction" not in second
    assert second["proto"] == "UDP"


def test_icmp_and_ipv6_alert(tmp_path: Path):
    path = tmp_path / "eve.json"
    pkt = packet(V6_CLIENT, V6_SERVER, 58, 0, 0)
    pkt.icmp_type, pkt.icmp_code = 128, 0
    pkt.vlan = (100,)
    flow = FakeFlow(proto=58, src=V6_CLIENT, dst=V6_SERVER, sport=0, dport=0, alproto=None)
    with EveWriter(path) as eve:
        eve.alert(ts=2.0, flow=flow, pkt=pkt, rule=FakeRule(), action="allowed", to_server=True,
                  tx=None, app_proto=None, category=None, severity=3)
    (event,) = read_events(path)
    assert event["proto"] == "IPv6-ICMP"
    assert (event["icmp_type"], event["icmp_code"]) == (128, 0)
    assert "src_port" not in event and "src_port" not in event["flow"]  # type: ignore[operator]
    assert event["src_ip"] == "2001:db8::1" and event["dest_ip"] == "2001:db8::1:0:0:2"
    assert event["vlan"] == [100]


def test_flow_event(tmp_path: Path):
    path = tmp_path / "eve.json"
    flow = FakeFlow(state="closed", tcp_flags_ts=0x1B, tcp_flags_tc=0x1B, vlan=(5,))
    with EveWriter(path, host="sensor1") as eve:
        eve.flow(flow, app_proto="http", alerted=True, reason="shutdown")
    (event,) = read_events(path)
    assert event["event_type"] == "flow" and event["host"] == "sensor1"
    assert event["timestamp"] == "2025-11-25T15:42:10.250000+0000"
    assert (event["src_ip"], event["src_port"], event["dest_ip"], event["dest_port"]) == (
        "10.0.0.1", 40000, "192.168.1.20", 80)
    assert event["app_proto"] == "http" and event["vlan"] == [5]
    assert event["flow"] == {
        "pkts_toserver": 5, "pkts_toclient": 4, "bytes_toserver": 600, "bytes_toclient": 2400,
        "start": "2025-11-25T15:42:02.500000+0000", "end": "2025-11-25T15:42:10.250000+0000",
        "age": 8, "state": "closed", "reason": "shutdown", "alerted": True}
    assert event["tcp"] == {"tcp_flags": "1b", "tcp_flags_ts": "1b", "tcp_flags_tc": "1b",
                            "fin": True, "syn": True, "psh": True, "ack": True}


def test_flow_and_alert_carry_rule_variables_and_traffic(tmp_path: Path):
    path = tmp_path / "eve.json"
    variables = {"flowbits": ["seen"], "flowvars": [{"key": "Mozilla"}],
                 "traffic": {"id": ["mozilla"]}}
    with EveWriter(path) as eve:
        eve.flow(FakeFlow(), app_proto="http", alerted=False, reason="shutdown",
                 variables=variables)
        eve.alert(ts=3.0, flow=FakeFlow(), pkt=packet(), rule=FakeRule(), action="allowed",
                  to_server=True, tx=None, app_proto=None, category=None, severity=3,
                  variables=variables)
        eve.flow(FakeFlow(bypass=1), app_proto=None, alerted=False, reason="timeout",
                 bypass_reason="rule", variables={"flowvars": [{"a": "1"}]})
    flow_event, alert_event, bypassed = read_events(path)
    for event in (flow_event, alert_event):
        assert event["traffic"] == {"id": ["mozilla"]}
        assert event["metadata"] == {"flowbits": ["seen"], "flowvars": [{"key": "Mozilla"}]}
    assert bypassed["metadata"] == {"flowvars": [{"a": "1"}, {"bypass_reason": "rule"}]}


@pytest.mark.parametrize(("bypass", "name"), [(1, "local"), (2, "capture")])
def test_bypassed_flow_event(tmp_path: Path, bypass: int, name: str):
    path = tmp_path / "eve.json"
    # totals include the bypassed part (the flow table and ruleengine.bypass keep them so)
    flow = FakeFlow(bypass=bypass, state="established", pkts_toserver=105, pkts_toclient=204,
                    bytes_toserver=10_600, bytes_toclient=302_400, bypassed_pkts_toserver=100,
                    bypassed_pkts_toclient=200, bypassed_bytes_toserver=10_000,
                    bypassed_bytes_toclient=300_000, src=V6_CLIENT, dst=V6_SERVER)
    with EveWriter(path) as eve:
        eve.flow(flow, app_proto=None, alerted=False, reason="timeout")
        eve.alert(ts=3.0, flow=flow, pkt=packet(), rule=FakeRule(), action="allowed",
                  to_server=True, tx=None, app_proto=None, category=None, severity=3)
    flow_event, alert_event = read_events(path)
    body = flow_event["flow"]
    assert body["state"] == "bypassed" and body["bypass"] == name  # type: ignore[index]
    assert body["bypassed"] == {"pkts_toserver": 100, "pkts_toclient": 200,  # type: ignore[index]
                                "bytes_toserver": 10_000, "bytes_toclient": 300_000}
    assert body["pkts_toserver"] == 105 and body["bytes_toclient"] == 302_400  # type: ignore[index]
    assert alert_event["flow"]["bypassed"]["pkts_toclient"] == 200  # type: ignore[index]


def test_stats_event_with_every_required_counter(tmp_path: Path):
    stats = Stats()
    stats.register(IPS_COUNTERS)
    stats.register(BYPASS_INSERT_COUNTERS)
    for i, name in enumerate([*BASE_COUNTERS, *IPS_COUNTERS, *BYPASS_INSERT_COUNTERS]):
        stats.set(name, i + 1)
    stats.incr("flow.end")  # a name Suricata does not have: kept out of EVE
    stats.incr("flow.end.state.local_bypassed")
    path = tmp_path / "eve.json"
    with EveWriter(path) as eve:
        eve.stats(10.0, 42.7, stats.snapshot())
    (event,) = read_events(path)
    body = event["stats"]
    assert body["uptime"] == 42  # type: ignore[index]
    assert body["flow_bypassed"] == {  # type: ignore[index]
        name.split(".")[1]: stats.get(name) for name in BASE_COUNTERS
        if name.startswith("flow_bypassed.")}
    assert body["capture"] == {"kernel_packets": stats.get("capture.kernel_packets"),  # type: ignore[index]
                               "kernel_drops": stats.get("capture.kernel_drops")}
    assert body["ips"] == {"accepted": stats.get("ips.accepted"),  # type: ignore[index]
                           "blocked": stats.get("ips.blocked"),
                           "rejected": stats.get("ips.rejected")}
    assert body["flow"]["end"] == {"state": {"local_bypassed": 1}}  # type: ignore[index]
    assert body["decoder"]["pkts"] == stats.get("decoder.pkts")  # type: ignore[index]


def test_stats_counter_catalogue_matches_schema():
    assert eve_stats_counters() == frozenset(stats_counter_names(load_schema()))


def test_types_filter_and_append(tmp_path: Path):
    path = tmp_path / "eve.json"
    with EveWriter(path, types={"flow"}) as eve:
        eve.alert(ts=1.0, flow=None, pkt=packet(), rule=FakeRule(), action="allowed",
                  to_server=True, tx=None, app_proto=None, category=None, severity=3)
        eve.stats(1.0, 1.0, {})
        eve.flow(FakeFlow(), app_proto=None, alerted=False, reason="timeout")
    assert [e["event_type"] for e in read_events(path)] == ["flow"]
    with EveWriter(path, append=True) as eve:
        eve.stats(2.0, 1.0, {"decoder.pkts": 1})
    assert [e["event_type"] for e in read_events(path)] == ["flow", "stats"]
    with EveWriter(path) as eve:  # not appending: truncates
        pass
    assert path.read_text() == ""


def test_unopenable_path_is_a_clean_error(tmp_path: Path):
    with pytest.raises(OutputError, match="cannot open EVE log"):
        EveWriter(tmp_path / "missing-dir" / "eve.json")


def test_workers_appending_never_interleave(tmp_path: Path):
    path = tmp_path / "eve.json"
    EveWriter(path).close()
    pids = []
    for worker in range(3):
        pid = os.fork()
        if pid == 0:  # child: write many events, then leave without running pytest teardown
            try:
                with EveWriter(path, append=True) as eve:
                    for i in range(2000):
                        eve.flow(FakeFlow(flow_id=worker * 100_000 + i), app_proto="http",
                                 alerted=False, reason="timeout")
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    lines = path.read_text().splitlines()
    assert len(lines) == 6000
    ids = {json.loads(line)["flow_id"] for line in lines}
    assert len(ids) == 6000


def test_tcp_object_always_written_for_tcp_flows(tmp_path: Path):
    path = tmp_path / "eve.json"
    with EveWriter(path) as eve:
        eve.flow(FakeFlow(state="new"), app_proto=None, alerted=False, reason="timeout")
        eve.flow(FakeFlow(tcp_flags_ts=0x02, tcp_flags_tc=0), app_proto=None, alerted=False,
                 reason="timeout")
        eve.flow(FakeFlow(proto=17, dport=53), app_proto=None, alerted=False, reason="timeout")
    no_session, syn_only, udp = read_events(path)
    assert no_session["tcp"] == {"tcp_flags": "00", "tcp_flags_ts": "00", "tcp_flags_tc": "00"}
    assert syn_only["tcp"] == {"tcp_flags": "02", "tcp_flags_ts": "02", "tcp_flags_tc": "00",
                               "syn": True}
    assert "tcp" not in udp and udp["proto"] == "UDP" and udp["dest_port"] == 53


@pytest.mark.parametrize(("action", "ips", "proto", "expected"), [
    ("alert", False, 6, {"action": "alert"}),
    ("drop", False, 6, {"action": "alert"}),
    ("drop", True, 6, {"action": "drop"}),
    ("pass", True, 6, {"action": "pass"}),
    ("reject", True, 6, {"action": "drop", "reject_target": "to_client", "reject": ["tcp-reset"]}),
    ("rejectdst", False, 17, {"action": "alert", "reject_target": "to_server",
                              "reject": ["icmp-prohib"]}),
    ("rejectboth", True, 6, {"action": "drop", "reject_target": "both", "reject": ["tcp-reset"]}),
])
def test_alert_verdict(tmp_path: Path, action: str, ips: bool, proto: int,
                       expected: dict[str, object]):
    verdict = verdict_object(action, ips=ips, proto=proto)
    assert verdict == expected
    path = tmp_path / "eve.json"
    with EveWriter(path) as eve:
        eve.alert(ts=1.0, flow=FakeFlow(), pkt=packet(), rule=FakeRule(), action="allowed",
                  to_server=True, tx=None, app_proto=None, category=None, severity=3,
                  verdict=verdict)
    (event,) = read_events(path)
    assert event["verdict"] == expected


def test_http_event(tmp_path: Path):
    path = tmp_path / "eve.json"
    with EveWriter(path) as eve:
        eve.http(ts=5.0, flow=FakeFlow(), tx=FakeTx(tx_id=2), pcap_cnt=9)
    with EveWriter(path, types={"alert"}, append=True) as eve:  # http not wanted
        eve.http(ts=5.0, flow=FakeFlow(), tx=FakeTx(tx_id=2), pcap_cnt=9)
    (event,) = read_events(path)
    assert event["event_type"] == "http" and event["tx_id"] == 2 and event["pcap_cnt"] == 9
    assert (event["src_ip"], event["dest_port"]) == ("10.0.0.1", 80)
    assert event["http"]["url"] == "/index.html?a=1"  # type: ignore[index]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_write_errors_are_counted_not_raised():
    eve = EveWriter("/dev/full", append=True)
    eve.flow(FakeFlow(), app_proto=None, alerted=False, reason="timeout")
    eve.close()
    assert eve.write_errors == 1 and eve.last_error is not None
    assert "No space left" in eve.last_error
    eve.close()  # twice is fine


def test_community_id():
    from ruleengine.outputs.eve import community_id

    a, b = socket.inet_aton("128.232.110.120"), socket.inet_aton("66.35.250.204")
    # the example of the Community ID spec / Zeek package
    assert community_id(0, a, b, 34855, 80, 6) == "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
    assert community_id(0, b, a, 80, 34855, 6) == "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
    assert community_id(1, a, b, 34855, 80, 6) != community_id(0, a, b, 34855, 80, 6)
    # ICMP echo and its reply share an id; a one-way message type does not pair
    assert community_id(0, a, b, 0, 0, 1, 8, 0) == community_id(0, b, a, 0, 0, 1, 0, 0)
    assert community_id(0, a, b, 0, 0, 1, 3, 1) != community_id(0, b, a, 0, 0, 1, 3, 1)


def test_community_id_in_events(tmp_path: Path):
    path = tmp_path / "eve.json"
    with EveWriter(path, community_id_seed=0) as eve:
        eve.alert(ts=1.0, flow=FakeFlow(), pkt=packet(), rule=FakeRule(), action="allowed",
                  to_server=True, tx=None, app_proto=None, category=None, severity=3)
        eve.flow(FakeFlow(), app_proto=None, alerted=True, reason="timeout")
        eve.alert(ts=1.0, flow=None, pkt=packet(), rule=FakeRule(), action="allowed",
                  to_server=True, tx=None, app_proto=None, category=None, severity=3)
    alert, flow, flowless = read_events(path)
    assert alert["community_id"] == flow["community_id"]
    assert str(alert["community_id"]).startswith("1:")
    assert "community_id" not in flowless


def test_reopen_after_rotation(tmp_path: Path):
    path = tmp_path / "eve.json"
    eve = EveWriter(path)
    eve.flow(FakeFlow(flow_id=1), app_proto=None, alerted=False, reason="timeout")
    eve.flush()
    path.rename(tmp_path / "eve.json.1")  # logrotate
    eve.flow(FakeFlow(flow_id=2), app_proto=None, alerted=False, reason="timeout")
    eve.reopen()  # the buffered event still goes to the old file
    eve.flow(FakeFlow(flow_id=3), app_proto=None, alerted=False, reason="timeout")
    eve.close()
    assert [e["flow_id"] for e in read_events(tmp_path / "eve.json.1")] == [1, 2]
    assert [e["flow_id"] for e in read_events(path)] == [3]


def test_drop_event(tmp_path: Path):
    pkt = packet()
    pkt.ip_len, pkt.ttl, pkt.ip_id = 140, 64, 4321
    pkt.seq, pkt.ack, pkt.window, pkt.tcp_flags = 1000, 2000, 512, 0x18
    pkt.l4_header = bytes(12) + bytes([0x50, 0x18]) + bytes(4) + b"\x00\x07"
    udp = packet(proto=17, sport=5353, dport=53)
    udp.l4_header = b"\x14\xe9\x00\x35\x00\x1c\x00\x00"
    v6 = packet(V6_CLIENT, V6_SERVER, 6)
    v6.ip_len, v6.ttl = 100, 32
    path = tmp_path / "eve.json"
    with EveWriter(path) as eve:
        eve.drop(ts=1.0, flow=FakeFlow(), pkt=pkt, to_server=True, reason="rules",
                 rule=FakeRule(), category="x", severity=1, pcap_cnt=3,
                 verdict=verdict_object("drop", ips=True, proto=6))
        eve.drop(ts=1.0, flow=None, pkt=udp, to_server=True)
        eve.drop(ts=1.0, flow=None, pkt=v6, to_server=True, reason="stream midstream")
    tcp_event, udp_event, v6_event = read_events(path)
    assert tcp_event["drop"] == {
        "len": 140, "ttl": 64, "ipid": 4321, "tcpseq": 1000, "tcpack": 2000, "tcpwin": 512,
        "fin": False, "syn": False, "rst": False, "psh": True, "ack": True, "urg": False,
        "tcpres": 0, "tcpurgp": 7, "reason": "rules", "verdict": {"action": "drop"}}
    assert tcp_event["alert"]["action"] == "blocked"  # type: ignore[index]
    assert tcp_event["direction"] == "to_server" and tcp_event["pcap_cnt"] == 3
    assert udp_event["drop"]["udplen"] == 28  # type: ignore[index]
    assert v6_event["drop"]["len"] == 60 and v6_event["drop"]["hoplimit"] == 32  # type: ignore[index]
