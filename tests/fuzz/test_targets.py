"""Short bounded fuzz runs of every target, and the replay of every reproducer.

The long runs are ``make fuzz`` (``python -m tests.fuzz``); these run each target for a
couple of seconds over its seeds and their mutations, deterministically, so a regression
in a parser's leniency fails the suite."""

from __future__ import annotations

import random
import time

import pytest

from tests.fuzz import seeds as S
from tests.fuzz import targets as T
from tests.fuzz.mutate import Mutator
from tests.fuzz.worker import _mutate

TARGETS = T.all_targets()
BUDGET_SECONDS = 2.0
MAX_CASES = 20_000


@pytest.mark.parametrize("name", list(TARGETS))
def test_short_run(name: str) -> None:
    target = TARGETS[name]
    corpus = S.seeds(target.seeds)
    for data in corpus:  # every seed as it is: real traffic must pass untouched
        target.run(data)
    mutator = Mutator(corpus, random.Random(name), 4096)
    deadline = time.monotonic() + BUDGET_SECONDS
    for _ in range(MAX_CASES):
        data = mutator.next()
        try:
            target.run(data)
        except Exception:
            path = T.crash_dir() / f"{name}-crash-new"
            pytest.fail(f"{name}: crash on {data[:200]!r} (write it to {path} to keep it)")
        if time.monotonic() > deadline:
            break
    T.cleanup()


@pytest.mark.parametrize("path", S.crash_inputs(), ids=lambda p: p.name)
def test_reproducer(path) -> None:  # type: ignore[no-untyped-def]
    """Every crash a fuzz run found, replayed against its target (fixed since)."""
    name = path.name.split("-crash-")[0].split("-slow-")[0]
    assert name in TARGETS, f"{path.name}: no target {name!r}"
    started = time.monotonic()
    TARGETS[name].run(path.read_bytes())
    T.cleanup()
    assert time.monotonic() - started < 5.0, f"{path.name}: still slow"


def test_every_applayer_parser_has_a_target() -> None:
    from ruleengine.applayer import registry

    with_parser = {s.name for s in registry.protocols() if s.make_parser is not None}
    covered = {n.removeprefix("applayer-").removesuffix("-tcp").removesuffix("-udp")
               for n in TARGETS if n.startswith("applayer-")}
    assert with_parser == covered


def test_scripts_round_trip() -> None:
    chunks = [(True, b"a" * 300), (False, b"bc"), (True, b"")]
    got = list(T.chunk_script(T.encode_chunks(chunks)))
    assert b"".join(c for d, c in got if d) == b"a" * 300
    assert [c for d, c in got if not d] == [b"bc"]
    packets = [(True, "S", 0, 0, b""), (False, "PA", -5, 300, b"xyz")]
    assert list(T.packet_script(T.encode_script(packets))) == packets


def test_tcp_frame_decodes_with_valid_checksums() -> None:
    from ruleengine.decode.decoder import Decoder

    pkt = Decoder(1).decode(1.0, T.tcp_frame("PA", 7, 9, b"hello", True))
    assert pkt is not None and pkt.payload == b"hello" and pkt.seq == 7
    assert not [e for e in pkt.events or [] if "checksum" in e]


def test_the_fuzzer_finds_and_saves_a_planted_bug(tmp_path, monkeypatch, capsys) -> None:
    """The loop is not vacuous: a target that breaks on one byte value is caught, its input
    saved as a reproducer, the run goes on and exits 1."""

    def buggy(data: bytes) -> None:
        if b"\xfe" in data:
            raise KeyError("planted")

    monkeypatch.setattr(T, "crash_dir", lambda: tmp_path)
    planted = T.Target("planted", buggy, "frames")
    assert _mutate(planted, 3000, 0, 1) == 1
    saved = list(tmp_path.glob("planted-crash-*"))
    assert len(saved) == 1 and b"\xfe" in saved[0].read_bytes()
    assert '"crashes": 0' not in capsys.readouterr().out


def test_decoder_seeds_reach_every_encapsulation() -> None:
    """The decoder target's seeds start inside every tunnel and label layer (the
    captures of the corpus hold none), so mutations exercise their header checks."""
    from ruleengine.decode.decoder import Decoder

    decoders: dict[int, Decoder] = {}
    for data in S.seeds("frames"):
        lt = T.LINKTYPES[data[0] % len(T.LINKTYPES)]
        decoders.setdefault(lt, Decoder(lt)).decode(1.0, data[1:])
    counters: dict[str, int] = {}
    for d in decoders.values():
        for key, value in d.counters.items():
            counters[key] = counters.get(key, 0) + value
    for name in ("gre", "erspan", "ppp", "pppoe", "mpls", "vxlan", "geneve", "chdlc",
                 "ipv4_in_ipv4", "ipv6_in_ipv4", "ipv4_in_ipv6", "ipv6_in_ipv6"):
        assert counters.get("decoder." + name), name
