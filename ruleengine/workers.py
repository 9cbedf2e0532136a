"""Worker processes for live capture (Suricata's ``workers`` runmode).

Each worker is a forked process with its own capture socket (all in one fanout
group, so a flow always lands on the same worker) and its own pipeline and flow
table. The parent forwards SIGINT/SIGTERM, waits, and merges the workers' reports
and counters. Workers talk to the parent over a pipe in framed messages (4-byte
length + pickle): a ``stats`` snapshot at every stats interval, a ``reload`` answer (None
or the reason it failed) after each rule reload, and their ``result`` (report and final
counters) when they finish. SIGUSR2 (and the unix socket's reload commands, through
``WorkerHub``) reach every worker, each of which rebuilds its engine between packets.
Stats events in the shared EVE log are the totals of all workers, as Suricata's are: the
parent writes them (``write_stats``) once every running worker has sent a fresh snapshot,
and once more at the end.
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
from typing import Any, Protocol

from ruleengine.capture import BackendUnavailable, CaptureBackend
from ruleengine.pipeline import Pipeline, RuleReload, RunReport

OpenBackend = Callable[[int], CaptureBackend]
MakePipeline = Callable[[], Pipeline]
# (timestamp, uptime seconds, merged counters) -> write one stats event
# (now, uptime, summed counters[, threads={"W#01": counters, ...}])
WriteStats = Callable[..., None]
# periodic work in the parent while workers run; returns counters to add to the totals
Housekeeping = Callable[[], dict[str, int]]



class Feed(Protocol):
    """Frames the parent hands to its workers (a pcap run: ``pcap_workers.PcapFeed``),
    driven by the parent's loop between two reads of the workers' message pipes."""

    def started(self) -> None: ...
    def wants_write(self) -> list[int]: ...
    def can_read(self) -> bool: ...
    def step(self, writable: list[int]) -> None: ...
    def stop(self) -> None: ...


_FRAME = struct.Struct("=I")
_MAX_WAIT = 0.2  # the parent's select() wakes at least this often (flags set by signals)
RELOAD_TIMEOUT = 300.0  # seconds a reload waits for the workers' answers


class WorkerHub:
    """The parent's view of its running workers, for the unix socket: merged counters, a
    rule reload that completes once every running worker answered, stop. ``poll`` (the
    socket server's) runs in the parent's loop between two reads of the workers' pipes."""

    def __init__(self) -> None:
        self.started = time.time()
        self.poll: Callable[[], None] | None = None
        self.pids: dict[int, int] = {}  # pipe fd -> pid of a running worker
        self.latest: dict[int, dict[str, int]] = {}
        self.own: dict[str, int] = {}
        self.last_reload = time.time()
        self._reload: RuleReload | None = None
        self._waiting: set[int] = set()  # fds of workers whose reload answer is due
        self._errors: list[str] = []
        self._reload_requested = False
        self._deadline = 0.0
        # hear of every finished reload, whoever asked for it (socket or SIGUSR2)
        self.reload_listeners: list[Callable[[RuleReload], None]] = []

    def counters(self) -> dict[str, int]:
        return _sum([*self.latest.values(), self.own])

    def request_reload(self) -> None:
        """SIGUSR2 in the parent: only a flag (the loop starts the reload)."""
        self._reload_requested = True

    def reload(self) -> RuleReload:
        """Ask every running worker to reload (SIGUSR2); joins a reload under way."""
        return self._reload or self._signal_reload()

    def _signal_reload(self) -> RuleReload:
        reload = RuleReload(self.reload_listeners)
        if not self.pids:
            reload.complete("no worker is running")
            return reload
        self._reload = reload
        self._deadline = time.monotonic() + RELOAD_TIMEOUT
        self._waiting = set(self.pids)
        self._errors = []
        for pid in self.pids.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGUSR2)
        return reload

    def stop(self) -> None:
        self.signal_all(signal.SIGTERM)

    def signal_all(self, signum: int) -> None:
        for pid in self.pids.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def _answered(self, fd: int, error: str | None) -> None:
        if fd in self._waiting:
            self._waiting.discard(fd)
            if error is not None and error not in self._errors:
                self._errors.append(error)
        self._maybe_done()

    def _gone(self, fd: int) -> None:
        self.pids.pop(fd, None)
        self._waiting.discard(fd)
        self._maybe_done()

    def _maybe_done(self) -> None:
        reload = self._reload
        if reload is not None and not self._waiting:
            self._reload = None
            if not self._errors:
                self.last_reload = time.time()
            reload.complete("; ".join(self._errors) or None)

    def _tick(self) -> None:
        if self._reload is not None and time.monotonic() > self._deadline:
            # a worker that never answers (busy, or signalled before its handler was in
            # place) must not hold the reload and its socket client forever
            self._errors.append(f"{len(self._waiting)} worker(s) did not answer within "
                                f"{RELOAD_TIMEOUT:.0f}s")
            self._waiting.clear()
            self._maybe_done()
        if self._reload_requested:
            self._reload_requested = False
            self.reload()
        if self.poll is not None:
            self.poll()


