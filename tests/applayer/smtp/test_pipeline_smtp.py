"""SMTP end to end on the in-memory backend: probed off-port, parsed, file.data of the MIME
attachment alerts, EVE smtp event with its email object (schema-valid), alert.smtp/email."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scapy.layers.inet import IP, TCP
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
from tests.applayer.smtp import sessions
from tests.outputs.eve_schema import validate_line

CLIENT, SERVER, CPORT, SPORT = "10.0.0.1", "10.0.0.2", 40000, 2525  # not 25: probing decides

RULES = """\
alert smtp any any -> any any (msg:"attachment"; flow:to_server,established; file_data; \
content:"EVILPAYLOAD"; sid:1;)
alert smtp any any -> any any (msg:"helo"; smtp.helo; content:"mx.client"; sid:2;)
alert smtp any any -> any any (msg:"subject"; email.subject; content:"Invoice"; sid:3;)
alert smtp any any -> any any (msg:"not in body"; file_data; content:"See http"; sid:4;)
alert http any any -> any any (msg:"http only"; file_data; content:"EVILPAYLOAD"; sid:5;)
"""


def _frames(chunks: list[tuple[bool, bytes]]) -> list[tuple[float, bytes]]:
    seq = {True: 1000, False: 5000}
    frames: list[tuple[float, bytes]] = []
    ts = [1.0]

    def frame(to_server: bool, flags: str, data: bytes = b"") -> None:
        src, dst = (CLIENT, SERVER) if to_server else (SERVER, CLIENT)
        sport, dport = (CPORT, SPORT) if to_server else (SPORT, CPORT)
        pkt = Ether() / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=flags,
                                                   seq=seq[to_server], ack=seq[not to_server])
        frames.append((ts[0], bytes(pkt / data) if data else bytes(pkt)))
        ts[0] += 0.001
        seq[to_server] += len(data) + (1 if "S" in flags or "F" in flags else 0)

    frame(True, "S")
    frame(False, "SA")
    frame(True, "A")
    for to_server, data in chunks:
        for off in range(0, len(data), 1400):
            frame(to_server, "PA", data[off:off + 1400])
            frame(not to_server, "A")
    frame(True, "FA")
    frame(False, "FA")
    frame(True, "A")
    return frames


def _run(tmp_path: Path, chunks: list[tuple[bool, bytes]], section: dict[str, Any] | None = None
         ) -> list[dict[str, Any]]:
    applayer, warnings = registry.load_settings(section or {})
    assert warnings == []
    engine = DetectEngine(load_rule_text(RULES).rules)
    assert engine.skipped == []
    eve = EveWriter(tmp_path / "eve.json")
    backend = MemoryBackend(_frames(chunks), capabilities=Capability.OFFLINE)
    pipeline = Pipeline(EngineSettings(applayer=applayer), engine, eve=eve, stats=Stats(),
                        classify=lambda _c: None)
    pipeline.run(backend)
    eve.close()
    lines = (tmp_path / "eve.json").read_text().splitlines()
    for line in lines:
        validate_line(line)
    return [json.loads(line) for line in lines]


def test_attachment_alerts_and_smtp_event(tmp_path: Path) -> None:
    events = _run(tmp_path, sessions.exchange())
    alerts = [e for e in events if e["event_type"] == "alert"]
    assert sorted(a["alert"]["signature_id"] for a in alerts) == [1, 2, 3]
    file_alert = next(a for a in alerts if a["alert"]["signature_id"] == 1)
    assert file_alert["app_proto"] == "smtp"
    assert file_alert["smtp"]["helo"] == "mx.client.example"
    assert file_alert["email"]["attachment"] == ["exploit.ps"]
    (smtp,) = [e for e in events if e["event_type"] == "smtp"]
    assert smtp["smtp"]["mail_from"] == "<alice@example.org>"
    assert smtp["smtp"]["rcpt_to"] == ["<bob@example.net>", "<carol@example.net>"]
    assert smtp["email"]["status"] == "PARSE_DONE"
    assert smtp["email"]["to"] == ["bob@example.net", "Carol <carol@example.net>"]
    assert smtp["src_ip"] == CLIENT and smtp["dest_port"] == SPORT
    (flow,) = [e for e in events if e["event_type"] == "flow"]
    assert flow["app_proto"] == "smtp"


def test_disabled_smtp_is_not_parsed(tmp_path: Path) -> None:
    events = _run(tmp_path, sessions.exchange(), {"smtp": {"enabled": "no"}})
    assert not [e for e in events if e["event_type"] in ("alert", "smtp")]


def test_attachment_is_a_fileinfo_event_with_smtp_metadata(tmp_path: Path) -> None:
    events = _run(tmp_path, sessions.exchange())
    (info,) = [e for e in events if e["event_type"] == "fileinfo"]
    assert info["app_proto"] == "smtp"
    assert info["fileinfo"]["filename"] == "exploit.ps"
    assert info["fileinfo"]["state"] == "CLOSED"
    assert info["smtp"]["helo"] == "mx.client.example"
    assert info["email"]["attachment"] == ["exploit.ps"]
    assert (info["src_ip"], info["dest_port"]) == (CLIENT, SPORT)  # sent by the client
