"""run_workers: forked workers, each with its own capture and pipeline, give the same
alerts and totals as one process when flows are spread over them the way a fanout group
spreads them; stats are merged; a worker that cannot start is reported, not fatal unless
none ran; the parent's housekeeping counts; SIGTERM reaches the workers."""

from __future__ import annotations

import itertools
import os
import pickle
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from capture_backends.base import BaseBackend, Capability, RawPacket
from capture_backends.memory import MemoryBackend
from capture_backends.pcap_file import PcapFileBackend
from ruleengine.capture import BackendUnavailable
from ruleengine.decode.decoder import Decoder
from ruleengine.detect.engine import DetectEngine
from ruleengine.outputs.stats import Stats
from ruleengine.pipeline import Pipeline, RunReport
from ruleengine.rules.loader import load_rule_files
from ruleengine.settings import EngineSettings
from ruleengine.workers import _FRAME, _Inbox, run_workers

REPO = Path(__file__).resolve().parents[1]
PCAP = REPO / "examples" / "pcaps" / "http-demo.pcap"
RULES = REPO / "examples" / "rules" / "demo.rules"

Frames = list[tuple[float, bytes]]


def _other_client_port(frame: bytes) -> bytes:
    pkt = Ether(frame)
    tcp = pkt[TCP]
    if tcp.dport == 80:
        tcp.sport += 10001
    else:
        tcp.dport += 10001
    del pkt[IP].chksum, tcp.chksum
    return bytes(pkt)


@pytest.fixture(scope="module")
def frames() -> Frames:
    """The demo capture, then again from other client ports (odd offset): each rule fires
    in two flows, which the split below hands to different workers."""
    with PcapFileBackend(PCAP) as backend:
        original = [(ts, bytes(data)) for ts, data, _ in backend.packets()]
    return original + [(ts + 100, _other_client_port(f)) for ts, f in original]


@pytest.fixture(scope="module")
def detect() -> DetectEngine:
    ruleset = load_rule_files([RULES], use_cache=False)
    assert ruleset.loaded > 1
    return DetectEngine(ruleset.rules)


def _by_flow(frames: Frames, workers: int) -> list[Frames]:
    """Frames split per worker by flow, both directions together, as a fanout group
    hashing the flow keeps flows whole; the hash here is the client port."""
    decoder = Decoder(1)
    split: list[Frames] = [[] for _ in range(workers)]
    for ts, data in frames:
        pkt = decoder.decode(ts, data)
        assert pkt is not None
        client_port = pkt.sport if pkt.dport == 80 else pkt.dport
        split[client_port % workers].append((ts, data))
    return split


def _pipeline(detect: DetectEngine) -> Pipeline:
    return Pipeline(EngineSettings(), detect, eve=None, stats=Stats(), classify=lambda _c: None)


def _run(frames: Frames, detect: DetectEngine, threads: int,
         **kw: Any) -> tuple[RunReport, dict[str, int]]:
    parts = _by_flow(frames, threads)
    return run_workers(threads=threads, open_backend=lambda i: MemoryBackend(parts[i]),
                       make_pipeline=lambda: _pipeline(detect), **kw)


def test_two_workers_alert_as_one(frames: Frames, detect: DetectEngine) -> None:
    one, one_counters = _run(frames, detect, 1)
    two, two_counters = _run(frames, detect, 2)
    parts = _by_flow(frames, 2)
    assert all(parts)  # each worker had flows of its own: the merge is exercised
    assert len(one.alerts_by_sid) > 1  # the rules fire on this capture
    assert min(one.alerts_by_sid.values()) >= 2  # ... each in flows of both workers
    assert two.alerts_by_sid == one.alerts_by_sid
    assert two.msg_by_sid == one.msg_by_sid
    assert (two.packets, two.bytes, two.flows) == (one.packets, one.bytes, one.flows)
    assert two.bypassed_flows_local == one.bypassed_flows_local > 0
    assert not two.interrupted
    for name in ("decoder.pkts", "decoder.bytes", "decoder.tcp", "detect.alert", "flow.end",
                 "capture.kernel_packets"):
        assert two_counters[name] == one_counters[name] > 0, name


