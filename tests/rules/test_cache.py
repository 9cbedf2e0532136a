"""The warm-load rule cache: ``rules/cache.py`` pickles loaded rules through a per-pickler
dispatch table (positional constructor calls, networks as integers), and the loader keys
each file's entry on everything that shapes its parse, so an entry is a hit only while
the file, its name, the variables and the parsing code are unchanged."""

from __future__ import annotations

import copyreg
import dataclasses
import ipaddress
import pickle
import pickletools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ruleengine.rules import cache, loader
from ruleengine.rules.loader import load_rule_files, load_rule_text

RULE = (
    'alert tcp [10.0.0.0/8,!10.1.0.0/16] [1024:,!2000] -> [2001:db8::/32] 80 (msg:"m"; '
    "flow:established,to_server; flowbits:set,seen; flags:S,12; ttl:>10; dsize:<100; "
    'threshold:type limit, track by_src, count 1, seconds 60; content:"abcdef"; sid:1; rev:2;)'
)


def _objects(obj: Any) -> Iterator[Any]:
    """Every dataclass instance reachable from ``obj`` (the rule model is a tree)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        yield obj
        for f in dataclasses.fields(obj):
            yield from _objects(getattr(obj, f.name))
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _objects(item)


def _opcodes(blob: bytes) -> set[str]:
    return {op.name for op, _arg, _pos in pickletools.genops(blob)}


# --- rules/cache.py ------------------------------------------------------------------


def test_loaded_rules_round_trip_equal() -> None:
    rules = load_rule_text(RULE + "\n" + RULE.replace("sid:1", "sid:2")).rules
    assert cache.loads(cache.dumps(rules)) == rules


def test_every_frozen_model_class_is_rebuilt_positionally() -> None:
    (rule,) = load_rule_text(RULE).rules
    samples = {type(o): o for o in _objects(rule) if type(o) in cache._FROZEN}
    # the sample rule must cover every class the dispatch table knows, or this test
    # would check less than it claims
    assert set(samples) == set(cache._FROZEN)
    for cls, obj in samples.items():
        blob = cache.dumps(obj)
        assert "BUILD" not in _opcodes(blob), cls  # no __setstate__ on load
        assert cache.loads(blob) == obj
        assert "BUILD" in _opcodes(pickle.dumps(obj, pickle.HIGHEST_PROTOCOL))  # the slow path


@pytest.mark.parametrize("net", [ipaddress.ip_network("10.1.0.0/16"),
                                 ipaddress.ip_network("2001:db8::/32"),
                                 ipaddress.ip_network("0.0.0.0/0")])
def test_networks_are_pickled_as_integers(net: ipaddress.IPv4Network | ipaddress.IPv6Network
                                          ) -> None:
    blob = cache.dumps(net)
    assert str(net).encode() not in blob  # not re-parsed from text
    back = cache.loads(blob)
    assert back == net and type(back) is type(net)


def test_the_dispatch_table_has_no_global_side_effect() -> None:
    cache.dumps(load_rule_text(RULE).rules)
    assert not set(copyreg.dispatch_table) & set(cache._DISPATCH)
    net = ipaddress.ip_network("10.0.0.0/8")
    assert b"10.0.0.0/8" in pickle.dumps(net)  # plain pickle is untouched


# --- the loader's warm cache -----------------------------------------------------------


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """Names of the files actually parsed (cache misses); the cache lives in tmp_path."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    seen: list[str] = []
    original = loader._parse_file_text

    def counting(text: str, file: str, headers: Any) -> Any:
        seen.append(Path(file).name)
        return original(text, file, headers)

    monkeypatch.setattr(loader, "_parse_file_text", counting)
    return seen


def _entries(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "cache" / "ruleengine").glob("*.pickle"))


def _rule(sid: int, msg: str = "m") -> str:
    return f'alert tcp any any -> any 80 (msg:"{msg}"; content:"abcdef"; sid:{sid};)\n'


def test_second_load_is_a_hit(tmp_path: Path, parses: list[str]) -> None:
    path = tmp_path / "a.rules"
    path.write_text(_rule(1))
    cold = load_rule_files([path])
    warm = load_rule_files([path])
    assert parses == ["a.rules"]
    assert len(_entries(tmp_path)) == 1
    assert [r.sid for r in warm.rules] == [r.sid for r in cold.rules] == [1]


def test_a_changed_file_is_parsed_again(tmp_path: Path, parses: list[str]) -> None:
    path = tmp_path / "a.rules"
    path.write_text(_rule(1, "old"))
    load_rule_files([path])
    path.write_text(_rule(7, "new"))
    rs = load_rule_files([path])
    assert parses == ["a.rules", "a.rules"]
    assert [(r.sid, r.msg) for r in rs.rules] == [(7, "new")]
    # the old version's entry stays valid: changing the file back is a hit again
    path.write_text(_rule(1, "old"))
    assert [r.msg for r in load_rule_files([path]).rules] == ["old"]
    assert len(parses) == 2


