"""FTP probe, configuration, buffers, keywords (ftpbounce...) and the EVE ftp object."""

from __future__ import annotations

import json
import socket

import pytest

from ruleengine.applayer import registry
from ruleengine.applayer.base import TxMatchContext
from ruleengine.applayer.ftp import PROTOCOL, FtpParser, parse_config, probe
from ruleengine.applayer.ftp.detect import (
    bounce_ip,
    get_command,
    get_command_data,
    get_completion_codes,
    get_replies,
    match_dynamic_port,
    match_ftpbounce,
    match_mode,
    match_reply_received,
    parse_dynamic_port,
    parse_ftpbounce,
    parse_mode,
    parse_reply_received,
)
from ruleengine.applayer.ftp.logger import eve_ftp
from ruleengine.rules.loader import load_rule_text
from tests.outputs.eve_schema import validate_line


def ctx(client: str, to_server: bool = True) -> TxMatchContext:
    return TxMatchContext(to_server, socket.inet_aton(client), socket.inet_aton("5.6.7.8"))


@pytest.mark.parametrize(("data", "to_server", "want"), [
    (b"USER anonymous\r\n", True, "match"), (b"user x", True, "match"),
    (b"PASS x", True, "match"), (b"PORT 1,2", True, "match"), (b"FEAT\r\n", True, "match"),
    (b"US", True, "undecided"), (b"USERX", True, "nomatch"), (b"GET /", True, "nomatch"),
    (b"220 (vsFTPd 3.0.5)\r\n", False, "match"), (b"220 ProFTPD", False, "nomatch"),
    (b"220", False, "undecided"), (b"SSH-2.0", False, "nomatch"),
    (b"220 (", True, "nomatch"), (b"USER x", False, "nomatch"),
])
def test_probe(data: bytes, to_server: bool, want: str) -> None:
    assert probe(data, to_server) == want


def test_spec_and_config() -> None:
    assert registry.by_name()["ftp"] is PROTOCOL and not PROTOCOL.encrypts
    assert PROTOCOL.events == {"request_command_too_long", "response_command_too_long",
                               "too_many_transactions", "file_before_port",
                               "file_without_name"}
    s, w = parse_config({"memcap": "64mb", "max-tx": 256, "max-line-length": "5kb"})
    assert (s.memcap, s.max_tx, s.max_line_length, w) == (64 << 20, 256, 5120, [])
    s, w = parse_config({"max-line-length": "huge", "max-tx": 0, "bogus": 1})
    assert s.max_line_length == 4096 and s.max_tx == 1024 and len(w) == 3


def session() -> FtpParser:
    p = FtpParser()
    p.feed(False, b"220 (vsFTPd)\r\n")
    p.feed(True, b"USER anonymous\r\n")
    p.feed(False, b"331-Please\r\n331 specify the password.\r\n")
    p.feed(True, b"PORT 80,58,0,33,10,20\r\n")
    p.feed(False, b"200 PORT command successful.\r\n")
    p.feed(True, b"PASV\r\n")
    return p


def test_buffers() -> None:
    greeting, user, _port, pasv = session().transactions
    assert get_command(greeting) is None and get_replies(greeting) is None  # no command
    assert get_command(user) == b"USER" and get_command_data(user) == b"anonymous"
    assert get_completion_codes(user) == [b"", b"331"]  # a "ddd-" line has no code
    assert get_replies(user) == [b"331-Please", b"specify the password."]
    assert get_command_data(pasv) is None and get_replies(pasv) is None


def test_ftpbounce() -> None:
    """Suricata's DetectFtpbounceTestALMatch02/03."""
    port = session().transactions[2]
    parse_ftpbounce(None)
    assert match_ftpbounce(None, port, ctx("1.2.3.4")) is True
    assert match_ftpbounce(None, port, ctx("80.58.0.33")) is False
    user = session().transactions[1]
    assert match_ftpbounce(None, user, ctx("1.2.3.4")) is False
    with pytest.raises(ValueError):
        parse_ftpbounce("yes")


