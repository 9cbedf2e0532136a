"""Rule files: comments, continuations, limits, duplicates, vars, unsupported, cache."""

from __future__ import annotations

import gc
import os
import socket
from pathlib import Path

import pytest

from ruleengine.rules import loader
from ruleengine.rules.classification import classification
from ruleengine.rules.loader import MAX_RULE_BYTES, load_rule_files
from ruleengine.rules.model import PcreMatch
from ruleengine.rules.vars import VarsError, vars_from_yaml
from tests.rules.helpers import CORPUS_RULES, codes, load

RULE = (
    'alert tcp any any -> any 80 (msg:"m"; flow:to_server; content:"abcd"; sid:{sid}; rev:{rev};)'
)


def rule(sid: int, rev: int = 1) -> str:
    return RULE.format(sid=sid, rev=rev)


def test_comments_blank_lines_and_commented_rules() -> None:
    text = f"# header comment\n\n#{rule(1)}\n{rule(2)}\n"
    rs = load(text)
    assert [r.sid for r in rs.rules] == [2]
    assert rs.rules[0].span.line == 4
    assert not rs.diagnostics


def test_continuation_lines_are_joined() -> None:
    text = (
        'alert tcp any any -> any 80 (msg:"split"; \\\n'
        '    flow:to_server; content:"abcd"; \\\n'
        "    sid:10; rev:1;)\n"
        f"{rule(11)}\n"
    )
    rs = load(text)
    assert [r.sid for r in rs.rules] == [10, 11]
    first = rs.rules[0]
    assert first.span.line == 1 and rs.rules[1].span.line == 4
    assert first.raw.startswith('alert tcp any any -> any 80 (msg:"split";     flow')


def test_error_position_in_continued_rule_counts_joined_columns() -> None:
    text = 'alert tcp any any -> any 80 (msg:"x"; \\\nnocase; sid:1;)\n'
    rs = load(text)
    (d,) = rs.errors
    assert d.line == 1
    assert d.column == d.source_line.index("nocase") + 1


def test_leading_whitespace_line_is_skipped_with_warning() -> None:
    rs = load(f"  {rule(1)}\n{rule(2)}\n")
    assert [r.sid for r in rs.rules] == [2]
    (d,) = rs.diagnostics
    assert d.code == "leading-whitespace" and d.severity == "warning"
    assert (d.line, d.column, d.end_column) == (1, 1, 3)


def test_rule_length_limit() -> None:
    padding = "a" * (MAX_RULE_BYTES + 10)
    rs = load(f'alert tcp any any -> any any (msg:"{padding}"; sid:1;)\n{rule(2)}\n')
    assert [r.sid for r in rs.rules] == [2]
    (d,) = rs.errors
    assert d.code == "rule-too-long"
    assert d.message.endswith(f"bytes long; the maximum is {MAX_RULE_BYTES}")


def test_rule_exactly_at_limit_loads() -> None:
    base = 'alert tcp any any -> any any (msg:""; flow:to_server; sid:1;)'
    text = base.replace('msg:""', 'msg:"' + "a" * (MAX_RULE_BYTES - len(base)) + '"')
    assert len(text.encode()) == MAX_RULE_BYTES
    assert load(text).loaded == 1


def test_control_characters_and_bad_utf8() -> None:
    rs = load('alert tcp any any -> any any (msg:"a\x01b"; sid:1;)')
    assert codes(rs) == ["control-character"]
    assert rs.errors[0].column == 37
    rs = load(
        b'alert tcp any any -> any any (msg:"\xff"; sid:1;)'.decode("utf-8", "surrogateescape")
    )
    assert codes(rs) == ["invalid-utf8"]


def test_duplicate_sid_is_an_error_and_first_rule_stays() -> None:
    rs = load(f"{rule(5)}\n{rule(5)}\n")
    assert len(rs.rules) == 1 and rs.rules[0].span.line == 1
    (d,) = rs.errors
    assert d.code == "duplicate-sid" and d.line == 2 and d.sid == 5
    assert d.message == "duplicate signature: sid 5 is already loaded (t.rules:1, rev 1)"
    assert d.column == rule(5).index("sid:5") + 5
    assert rs.failed == 1 and rs.loaded == 1