def test_rewriting_the_same_bytes_is_still_a_hit(tmp_path: Path, parses: list[str]) -> None:
    path = tmp_path / "a.rules"
    path.write_text(_rule(1))
    load_rule_files([path])
    path.write_text(_rule(1))  # new mtime, same content: the key is the content
    load_rule_files([path])
    assert parses == ["a.rules"]


def test_the_same_text_under_another_name_is_a_miss(tmp_path: Path, parses: list[str]) -> None:
    a, b = tmp_path / "a.rules", tmp_path / "b.rules"
    a.write_text(_rule(1) + "broken\n")
    b.write_text(a.read_text())
    load_rule_files([a])
    rs = load_rule_files([b])
    assert parses == ["a.rules", "b.rules"]
    # diagnostics name the file they came from, so a shared entry would be wrong
    assert {d.file for d in rs.diagnostics} == {str(b)}


def test_other_variables_are_a_miss(tmp_path: Path, parses: list[str]) -> None:
    path = tmp_path / "a.rules"
    path.write_text("alert tcp $HOME_NET any -> any 80 (msg:\"m\"; sid:1;)\n")
    home = load_rule_files([path], address_vars={"HOME_NET": "10.0.0.0/8"})
    other = load_rule_files([path], address_vars={"HOME_NET": "192.168.0.0/16"})
    assert parses == ["a.rules", "a.rules"]
    assert home.rules[0].src != other.rules[0].src


def test_a_change_of_the_parsing_code_invalidates(tmp_path: Path, parses: list[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.rules"
    path.write_text(_rule(1))
    load_rule_files([path])
    monkeypatch.setattr(loader, "_parser_fingerprint", lambda: b"another build")
    load_rule_files([path])
    assert parses == ["a.rules", "a.rules"]


def test_an_entry_of_the_wrong_type_is_ignored(tmp_path: Path, parses: list[str]) -> None:
    path = tmp_path / "a.rules"
    path.write_text(_rule(1))
    load_rule_files([path])
    (entry,) = _entries(tmp_path)
    entry.write_bytes(cache.dumps(["not", "a", "file result"]))
    assert [r.sid for r in load_rule_files([path]).rules] == [1]
    assert parses == ["a.rules", "a.rules"]


def test_use_cache_false_neither_reads_nor_writes(tmp_path: Path, parses: list[str]) -> None:
    path = tmp_path / "a.rules"
    path.write_text(_rule(1))
    load_rule_files([path], use_cache=False)
    assert _entries(tmp_path) == []
    load_rule_files([path])
    load_rule_files([path], use_cache=False)
    assert parses == ["a.rules", "a.rules", "a.rules"]


def test_an_unwritable_cache_does_not_break_loading(tmp_path: Path, parses: list[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # mkdir under a file fails
    path = tmp_path / "a.rules"
    path.write_text(_rule(1))
    assert load_rule_files([path]).loaded == 1
    assert load_rule_files([path]).loaded == 1
    assert parses == ["a.rules", "a.rules"]


# --- other compiled artefacts (cache.cached) --------------------------------------------


def test_cached_builds_once_then_loads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    built: list[int] = []

    def build() -> list[int]:
        built.append(1)
        return [1, 2, 3]

    def run(parts: tuple[bytes, ...]) -> list[int]:
        return cache.cached("t", parts, build, lambda v: bytes(v), list)

    assert run((b"a", b"b")) == [1, 2, 3] and len(built) == 1
    assert run((b"a", b"b")) == [1, 2, 3] and len(built) == 1  # loaded
    assert run((b"ab",)) == [1, 2, 3] and len(built) == 2  # parts are length-framed
    assert run(()) == [1, 2, 3] and len(built) == 3
    assert len(list((tmp_path / "ruleengine").glob("t-*.bin"))) == 3


def test_cached_rebuilds_an_unloadable_entry(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    built: list[int] = []

    def build() -> bytes:
        built.append(1)
        return b"good"

    def load(blob: bytes) -> bytes:
        if blob != b"good":
            raise ValueError("corrupt")
        return blob

    assert cache.cached("t", (b"k",), build, bytes, load) == b"good"
    (entry,) = (tmp_path / "ruleengine").glob("t-*.bin")
    entry.write_bytes(b"torn")
    assert cache.cached("t", (b"k",), build, bytes, load) == b"good"
    assert len(built) == 2 and entry.read_bytes() == b"good"  # and written anew


def test_cached_without_a_writable_cache_still_builds(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert cache.cached("t", (b"k",), lambda: b"v", bytes, bytes) == b"v"
