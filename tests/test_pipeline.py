"""The pipeline end to end on the in-memory backend (scapy-built frames): alerts and flow
events, verdicts once per packet in IPS mode (drop of a packet vs of a flow), pass, the
per-packet alert limit, invalid and non-IP frames, stop(), flow timeouts by capture
time, bypass (rule, stream depth, ICMP always local), the midstream exception policy,
checksum failures, and inspection of unacknowledged data at flow end."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether

from capture_backends.base import Capability, FlowTuple, Verdict
from capture_backends.memory import MemoryBackend
from ruleengine.detect.engine import DetectEngine
from ruleengine.outputs.eve import EveWriter
from ruleengine.outputs.stats import Stats
from ruleengine.pipeline import Pipeline, RunReport
from ruleengine.rules.loader import load_rule_text
from ruleengine.settings import EngineSettings
from ruleengine.stream.tcp import StreamConfig

CLIENT, SERVER = "10.0.0.1", "10.0.0.2"
GET = b"GET /index.html HTTP/1.1\r\nHost: www.example.com\r\n\r\n"
EVIL = b"GET /evil HTTP/1.1\r\nHost: www.example.com\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"

Frames = list[tuple[float, bytes]]


class Conn:
    """Frames of one TCP connection with correct sequence numbers, on a shared clock."""

    def __init__(self, frames: Frames, cport: int = 40000, sport: int = 80,
                 clock: list[float] | None = None) -> None:
        self.frames = frames
        self.cport, self.sport = cport, sport
        self.seq = {True: 1000, False: 5000}
        self.clock = clock if clock is not None else [1.0]

    def frame(self, to_server: bool, flags: str, data: bytes = b"", *,
              bad_checksum: bool = False) -> None:
        src, dst = (CLIENT, SERVER) if to_server else (SERVER, CLIENT)
        sport, dport = (self.cport, self.sport) if to_server else (self.sport, self.cport)
        tcp = TCP(sport=sport, dport=dport, flags=flags, seq=self.seq[to_server],
                  ack=self.seq[not to_server])
        if bad_checksum:
            tcp.chksum = 0xDEAD
        pkt = Ether() / IP(src=src, dst=dst) / tcp
        self.frames.append((self.clock[0], bytes(pkt / data) if data else bytes(pkt)))
        self.clock[0] += 0.001
        self.seq[to_server] += len(data) + (1 if "S" in flags or "F" in flags else 0)

    def open(self) -> Conn:
        self.frame(True, "S")
        self.frame(False, "SA")
        self.frame(True, "A")
        return self

    def send(self, to_server: bool, data: bytes) -> Conn:
        self.frame(to_server, "PA", data)
        self.frame(not to_server, "A")
        return self

    def close(self) -> Conn:
        self.frame(True, "FA")
        self.frame(False, "FA")
        self.frame(True, "A")
        return self


def _udp(ts: float, payload: bytes, sport: int = 5000, dport: int = 9999) -> tuple[float, bytes]:
    return ts, bytes(Ether() / IP(src=CLIENT, dst=SERVER) / UDP(sport=sport, dport=dport)
                     / payload)


def _http(frames: Frames | None = None, request: bytes = GET, cport: int = 40000) -> Frames:
    frames = frames if frames is not None else []
    Conn(frames, cport=cport).open().send(True, request).send(False, OK).close()
    return frames


class Run:
    """One pipeline run: its report, the EVE events, the backend and the stats."""

    def __init__(self, tmp_path: Path, rules: str, frames: Frames, *,
                 capabilities: Capability = Capability.OFFLINE,
                 on_packet: Callable[[Pipeline], None] | None = None,
                 backend_kw: dict[str, Any] | None = None, **settings: Any) -> None:
        ruleset = load_rule_text(rules)
        assert not ruleset.errors, ruleset.errors
        eve_path = tmp_path / "eve.json"
        eve = EveWriter(eve_path)
        self.stats = Stats()
        self.backend = MemoryBackend(frames, capabilities=capabilities, **(backend_kw or {}))
        self.pipeline = Pipeline(EngineSettings(**settings), DetectEngine(ruleset.rules),
                                 eve=eve, stats=self.stats, classify=lambda _c: None)
        pipeline = self.pipeline
        hook = (lambda: on_packet(pipeline)) if on_packet is not None else None
        self.report: RunReport = pipeline.run(self.backend, on_packet=hook)
        eve.close()
        self.events = [json.loads(line) for line in eve_path.read_text().splitlines()]
        eve_path.unlink()

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event_type"] == kind]

    def sids(self) -> list[int]:
        return [e["alert"]["signature_id"] for e in self.of("alert")]


HTTP_GET = 'alert http any any -> any any (msg:"get"; http.method; content:"GET"; sid:1;)'


def test_a_request_alerts_once_and_its_flow_is_logged(tmp_path: Path) -> None:
    frames = _http()
    run = Run(tmp_path, HTTP_GET, frames)
    (alert,) = run.of("alert")
    assert (alert["src_ip"], alert["dest_ip"], alert["dest_port"]) == (CLIENT, SERVER, 80)
    assert alert["app_proto"] == "http" and alert["alert"]["action"] == "allowed"
    # IDS mode: the request reaches the app layer when the server ACKs it, and a
    # direction is inspected on its own packets: the client's first packet after that ACK
    assert alert["pcap_cnt"] == _first_client_packet_after_ack_of(frames, GET)
    (flow,) = run.of("flow")
    assert flow["flow_id"] == alert["flow_id"] and flow["flow"]["alerted"] is True
    assert (run.report.packets, run.report.flows, run.report.alerts_by_sid) == (
        len(frames), 1, {1: 1})
    assert run.report.bytes == sum(len(f) for _, f in frames)
    assert run.backend.verdicts == []  # not inline: no verdicts


def _first_client_packet_after_ack_of(frames: Frames, data: bytes) -> int:
    """1-based index of the client's first packet after the server ACKed ``data``."""
    pkts = [Ether(f) for _, f in frames]
    sent = next(i for i, p in enumerate(pkts) if bytes(p[TCP].payload) == data)
    end_seq = pkts[sent][TCP].seq + len(data)
    acked = next(i for i, p in enumerate(pkts) if i > sent and p[IP].src == SERVER
                 and p[TCP].ack >= end_seq)
    return next(i for i, p in enumerate(pkts) if i > acked and p[IP].src == CLIENT) + 1


