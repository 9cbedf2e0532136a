"""The pipeline with registered protocols, driven by the in-memory backend: a TLS session
is probed (not by port), parsed, inspected with tls keywords, logged as an EVE ``tls``
event, and ``encryption-handling`` decides what happens once the handshake is done."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("cryptography")
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from capture_backends.base import Capability
from capture_backends.memory import MemoryBackend
from ruleengine.applayer import registry
from ruleengine.detect.engine import DetectEngine
from ruleengine.outputs.eve import EveWriter
from ruleengine.outputs.stats import Stats
from ruleengine.pipeline import Pipeline
from ruleengine.rules.loader import load_rule_text
from ruleengine.settings import EngineSettings
from tests.applayer.tls import handshake as hs

CLIENT, SERVER, CPORT, SPORT = "10.0.0.1", "10.0.0.2", 40000, 8443  # not 443: probing decides
CCS = hs.record(20, b"\x01")
FINISHED = hs.record(22, b"\x16" * 40)  # encrypted Finished: opaque to the parser
APP_DATA = hs.record(23, b"SECRET-PAYLOAD" * 20)


class _Tcp:
    """Frames of one TCP connection with correct sequence numbers."""

    def __init__(self) -> None:
        self.seq = {True: 1000, False: 5000}
        self.ts = 1.0
        self.frames: list[tuple[float, bytes]] = []

    def _frame(self, to_server: bool, flags: str, data: bytes = b"") -> None:
        src, dst = (CLIENT, SERVER) if to_server else (SERVER, CLIENT)
        sport, dport = (CPORT, SPORT) if to_server else (SPORT, CPORT)
        pkt = Ether() / IP(src=src, dst=dst) / TCP(
            sport=sport, dport=dport, flags=flags, seq=self.seq[to_server],
            ack=self.seq[not to_server]) / data
        self.frames.append((self.ts, bytes(pkt)))
        self.ts += 0.001
        self.seq[to_server] += len(data) + (1 if "S" in flags or "F" in flags else 0)

    def handshake(self) -> None:
        self._frame(True, "S")
        self._frame(False, "SA")
        self._frame(True, "A")

    def send(self, to_server: bool, data: bytes) -> None:
        self._frame(to_server, "PA", data)
        self._frame(not to_server, "A")

    def close(self) -> None:
        self._frame(True, "FA")
        self._frame(False, "FA")
        self._frame(True, "A")


def _session(sni: bytes = b"big.example") -> list[tuple[float, bytes]]:
    der = hs.make_cert(cn="big.example")
    tcp = _Tcp()
    tcp.handshake()
    tcp.send(True, hs.tls12_client_flight(sni))
    tcp.send(False, hs.tls12_server_flight(der))
    tcp.send(True, hs.record(22, hs.hs(16, b"\x00" * 66)) + CCS + FINISHED)  # client keyx
    tcp.send(False, CCS + FINISHED)
    for _ in range(5):
        tcp.send(False, APP_DATA)
    tcp.close()
    return tcp.frames


def _run(tmp_path: Path, rules: str, overrides: dict[str, Any] | None = None,
         capture_bypass: bool = False, frames: list[tuple[float, bytes]] | None = None,
         ) -> tuple[list[dict[str, Any]], Pipeline, MemoryBackend]:
    section = {"tls": overrides} if overrides else {}
    applayer, warnings = registry.load_settings(section)
    assert all("encrypt-handling" in w for w in warnings)  # only the old-spelling note
    settings = EngineSettings(applayer=applayer)
    ruleset = load_rule_text(rules)
    engine = DetectEngine(ruleset.rules)
    assert engine.skipped == []
    eve = EveWriter(tmp_path / "eve.json", type_options={"tls": {"extended": True}})
    caps = Capability.OFFLINE | (Capability.BYPASS if capture_bypass else Capability.OFFLINE)
    backend = MemoryBackend(_session() if frames is None else frames, capabilities=caps,
                            bypass_result=capture_bypass)
    pipeline = Pipeline(settings, engine, eve=eve, stats=Stats(), classify=lambda _c: None)
    pipeline.run(backend)
    eve.close()
    events = [json.loads(line) for line in (tmp_path / "eve.json").read_text().splitlines()]
    return events, pipeline, backend


def _of(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event_type"] == kind]


SNI_RULE = ('alert tls any any -> any any (msg:"sni"; tls.sni; content:"big.example"; '
            'sid:1;)\n')
PAYLOAD_RULE = 'alert tcp any any -> any any (msg:"data"; content:"SECRET-PAYLOAD"; sid:2;)\n'


def test_tls_is_probed_parsed_alerted_and_logged(tmp_path: Path) -> None:
    events, _, _ = _run(tmp_path, SNI_RULE, {"encryption-handling": "full"})
    alerts = _of(events, "alert")
    assert [a["alert"]["signature_id"] for a in alerts] == [1]
    assert alerts[0]["app_proto"] == "tls"
    assert alerts[0]["tls"]["sni"] == "big.example"
    (tls,) = _of(events, "tls")
    assert tls["tls"]["sni"] == "big.example"
    assert "CN=big.example" in tls["tls"]["subject"]
    (flow,) = _of(events, "flow")
    assert flow["app_proto"] == "tls" and flow["flow"]["state"] != "bypassed"


def test_full_inspects_the_encrypted_rest(tmp_path: Path) -> None:
    events, _, _ = _run(tmp_path, PAYLOAD_RULE, {"encryption-handling": "full"})
    assert 2 in {a["alert"]["signature_id"] for a in _of(events, "alert")}


def test_default_stops_inspecting_after_the_handshake(tmp_path: Path) -> None:
    events, pipeline, _ = _run(tmp_path, SNI_RULE + PAYLOAD_RULE)
    sids = [a["alert"]["signature_id"] for a in _of(events, "alert")]
    assert sids == [1]  # the SNI alert, but nothing from the encrypted data
    assert pipeline.stats.snapshot().get("app_layer.tls.encrypted") == 1
    (flow,) = _of(events, "flow")
    assert flow["flow"]["state"] != "bypassed"


@pytest.mark.parametrize("key", ["encryption-handling", "encrypt-handling"])
def test_bypass_after_the_handshake_is_local_on_a_pcap(tmp_path: Path, key: str) -> None:
    events, pipeline, _ = _run(tmp_path, SNI_RULE + PAYLOAD_RULE, {key: "bypass"})
    assert [a["alert"]["signature_id"] for a in _of(events, "alert")] == [1]
    (flow,) = _of(events, "flow")
    assert flow["flow"]["state"] == "bypassed" and flow["flow"]["bypass"] == "local"
    assert flow["metadata"]["flowvars"][0] == {"bypass_reason": "encryption"}
    assert flow["metadata"]["flowvars"][1]["bypass_accounting"]["reconciled"] is True
    assert pipeline.report.bypassed_flows_local == 1
    assert pipeline.stats.snapshot().get("flow_bypassed.reason.encryption") == 1
    (tls,) = _of(events, "tls")  # logged before the bypass
    assert tls["tls"]["sni"] == "big.example"


def test_bypass_goes_to_the_capture_backend_when_it_can(tmp_path: Path) -> None:
    events, pipeline, backend = _run(tmp_path, SNI_RULE, {"encryption-handling": "bypass"},
                                     capture_bypass=True)
    assert len(backend.bypass_calls) == 1
    assert pipeline.report.bypassed_flows_capture == 1
    (flow,) = _of(events, "flow")
    assert flow["flow"]["bypass"] == "capture"


def test_a_rule_bypass_records_its_sid(tmp_path: Path) -> None:
    rules = ('alert tls any any -> any any (msg:"sni"; tls.sni; content:"big.example"; '
             'bypass; sid:7;)\n')
    events, pipeline, _ = _run(tmp_path, rules)
    (flow,) = _of(events, "flow")
    assert flow["metadata"]["flowvars"][0] == {"bypass_reason": "rule:7"}
    assert pipeline.stats.snapshot().get("flow_bypassed.reason.rule") == 1


SNI_BYPASS_RULE = ('alert tls any any -> any any (msg:"sni"; tls.sni; content:"big.example"; '
                   'bypass; sid:7;)\n')


def _unfinished_session(later: float | None) -> list[tuple[float, bytes]]:
    """A ClientHello and the server's first flight, no end; with ``later``, one packet of
    another flow that much later (capture time moves on and the first flow times out)."""
    tcp = _Tcp()
    tcp.handshake()
    tcp.send(True, hs.tls12_client_flight(b"big.example"))
    tcp.send(False, hs.tls12_server_flight(hs.make_cert(cn="big.example")))
    frames = list(tcp.frames)
    if later is not None:
        other = Ether() / IP(src="10.0.0.3", dst="10.0.0.4") / UDP(sport=1, dport=9) / b"x"
        frames.append((tcp.ts + later, bytes(other)))
    return frames


@pytest.mark.parametrize("capture_bypass", [False, True], ids=["local", "capture"])
def test_a_bypassed_flow_that_times_out_logs_no_unfinished_tx(tmp_path: Path,
                                                              capture_bypass: bool) -> None:
    """Suricata's flow manager gives a timed-out bypassed flow no pseudo packets, so the TLS
    tx the bypass cut short (handshake not done) is never logged; the alert has its tls."""
    events, _, _ = _run(tmp_path, SNI_BYPASS_RULE, capture_bypass=capture_bypass,
                        frames=_unfinished_session(later=10_000.0))
    (flow,) = [f for f in _of(events, "flow") if f["proto"] == "TCP"]
    assert flow["flow"]["state"] == "bypassed" and flow["flow"]["reason"] == "timeout", flow
    assert _of(events, "tls") == []
    (alert,) = _of(events, "alert")
    assert alert["tls"]["sni"] == "big.example"


def test_a_bypassed_flow_still_open_at_shutdown_logs_its_tx(tmp_path: Path) -> None:
    """At shutdown the flow is flushed (pseudo packets), its tx logged as on any flow."""
    events, _, _ = _run(tmp_path, SNI_BYPASS_RULE, frames=_unfinished_session(later=None))
    (flow,) = _of(events, "flow")
    assert flow["flow"]["state"] == "bypassed" and flow["flow"]["reason"] == "shutdown", flow
    (tls,) = _of(events, "tls")
    assert tls["tls"]["sni"] == "big.example"


def test_disabled_protocol_is_not_parsed(tmp_path: Path) -> None:
    events, _, _ = _run(tmp_path, SNI_RULE, {"enabled": "no"})
    assert _of(events, "alert") == [] and _of(events, "tls") == []


def _dns_frames(tcp: bool) -> list[tuple[float, bytes]]:
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.layers.inet import UDP

    query = DNS(id=7, rd=1, qd=DNSQR(qname="evil.example.com", qtype="A"))
    answer = DNS(id=7, qr=1, aa=1, qd=DNSQR(qname="evil.example.com"),
                 an=DNSRR(rrname="evil.example.com", rdata="1.2.3.4", ttl=60))
    if not tcp:
        base = Ether() / IP(src=CLIENT, dst=SERVER)
        back = Ether() / IP(src=SERVER, dst=CLIENT)
        return [(1.0, bytes(base / UDP(sport=CPORT, dport=5300) / query)),
                (1.1, bytes(back / UDP(sport=5300, dport=CPORT) / answer))]
    conn = _Tcp()
    conn.handshake()
    q, a = bytes(query), bytes(answer)
    wire_q = len(q).to_bytes(2, "big") + q
    conn.send(True, wire_q[:5])  # a message split across segments
    conn.send(True, wire_q[5:])
    conn.send(False, len(a).to_bytes(2, "big") + a)
    conn.close()
    return conn.frames


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_dns_off_port_alerts_and_logs_each_message_from_its_sender(tmp_path: Path,
                                                                    tcp: bool) -> None:
    rules = ('alert dns any any -> any any (msg:"q"; dns.query; content:"example.com"; '
             'endswith; sid:1;)\n')
    engine = DetectEngine(load_rule_text(rules).rules)
    eve = EveWriter(tmp_path / "eve.json")
    pipeline = Pipeline(EngineSettings(), engine, eve=eve, stats=Stats(),
                        classify=lambda _c: None)
    pipeline.run(MemoryBackend(_dns_frames(tcp)))
    eve.close()
    events = [json.loads(line) for line in (tmp_path / "eve.json").read_text().splitlines()]
    assert [a["alert"]["signature_id"] for a in _of(events, "alert")] == [1]
    request, response = _of(events, "dns")
    assert request["dns"]["type"] == "request" and request["src_ip"] == CLIENT
    assert response["dns"]["type"] == "response" and response["src_ip"] == SERVER
    assert response["dns"]["answers"][0]["rdata"] == "1.2.3.4"
    assert all("pcap_cnt" in e for e in (request, response))


JA3_RULE = ('alert tls any any -> any any (msg:"ja3"; ja3.hash; content:!"00000000000000000000'
            '000000000000"; sid:7;)\n')


@pytest.mark.parametrize("rules", [SNI_RULE, JA3_RULE])
def test_ja3_auto_is_logged_when_a_rule_uses_ja3(tmp_path: Path, rules: str) -> None:
    events, _, _ = _run(tmp_path, rules, {"encryption-handling": "full"})
    (tls,) = _of(events, "tls")
    if rules is JA3_RULE:
        assert len(tls["tls"]["ja3"]["hash"]) == 32 and "ja3s" in tls["tls"]
        assert 7 in {a["alert"]["signature_id"] for a in _of(events, "alert")}
    else:
        assert "ja3" not in tls["tls"]  # auto, and no rule asks for it: not computed for EVE


def _http_client_ssh_server() -> list[tuple[float, bytes]]:
    tcp = _Tcp()
    tcp.handshake()
    tcp.send(True, b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8\r\n\r\n")
    tcp.send(False, b"SSH-2.0-OpenSSH_9.2\r\n")
    tcp.send(False, b"Protocol mismatch.\n")
    tcp.close()
    return tcp.frames


@pytest.mark.parametrize(("options", "fired"), [
    ("flow:to_client; app-layer-protocol:http1,to_server; app-layer-protocol:ssh,to_client;", 1),
    ("app-layer-protocol:ssh,either;", 2),  # each direction once the banner is known
    ("app-layer-protocol:ssh;", 1),  # "direction": the to-client packets' protocol
    ("app-layer-protocol:ssh,to_server;", 0),
    ("app-layer-protocol:http,final;", 2),  # once per direction
    ("app-layer-protocol:ssh,final;", 0),
])
def test_app_layer_protocol_per_direction(tmp_path: Path, options: str, fired: int) -> None:
    """An HTTP client talking to an SSH server (suricata-verify detect-app-layer-protocol-05):
    each direction has its own protocol; a protocol-detection-only rule fires at most once
    per direction, on the packet where that direction's protocol is known."""
    rule = f'alert tcp any any -> any any (msg:"alp"; {options} sid:9;)\n'
    events, pipeline, _ = _run(tmp_path, rule, frames=_http_client_ssh_server())
    assert len(_of(events, "alert")) == fired
    assert pipeline.stats.snapshot().get("app_layer.mismatch_protocol_both_directions") == 1