def test_same_sid_newer_rev_replaces_with_warning() -> None:
    rs = load(f"{rule(5, 1)}\n{rule(5, 3)}\n")
    assert [(r.sid, r.rev) for r in rs.rules] == [(5, 3)]
    (d,) = rs.diagnostics
    assert d.code == "sid-replaced" and d.severity == "warning" and d.line == 2
    assert rs.failed == 0


def test_same_sid_older_rev_is_duplicate() -> None:
    rs = load(f"{rule(5, 3)}\n{rule(5, 2)}\n")
    assert [(r.sid, r.rev) for r in rs.rules] == [(5, 3)]
    assert codes(rs) == ["duplicate-sid"]


def test_duplicate_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.rules").write_text(rule(1) + "\n")
    (tmp_path / "b.rules").write_text(rule(1, 2) + "\n" + rule(2) + "\n")
    (tmp_path / "ignored.txt").write_text("garbage\n")
    rs = load_rule_files([tmp_path], use_cache=False)
    assert rs.files == 2
    assert sorted((r.sid, r.rev) for r in rs.rules) == [(1, 2), (2, 1)]
    assert codes(rs) == ["sid-replaced"]


def test_loading_continues_after_bad_rules_and_counts() -> None:
    text = "\n".join(
        [
            rule(1),
            'alert tcp any any -> any any (msg:"bad"; nocase; sid:2;)',
            "garbage line",
            'alert http any any -> any any (msg:"u"; flow:to_server; krb5.cname; content:"x"; '
            "sid:3;)",
            rule(4),
        ]
    )
    rs = load(text)
    assert [r.sid for r in rs.rules] == [1, 3, 4]
    assert (rs.loaded, rs.failed, rs.skipped) == (3, 2, 1)
    assert rs.summary() == (
        "1 rule files processed. 3 rules successfully loaded, 2 rules failed, 1 rules skipped"
    )


def test_unsupported_keyword_warns_and_is_recorded() -> None:
    text = (
        'alert krb5 any any -> any any (msg:"d"; krb5.cname; content:"evil"; nocase; '
        'luajit:x.lua; quic.sni; content:"abcd"; sid:1;)'
    )
    rs = load(text)
    (r,) = rs.rules
    assert r.unsupported == ["krb5.cname", "luajit", "quic.sni"]
    warned = [d for d in rs.diagnostics if d.code == "unsupported-keyword"]
    assert len(warned) == 3 and all(d.severity == "warning" for d in warned)
    assert warned[0].column == text.index("krb5.cname") + 1
    assert r.buffer("krb5.cname") is not None and rs.skipped == 1


def test_vars_from_suricata_yaml(tmp_path: Path) -> None:
    yaml_path = tmp_path / "suricata.yaml"
    yaml_path.write_text(
        '%YAML 1.1\n---\nvars:\n  address-groups:\n    HOME_NET: "[10.10.0.0/16]"\n'
        '    CUSTOM_NET: "1.2.3.0/24"\n  port-groups:\n    HTTP_PORTS: "[80,8080]"\n'
    )
    addresses, ports = vars_from_yaml(yaml_path)
    rules = tmp_path / "x.rules"
    rules.write_text(
        "alert tcp $CUSTOM_NET any -> $HOME_NET $HTTP_PORTS (flow:to_server; sid:1;)\n"
        "alert tcp $EXTERNAL_NET any -> $SQL_SERVERS $ORACLE_PORTS (flow:to_server; sid:2;)\n"
    )
    rs = load_rule_files([rules], address_vars=addresses, port_vars=ports, use_cache=False)
    r1, r2 = rs.rules
    assert [str(n) for n in r1.src.include] == ["1.2.3.0/24"]
    assert [str(n) for n in r1.dst.include] == ["10.10.0.0/16"]
    assert r1.dst_ports.include == ((80, 80), (8080, 8080))
    # Defaults still apply for what the yaml does not override, in terms of the new HOME_NET.
    assert [str(n) for n in r2.src.exclude] == ["10.10.0.0/16"]
    assert r2.dst_ports.include == ((1521, 1521),)


