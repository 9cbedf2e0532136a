"""Worker processes for live capture (Suricata's ``workers`` runmode).

Each worker is a forked process with its own capture socket (all in one fanout
group, so a flow always lands on the same worker) and its own pipeline and flow
table. The parent forwards SIGINT/SIGTERM, waits, and merges the workers' reports
and counters, which they send back over a pipe when they finish.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
from collections.abc import Callable
from typing import Any

from capture_backends.base import CaptureBackend
from ruleengine.pipeline import Pipeline, RunReport

OpenBackend = Callable[[int], CaptureBackend]
MakePipeline = Callable[[], Pipeline]


def run_workers(*, threads: int, open_backend: OpenBackend,
                make_pipeline: MakePipeline) -> tuple[RunReport, dict[str, int]]:
    """Run ``threads`` workers until the capture stops or a signal arrives."""
    if threads <= 1:
        return _run_one(0, open_backend, make_pipeline)
    children: dict[int, int] = {}  # pid -> read end of its result pipe
    for index in range(threads):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child
            os.close(read_fd)
            _child_main(index, write_fd, open_backend, make_pipeline)
        os.close(write_fd)
        children[pid] = read_fd
    return _wait_children(children)


def _child_main(index: int, write_fd: int, open_backend: OpenBackend,
                make_pipeline: MakePipeline) -> None:
    code = 0
    try:
        result = _run_one(index, open_backend, make_pipeline)
        payload = pickle.dumps(result)
        with os.fdopen(write_fd, "wb") as out:
            out.write(payload)
    except BaseException as exc:  # a worker must never unwind into the parent's code
        print(f"error: worker {index}: {exc}", file=sys.stderr)
        code = 1
    finally:
        os._exit(code)


def _run_one(index: int, open_backend: OpenBackend,
             make_pipeline: MakePipeline) -> tuple[RunReport, dict[str, int]]:
    pipeline = make_pipeline()
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


def _wait_children(children: dict[int, int]) -> tuple[RunReport, dict[str, int]]:
    def forward(signum: int, frame: Any) -> None:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    old = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    total = RunReport()
    counters: dict[str, int] = {}
    try:
        for pid, read_fd in children.items():
            with os.fdopen(read_fd, "rb") as pipe:
                payload = pipe.read()
            os.waitpid(pid, 0)
            if not payload:
                continue
            report, worker_counters = pickle.loads(payload)
            _merge_report(total, report)
            for name, value in worker_counters.items():
                counters[name] = counters.get(name, 0) + value
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
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
