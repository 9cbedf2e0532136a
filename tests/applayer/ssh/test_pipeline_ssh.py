"""SSH through the whole engine on the in-memory backend: probed off port 22, parsed,
inspected with ssh keywords, logged as EVE ``ssh`` (and ``alert.ssh``), and
``encryption-handling`` applied once both sides sent NEWKEYS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from capture_backends.base import Capability
from capture_backends.memory import MemoryBackend
from ruleengine.applayer import registry
from ruleengine.detect.engine import DetectEngine
from ruleengine.outputs.eve import EveWriter
from ruleengine.outputs.stats import Stats
from ruleengine.pipeline import Pipeline
from ruleengine.rules.loader import load_rule_text
from ruleengine.settings import EngineSettings
from tests.outputs.eve_schema import validate_line

from . import ssh_capture
from .helpers import CLIENT_LISTS, NEWKEYS, SERVER_LISTS, expected_hassh, kexinit, packet
from .tcp import TcpConversation

SECRET = b"ENCRYPTED-PAYLOAD-" * 40


def session(client_banner: bytes = b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n",
            server_banner: bytes = b"SSH-2.0-OpenSSH_8.4\r\n") -> list[tuple[float, bytes]]:
    """An SSH connection in its real order, then encrypted traffic both ways."""
    tcp = TcpConversation()
    tcp.handshake()
    tcp.send(True, client_banner)
    tcp.send(False, server_banner)
    tcp.send(True, kexinit(CLIENT_LISTS))
    tcp.send(False, kexinit(SERVER_LISTS))
    tcp.send(True, packet(30, b"\x01" * 36))
    tcp.send(False, packet(31, b"\x02" * 600) + NEWKEYS)
    tcp.send(True, NEWKEYS)
    for _ in range(3):
        tcp.send(True, SECRET)
        tcp.send(False, SECRET)
    tcp.close()
    return tcp.frames


def run(tmp_path: Path, rules: str, ssh: dict[str, Any] | None = None,
        frames: list[tuple[float, bytes]] | None = None, capture_bypass: bool = False,
        ) -> tuple[list[dict[str, Any]], Pipeline, MemoryBackend]:
    applayer, warnings = registry.load_settings({"ssh": ssh} if ssh else {})
    assert warnings == []
    engine = DetectEngine(load_rule_text(rules).rules)
    assert engine.skipped == []
    eve = EveWriter(tmp_path / "eve.json")
    caps = Capability.OFFLINE | (Capability.BYPASS if capture_bypass else Capability.OFFLINE)
    backend = MemoryBackend(frames if frames is not None else session(), capabilities=caps,
                            bypass_result=capture_bypass)
    pipeline = Pipeline(EngineSettings(applayer=applayer), engine, eve=eve, stats=Stats(),
                        classify=lambda _c: None)
    pipeline.run(backend)
    eve.close()
    lines = (tmp_path / "eve.json").read_text().splitlines()
    return [validate_line(line) for line in lines], pipeline, backend


def of(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event_type"] == kind]


def sids(events: list[dict[str, Any]]) -> list[int]:
    return [a["alert"]["signature_id"] for a in of(events, "alert")]


SOFTWARE_RULE = ('alert ssh any any -> any any (msg:"openssh client"; flow:to_server; '
                 'ssh.software; content:"OpenSSH"; sid:1;)\n')
PAYLOAD_RULE = 'alert tcp any any -> any any (msg:"data"; content:"ENCRYPTED-PAYLOAD"; sid:2;)\n'


def test_ssh_software_alert_off_port_with_alert_ssh(tmp_path: Path) -> None:
    events, _, _ = run(tmp_path, SOFTWARE_RULE, {"encryption-handling": "full"})
    (alert,) = of(events, "alert")
    assert alert["alert"]["signature_id"] == 1 and alert["app_proto"] == "ssh"
    assert alert["ssh"]["client"]["software_version"] == "OpenSSH_9.2p1"
    assert alert["dest_port"] == 2222
    (flow,) = of(events, "flow")
    assert flow["app_proto"] == "ssh"


def test_server_side_keywords(tmp_path: Path) -> None:
    rules = (
        'alert ssh any any -> any any (msg:"sw"; flow:to_client; ssh.software; '
        'content:"OpenSSH_8"; sid:10;)\n'
        'alert ssh any any -> any any (msg:"pv"; flow:to_client; ssh.protoversion:2_compat; '
        'sid:11;)\n'
        'alert ssh any any -> any any (msg:"sv"; flow:to_client; '
        'ssh.softwareversion:OpenSSH_8.4; sid:12;)\n'
        'alert ssh any any -> any any (msg:"sv no"; flow:to_client; '
        'ssh.softwareversion:OpenSSH; sid:13;)\n'
        'alert ssh any any -> any any (msg:"proto"; flow:to_server; ssh_proto; '
        'content:"2.0"; sid:14;)\n')
    events, _, _ = run(tmp_path, rules)
    assert sorted(sids(events)) == [10, 11, 12, 14]


def test_hassh_rules_and_eve_ssh_event(tmp_path: Path) -> None:
    c_text, c_hash = expected_hassh(CLIENT_LISTS, True)
    s_text, s_hash = expected_hassh(SERVER_LISTS, False)
    rules = (f'alert ssh any any -> any any (msg:"hassh"; ssh.hassh; content:"{c_hash}"; '
             'sid:20;)\n'
             f'alert ssh any any -> any any (msg:"hassh.server"; ssh.hassh.server; '
             f'content:"{s_hash}"; sid:21;)\n'
             'alert ssh any any -> any any (msg:"string"; ssh.hassh.string; '
             'content:"curve25519-sha256"; startswith; sid:22;)\n')
    events, _, _ = run(tmp_path, rules, {"hassh": "yes"})
    assert sorted(sids(events)) == [20, 21, 22]
    (ssh,) = of(events, "ssh")
    assert ssh["ssh"] == {
        "client": {"proto_version": "2.0", "software_version": "OpenSSH_9.2p1",
                   "hassh": {"hash": c_hash, "string": c_text}},
        "server": {"proto_version": "2.0", "software_version": "OpenSSH_8.4",
                   "hassh": {"hash": s_hash, "string": s_text}},
    }
    assert ssh["tx_id"] == 0 and ssh["src_ip"] == "10.0.0.1"


def test_eve_ssh_without_hassh_by_default(tmp_path: Path) -> None:
    events, _, _ = run(tmp_path, SOFTWARE_RULE)
    (ssh,) = of(events, "ssh")
    assert "hassh" not in ssh["ssh"]["client"] and "hassh" not in ssh["ssh"]["server"]


def test_default_handling_stops_inspecting_after_newkeys(tmp_path: Path) -> None:
    events, pipeline, _ = run(tmp_path, SOFTWARE_RULE + PAYLOAD_RULE)
    assert sids(events) == [1]
    assert pipeline.stats.snapshot().get("app_layer.ssh.encrypted") == 1
    (flow,) = of(events, "flow")
    assert flow["flow"]["state"] != "bypassed"


def test_full_handling_inspects_the_encrypted_rest(tmp_path: Path) -> None:
    events, _, _ = run(tmp_path, SOFTWARE_RULE + PAYLOAD_RULE, {"encryption-handling": "full"})
    assert 2 in sids(events)


@pytest.mark.parametrize("value", ["bypass"])
def test_bypass_after_newkeys_both_ways(tmp_path: Path, value: str) -> None:
    events, pipeline, _ = run(tmp_path, SOFTWARE_RULE + PAYLOAD_RULE,
                              {"encryption-handling": value})
    assert sids(events) == [1]
    (flow,) = of(events, "flow")
    assert flow["flow"]["state"] == "bypassed" and flow["flow"]["bypass"] == "local"
    assert flow["metadata"]["flowvars"][0] == {"bypass_reason": "encryption"}
    assert flow["metadata"]["flowvars"][1]["bypass_accounting"]["reconciled"] is True
    assert pipeline.stats.snapshot().get("flow_bypassed.reason.encryption") == 1
    assert of(events, "ssh")  # logged before the bypass


def test_bypass_goes_to_the_capture_backend(tmp_path: Path) -> None:
    events, pipeline, backend = run(tmp_path, SOFTWARE_RULE, {"encryption-handling": "bypass"},
                                    capture_bypass=True)
    assert len(backend.bypass_calls) == 1 and pipeline.report.bypassed_flows_capture == 1
    (flow,) = of(events, "flow")
    assert flow["flow"]["bypass"] == "capture"


def test_no_bypass_before_both_newkeys(tmp_path: Path) -> None:
    tcp = TcpConversation()
    tcp.handshake()
    tcp.send(True, b"SSH-2.0-OpenSSH_9.2p1\r\n" + kexinit(CLIENT_LISTS) + NEWKEYS)
    tcp.send(False, b"SSH-2.0-OpenSSH_8.4\r\n" + kexinit(SERVER_LISTS))
    tcp.send(True, SECRET)
    tcp.close()
    events, _, _ = run(tmp_path, PAYLOAD_RULE, {"encryption-handling": "bypass"},
                       frames=tcp.frames)
    (flow,) = of(events, "flow")
    assert flow["flow"]["state"] != "bypassed"
    assert sids(events) == [2]


def test_invalid_banner_event_rule(tmp_path: Path) -> None:
    rules = ('alert ssh any any -> any any (msg:"bad banner"; flow:to_server; '
             'app-layer-event:ssh.invalid_banner; sid:30;)\n')
    events, _, _ = run(tmp_path, rules,
                       frames=session(client_banner=b"SSH-2.0 nodash\r\n"))
    assert sids(events) == [30]


def test_disabled_ssh_is_not_parsed(tmp_path: Path) -> None:
    events, _, _ = run(tmp_path, SOFTWARE_RULE, {"enabled": "no"})
    assert sids(events) == [] and of(events, "ssh") == []


def test_real_openssh_capture_through_the_engine(tmp_path: Path) -> None:
    if not ssh_capture.available():
        pytest.skip("no ssh/sshd")
    cap = ssh_capture.capture()
    if cap is None or not cap.c2s:
        pytest.skip("sshd did not start")
    tcp = TcpConversation(sport=40022)
    tcp.handshake()
    # each side's bytes in order; the sides take turns per segment as a real exchange would
    i = j = 0
    while i < len(cap.c2s) or j < len(cap.s2c):
        if i < len(cap.c2s):
            tcp.send(True, cap.c2s[i : i + 1448])
            i += 1448
        if j < len(cap.s2c):
            tcp.send(False, cap.s2c[j : j + 1448])
            j += 1448
    tcp.close()
    events, _, _ = run(tmp_path, SOFTWARE_RULE, {"hassh": "yes",
                                                       "encryption-handling": "bypass"},
                              frames=tcp.frames)
    assert sids(events) == [1]
    (ssh,) = of(events, "ssh")
    assert len(ssh["ssh"]["client"]["hassh"]["hash"]) == 32
    (flow,) = of(events, "flow")
    assert flow["flow"]["state"] == "bypassed"


def test_a_hassh_rule_turns_hassh_on_for_eve(tmp_path: Path) -> None:
    _, c_hash = expected_hassh(CLIENT_LISTS, True)
    rules = f'alert ssh any any -> any any (msg:"h"; ssh.hassh; content:"{c_hash}"; sid:40;)\n'
    events, _, _ = run(tmp_path, rules)  # hassh: auto
    assert sids(events) == [40]
    (ssh,) = of(events, "ssh")
    assert ssh["ssh"]["client"]["hassh"]["hash"] == c_hash