def run_workers(*, threads: int, open_backend: OpenBackend, make_pipeline: MakePipeline,
                write_stats: WriteStats | None = None, housekeeping: Housekeeping | None = None,
                housekeeping_interval: float = 5.0,
                on_started: Callable[[], None] | None = None,
                hub: WorkerHub | None = None,
                feed: Feed | None = None,
                ) -> tuple[RunReport, dict[str, int]]:
    """Run ``threads`` workers until the capture stops or a signal arrives.

    Stats snapshots go to ``write_stats`` (called in this process) if given, else each
    pipeline writes its own EVE stats events; with several workers they are merged (a
    round: every running worker sent one) before ``write_stats`` sees them. Raises
    ``BackendUnavailable`` when the capture cannot be opened (one worker) or no worker
    ran (several: each one's error is printed on stderr). With several workers the parent
    runs ``housekeeping`` every ``housekeeping_interval`` seconds (e.g. sweeping kernel
    bypass entries a dead worker left behind). ``on_started``: called in this process
    once every worker was forked (not with one worker: it runs here). ``hub``: the
    parent's handle on the workers for the unix socket (several workers only; one worker
    runs in this process and its pipeline is the caller's to control). ``feed``: the
    frames this process hands to the workers (pcap runs; several workers only)."""
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
    if feed is not None:
        feed.started()
    inboxes = {fd: _Inbox() for fd in children}
    if on_started is not None:
        try:
            # ready (pidfile, --user, -D's parent let go) only once every worker has its
            # capture open and its privileges dropped, as Suricata waits for its threads
            _await_opened(children, inboxes)
            on_started()
        except BaseException:  # no worker may outlive a start that failed
            for pid in children.values():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            for pid in children.values():
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
            raise
    return _wait_children(children, write_stats, housekeeping, housekeeping_interval,
                          hub or WorkerHub(), indices, feed, inboxes)


_OPEN_TIMEOUT = 60.0  # a worker slower than this to open its capture: go on without it


def _await_opened(children: dict[int, int], inboxes: dict[int, _Inbox]) -> None:
    """Read each worker's pipe until it said ``opened`` or ended (its error is on
    stderr; ``_wait_children`` sees the end again). Messages after ``opened`` stay in
    the worker's inbox for ``_wait_children``."""
    waiting = set(children)
    deadline = time.monotonic() + _OPEN_TIMEOUT
    while waiting and time.monotonic() < deadline:
        ready, _, _ = select.select(sorted(waiting), [], [],
                                    max(0.0, deadline - time.monotonic()))
        for fd in ready:
            data = os.read(fd, 1 << 16)
            if not data or inboxes[fd].opened(data):
                waiting.discard(fd)


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

        def reloaded(reload: RuleReload) -> None:
            _send(write_fd, "reload", reload.error)

        result = _run_one(index, open_backend, make_pipeline, sink, reloaded, forked=True,
                          opened=lambda: _send(write_fd, "opened", None))
        _send(write_fd, "result", result)
    except KeyboardInterrupt:  # SIGINT/SIGTERM before its pipeline's handlers: a clean stop
        code = 0
    except BaseException as exc:  # a worker must never unwind into the parent's code
        print(f"error: worker {index}: {exc}", file=sys.stderr)
        code = 1
    finally:
        os._exit(code)


_current = 0  # this process's worker index (0 in the parent and with one worker)


def worker_index() -> int:
    """The index (0-based, fork order) of the worker this process is: ``make_pipeline``
    uses it for files of the worker's own (a pcap run's per-worker EVE part)."""
    return _current


def _run_one(index: int, open_backend: OpenBackend, make_pipeline: MakePipeline,
             sink: WriteStats | None,
             reloaded: Callable[[RuleReload], None] | None = None,
             forked: bool = False, opened: Callable[[], None] | None = None
             ) -> tuple[RunReport, dict[str, int]]:
    global _current
    _current = index
    pipeline = make_pipeline()
    if sink is not None:
        pipeline.stats_sink = sink
    if reloaded is not None:
        pipeline.reload_listeners.append(reloaded)
    backend = open_backend(index)
    if opened is not None:
        opened()
    old = {sig: signal.signal(sig, lambda *_: pipeline.stop())
           for sig in (signal.SIGINT, signal.SIGTERM)}
    # SIGUSR2: Suricata's live rule reload, between packets
    old[signal.SIGUSR2] = signal.signal(signal.SIGUSR2, lambda *_: pipeline.request_reload())
    try:
        report = pipeline.run(backend)
    finally:
        if forked:  # the run has stopped: more stop signals (the parent forwards each one
            # it gets) must not cut the flush or the result to the parent short
            for sig in (signal.SIGINT, signal.SIGTERM):
                old[sig] = signal.SIG_IGN
            _restore(old)
        backend.close()
        if pipeline.eve is not None:
            pipeline.eve.close()
        _restore(old)
    pipeline.collect_counters()
    return report, pipeline.stats.snapshot()


