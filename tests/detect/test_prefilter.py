"""The prefilter never changes results: same alerts with prefilter on/off and with the
hyperscan and Aho-Corasick matchers, on generated rules and inputs."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ruleengine.detect import prefilter
from ruleengine.detect.engine import DetectEngine
from ruleengine.detect.prefilter import Mpm, hyperscan_available
from ruleengine.rules.errors import RuleError
from ruleengine.rules.model import Rule
from tests.detect.helpers import FakeFlow, FakeTx, pkt, rule

ALPHABET = b"abAB\x00\xc0\xe0/"
BACKENDS = ["ac", "hs"] if hyperscan_available() else ["ac"]


def _hex(data: bytes) -> str:
    return "|" + " ".join(f"{c:02x}" for c in data) + "|"


def _content(r: random.Random, first: bool) -> str:
    pat = bytes(r.choice(ALPHABET) for _ in range(r.randint(1, 4)))
    opts = [f'content:{"!" if (not first and r.random() < 0.2) else ""}"{_hex(pat)}";']
    if r.random() < 0.3:
        opts.append("nocase;")
    roll = r.random()
    if first and roll < 0.3:
        off = r.randint(0, 5)
        opts.append(f"offset:{off}; depth:{len(pat) + r.randint(0, 6)};")
    elif not first and roll < 0.6:
        opts.append(f"distance:{r.randint(-3, 4)};")
        if r.random() < 0.6:
            opts.append(f"within:{len(pat) + r.randint(0, 5)};")
    elif roll < 0.7:
        opts.append(r.choice(["startswith;", "endswith;"]) if first else "")
    if r.random() < 0.15 and "!" not in opts[0]:
        opts.append("fast_pattern;")
    return " ".join(opts)


def _options(r: random.Random) -> str:
    parts = [_content(r, i == 0) for i in range(r.randint(1, 3))]
    if r.random() < 0.2:
        parts.append('pcre:"/[ab]{2}/i";' if r.random() < 0.5 else 'pcre:"/^A/R";')
    if r.random() < 0.1:
        parts.append("isdataat:2,relative;")
    return " ".join(parts)


def _rules(seed: int, count: int, buffers: list[str]) -> list[Rule]:
    r = random.Random(seed)
    out: list[Rule] = []
    sid = 0
    while len(out) < count:
        sid += 1
        buf = r.choice(buffers)
        sticky = "" if buf == "payload" else f"{buf}; "
        proto = "tcp" if buf == "payload" else "http"
        action = r.choice(["alert", "alert", "alert", "drop", "pass"])
        text = f"{action} {proto} any any -> any any ({sticky}{_options(r)} sid:{sid};)"
        try:
            out.append(rule(text))
        except RuleError:
            continue
    return out


def _engines(rules: list[Rule]) -> list[DetectEngine]:
    engines = [DetectEngine(rules, mpm="ac", prefilter=False)]
    engines += [DetectEngine(rules, mpm=b) for b in BACKENDS]
    return engines


def _data(r: random.Random) -> bytes:
    return bytes(r.choice(ALPHABET) for _ in range(r.randint(0, 24)))


@pytest.mark.parametrize("seed", range(4))
def test_packet_rules_same_alerts_with_and_without_prefilter(seed: int) -> None:
    rules = _rules(seed, 150, ["payload"])
    engines = _engines(rules)
    r = random.Random(1000 + seed)
    fired = 0
    for _ in range(300):
        data = _data(r)
        chunk = _data(r) if r.random() < 0.3 else None
        results = [
            [(m.rule.sid, m.stream) for m in e.inspect_packet(pkt(data), None, True, chunk)]
            for e in engines
        ]
        assert all(res == results[0] for res in results[1:]), data
        fired += len(results[0])
    assert fired > 50  # the generator does produce matches


@pytest.mark.parametrize("seed", range(3))
def test_tx_rules_same_alerts_with_and_without_prefilter(seed: int) -> None:
    names = ["http.uri", "http.header", "http.request_header", "http.user_agent"]
    rules = _rules(seed, 150, names)
    engines = _engines(rules)
    r = random.Random(2000 + seed)
    fired = 0
    for tx_id in range(200):
        req = {
            "http.uri": _data(r),
            "http.header": _data(r),
            "http.request_header": [_data(r) for _ in range(r.randint(0, 3))],
            "http.user_agent": _data(r) if r.random() < 0.8 else None,
        }
        results = []
        for e in engines:
            out = e.inspect_tx(pkt(), FakeFlow(), True, FakeTx(tx_id, req), True, False)
            results.append([m.rule.sid for m in out])
        assert all(res == results[0] for res in results[1:]), req
        fired += len(results[0])
    assert fired > 30


@settings(max_examples=150, deadline=None)
@given(
    patterns=st.lists(
        st.tuples(st.binary(min_size=0, max_size=4), st.booleans()), min_size=1, max_size=12
    ),
    data=st.binary(max_size=40),
)
def test_mpm_backends_agree_with_naive_search(
    patterns: list[tuple[bytes, bool]], data: bytes
) -> None:
    expected = set()
    for pid_guess, (pat, nocase) in enumerate(patterns):
        del pid_guess
        hay, needle = (data.lower(), pat.lower()) if nocase else (data, pat)
        if needle in hay:
            expected.add((pat.lower() if nocase else pat, nocase))
    for backend in BACKENDS:
        mpm = Mpm(backend)
        ids = {}
        for pat, nocase in patterns:
            ids[mpm.add(pat, nocase)] = (pat.lower() if nocase else pat, nocase)
        mpm.build()
        assert {ids[pid] for pid in mpm.scan(data)} == expected


def test_hyperscan_compile_failure_falls_back_to_aho_corasick(monkeypatch) -> None:
    if not hyperscan_available():
        pytest.skip("hyperscan not installed")
    mpm = Mpm("hs")
    pid = mpm.add(b"abc", False)

    def broken(self: Mpm, pats: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(Mpm, "_build_hs", broken)
    mpm.build()
    assert mpm.backend == "ac" and mpm.fallback_reason
    assert mpm.scan(b"xxabc") == {pid}


@pytest.mark.skipif(not hyperscan_available(), reason="hyperscan not installed")
def test_databases_compiled_in_a_child_find_what_local_ones_find() -> None:
    """compile_in_child (rule reloads): the databases come from a forked child, serialized,
    and scan as the locally compiled ones do; the builder's process compiled none."""
    import os

    from ruleengine.detect import prefilter

    rng = random.Random(7)
    patterns = [(bytes(rng.choice(b"abcXYZ\xc0\xe0") for _ in range(rng.randint(1, 6))),
                 rng.random() < 0.5) for _ in range(300)]
    local, remote, other = Mpm("hs"), Mpm("hs"), Mpm("hs")
    for mpm in (local, remote, other):
        for pattern, nocase in patterns:
            mpm.add(pattern, nocase)
    local.build()
    parent = os.getpid()
    compiled_in: list[int] = []
    real = Mpm._compile_hs

    def spy(self: Mpm, pats: list[tuple[tuple[bytes, bool], int]]) -> object:
        compiled_in.append(os.getpid())
        return real(self, pats)

    Mpm._compile_hs = spy  # type: ignore[method-assign]
    try:
        with prefilter.compile_in_child() as batch:
            remote.build()
            other.build()
    finally:
        Mpm._compile_hs = real  # type: ignore[method-assign]
    assert batch.in_child == 2 and batch.error is None
    assert parent not in compiled_in  # the spy ran in the child only (its list is the child's)
    for _ in range(200):
        data = bytes(rng.choice(b"abcxyzXYZ\xc0\xe0 ") for _ in range(rng.randint(0, 40)))
        assert remote.scan(data) == local.scan(data) == other.scan(data)