def _failing_second(parts: list[Frames]) -> Any:
    def open_backend(index: int) -> MemoryBackend:
        if index == 1:
            raise BackendUnavailable("no such interface: test1")
        return MemoryBackend(parts[index])
    return open_backend


def test_a_worker_that_cannot_start_is_reported(frames: Frames, detect: DetectEngine,
                                                capfd: pytest.CaptureFixture[str]) -> None:
    parts = _by_flow(frames, 2)
    report, _ = run_workers(threads=2, open_backend=_failing_second(parts),
                            make_pipeline=lambda: _pipeline(detect))
    assert report.packets == len(parts[0])
    assert "worker 1: no such interface: test1" in capfd.readouterr().err


def test_no_worker_running_raises(detect: DetectEngine,
                                  capfd: pytest.CaptureFixture[str]) -> None:
    def refuse(index: int) -> MemoryBackend:
        raise BackendUnavailable(f"refused {index}")

    with pytest.raises(BackendUnavailable, match="no worker of 2 ran"):
        run_workers(threads=2, open_backend=refuse, make_pipeline=lambda: _pipeline(detect))
    err = capfd.readouterr().err
    assert "worker 0: refused 0" in err and "worker 1: refused 1" in err
    with pytest.raises(BackendUnavailable, match="refused 0"):  # one worker: in process
        run_workers(threads=1, open_backend=refuse, make_pipeline=lambda: _pipeline(detect))


class _Live(BaseBackend):
    """A live capture: ``frames`` (stamped now), then idle ticks until closed or
    ``seconds`` passed; touches ``ready`` once it is capturing."""

    capabilities = Capability.LIVE

    def __init__(self, ready: Path, seconds: float, frames: Frames | None = None) -> None:
        self.ready = ready
        self.seconds = seconds
        self.frames = frames or []
        self.closed = False

    def packets(self) -> Iterator[RawPacket]:
        self.ready.touch()
        for _ts, data in self.frames:
            yield (time.time(), data, 0)
        end = time.monotonic() + self.seconds
        while not self.closed and time.monotonic() < end:
            time.sleep(0.01)
            yield (time.time(), b"", 0)

    def close(self) -> None:
        self.closed = True


def test_live_stats_are_merged_in_rounds(tmp_path: Path, frames: Frames,
                                         detect: DetectEngine) -> None:
    parts = _by_flow(frames, 2)
    settings = EngineSettings(offline=False, stats_interval=0.05)
    calls: list[dict[str, int]] = []
    report, counters = run_workers(
        threads=2, open_backend=lambda i: _Live(tmp_path / f"ready{i}", 1.0, parts[i]),
        make_pipeline=lambda: Pipeline(settings, detect, eve=None, stats=Stats(),
                                       classify=lambda _c: None),
        write_stats=lambda _now, _uptime, merged, **_threads: calls.append(dict(merged)))
    assert report.packets == len(frames)
    assert len(calls) >= 2  # rounds while running, then the final totals
    assert calls[-1] == counters and counters["decoder.pkts"] == len(frames)
    # a round sums the latest snapshot of every worker, not just the one that sent last
    assert any(c["decoder.pkts"] == len(frames) for c in calls[:-1])
    assert all(a["decoder.pkts"] <= b["decoder.pkts"] for a, b in itertools.pairwise(calls))


def test_housekeeping_runs_in_the_parent_and_counts(tmp_path: Path,
                                                    detect: DetectEngine) -> None:
    sweeps: list[int] = []

    def housekeeping() -> dict[str, int]:
        sweeps.append(os.getpid())
        return {"flow_bypassed.orphans_expired": 2}

    _, counters = run_workers(
        threads=2, open_backend=lambda i: _Live(tmp_path / f"ready{i}", 0.4),
        make_pipeline=lambda: _pipeline(detect), housekeeping=housekeeping,
        housekeeping_interval=0.05)
    assert sweeps and set(sweeps) == {os.getpid()}
    assert counters["flow_bypassed.orphans_expired"] == 2 * len(sweeps)


