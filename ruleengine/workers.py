"""Worker processes for live capture (Suricata's ``workers`` runmode).

Each worker is a forked process with its own capture socket (all in one fanout
group, so a flow always lands on the same worker) and its own pipeline and flow
table. The parent forwards SIGINT/SIGTERM, waits, and merges the workers' reports
and counters. Workers talk to the parent over a pipe in framed messages (4-byte
length + pickle): a ``stats`` snapshot at every stats interval, and their ``result``
(report and final counters) when they finish. Stats events in the shared EVE log are
the totals of all workers, as Suricata's are: the parent writes them (``write_stats``)
once every running worker has sent a fresh snapshot, and once more at the end.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

from ruleengine.capture import BackendUnavailable, CaptureBackend
from ruleengine.pipeline import Pipeline, RunReport

OpenBackend = Callable[[int], CaptureBackend]
MakePipeline = Callable[[], Pipeline]
# (timestamp, uptime seconds, merged counters) -> write one stats event
WriteStats = Callable[[float, float, dict[str, int]], None]
# periodic work in the parent while workers run; returns counters to add to the totals
Housekeeping = Callable[[], dict[str, int]]

_FRAME = struct.Struct("=I")


def run_workers(*, threads: int, open_backend: OpenBackend, make_pipeline: MakePipeline,
                write_stats: WriteStats | None = None, housekeeping: Housekeeping | None = None,
                housekeeping_interval: float = 5.0) -> tuple[RunReport, dict[str, int]]:
    """Run ``threads`` workers until the capture stops or a signal arrives.

    Stats snapshots go to ``write_stats`` (called in this process) if given, else each
    pipeline writes its own EVE stats events; with several workers they are merged (a
    round: every running worker sent one) before ``write_stats`` sees them. Raises
    ``BackendUnavailable`` when the capture cannot be opened (one worker) or no worker
    ran (several: each one's error is printed on stderr). With several workers the parent
    runs ``housekeeping`` every ``housekeeping_interval`` seconds (e.g. sweeping kernel
    bypass entries a dead worker left behind)."""
    if threads <= 1:
        return _run_one(0, open_backend, make_pipeline, write_stats)
    children: dict[int, int] = {}  # read end of its message pipe -> pid
    indices: dict[int, int] = {}  # read end -> worker index
    for index in range(threads):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child
            os.close(read_fd)
            _child_main(index, write_fd, open_backend, make_pipeline)
        os.close(write_fd)
        children[read_fd] = pid
        indices[read_fd] = index
    return _wait_children(children, write_stats, housekeeping, housekeeping_interval, indices)


def _send(fd: int, kind: str, payload: Any) -> None:
    data = pickle.dumps((kind, payload))
    view = memoryview(_FRAME.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def _child_main(index: int, write_fd: int, open_backend: OpenBackend,
                make_pipeline: MakePipeline) -> None:
    code = 0
    try:
        def sink(now: float, uptime: float, counters: dict[str, int]) -> None:
            _send(write_fd, "stats", counters)

        result = _run_one(index, open_backend, make_pipeline, sink)
        _send(write_fd, "result", result)
    except BaseException as exc:  # a worker must never unwind into the parent's code
        print(f"error: worker {index}: {exc}", file=sys.stderr)
        code = 1
    finally:
        os._exit(code)


def _run_one(index: int, open_backend: OpenBackend, make_pipeline: MakePipeline,
             sink: WriteStats | None) -> tuple[RunReport, dict[str, int]]:
    pipeline = make_pipeline()
    if sink is not None:
        pipeline.stats_sink = sink
    backend = open_backend(index)
    old = {sig: signal.signal(sig, lambda *_: pipeline.stop())
           for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        report = pipeline.run(backend)
    finally:
        backend.close()
        if pipeline.eve is not None:
            pipeline.eve.close()
        for sig, handler in old.items():
            signal.signal(sig, handler)
    pipeline.collect_counters()
    return report, pipeline.stats.snapshot()


class _Inbox:
    """Reassembles one worker's framed messages from its pipe."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[str, Any]]:
        self.buf += data
        out = []
        while len(self.buf) >= _FRAME.size:
            (size,) = _FRAME.unpack_from(self.buf)
            if len(self.buf) < _FRAME.size + size:
                break
            blob = bytes(self.buf[_FRAME.size:_FRAME.size + size])
            del self.buf[:_FRAME.size + size]
            try:
                out.append(pickle.loads(blob))
            except Exception:  # a worker died mid-write: its numbers are lost, not ours
                continue
        return out


def _sum(snapshots: Any) -> dict[str, int]:
    total: dict[str, int] = {}
    for counters in snapshots:
        for name, value in counters.items():
            total[name] = total.get(name, 0) + value
    return total


def _per_worker(latest: dict[int, dict[str, int]], indices: dict[int, int]) -> dict[str, int]:
    """Each worker's capture counters under ``worker.<index>.*`` (the metrics endpoint
    labels them by worker; EVE's schema leaves them out)."""
    out: dict[str, int] = {}
    for fd, counters in latest.items():
        for name in ("capture.kernel_packets", "capture.kernel_drops"):
            out[f"worker.{indices.get(fd, fd)}.{name}"] = counters.get(name, 0)
    return out


def _wait_children(children: dict[int, int], write_stats: WriteStats | None,
                   housekeeping: Housekeeping | None, interval: float,
                   indices: dict[int, int] | None = None
                   ) -> tuple[RunReport, dict[str, int]]:
    indices = indices or {}
    def forward(signum: int, frame: Any) -> None:
        for pid in children.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    old = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    parent_hangup = signal.getsignal(signal.SIGHUP)

    def hangup(signum: int, frame: Any) -> None:
        # logrotate signals the parent: every worker reopens its own files, and so do we
        for pid in children.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGHUP)
        if callable(parent_hangup):
            parent_hangup(signum, frame)

    if parent_hangup not in (signal.SIG_DFL, None):  # only where the caller handles SIGHUP
        old[signal.SIGHUP] = signal.signal(signal.SIGHUP, hangup)
    started = time.time()
    inboxes = {fd: _Inbox() for fd in children}
    latest: dict[int, dict[str, int]] = {}  # fd -> last stats snapshot of that worker
    fresh: set[int] = set()  # workers that sent a snapshot since the last merged event
    results: dict[int, tuple[RunReport, dict[str, int]]] = {}
    open_fds = set(children)
    own: dict[str, int] = {}  # the parent's counters (housekeeping)
    next_housekeeping = time.monotonic() + interval
    try:
        while open_fds:
            wait = max(0.0, next_housekeeping - time.monotonic()) if housekeeping else None
            ready, _, _ = select.select(sorted(open_fds), [], [], wait)
            if housekeeping is not None and time.monotonic() >= next_housekeeping:
                next_housekeeping = time.monotonic() + interval
                own = _sum([own, housekeeping()])
            for fd in ready:
                data = os.read(fd, 1 << 16)
                if not data:
                    open_fds.discard(fd)
                    os.close(fd)
                    os.waitpid(children[fd], 0)
                    continue
                for kind, payload in inboxes[fd].feed(data):
                    if kind == "stats":
                        latest[fd] = payload
                        fresh.add(fd)
                    elif kind == "result":
                        results[fd] = payload
                        latest[fd] = payload[1]
            running = open_fds - set(results)
            if write_stats is not None and running and fresh >= running:
                # a round: every worker still running has reported since the last event
                now = time.time()
                write_stats(now, now - started,
                            _sum([*latest.values(), own, _per_worker(latest, indices)]))
                fresh.clear()
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    if not results:
        raise BackendUnavailable(f"no worker of {len(children)} ran (see the errors above)")
    total = RunReport()
    for report, _counters in results.values():
        _merge_report(total, report)
    counters = _sum([*(c for _r, c in results.values()), own, _per_worker(latest, indices)])
    if write_stats is not None and results:
        now = time.time()
        write_stats(now, now - started, counters)
    return total, counters


def _merge_report(total: RunReport, part: RunReport) -> None:
    total.packets += part.packets
    total.bytes += part.bytes
    total.invalid += part.invalid
    total.flows += part.flows
    total.dropped += part.dropped
    total.bypassed_flows_local += part.bypassed_flows_local
    total.bypassed_flows_capture += part.bypassed_flows_capture
    total.duration = max(total.duration, part.duration)
    total.interrupted = total.interrupted or part.interrupted
    for sid, count in part.alerts_by_sid.items():
        total.alerts_by_sid[sid] = total.alerts_by_sid.get(sid, 0) + count
    total.msg_by_sid.update(part.msg_by_sid)
