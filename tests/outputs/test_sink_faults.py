"""EVE transports that fail after opening: disk full, the file or its directory removed, the
socket reader gone. One message per outage, counters, no exception, and writing resumes
when it can -- with whole lines, in order."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ruleengine.outputs import sinks
from ruleengine.outputs.sinks import FileSink, UnixSocketSink
from tests import kernel


@pytest.fixture(autouse=True)
def _fast_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sinks, "_RETRY_SECONDS", 0.0)


def _record(i: int) -> bytes:
    return json.dumps({"event_type": "alert", "n": i, "pad": "x" * 200}).encode()


def _numbers(path: Path) -> list[int]:
    data = path.read_bytes()
    assert data.endswith(b"\n"), "the file ends with a whole line"
    return [json.loads(line)["n"] for line in data.splitlines()]


def test_dev_full_is_counted_and_said_once() -> None:
    said: list[str] = []
    sink = FileSink("/dev/full")
    sink.stats.notify = said.append
    for i in range(2000):
        sink.write(_record(i))
    sink.flush()
    sink.close()
    assert sink.stats.errors >= 1 and sink.stats.written == 0
    assert sink.stats.lost == 2000  # kept in the backlog while it could, lost at close
    assert len(said) == 1 and "No space left on device" in said[0]


def test_directory_removed_then_back_resumes_with_nothing_lost(tmp_path: Path) -> None:
    logdir = tmp_path / "log"
    logdir.mkdir()
    said: list[str] = []
    sink = FileSink(logdir / "eve.json")
    sink.stats.notify = said.append
    sink.write(_record(0))
    sink.flush()
    shutil.rmtree(logdir)
    for i in range(1, 50):
        sink.write(_record(i))
        sink.flush()
    assert len(said) == 1 and "was removed and cannot be created again" in said[0]
    logdir.mkdir()  # the operator puts the directory back
    sink.write(_record(50))
    sink.flush()
    sink.close()
    assert _numbers(logdir / "eve.json") == list(range(1, 51))  # none went to the dead inode
    assert sink.stats.lost == 0
    assert len(said) == 2 and "writing resumed" in said[1]


def test_file_removed_is_created_again(tmp_path: Path) -> None:
    path = tmp_path / "eve.json"
    sink = FileSink(path)
    sink.write(_record(0))
    sink.flush()
    path.unlink()
    sink.write(_record(1))
    sink.flush()
    sink.close()
    assert _numbers(path) == [1]
    assert sink.stats.lost == 0


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    kernel.require_root()
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "fuzz-sinkfault", str(mnt)],
                          capture_output=True, text=True)
    if proc.returncode:
        pytest.skip(f"cannot mount a tmpfs: {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(mnt: Path) -> Path:
    filler = mnt / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 512)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


@pytest.mark.kernel
def test_disk_full_then_space_back_loses_nothing(tiny_tmpfs: Path) -> None:
    said: list[str] = []
    sink = FileSink(tiny_tmpfs / "eve.json")
    sink.stats.notify = said.append
    for i in range(100):
        sink.write(_record(i))
    sink.flush()
    filler = _fill(tiny_tmpfs)
    for i in range(100, 600):  # ~115 KB while the disk is full: kept in the backlog
        sink.write(_record(i))
        sink.flush()
    assert sink.stats.errors >= 1 and len(said) == 1, said
    assert "No space left on device" in said[0]
    data = (tiny_tmpfs / "eve.json").read_bytes()
    assert data.count(b"\n") < 600
    filler.unlink()  # space is back
    sink.write(_record(600))
    sink.flush()
    assert len(said) == 2 and "writing resumed" in said[1]
    sink.close()
    # every line whole, in order, none lost: a write cut by the full disk went on where it
    # stopped
    assert _numbers(tiny_tmpfs / "eve.json") == list(range(601))
    assert sink.stats.lost == 0 and sink.stats.written == 601


def test_unix_reader_gone_and_back(tmp_path: Path) -> None:
    path = str(tmp_path / "eve.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    said: list[str] = []
    sink = UnixSocketSink(path, socket.SOCK_DGRAM)
    sink.stats.notify = said.append
    sink.write(b'{"n":0}')
    assert server.recv(100) == b'{"n":0}\n'
    server.close()
    os.unlink(path)  # the reader is gone
    for i in range(1, 20):
        sink.write(b'{"n":%d}' % i)
    assert len(said) == 1 and sink.stats.lost == 19
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)  # ... and back
    sinks_time = sink._last_attempt
    sink._last_attempt = sinks_time - 1.0  # past the 500 ms reconnect pause
    sink.write(b'{"n":20}')
    assert server.recv(100) == b'{"n":20}\n'
    assert len(said) == 2 and "writing resumed" in said[1]
    sink.close()
    server.close()