def _verdicts(run: Run) -> list[Verdict]:
    ids = [pkt_id for pkt_id, _ in run.backend.verdicts]
    assert ids == list(range(1, len(ids) + 1))  # exactly one per packet, in order
    return [v for _, v in run.backend.verdicts]


def test_ips_drop_of_a_transaction_drops_the_rest_of_the_flow(tmp_path: Path) -> None:
    frames = _http(request=EVIL)
    _http(frames, cport=40001)  # another flow, untouched
    rule = 'drop http any any -> any any (msg:"evil"; http.uri; content:"/evil"; sid:2;)'
    run = Run(tmp_path, rule, frames, capabilities=Capability.LIVE | Capability.INLINE,
              ips=True)
    verdicts = _verdicts(run)
    assert len(verdicts) == len(frames)
    (alert,) = run.of("alert")
    assert alert["alert"]["action"] == "blocked"
    hit = alert["pcap_cnt"] - 1
    first_flow = verdicts[: len(frames) // 2]
    assert set(first_flow[:hit]) == {Verdict.ACCEPT}
    assert set(first_flow[hit:]) == {Verdict.DROP}  # the alerting packet and all after it
    assert set(verdicts[len(frames) // 2:]) == {Verdict.ACCEPT}
    assert run.report.dropped == len(first_flow) - hit == run.stats.get("ips.blocked")


def test_ips_drop_of_a_packet_drops_only_that_packet(tmp_path: Path) -> None:
    frames = [_udp(1.0, b"fine"), _udp(1.1, b"EVIL"), _udp(1.2, b"fine again")]
    rule = 'drop udp any any -> any any (msg:"evil"; content:"EVIL"; sid:3;)'
    run = Run(tmp_path, rule, frames, capabilities=Capability.LIVE | Capability.INLINE,
              ips=True)
    assert _verdicts(run) == [Verdict.ACCEPT, Verdict.DROP, Verdict.ACCEPT]
    assert run.report.dropped == 1


def test_without_ips_a_drop_rule_only_alerts(tmp_path: Path) -> None:
    frames = [_udp(1.0, b"EVIL"), _udp(1.1, b"EVIL")]
    rule = 'drop udp any any -> any any (msg:"evil"; content:"EVIL"; sid:3;)'
    run = Run(tmp_path, rule, frames, capabilities=Capability.LIVE | Capability.INLINE)
    assert _verdicts(run) == [Verdict.ACCEPT, Verdict.ACCEPT]
    assert run.report.dropped == 0
    assert [a["alert"]["action"] for a in run.of("alert")] == ["allowed", "allowed"]


def test_a_pass_on_a_tcp_stream_passes_the_whole_flow(tmp_path: Path) -> None:
    rules = "\n".join([
        'pass tcp any any -> any any (msg:"trusted"; content:"HELLO"; sid:10;)',
        'alert tcp any any -> any any (msg:"secret"; content:"secret"; sid:11;)',
    ])
    frames: Frames = []
    Conn(frames, cport=40000).open().send(True, b"HELLO").send(True, b"secret").close()
    Conn(frames, cport=40001).open().send(True, b"secret").close()
    run = Run(tmp_path, rules, frames)
    assert [a["src_port"] for a in run.of("alert")] == [40001]
    assert len(run.of("flow")) == 2  # a passed flow is still logged


def test_a_pass_on_a_udp_packet_passes_only_that_packet(tmp_path: Path) -> None:
    rules = "\n".join([
        'pass udp any any -> any any (msg:"trusted"; content:"HELLO"; sid:10;)',
        'alert udp any any -> any any (msg:"secret"; content:"secret"; sid:11;)',
    ])
    frames = [_udp(1.0, b"HELLO secret"), _udp(1.1, b"secret")]
    run = Run(tmp_path, rules, frames)
    assert run.report.alerts_by_sid == {11: 1}
    assert run.of("alert")[0]["pcap_cnt"] == 2


def test_packet_alert_max_caps_the_alerts_logged_per_packet(tmp_path: Path) -> None:
    rules = "\n".join(
        f'alert udp any any -> any any (msg:"r{sid}"; content:"x"; priority:{sid}; sid:{sid};)'
        for sid in (1, 2, 3))
    frames = [_udp(1.0, b"x")]
    assert sorted(Run(tmp_path, rules, frames).sids()) == [1, 2, 3]
    capped = Run(tmp_path, rules, frames, packet_alert_max=2)
    assert capped.sids() == [1, 2]  # the highest priorities are kept


def test_invalid_and_non_ip_frames_are_accepted_without_flows(tmp_path: Path) -> None:
    good = _udp(1.0, b"x")
    truncated = (1.1, good[1][:20])  # Ethernet + half an IPv4 header
    arp = (1.2, bytes(Ether() / ARP(psrc=CLIENT, pdst=SERVER)))
    run = Run(tmp_path, 'alert ip any any -> any any (msg:"any"; sid:1;)', [truncated, arp, good],
              capabilities=Capability.LIVE | Capability.INLINE)
    assert _verdicts(run) == [Verdict.ACCEPT] * 3
    assert run.report.invalid == 1
    assert run.report.flows == 1 and len(run.of("flow")) == 1
    assert run.stats.get("decoder.invalid") == 1 and run.stats.get("decoder.arp") == 1


def test_stop_ends_the_run_after_the_current_packet(tmp_path: Path) -> None:
    frames = [_udp(1.0 + i, b"x", sport=5000 + i) for i in range(5)]
    seen: list[int] = []

    def stop_after_two(pipeline: Pipeline) -> None:
        seen.append(1)
        if len(seen) == 2:
            pipeline.stop()

    run = Run(tmp_path, 'alert udp any any -> any any (msg:"x"; sid:1;)', frames,
              on_packet=stop_after_two)
    assert run.report.interrupted
    assert run.report.packets == 2 and run.report.alerts_by_sid == {1: 2}
    assert len(run.of("flow")) == 2  # the flows seen so far are still ended and logged


def test_flows_time_out_by_capture_time(tmp_path: Path) -> None:
    # the flow manager runs on packet time; the other flow's packet at 500 s lets it see
    # that the first flow (udp new timeout 30 s) idled out before it comes back
    frames = [_udp(1.0, b"a"), _udp(500.0, b"x", sport=6000), _udp(1000.0, b"b"),
              _udp(1000.5, b"c")]
    run = Run(tmp_path, 'alert udp any any -> any any (msg:"x"; sid:1;)', frames)
    flows = run.of("flow")
    assert run.report.flows == 3
    assert [(f["src_port"], f["flow"]["reason"], f["flow"]["pkts_toserver"]) for f in flows] == [
        (5000, "timeout", 1), (6000, "timeout", 1), (5000, "shutdown", 2)]


def _flow_key(frame: bytes) -> FlowTuple | None:
    pkt = Ether(frame)
    if IP not in pkt or TCP not in pkt:
        return None
    ip, tcp = pkt[IP], pkt[TCP]
    return FlowTuple(bytes(map(int, ip.src.split("."))), bytes(map(int, ip.dst.split("."))),
                     tcp.sport, tcp.dport, 6)


def test_a_rule_bypass_goes_to_the_capture_layer(tmp_path: Path) -> None:
    frames: Frames = []
    Conn(frames).open().send(True, GET).send(False, OK).send(False, OK).close()
    rule = 'alert http any any -> any any (msg:"big"; http.method; content:"GET"; bypass; sid:5;)'
    run = Run(tmp_path, rule, frames, capabilities=Capability.LIVE | Capability.BYPASS,
              backend_kw={"bypass_result": True, "flow_key": _flow_key})
    ((tup, _pkt_id),) = run.backend.bypass_calls
    assert (tup.sport, tup.dport) == (40000, 80)  # always the client -> server tuple
    assert run.backend.withheld > 0  # the capture layer stopped delivering the flow
    assert run.report.bypassed_flows_capture == 1 and run.report.bypassed_flows_local == 0
    assert run.backend.forgotten == [tup]  # its kernel entry is removed at flow end
    (flow,) = run.of("flow")
    assert flow["flow"]["bypass"] == "capture"
    assert run.stats.get("flow_bypassed.reason.rule") == 1


def test_a_tunnelled_flow_is_bypassed_locally(tmp_path: Path) -> None:
    """The wire carries the outer headers, which a capture bypass keyed on the inner
    tuple would never match (Suricata's AFPBypassCallback refuses tunnel packets)."""
    from scapy.layers.l2 import GRE

    inner: Frames = []
    Conn(inner).open().send(True, GET).send(False, OK).send(False, OK).close()
    outer = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(
        src="192.0.2.1", dst="192.0.2.2") / GRE()
    frames = [(ts, bytes(outer / Ether(frame)[IP])) for ts, frame in inner]
    rule = 'alert http any any -> any any (msg:"big"; http.method; content:"GET"; bypass; sid:5;)'
    run = Run(tmp_path, rule, frames, capabilities=Capability.LIVE | Capability.BYPASS,
              backend_kw={"bypass_result": True, "flow_key": _flow_key})
    assert run.backend.bypass_calls == []
    assert run.report.bypassed_flows_local == 1 and run.report.bypassed_flows_capture == 0
    assert run.sids() == [5]
    (flow,) = run.of("flow")
    assert flow["flow"]["bypass"] == "local" and flow["src_ip"] == CLIENT


def test_icmp_is_bypassed_locally_even_when_the_capture_could(tmp_path: Path) -> None:
    frames = [(1.0 + i, bytes(Ether() / IP(src=CLIENT, dst=SERVER) / ICMP(seq=i) / b"ping"))
              for i in range(3)]
    rule = 'alert icmp any any -> any any (msg:"ping"; content:"ping"; bypass; sid:6;)'
    run = Run(tmp_path, rule, frames, capabilities=Capability.LIVE | Capability.BYPASS,
              backend_kw={"bypass_result": True})
    assert run.backend.bypass_calls == []
    assert run.report.bypassed_flows_local == 1
    assert run.sids() == [6]  # later packets of the bypassed flow are not inspected
    assert run.stats.get("flow_bypassed.local_pkts") == 2


def test_stream_depth_with_stream_bypass_bypasses_the_flow(tmp_path: Path) -> None:
    frames: Frames = []
    conn = Conn(frames).open().send(True, GET)
    for _ in range(4):
        conn.send(False, b"B" * 500)
    conn.close()
    stream = StreamConfig(reassembly_depth=600, bypass=True)
    run = Run(tmp_path, HTTP_GET, frames, stream=stream)
    assert run.report.bypassed_flows_local == 1
    assert run.stats.get("flow_bypassed.reason.stream-depth") == 1
    assert run.stats.get("flow_bypassed.local_pkts") > 0
    no_bypass = Run(tmp_path, HTTP_GET, frames, stream=dataclasses.replace(stream, bypass=False))
    assert no_bypass.report.bypassed_flows_local == 0


def _midstream_frames() -> Frames:
    frames: Frames = []
    conn = Conn(frames)
    conn.send(True, GET)  # no handshake: the capture started mid-connection
    conn.send(False, OK)
    return frames


PACKET_GET = 'alert tcp any any -> any any (msg:"pkt"; content:"GET /"; sid:20;)'


def test_without_midstream_a_session_is_inspected_as_packets_only(tmp_path: Path) -> None:
    run = Run(tmp_path, HTTP_GET + "\n" + PACKET_GET, _midstream_frames())
    assert run.sids() == [20]  # no stream, so no http transaction: only the packet rule


@pytest.mark.parametrize(("policy", "ips", "sids", "all_dropped"), [
    ("pass-flow", False, [], False),
    ("drop-flow", True, [], True),
    ("ignore", True, [20], False),
])
def test_the_midstream_policy_decides_the_flow(tmp_path: Path, policy: str, ips: bool,
                                               sids: list[int], all_dropped: bool) -> None:
    frames = _midstream_frames()
    run = Run(tmp_path, PACKET_GET, frames, midstream_policy=policy, ips=ips,
              capabilities=Capability.LIVE | Capability.INLINE)
    assert run.sids() == sids
    verdicts = _verdicts(run)
    assert len(verdicts) == len(frames)
    assert set(verdicts) == ({Verdict.DROP} if all_dropped else {Verdict.ACCEPT})
    assert run.report.dropped == (len(frames) if all_dropped else 0)


def test_a_midstream_pickup_is_parsed_when_enabled(tmp_path: Path) -> None:
    run = Run(tmp_path, HTTP_GET, _midstream_frames(), stream=StreamConfig(midstream=True))
    assert run.sids() == [1]


def test_a_bad_tcp_checksum_keeps_the_packet_out_of_the_stream(tmp_path: Path) -> None:
    frames: Frames = []
    conn = Conn(frames).open()
    conn.frame(True, "PA", GET, bad_checksum=True)
    conn.frame(False, "A")
    conn.close()
    checked = Run(tmp_path, HTTP_GET + "\n" + PACKET_GET, frames)
    assert checked.sids() == [20]  # still a packet, never stream or http
    unchecked = Run(tmp_path, HTTP_GET, frames, checksum_validation=False)
    assert unchecked.sids() == [1]


def test_unacknowledged_data_is_inspected_at_flow_end(tmp_path: Path) -> None:
    frames: Frames = []
    conn = Conn(frames).open()
    conn.frame(True, "PA", GET)  # the capture ends before the server ACKs it
    run = Run(tmp_path, HTTP_GET, frames)
    (alert,) = run.of("alert")
    assert "pcap_cnt" not in alert  # raised on the flow-end pseudo packet
    assert run.report.flows == 1


def test_capture_counters_reach_the_stats(tmp_path: Path) -> None:
    frames = _http()
    run = Run(tmp_path, HTTP_GET, frames)
    assert run.stats.get("capture.kernel_packets") == len(frames)
    assert run.stats.get("decoder.pkts") == len(frames)
    assert run.stats.get("flow.end") == 1
    (stats,) = run.of("stats")
    assert stats["stats"]["decoder"]["pkts"] == len(frames)


RAW_SPLIT = 'alert tcp any any -> any any (msg:"split"; flow:to_server; content:"d2d3"; sid:7;)'


def test_a_raw_pattern_across_segments_of_one_http_request_matches(tmp_path: Path) -> None:
    # Suricata inspects the raw stream of an HTTP request when the request completes
    # (the parser's raw trigger), not piece by piece: "d2" ends one segment, "d3" starts
    # the next, and the rule still fires, once
    frames: Frames = []
    conn = Conn(frames).open()
    conn.send(True, b"GET /a1d2").send(True, b"d3 HTTP/1.1\r\nHost: x\r\n\r\n").send(False, OK)
    conn.close()
    run = Run(tmp_path, RAW_SPLIT, frames)
    assert run.sids() == [7]


def test_raw_stream_of_a_non_http_flow_is_inspected_piece_by_piece(tmp_path: Path) -> None:
    # without an app-layer trigger, what the peer ACKed is inspected on the next packet
    frames: Frames = []
    conn = Conn(frames, sport=7777).open()
    conn.send(True, b"hello d2").send(True, b"d3 world").close()
    run = Run(tmp_path, RAW_SPLIT.replace("d2d3", "hello"), frames)
    (alert,) = run.of("alert")
    assert alert["pcap_cnt"] == _first_client_packet_after_ack_of(frames, b"hello d2")