def test_vars_yaml_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("vars: [1, 2]\n")
    with pytest.raises(VarsError):
        vars_from_yaml(bad)
    with pytest.raises(VarsError):
        vars_from_yaml(tmp_path / "missing.yaml")


def test_variable_loop_is_an_error() -> None:
    from ruleengine.rules.loader import load_rule_text

    rs = load_rule_text(
        "alert tcp $A any -> any any (sid:1;)", address_vars={"A": "$B", "B": "[$A]"}
    )
    assert codes(rs) == ["variable-loop"]


def test_classtype_priority_and_classification() -> None:
    rs = load("alert tcp any any -> any any (flow:to_server; classtype:trojan-activity; sid:1;)")
    assert rs.rules[0].priority == 1
    rs = load(
        "alert tcp any any -> any any (flow:to_server; classtype:trojan-activity; priority:3; "
        "sid:1;)"
    )
    assert rs.rules[0].priority == 3
    assert classification("web-application-attack") == ("Web Application Attack", 1)
    assert classification("nope") is None
    rs = load("alert tcp any any -> any any (flow:to_server; classtype:made-up; sid:1;)")
    assert codes(rs) == ["unknown-classtype"]


def test_flowbit_checked_but_never_set() -> None:
    text = "\n".join(
        [
            "alert tcp any any -> any any (flow:to_server; flowbits:set,seen; flowbits:noalert; "
            "sid:1;)",
            "alert tcp any any -> any any (flow:to_server; flowbits:isset,seen; sid:2;)",
            "alert tcp any any -> any any (flow:to_server; flowbits:isset,ghost; sid:3;)",
        ]
    )
    rs = load(text)
    (d,) = rs.diagnostics
    assert d.code == "flowbit-never-set" and d.sid == 3 and d.line == 3
    assert d.message == "flowbit 'ghost' is checked but never set by any loaded rule"
    assert d.column == text.splitlines()[2].index("ghost") + 1


def test_missing_path_is_reported(tmp_path: Path) -> None:
    rs = load_rule_files([tmp_path / "nope.rules"], use_cache=False)
    assert codes(rs) == ["file-error"] and rs.files == 0


def test_warm_cache_roundtrip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    rules = tmp_path / "c.rules"
    rules.write_text(
        'alert http any any -> any any (msg:"c"; flow:to_server; http.uri; content:"/x"; '
        'pcre:"/x[0-9]+/Ui"; sid:1;)\nbroken\n'
    )
    cold = load_rule_files([rules])
    assert list((tmp_path / "cache" / "ruleengine").glob("*.pickle"))
    calls: list[str] = []
    original = loader._parse_file_text
    monkeypatch.setattr(loader, "_parse_file_text", lambda *a: calls.append("parsed"))
    warm = load_rule_files([rules])
    assert calls == []  # served from the cache
    assert [r.sid for r in warm.rules] == [r.sid for r in cold.rules] == [1]
    assert codes(warm) == codes(cold)
    pcre = warm.rules[0].buffer("http.uri").items[1]
    assert isinstance(pcre, PcreMatch)
    assert pcre.compiled.search(b"/x123") is not None and pcre.compiled.search(b"/y") is None
    # Different variables -> different cache entry -> parsed again.
    monkeypatch.setattr(
        loader, "_parse_file_text", lambda *a: calls.append("parsed") or original(*a)
    )
    other = load_rule_files([rules], address_vars={"HOME_NET": "10.0.0.0/8"})
    assert other.loaded == 1 and calls == ["parsed"]


def test_corrupt_cache_entry_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    rules = tmp_path / "c.rules"
    rules.write_text(rule(1) + "\n")
    load_rule_files([rules])
    for entry in (tmp_path / "ruleengine").glob("*.pickle"):
        entry.write_bytes(b"not a pickle")
    assert load_rule_files([rules]).loaded == 1


