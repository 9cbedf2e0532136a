"""EVE transports (eve-log ``filetype``) against real readers: AF_UNIX datagram and stream
sockets, a syslog socket, and a redis-server the test starts on a unix socket."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ruleengine.outputs import sinks
from ruleengine.outputs.eve import EveWriter
from ruleengine.outputs.sinks import (
    FileSink,
    OutputError,
    RedisOptions,
    RedisSink,
    SyslogOptions,
    SyslogSink,
    UnixSocketSink,
    open_sink,
    sink_spec,
    syslog_message,
)
from tests.outputs.test_eve import FakeFlow


def flow_events(eve: EveWriter, count: int) -> None:
    for i in range(count):
        eve.flow(FakeFlow(flow_id=i + 1), app_proto=None, alerted=False, reason="timeout")


def short_path(tmp_path: Path, name: str) -> str:
    """A socket path: AF_UNIX paths are limited to 107 bytes and pytest's tmp_path can be
    longer, then a (per-process) name in /tmp is used."""
    path = tmp_path / name
    if len(str(path)) < 100:
        return str(path)
    link = Path("/tmp") / f"re-{os.getpid()}-{name}"
    return str(link)


# --- regular file --------------------------------------------------------------------


def test_regular_file_sink_adds_newlines_and_reopens_on_request(tmp_path: Path) -> None:
    path = tmp_path / "eve.json"
    sink = FileSink(path, append=False)
    sink.write(b'{"a":1}')
    sink.flush()
    path.rename(tmp_path / "eve.json.1")
    sink.write(b'{"a":2}')  # buffered before the request: still the old file
    sinks.request_reopen()  # what the SIGHUP handler does
    sink.write(b'{"a":3}')  # the next write reopens first
    sink.close()
    assert (tmp_path / "eve.json.1").read_bytes() == b'{"a":1}\n{"a":2}\n'
    assert path.read_bytes() == b'{"a":3}\n'
    assert sink.stats.written == 3 and sink.stats.lost == 0


# --- unix sockets ----------------------------------------------------------------------


@pytest.fixture
def dgram_reader(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = short_path(tmp_path, "eve.dgram")
    reader = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    reader.bind(path)
    reader.settimeout(2)
    yield reader, path
    reader.close()
    with_suppress_unlink(path)


def with_suppress_unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def test_unix_dgram_one_datagram_per_event(dgram_reader: tuple[socket.socket, str],
                                           tmp_path: Path) -> None:
    reader, path = dgram_reader
    sink = UnixSocketSink(path, socket.SOCK_DGRAM, blocking=False)
    assert sink.connect_error is None
    with EveWriter(tmp_path / "unused", sink=sink) as eve:
        flow_events(eve, 3)
    grams = [reader.recv(65536) for _ in range(3)]
    assert all(g.endswith(b"\n") and g.count(b"\n") == 1 for g in grams)
    assert [json.loads(g)["flow_id"] for g in grams] == [1, 2, 3]
    assert sink.stats.written == 3 and sink.stats.lost == 0
    assert not (tmp_path / "unused").exists()  # a socket sink never creates the file


def test_unix_dgram_counts_lost_lines_and_reconnects(tmp_path: Path) -> None:
    path = short_path(tmp_path, "late.dgram")
    sink = UnixSocketSink(path, socket.SOCK_DGRAM, blocking=False)
    assert sink.connect_error is not None and "will keep trying" in sink.connect_error
    sink.write(b'{"n":1}')  # nobody listens: lost, not raised
    assert sink.stats.lost == 1
    reader = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    reader.bind(path)
    reader.settimeout(2)
    try:
        sink.write(b'{"n":2}')  # within 500 ms of the last attempt: not retried yet
        time.sleep(0.6)
        sink.write(b'{"n":3}')
        assert reader.recv(100) == b'{"n":3}\n'
        assert sink.stats.lost == 2 and sink.stats.written == 1
        # the reader goes away and comes back: a failed send reconnects at once
        reader.close()
        os.unlink(path)
        sink.write(b'{"n":4}')
        reader = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        reader.bind(path)
        reader.settimeout(2)
        time.sleep(0.6)
        sink.write(b'{"n":5}')
        assert reader.recv(100) == b'{"n":5}\n'
        assert sink.stats.lost == 3 and sink.stats.reconnects >= 1
    finally:
        sink.close()
        reader.close()
        with_suppress_unlink(path)


@pytest.fixture
def stream_listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = short_path(tmp_path, "eve.stream")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(4)
    listener.settimeout(2)
    yield listener, path
    listener.close()
    with_suppress_unlink(path)


def read_all(conn: socket.socket) -> bytes:
    conn.settimeout(2)
    chunks = []
    while chunk := conn.recv(1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def test_unix_stream_lines(stream_listener: tuple[socket.socket, str], tmp_path: Path) -> None:
    listener, path = stream_listener
    sink = UnixSocketSink(path, socket.SOCK_STREAM, blocking=True)
    conn, _ = listener.accept()
    with EveWriter(tmp_path / "unused", sink=sink, prefix="@cee: ") as eve:
        flow_events(eve, 5)
    lines = read_all(conn).decode().splitlines()
    conn.close()
    assert all(line.startswith("@cee: {") for line in lines)
    assert [json.loads(line[6:])["flow_id"] for line in lines] == [1, 2, 3, 4, 5]


def test_unix_stream_never_blocks_and_never_cuts_a_line(
        stream_listener: tuple[socket.socket, str]) -> None:
    listener, path = stream_listener
    sink = UnixSocketSink(path, socket.SOCK_STREAM, blocking=False)
    conn, _ = listener.accept()
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    record = json.dumps({"pad": "x" * 2000}).encode()
    started = time.monotonic()
    total = 3000  # ~6 MB: more than the socket buffers and the sink's 4 MiB queue hold
    for _ in range(total):
        sink.write(record)
    assert time.monotonic() - started < 5  # the reader never read: we did not wait for it
    assert sink.stats.lost > 0  # what did not fit was dropped and counted
    sink.close()  # one short last try to hand over the queue
    lines = read_all(conn).split(b"\n")
    conn.close()
    assert lines[-1] == b""
    assert all(line == record for line in lines[:-1])  # whole lines only
    assert len(lines) - 1 == sink.stats.written
    assert sink.stats.written + sink.stats.lost == total


def test_unix_stream_reconnects_after_the_reader_restarts(tmp_path: Path) -> None:
    path = short_path(tmp_path, "restart.stream")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    sink = UnixSocketSink(path, socket.SOCK_STREAM, blocking=False)
    conn, _ = listener.accept()
    sink.write(b'{"n":1}')
    assert conn.recv(100) == b'{"n":1}\n'
    conn.close()
    listener.close()
    os.unlink(path)
    for n in range(2, 5):  # EPIPE, then nothing to connect to: lost, counted
        sink.write(b'{"n":%d}' % n)
    assert sink.stats.lost >= 2
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    listener.settimeout(2)
    try:
        time.sleep(0.6)
        sink.write(b'{"n":9}')
        conn, _ = listener.accept()
        sink.close()
        assert read_all(conn) == b'{"n":9}\n'
        assert sink.stats.reconnects >= 1
        conn.close()
    finally:
        listener.close()
        with_suppress_unlink(path)


# --- syslog ----------------------------------------------------------------------------


def test_syslog_message_format_is_glibcs() -> None:
    stamp = time.mktime((2024, 3, 5, 7, 8, 9, 0, 0, -1))
    msg = syslog_message(b'{"a":1}', facility=sinks.SYSLOG_FACILITIES["local5"],
                         level=sinks.SYSLOG_LEVELS["warning"], identity="suricata", pid=42,
                         now=stamp)
    assert msg == b'<172>Mar  5 07:08:09 suricata[42]: {"a":1}'


def test_syslog_sink_to_a_syslog_socket(dgram_reader: tuple[socket.socket, str],
                                        tmp_path: Path) -> None:
    reader, path = dgram_reader
    spec, warnings = sink_spec(filetype="syslog", filename="eve.json", facility="LOCAL5",
                               level="warning", identity="suricata")
    assert warnings == [] and spec.error is None
    options = SyslogOptions(facility=spec.syslog.facility, level=spec.syslog.level,
                            identity="suricata", address=path)
    sink = SyslogSink(options, blocking=False)
    with EveWriter(tmp_path / "unused", sink=sink) as eve:
        flow_events(eve, 2)
    msgs = [reader.recv(65536).decode() for _ in range(2)]
    for i, msg in enumerate(msgs, 1):
        match = re.fullmatch(r"<172>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d suricata\[(\d+)\]: "
                             r"(\{.*\})", msg)
        assert match, msg
        assert int(match.group(1)) == os.getpid()
        assert json.loads(match.group(2))["flow_id"] == i
    assert sink.stats.written == 2


def test_syslog_without_a_daemon_counts_lost_messages(tmp_path: Path) -> None:
    sink = SyslogSink(SyslogOptions(address=str(tmp_path / "no-such-log")), blocking=False)
    assert sink.connect_error is not None
    sink.write(b"{}")
    assert sink.stats.lost == 1
    sink.close()


# --- configuration ---------------------------------------------------------------------


def test_sink_spec_validation() -> None:
    spec, warnings = sink_spec(filetype="kafka", filename="eve.json")
    assert spec.error is not None and "filetype" in spec.error and "kafka" in spec.error
    with pytest.raises(OutputError, match="kafka"):
        open_sink(spec, Path("."))
    spec, _ = sink_spec(filetype="redis", filename="eve.json", redis={"mode": "stream"})
    assert spec.error is not None and "redis mode" in spec.error
    spec, _ = sink_spec(filetype="redis", filename="eve.json", redis={"port": "http"})
    assert spec.error is not None and "port" in spec.error
    spec, warnings = sink_spec(filetype="syslog", filename="x", facility="local9",
                               level="loud")
    assert spec.error is None and len(warnings) == 2
    assert spec.syslog.facility == sinks.SYSLOG_FACILITIES["local0"]
    assert spec.syslog.level == sinks.SYSLOG_LEVELS["info"]
    spec, _ = sink_spec(filetype="redis", filename="x", redis={
        "server": "/run/redis.sock", "mode": "channel", "key": "ids",
        "pipelining": {"enabled": "yes"}})
    assert spec.redis == RedisOptions(server="/run/redis.sock", command="PUBLISH", key="ids",
                                      batch_size=10)
    spec, _ = sink_spec(filetype="FILE", filename="/var/log/eve.json")
    assert spec.filetype == "regular" and spec.path(Path("/tmp")) == Path("/var/log/eve.json")


# --- redis -----------------------------------------------------------------------------


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (Debian package redis-server)")
    sock = short_path(tmp_path, "redis.sock")
    proc = subprocess.Popen(
        [binary, "--port", "0", "--unixsocket", sock, "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(sock):
            assert proc.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        yield sock
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        with_suppress_unlink(sock)


def redis_client(sock: str):  # type: ignore[no-untyped-def]
    redis = pytest.importorskip("redis")
    return redis.Redis(unix_socket_path=sock)


def test_redis_list_mode(redis_server: str, tmp_path: Path) -> None:
    spec, _ = sink_spec(filetype="redis", filename="eve.json",
                        redis={"server": redis_server, "mode": "list", "key": "eve"})
    sink = open_sink(spec, tmp_path, blocking=False)
    with EveWriter(tmp_path / "unused", sink=sink) as eve:
        flow_events(eve, 3)
    records = redis_client(redis_server).lrange("eve", 0, -1)
    assert [json.loads(r)["flow_id"] for r in records] == [3, 2, 1]  # LPUSH: newest first
    assert not any(r.endswith(b"\n") for r in records)  # records, not lines
    assert sink.stats.written == 3


def test_redis_rpush_pipelined(redis_server: str) -> None:
    sink = RedisSink(RedisOptions(server=redis_server, command="RPUSH", key="k",
                                  batch_size=2))
    client = redis_client(redis_server)
    for n in range(3):
        sink.write(b'{"n":%d}' % n)
    assert client.lrange("k", 0, -1) == [b'{"n":0}', b'{"n":1}']  # one batch went out
    sink.flush()  # the unfinished batch too
    assert client.lrange("k", 0, -1) == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
    sink.close()


def test_redis_channel_mode(redis_server: str) -> None:
    client = redis_client(redis_server)
    pubsub = client.pubsub()
    pubsub.subscribe("alerts")
    assert pubsub.get_message(timeout=2)["type"] == "subscribe"
    sink = RedisSink(RedisOptions(server=redis_server, command="PUBLISH", key="alerts"))
    sink.write(b'{"event_type":"alert"}')
    message = pubsub.get_message(timeout=2)
    assert message is not None and message["data"] == b'{"event_type":"alert"}'
    sink.close()
    pubsub.close()


def test_redis_server_gone_counts_lost_records(redis_server: str, tmp_path: Path) -> None:
    sink = RedisSink(RedisOptions(server=redis_server, key="k"), blocking=False)
    sink.write(b"{}")
    redis_client(redis_server).shutdown(nosave=True)
    started = time.monotonic()
    for _ in range(50):
        sink.write(b"{}")
    assert time.monotonic() - started < 3  # no long wait per record
    assert sink.stats.written == 1 and sink.stats.lost == 50
    assert sink.stats.last_error is not None
    sink.close()


def test_redis_unreachable_at_start_is_a_warning_not_an_error(tmp_path: Path) -> None:
    pytest.importorskip("redis")
    sink = RedisSink(RedisOptions(server=str(tmp_path / "none.sock")), blocking=False)
    assert sink.connect_error is not None and "will keep trying" in sink.connect_error
    sink.write(b"{}")
    assert sink.stats.lost == 1
    sink.close()
