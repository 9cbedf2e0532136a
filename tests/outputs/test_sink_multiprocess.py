"""Several processes appending to one EVE file (AF_PACKET workers) on a filesystem that
fills and frees up again: a write the full disk cut short must not leave half a line for
another process's line to land after (issue 15, section 3). Real tmpfs, real processes."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from ruleengine.outputs import sinks
from ruleengine.outputs.sinks import FileSink
from tests.outputs.test_sink_faults import _fill, tiny_tmpfs  # noqa: F401 (fixture)

pytestmark = pytest.mark.kernel
WRITERS = 3


def _writer(path: Path, index: int, report: Path) -> None:
    """In a forked child: lines ``{"w": index, "n": i}`` in batches until SIGTERM, then a
    report of what was written and lost."""
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    sink = FileSink(path)
    n = 0
    while not stop:
        for _ in range(3):  # batches of several lines, as a busy worker flushes them
            sink.write(json.dumps({"w": index, "n": n, "pad": "x" * (150 + 37 * index)})
                       .encode())
            n += 1
        sink.flush()
        time.sleep(0.002)
    sink.close()
    report.write_text(json.dumps({"sent": n, "written": sink.stats.written,
                                  "lost": sink.stats.lost, "errors": sink.stats.errors}))


def _wait_full(mnt: Path, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = os.statvfs(mnt)
        if st.f_bavail == 0:
            return True
        time.sleep(0.01)
    return False


def test_workers_writing_one_file_on_a_full_disk_keep_every_line_whole(
        tiny_tmpfs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setattr(sinks, "_RETRY_SECONDS", 0.01)
    eve = tiny_tmpfs / "eve.json"
    # room the test gives back while the writers are stuck on the full disk
    ballast = [tiny_tmpfs / f"ballast{i}" for i in range(2)]
    for path in ballast:
        path.write_bytes(b"\0" * (48 << 10))
    pids = []
    for index in range(WRITERS):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                _writer(eve, index, tmp_path / f"report{index}")
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    try:
        for path in ballast:  # full (the writers filled it), then room again, twice
            assert _wait_full(tiny_tmpfs), "the writers did not fill the filesystem"
            time.sleep(0.3)
            path.unlink()
        assert _wait_full(tiny_tmpfs)
        time.sleep(0.3)
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
        codes = [os.waitpid(pid, 0)[1] for pid in pids]
    assert codes == [0] * WRITERS
    data = eve.read_bytes()
    assert not data or data.endswith(b"\n"), data[-300:]
    seen: dict[int, list[int]] = {i: [] for i in range(WRITERS)}
    for number, line in enumerate(data.splitlines()):
        try:
            event = json.loads(line)
        except ValueError:
            pytest.fail(f"line {number + 1} is not whole: {line[:120]!r}...{line[-60:]!r}")
        seen[event["w"]].append(event["n"])
    reports = [json.loads((tmp_path / f"report{i}").read_text()) for i in range(WRITERS)]
    for index, report in enumerate(reports):
        numbers = seen[index]
        assert numbers == sorted(numbers), index  # each writer's lines in order
        assert report["errors"] >= 1, report  # every writer met the full disk
        assert report["written"] + report["lost"] == report["sent"], report
    print("writers:", reports)