def test_sigterm_is_forwarded_to_the_workers(tmp_path: Path, detect: DetectEngine) -> None:
    ready = [tmp_path / "ready0", tmp_path / "ready1"]

    def terminate_when_capturing() -> None:
        deadline = time.monotonic() + 20
        while not all(p.exists() for p in ready) and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=terminate_when_capturing)
    killer.start()
    started = time.monotonic()
    try:
        report, _ = run_workers(threads=2, open_backend=lambda i: _Live(ready[i], 30),
                                make_pipeline=lambda: _pipeline(detect))
    finally:
        killer.join()
    assert report.interrupted  # both workers stopped on the signal, well before 30 s
    assert time.monotonic() - started < 20


def _frame(kind: str, payload: Any) -> bytes:
    data = pickle.dumps((kind, payload))
    return _FRAME.pack(len(data)) + data


def test_inbox_reassembles_frames_split_anywhere() -> None:
    stream = _frame("stats", {"a": 1}) + _frame("result", ("r", {"b": 2}))
    inbox = _Inbox()
    out: list[tuple[str, Any]] = []
    for i in range(len(stream)):
        out.extend(inbox.feed(stream[i:i + 1]))
    assert out == [("stats", {"a": 1}), ("result", ("r", {"b": 2}))]
    assert not inbox.buf


def test_inbox_skips_a_damaged_frame() -> None:
    damaged = _FRAME.pack(5) + b"\x80junk"
    out = _Inbox().feed(damaged + _frame("stats", {"a": 1}))
    assert out == [("stats", {"a": 1})]


class _IdleFor(BaseBackend):
    """A live-like capture with no traffic: idle ticks for ``seconds``, then the end."""

    name = "idle"

    def __init__(self, seconds: float) -> None:
        self.capabilities = Capability.NONE
        self.linktype = 1
        self._until = time.monotonic() + seconds

    def packets(self) -> Iterator[RawPacket]:
        while time.monotonic() < self._until:
            time.sleep(0.01)
            yield (time.time(), b"", 0)


def test_the_hub_reloads_every_worker_and_reports_a_failure(detect: DetectEngine) -> None:
    """WorkerHub.reload: SIGUSR2 to each worker, each rebuilds between packets and answers;
    the reload completes once all answered, with the workers' reason when they failed."""
    from ruleengine.pipeline import ReloadError, RuleReload
    from ruleengine.workers import WorkerHub

    hub = WorkerHub()
    outcomes: list[RuleReload] = []

    def make_pipeline() -> Pipeline:
        pipeline = _pipeline(detect)
        builds = [0]  # this worker's own count (each worker is a fork)

        def rebuild() -> DetectEngine:
            builds[0] += 1
            if builds[0] == 2:  # the second reload meets a broken rule file
                raise ReloadError("x.rules:3: broken")
            return DetectEngine([cr.rule for cr in detect.rules])

        pipeline.rebuild = rebuild
        return pipeline

    def poll() -> None:  # the socket server's place in the parent's loop
        if len(hub.pids) == 2 and not outcomes and hub._reload is None:
            time.sleep(0.3)  # the workers are in their packet loops
            hub.reload().add_done_callback(outcomes.append)
        elif len(outcomes) == 1 and outcomes[0].done and hub._reload is None:
            hub.reload().add_done_callback(outcomes.append)

    hub.poll = poll
    _, counters = run_workers(threads=2, open_backend=lambda i: _IdleFor(3.0),
                              make_pipeline=make_pipeline, hub=hub)
    assert [o.error for o in outcomes] == [None, "x.rules:3: broken"]
    assert counters["detect.engine_reloads"] == 2  # one swap in each worker
    assert counters["detect.engine_reload_failures"] == 2
