"""SSH probe, configuration, buffers and keywords."""

from __future__ import annotations

import pytest

from ruleengine.applayer import registry
from ruleengine.applayer.base import BufferDirection, TxMatchContext
from ruleengine.applayer.ssh import PROTOCOL, SshParser, parse_config, probe
from ruleengine.applayer.ssh.detect import (
    match_protoversion,
    match_softwareversion,
    parse_protoversion,
    parse_softwareversion,
)
from ruleengine.rules.loader import load_rule_text

TS, TC = TxMatchContext(True), TxMatchContext(False)


@pytest.mark.parametrize(("data", "want"), [
    (b"SSH-2.0-x\r\n", "match"), (b"ssh-2.0", "match"), (b"SSH-", "match"),
    (b"SS", "undecided"), (b"", "undecided"), (b"SSX-", "nomatch"),
    (b"GET / HTTP/1.1\r\n", "nomatch"), (b"\x16\x03\x01", "nomatch"),
])
def test_probe_both_directions(data: bytes, want: str) -> None:
    assert probe(data, True) == want and probe(data, False) == want


def test_spec() -> None:
    assert registry.by_name()["ssh"] is PROTOCOL
    assert PROTOCOL.encrypts and PROTOCOL.default_ports == {6: (22,)}
    assert PROTOCOL.events == {"invalid_banner", "long_banner", "invalid_record",
                               "long_kex_record"}
    table = {b.name: b for b in PROTOCOL.buffers}
    assert table["ssh.proto"].aliases == ("ssh_proto",)
    assert table["ssh.software"].aliases == ("ssh_software",)
    assert table["ssh.proto"].direction is BufferDirection.BOTH
    assert table["ssh.hassh"].direction is BufferDirection.TO_SERVER
    assert table["ssh.hassh.server"].direction is BufferDirection.TO_CLIENT
    assert table["ssh.hassh.server.string"].aliases == ("ssh-hassh-server-string",)


def test_config() -> None:
    s, w = parse_config({})
    assert (s.hassh, s.encryption_handling, s.hassh_computed, s.hassh_logged) == \
        (None, "default", True, False) and w == []
    s, w = parse_config({"hassh": "yes", "encryption-handling": "bypass"})
    assert s.hassh is True and s.encryption_handling == "bypass" and w == []
    s, _ = parse_config({"hassh": "no", "encryption-handling": "track-only"})
    assert s.hassh is False and s.encryption_handling == "default" and not s.hassh_computed
    assert parse_config({"encryption-handling": "full"})[0].encryption_handling == "full"
    s, w = parse_config({"hassh": "maybe", "encryption-handling": "drop", "foo": 1,
                         "max-banner-length": "lots"})
    assert s.hassh is None and s.encryption_handling == "default"
    assert len(w) == 4 and any("foo" in m for m in w)
    assert parse_config(None)[0].enabled == "yes"  # type: ignore[arg-type]


def test_encryption_handling_reaches_the_registry() -> None:
    settings, warnings = registry.load_settings({"ssh": {"encryption-handling": "bypass"}})
    assert warnings == [] and registry.encryption_handling("ssh", settings) == "bypass"
    assert registry.encryption_handling("ssh", registry.default_settings()) == "default"


def test_protoversion_keyword() -> None:
    p = SshParser()
    p.feed(True, b"SSH-1.99-PuTTY_2.123\n")
    tx = p.tx
    assert match_protoversion(parse_protoversion("2_compat"), tx, TS) is True
    assert match_protoversion(parse_protoversion('"1.99"'), tx, TS) is True
    assert match_protoversion(parse_protoversion("1.9"), tx, TS) is False  # exact
    assert match_protoversion(parse_protoversion("2.0"), tx, TC) is None  # server pending
    p.close(False)
    assert match_protoversion(parse_protoversion("2.0"), tx, TC) is False
    for bad in ("2_com", "", ".1", "lalala"):
        with pytest.raises(ValueError):
            parse_protoversion(bad)


def test_softwareversion_keyword() -> None:
    p = SshParser()
    p.feed(False, b"SSH-2.0-SecureCRT-4.0 comment\r\n")
    assert match_softwareversion(parse_softwareversion('"SecureCRT-4.0"'), p.tx, TC) is True
    assert match_softwareversion(parse_softwareversion("SecureCRT"), p.tx, TC) is False
    with pytest.raises(ValueError):
        parse_softwareversion("")
    with pytest.raises(ValueError):
        parse_softwareversion("bad;chars")


def test_rules_load_with_aliases_and_reject_uppercase_hassh() -> None:
    ok = load_rule_text(
        'alert ssh any any -> any any (msg:"a"; ssh_software; content:"x"; sid:1;)\n'
        'alert ssh any any -> any any (msg:"b"; ssh-hassh; content:"ab"; sid:2;)\n'
        'alert ssh any any -> any any (msg:"c"; ssh.protoversion:2_compat; sid:3;)\n')
    assert [r.sid for r in ok.rules] == [1, 2, 3]
    assert all(not r.unsupported for r in ok.rules)
    bad = load_rule_text('alert ssh any any -> any any (msg:"d"; ssh.hassh; content:"AB"; '
                         'sid:4;)\n')
    assert bad.rules == [] or all(r.sid != 4 for r in bad.rules)
    bad = load_rule_text('alert ssh any any -> any any (msg:"e"; ssh.protoversion:abc; '
                         'sid:5;)\n')
    assert all(r.sid != 5 for r in bad.rules)


def test_hassh_auto_follows_the_rules() -> None:
    from ruleengine.applayer.ssh.config import for_rules

    auto = parse_config({})[0]
    assert for_rules(auto, frozenset({"ssh.software", "content"})).hassh is None
    assert for_rules(auto, frozenset({"ssh.hassh.server"})).hassh is True
    off = parse_config({"hassh": "no"})[0]
    assert for_rules(off, frozenset({"ssh.hassh"})).hassh is False