@pytest.mark.skipif(not hyperscan_available(), reason="hyperscan not installed")
def test_a_cached_hyperscan_database_gives_the_compiled_ones_hits(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Large databases are stored (``rules.cache.cached``) and loaded by the next build:
    the loaded one finds what a fresh compile finds, a torn entry is compiled again, and
    another pattern set is another entry."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    r = random.Random(5)
    pats = [(bytes(r.choice(ALPHABET) for _ in range(r.randint(2, 6))), r.random() < 0.4)
            for _ in range(300)]
    data = [bytes(r.choice(ALPHABET) for _ in range(200)) for _ in range(50)]

    def build(patterns: list[tuple[bytes, bool]]) -> Mpm:
        m = Mpm("hs")
        for p, nocase in patterns:
            m.add(p, nocase)
        m.build()
        assert m.backend == "hs"
        return m

    first = build(pats)
    entries = sorted((tmp_path / "ruleengine").glob("hs-*.bin"))
    assert len(entries) == 1
    loads = []
    original = prefilter._hs_load
    monkeypatch.setattr(prefilter, "_hs_load", lambda b: loads.append(1) or original(b))
    second = build(pats)
    assert loads == [1]
    assert [second.scan(d) for d in data] == [first.scan(d) for d in data]
    assert any(first.scan(d) for d in data)
    entries[0].write_bytes(entries[0].read_bytes()[:100])
    third = build(pats)
    assert [third.scan(d) for d in data] == [first.scan(d) for d in data]
    build(pats[:-1])
    assert len(list((tmp_path / "ruleengine").glob("hs-*.bin"))) == 2
    small = build(pats[:50])  # under the threshold: compiled, not stored
    assert len(list((tmp_path / "ruleengine").glob("hs-*.bin"))) == 2
    assert small.scan(data[0]) <= first.scan(data[0])
