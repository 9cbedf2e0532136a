"""FTP through the whole engine on the in-memory backend: detection by the client's first
command off port 21, ftpbounce, ftp.* keywords, ET-style payload rules, EVE ftp events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from capture_backends.memory import MemoryBackend
from ruleengine.applayer import registry
from ruleengine.detect.engine import DetectEngine
from ruleengine.outputs.eve import EveWriter
from ruleengine.outputs.stats import Stats
from ruleengine.pipeline import Pipeline
from ruleengine.rules.loader import load_rule_text
from ruleengine.settings import EngineSettings
from tests.applayer.ssh.tcp import TcpConversation
from tests.outputs.eve_schema import validate_line

CLIENT_IP = "10.0.0.1"


def session(port_arg: bytes = b"10,0,0,1,156,64", greeting: bytes = b"220 ProFTPD ready\r\n",
            ) -> list[tuple[float, bytes]]:
    tcp = TcpConversation(client=CLIENT_IP, sport=2121)
    tcp.handshake()
    tcp.send(False, greeting)
    for command, reply in ((b"USER anonymous", b"331 Password required"),
                           (b"PASS secret", b"230-Welcome\r\n230 Logged in"),
                           (b"PORT " + port_arg, b"200 PORT command successful"),
                           (b"RETR /etc/passwd", b"150 Opening\r\n226 Transfer complete"),
                           (b"QUIT", b"221 Bye")):
        tcp.send(True, command + b"\r\n")
        tcp.send(False, reply + b"\r\n")
    tcp.close()
    return tcp.frames


def run(tmp_path: Path, rules: str, frames: list[tuple[float, bytes]],
        ftp: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    applayer, warnings = registry.load_settings({"ftp": ftp} if ftp else {})
    assert warnings == []
    engine = DetectEngine(load_rule_text(rules).rules)
    assert engine.skipped == []
    eve = EveWriter(tmp_path / "eve.json")
    pipeline = Pipeline(EngineSettings(applayer=applayer), engine, eve=eve, stats=Stats(),
                        classify=lambda _c: None)
    pipeline.run(MemoryBackend(frames))
    eve.close()
    return [validate_line(line) for line in (tmp_path / "eve.json").read_text().splitlines()]


def of(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event_type"] == kind]


def sids(events: list[dict[str, Any]]) -> list[int]:
    return [a["alert"]["signature_id"] for a in of(events, "alert")]


# the ET / GPL rule, with the port made the test's
BOUNCE = ('alert tcp any any -> any 2121 (msg:"GPL FTP PORT bounce attempt"; '
          'flow:to_server,established; content:"PORT"; nocase; ftpbounce; pcre:"/^PORT/smi"; '
          'classtype:misc-attack; sid:2103441; rev:2;)\n')


def test_ftpbounce_fires_on_a_port_to_another_host(tmp_path: Path) -> None:
    events = run(tmp_path, BOUNCE, session(port_arg=b"192,0,2,77,0,25"))
    (alert,) = of(events, "alert")
    assert alert["alert"]["signature_id"] == 2103441 and alert["app_proto"] == "ftp"
    assert alert["ftp"]["command"] == "PORT"


def test_ftpbounce_silent_on_the_clients_own_address(tmp_path: Path) -> None:
    events = run(tmp_path, BOUNCE, session(port_arg=b"10,0,0,1,156,64"))
    assert sids(events) == []
    assert [e["ftp"].get("command") for e in of(events, "ftp")] == [
        None, "USER", "PASS", "PORT", "RETR", "QUIT"]


def test_eve_ftp_events(tmp_path: Path) -> None:
    events = run(tmp_path, BOUNCE, session())
    greeting, user, pw, port, retr, quit_ = of(events, "ftp")
    assert greeting["ftp"] == {"completion_code": ["220"], "reply": ["ProFTPD ready"],
                               "reply_received": "yes", "reply_truncated": False}
    assert pw["ftp"]["completion_code"] == ["230", "230"]
    assert pw["ftp"]["reply"] == ["Welcome", "Logged in"]
    assert port["ftp"]["dynamic_port"] == 40000 and port["ftp"]["mode"] == "active"
    assert retr["ftp"]["command_data"] == "/etc/passwd"
    assert retr["ftp"]["reply"] == ["Opening", "Transfer complete"]
    assert [e["tx_id"] for e in (greeting, user, pw, port, retr, quit_)] == [0, 1, 2, 3, 4, 5]
    assert user["src_ip"] == CLIENT_IP and user["dest_port"] == 2121
    (flow,) = of(events, "flow")
    assert flow["app_proto"] == "ftp"


def test_ftp_keywords_and_et_payload_rules(tmp_path: Path) -> None:
    rules = (
        'alert ftp any any -> any any (msg:"cmd"; ftp.command; content:"RETR"; '
        'ftp.command_data; content:"passwd"; sid:1;)\n'
        'alert ftp any any -> any any (msg:"code"; ftp.completion_code; content:"226"; '
        'sid:2;)\n'
        'alert ftp any any -> any any (msg:"reply"; ftp.reply; content:"Logged in"; sid:3;)\n'
        'alert ftp any any -> any any (msg:"mode"; ftp.mode:active; '
        'ftp.dynamic_port:40000; sid:4;)\n'
        # ET: GPL FTP passwd retrieval attempt (payload/stream content)
        'alert ftp any any -> any any (msg:"GPL FTP passwd retrieval attempt"; '
        'flow:to_server,established; content:"RETR"; nocase; content:"passwd"; '
        'classtype:suspicious-filename-detect; sid:2100356; rev:7;)\n')
    events = run(tmp_path, rules, session())
    assert sorted(set(sids(events))) == [1, 2, 3, 4, 2100356]


def test_vsftpd_greeting_is_detected_from_the_server(tmp_path: Path) -> None:
    tcp = TcpConversation(client=CLIENT_IP, sport=2121)
    tcp.handshake()
    tcp.send(False, b"220 (vsFTPd 3.0.5)\r\n")
    tcp.close()
    events = run(tmp_path, BOUNCE, tcp.frames)
    (flow,) = of(events, "flow")
    assert flow["app_proto"] == "ftp"
    (greeting,) = of(events, "ftp")
    assert greeting["ftp"]["reply"] == ["(vsFTPd 3.0.5)"]


def test_long_command_event_rule(tmp_path: Path) -> None:
    tcp = TcpConversation(client=CLIENT_IP, sport=2121)
    tcp.handshake()
    tcp.send(True, b"USER " + b"A" * 9000 + b"\r\n")
    tcp.send(False, b"331 ok\r\n")
    tcp.close()
    rules = ('alert ftp any any -> any any (msg:"long"; flow:to_server; '
             'app-layer-event:ftp.request_command_too_long; sid:9;)\n')
    events = run(tmp_path, rules, tcp.frames)
    assert sids(events) == [9]
    (user,) = of(events, "ftp")
    assert user["ftp"]["command_truncated"] is True
    assert len(user["ftp"]["command_data"]) == 4096 - 5


def test_passive_data_channel_is_ftp_data(tmp_path: Path) -> None:
    if not hasattr(Pipeline, "_take_expectations"):
        pytest.skip("this pipeline has no app-layer expectations")
    control = TcpConversation(client=CLIENT_IP, sport=2121, cport=40001)
    control.handshake()
    control.send(False, b"220 ready\r\n")
    control.send(True, b"USER a\r\n")
    control.send(False, b"331 pw\r\n")
    control.send(True, b"PASV\r\n")
    control.send(False, b"227 Entering Passive Mode (10,0,0,2,117,48).\r\n")
    data = TcpConversation(client=CLIENT_IP, sport=117 * 256 + 48, cport=40002)
    data.ts = control.ts
    data.handshake()
    control.ts = data.ts
    control.send(True, b"RETR evil.vbs\r\n")
    control.send(False, b"150 Opening\r\n")
    data.ts = control.ts
    data.send(False, b'CreateObject("WScript.Shell") reg add ftp://x abcdefgh.vbs')
    data.close()
    control.ts = data.ts
    control.send(False, b"226 Done\r\n")
    control.close()
    rules = ('alert ftp-data any any -> any any (msg:"data"; flow:established,to_client; '
             'content:"WScript.Shell"; sid:50;)\n')
    events = run(tmp_path, rules, sorted(control.frames + data.frames, key=lambda f: f[0]))
    assert sids(events) == [50]
    protos = sorted(f.get("app_proto") for f in of(events, "flow"))
    assert protos == ["ftp", "ftp-data"]