def _restore(handlers: dict[signal.Signals, Any]) -> None:
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


class _Inbox:
    """Reassembles one worker's framed messages from its pipe."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.held: list[tuple[str, Any]] = []  # read while waiting for ``opened``

    def opened(self, data: bytes) -> bool:
        """Take ``data``; whether the worker's ``opened`` message was in it (what came
        after it is held for the next ``feed``)."""
        messages = self.feed(data)
        seen = any(kind == "opened" for kind, _ in messages)
        self.held = [m for m in messages if m[0] != "opened"]
        return seen

    def feed(self, data: bytes) -> list[tuple[str, Any]]:
        self.buf += data
        out, self.held = self.held, []
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


def _worker_capture_counters(latest: dict[int, dict[str, int]], indices: dict[int, int]
                             ) -> dict[str, int]:
    """Each worker's capture counters under ``worker.<index>.*`` (the metrics endpoint
    labels them by worker; EVE's schema leaves them out)."""
    out: dict[str, int] = {}
    for fd, counters in latest.items():
        for name in ("capture.kernel_packets", "capture.kernel_drops"):
            out[f"worker.{indices.get(fd, fd)}.{name}"] = counters.get(name, 0)
    return out


def _wait_children(children: dict[int, int], write_stats: WriteStats | None,
                   housekeeping: Housekeeping | None, interval: float, hub: WorkerHub,
                   indices: dict[int, int] | None = None, feed: Feed | None = None,
                   inboxes: dict[int, _Inbox] | None = None
                   ) -> tuple[RunReport, dict[str, int]]:
    indices = indices or {}
    def forward(signum: int, frame: Any) -> None:
        if feed is not None:
            feed.stop()  # only flags and buffers: the loop closes the pipes
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
    old[signal.SIGUSR2] = signal.signal(signal.SIGUSR2, lambda *_: hub.request_reload())
    started = hub.started
    hub.pids = dict(children)
    inboxes = inboxes or {fd: _Inbox() for fd in children}
    latest = hub.latest  # fd -> last stats snapshot of that worker
    fresh: set[int] = set()  # workers that sent a snapshot since the last merged event
    results: dict[int, tuple[RunReport, dict[str, int]]] = {}
    open_fds = set(children)
    next_housekeeping = time.monotonic() + interval
    try:
        while open_fds:
            wait = max(0.0, next_housekeeping - time.monotonic()) if housekeeping \
                else _MAX_WAIT
            wanted = feed.wants_write() if feed is not None else []
            if feed is not None and feed.can_read():
                wait = 0.0  # frames to read: only look whether a pipe is ready
            ready, writable, _ = select.select(sorted(open_fds), wanted, [],
                                               min(wait, _MAX_WAIT))
            if feed is not None:
                feed.step(writable)
            if housekeeping is not None and time.monotonic() >= next_housekeeping:
                next_housekeeping = time.monotonic() + interval
                hub.own = _sum([hub.own, housekeeping()])
            for fd in ready:
                data = os.read(fd, 1 << 16)
                for kind, payload in inboxes[fd].feed(data):
                    if kind == "stats":
                        latest[fd] = payload
                        fresh.add(fd)
                    elif kind == "reload":
                        hub._answered(fd, payload)
                    elif kind == "result":
                        results[fd] = payload
                        latest[fd] = payload[1]
                        hub._gone(fd)
                if not data:  # the worker ended (after what it sent before)
                    open_fds.discard(fd)
                    os.close(fd)
                    os.waitpid(children[fd], 0)
                    hub._gone(fd)
            hub._tick()
            running = open_fds - set(results)
            if write_stats is not None and running and fresh >= running:
                # a round: every worker still running has reported since the last event
                now = time.time()
                write_stats(now, now - started,
                            _sum([hub.counters(), _worker_capture_counters(latest, indices)]),
                            threads=_per_worker(children, latest))
                fresh.clear()
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    if not results:
        raise BackendUnavailable(f"no worker of {len(children)} ran (see the errors above)")
    total = RunReport()
    for report, _counters in results.values():
        _merge_report(total, report)
    counters = _sum([*(c for _r, c in results.values()), hub.own,
                     _worker_capture_counters(latest, indices)])
    if write_stats is not None and results:
        now = time.time()
        write_stats(now, now - started, counters, threads=_per_worker(children, latest))
    return total, counters


def _per_worker(children: dict[int, int], latest: dict[int, dict[str, int]]
                ) -> dict[int, dict[str, int]]:
    """Each worker's last counters by its number (1-based, in fork order)."""
    return {n: latest[fd] for n, fd in enumerate(children, 1) if fd in latest}


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