@pytest.mark.parametrize(("payload", "ip"), [
    (b"PORT 1,2,3,4,10,20", 0x01020304),
    (b"PORT 1 ,2 ,3 ,4,10,20", 0x01020304),
    (b"PORT 1,2,3,256,0,0", 0x01020400),  # Suricata lets 256 through (carry)
    (b"PORT 1,2,3,257,0,0", None),
    (b"PORT 1234,2,3,4,0,0", None),
    (b"PORT 1;2,3,4,0,0", None),
    (b"PORT 1", None),
])
def test_bounce_ip(payload: bytes, ip: int | None) -> None:
    assert bounce_ip(payload) == ip


def test_port_keywords() -> None:
    greeting, user, port, pasv = session().transactions
    tc = ctx("1.2.3.4", False)
    assert match_dynamic_port(parse_dynamic_port("2580"), port, tc) is True
    assert match_dynamic_port(parse_dynamic_port(">3000"), port, tc) is False
    assert match_dynamic_port(parse_dynamic_port("2580"), pasv, tc) is None  # reply pending
    assert match_dynamic_port(parse_dynamic_port("2580"), greeting, tc) is False
    assert match_mode(parse_mode("active"), port, tc) is True
    assert match_mode(parse_mode("passive"), port, tc) is False
    assert match_reply_received(parse_reply_received("yes"), user, tc) is True
    assert match_reply_received(parse_reply_received("no"), pasv, tc) is True
    for bad in (lambda: parse_mode("both"), lambda: parse_reply_received("maybe"),
                lambda: parse_dynamic_port("70000")):
        with pytest.raises(ValueError):
            bad()


def test_eve_objects_follow_suricata_and_validate() -> None:
    greeting, user, port, pasv = session().transactions
    assert eve_ftp(greeting, {}) == {"completion_code": ["220"], "reply": ["(vsFTPd)"],
                                     "reply_received": "yes", "reply_truncated": False}
    assert eve_ftp(user, {}) == {
        "command": "USER", "command_data": "anonymous", "command_truncated": False,
        "completion_code": ["331", "331"], "reply": ["Please", "specify the password."],
        "reply_received": "yes", "reply_truncated": False}
    assert eve_ftp(port, {})["dynamic_port"] == 2580 and eve_ftp(port, {})["mode"] == "active"
    assert eve_ftp(pasv, {}) == {"command": "PASV", "reply_received": "no",
                                 "reply_truncated": False}
    for tx in (greeting, user, port, pasv):
        event = {"timestamp": "2024-01-01T00:00:00.000000+0000", "event_type": "ftp",
                 "src_ip": "1.2.3.4", "src_port": 40000, "dest_ip": "5.6.7.8",
                 "dest_port": 21, "proto": "TCP", "flow_id": 1, "tx_id": tx.tx_id,
                 "ftp": eve_ftp(tx, {})}
        validate_line(json.dumps(event))


def test_rules_load() -> None:
    rules = load_rule_text(
        'alert ftp any any -> any any (msg:"a"; ftp.command; content:"USER"; sid:1;)\n'
        'alert ftp any any -> any any (msg:"b"; ftp.reply; content:"Login"; sid:2;)\n'
        'alert tcp any any -> any 21 (msg:"c"; content:"PORT"; ftpbounce; sid:3;)\n'
        'alert ftp any any -> any any (msg:"d"; ftp.mode:active; ftp.dynamic_port:>1024; '
        'sid:4;)\n'
        'alert ftp any any -> any any (msg:"e"; ftp.reply_received:no; sid:5;)\n'
        'alert ftp any any -> any any (msg:"f"; '
        'app-layer-event:ftp.request_command_too_long; sid:6;)\n')
    assert [r.sid for r in rules.rules] == [1, 2, 3, 4, 5, 6]
    assert all(not r.unsupported for r in rules.rules)