CORPUS_FILES = sorted(CORPUS_RULES.glob("*.rules")) if CORPUS_RULES.is_dir() else []


@pytest.mark.skipif(not CORPUS_FILES, reason="../shared/corpus/rules is not present")
def test_corpus_rules_load_without_errors() -> None:
    rs = load_rule_files(CORPUS_FILES, use_cache=False)
    assert [d for d in rs.errors] == []
    assert rs.loaded > 15000 and rs.failed == 0


@pytest.mark.skipif(not CORPUS_FILES, reason="../shared/corpus/rules is not present")
def test_every_et_pcre_compiles() -> None:
    et = CORPUS_RULES / "et-open-suricata-5.0.rules"
    rs = load_rule_files([et], use_cache=False)
    expected = sum(
        line.count("pcre:") for line in et.read_text().splitlines() if line[:1].isalpha()
    )
    lists = [b for r in rs.rules for b in (*r.buffers, r.base64_data) if b is not None]
    pcres = [i for b in lists for i in b.items if isinstance(i, PcreMatch)]
    assert len(pcres) == expected > 1000
    for p in pcres:
        assert p.compiled is not None and p.compiled.code is not None and p.compiled.code.jit


def test_commented_out_multiline_rule_is_skipped_entirely() -> None:
    text = f'#alert tcp any any -> any 80 (msg:"old"; \\\ncontent:"abcd"; sid:9;)\n{rule(1)}\n'
    rs = load(text)
    assert [r.sid for r in rs.rules] == [1]
    assert rs.rules[0].span.line == 3
    assert not rs.diagnostics


def test_trailing_backslash_at_end_of_file() -> None:
    rs = load(rule(1)[:-1] + "\\\n")
    assert rs.failed == 1  # ")" missing: the rule text ends at the continuation


def test_empty_directory_and_special_files_are_reported(tmp_path: Path) -> None:
    rs = load_rule_files([tmp_path], use_cache=False)
    assert codes(rs) == ["no-rule-files"] and rs.diagnostics[0].severity == "warning"
    fifo = tmp_path / "pipe.rules"
    os.mkfifo(fifo)
    rs = load_rule_files([fifo], use_cache=False)
    assert [(d.code, d.message) for d in rs.diagnostics] == [
        ("file-error", "not a regular file or directory")
    ]


def test_dev_null_is_an_empty_rule_file_on_purpose(tmp_path: Path) -> None:
    # -S /dev/null: a character device reads as an empty file (Suricata's way of saying
    # "no rules"); a socket stays refused like the FIFO above
    for use_cache in (False, True):
        rs = load_rule_files(["/dev/null"], use_cache=use_cache)
        assert (rs.files, rs.loaded, rs.failed, rs.diagnostics) == (1, 0, 0, [])
    rs = load_rule_files(["/dev/null", tmp_path / "gone.rules"], use_cache=False)
    assert [(d.file, d.code) for d in rs.diagnostics] == [
        (str(tmp_path / "gone.rules"), "file-error")]
    sock_path = tmp_path / "s.rules"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(sock_path))
        rs = load_rule_files([sock_path], use_cache=False)
    assert [(d.code, d.message) for d in rs.diagnostics] == [
        ("file-error", "not a regular file or directory")
    ]


def test_gc_paused_freezes_what_the_outermost_block_made() -> None:
    assert gc.isenabled()
    before = gc.get_freeze_count()
    try:
        with loader.gc_paused(freeze=True):
            with loader.gc_paused(freeze=True):  # nested: the outer block freezes
                kept = [[i] for i in range(1000)]
                assert not gc.isenabled() and gc.get_freeze_count() == before
            assert not gc.isenabled()
        frozen = gc.get_freeze_count()
        assert gc.isenabled() and frozen >= before + 1000
        with loader.gc_paused():  # default: nothing frozen
            more = [[i] for i in range(1000)]
        assert gc.isenabled() and gc.get_freeze_count() == frozen and len(more) == 1000
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0 and len(kept) == 1000
