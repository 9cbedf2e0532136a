"""Where EVE records go: Suricata's eve-log ``filetype``s.

- ``regular`` (alias ``file``): a file opened with ``O_APPEND``, written in batches of whole
  lines (several worker processes may append to one file without interleaving);
- ``unix_dgram`` / ``unix_stream``: an AF_UNIX socket connected to ``filename``
  (``src/util-logopenfile.c``). A failed connect is not fatal ("will keep trying"); a failed
  send reconnects, at most every 500 ms, and retries once. In live runs sends never block
  (Suricata's ``MSG_DONTWAIT``): a record the reader cannot take now is dropped and counted;
  offline (pcap) runs wait for the reader, as Suricata's do. A stream never carries half a
  line: what a non-blocking send left over is sent first next time;
- ``syslog``: one message per record to the local syslog socket (``/dev/log``), formatted as
  glibc's ``syslog()`` formats it (``<PRI>Mmm dd hh:mm:ss ident[pid]: record``), with
  ``facility`` (default ``local0``), ``level`` (default ``Info``) and ``identity`` (default:
  the program's name) as ``src/output-eve-syslog.c`` reads them;
- ``redis``: ``LPUSH``/``RPUSH``/``PUBLISH`` of each record to ``redis.key`` (default
  ``suricata``) on ``redis.server``/``redis.port`` (a server containing ``/`` is a unix
  socket), optionally pipelined in batches of ``redis.pipelining.batch-size``
  (``src/util-log-redis.c``); reconnects at most once a second, lost records are counted.

A sink takes one record at a time (no trailing newline: the line-based sinks add it, as
Suricata's ``LogFileWrite`` does for files and sockets only). Write errors never raise; they
are counted in ``stats``. ``request_reopen()`` is what a SIGHUP handler calls: it only bumps
a counter, and every regular-file sink reopens its path (logrotate) at its next write or
flush, i.e. between packets, never inside the signal handler.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ruleengine.config.values import is_true

# A batch is written once it reaches this size or this age (live runs stay timely).
_BATCH_BYTES = 64 * 1024
_BATCH_SECONDS = 1.0
# Suricata's LOGFILE_RECONN_MIN_TIME: no reconnect attempt more often than this
_RECONNECT_SECONDS = 0.5
# a non-blocking stream keeps at most this much unsent data; further records are dropped
_PENDING_MAX = 4 << 20
# longest wait for a connect (a full listen backlog) or a redis reply: live runs, offline runs
_LIVE_TIMEOUT = 0.1
_OFFLINE_TIMEOUT = 10.0
# a regular file that cannot be written (disk full, removed with its directory) keeps up to
# this much in memory and retries at most this often; past the bound records are lost
_BACKLOG_MAX = 16 << 20
_RETRY_SECONDS = 1.0

FILETYPES = ("regular", "file", "unix_dgram", "unix_stream", "syslog", "redis")

# src/util-syslog.c (names compared case-insensitively, as SCMapEnumNameToValue does)
SYSLOG_FACILITIES: dict[str, int] = {
    "auth": 4 << 3, "authpriv": 10 << 3, "cron": 9 << 3, "daemon": 3 << 3, "ftp": 11 << 3,
    "kern": 0, "lpr": 6 << 3, "mail": 2 << 3, "news": 7 << 3, "security": 4 << 3,
    "syslog": 5 << 3, "user": 1 << 3, "uucp": 8 << 3,
    **{f"local{i}": (16 + i) << 3 for i in range(8)},
}
SYSLOG_LEVELS: dict[str, int] = {
    "emergency": 0, "alert": 1, "critical": 2, "error": 3, "warning": 4, "notice": 5,
    "info": 6, "debug": 7,
}
# redis.mode -> command (list and lpush, channel and publish are aliases)
REDIS_COMMANDS: dict[str, str] = {
    "list": "LPUSH", "lpush": "LPUSH", "rpush": "RPUSH", "channel": "PUBLISH",
    "publish": "PUBLISH",
}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_reopen_requests = 0


class OutputError(Exception):
    """An output cannot be opened or is misconfigured; the message says which and why."""


def request_reopen() -> None:
    """Ask every regular-file sink to reopen its file (SIGHUP). Safe in a signal handler:
    it only increments a counter that the sinks compare at their next write or flush."""
    global _reopen_requests
    _reopen_requests += 1


def reopen_requests() -> int:
    return _reopen_requests


@dataclass
class SinkStats:
    """``written``: records handed to the transport; ``lost``: records dropped (not
    connected, reader too slow, write error); ``errors``: failed writes, reopens or
    connects; ``reconnects``: successful reconnections; ``last_error``: the first error."""

    written: int = 0
    lost: int = 0
    errors: int = 0
    reconnects: int = 0
    last_error: str | None = None
    # True from a failure until writing works again: the message is said once per outage
    failing: bool = False
    # where that message goes (the run command's warning); None: counted only
    notify: Callable[[str], None] | None = field(default=None, repr=False, compare=False)

    def error(self, message: str) -> None:
        self.errors += 1
        if self.last_error is None:
            self.last_error = message
        if not self.failing:
            self.failing = True
            if self.notify is not None:
                self.notify(f"{message}; inspection goes on, events are kept in memory or "
                            "counted as lost until writing works again")

    def recovered(self, description: str) -> None:
        """Writing works again after a failure: say so once."""
        if self.failing:
            self.failing = False
            if self.notify is not None:
                self.notify(f"{description}: writing resumed ({self.lost} event(s) lost "
                            "so far)")


class Sink(Protocol):
    """One transport for EVE records."""

    stats: SinkStats
    description: str

    def write(self, record: bytes) -> None: ...
    def flush(self) -> None: ...
    def reopen(self) -> None: ...
    def close(self) -> None: ...


# --- configuration -------------------------------------------------------------------


@dataclass(frozen=True)
class RedisOptions:
    server: str = "127.0.0.1"
    port: int = 6379
    command: str = "LPUSH"
    key: str = "suricata"
    batch_size: int = 0  # 0: no pipelining


@dataclass(frozen=True)
class SyslogOptions:
    facility: int = SYSLOG_FACILITIES["local0"]
    level: int = SYSLOG_LEVELS["info"]
    identity: str | None = None  # None: the program's name, as openlog(NULL, ...)
    address: str = "/dev/log"


@dataclass(frozen=True)
class SinkSpec:
    """A validated eve-log transport. ``filename`` is relative to the log directory unless
    absolute. ``error``: a fatal configuration problem, raised by ``open_sink``."""

    filetype: str = "regular"
    filename: str = "eve.json"
    redis: RedisOptions = field(default_factory=RedisOptions)
    syslog: SyslogOptions = field(default_factory=SyslogOptions)
    error: str | None = None

    def path(self, logdir: Path) -> Path:
        return Path(self.filename) if os.path.isabs(self.filename) else logdir / self.filename


def sink_spec(*, filetype: str, filename: str, facility: str | None = None,
              level: str | None = None, identity: str | None = None,
              redis: dict[str, Any] | None = None) -> tuple[SinkSpec, list[str]]:
    """Validate eve-log transport settings as Suricata reads them; warnings for values
    Suricata would replace by a default. A value Suricata refuses to start with (unknown
    filetype, redis mode, bad port) becomes ``SinkSpec.error``."""
    warnings: list[str] = []
    kind = filetype.strip().lower() or "regular"
    kind = "regular" if kind == "file" else kind
    if kind not in FILETYPES:
        return SinkSpec(error=f"outputs.eve-log.filetype: invalid value '{filetype}' "
                              "(regular, unix_dgram, unix_stream, syslog or redis)"), warnings
    syslog_options = _syslog_options(facility, level, identity, warnings)
    redis_options, error = _redis_options(redis or {}) if kind == "redis" else (
        RedisOptions(), None)
    return SinkSpec(filetype=kind, filename=filename, redis=redis_options,
                    syslog=syslog_options, error=error), warnings


def _syslog_options(facility: str | None, level: str | None, identity: str | None,
                    warnings: list[str]) -> SyslogOptions:
    default = SyslogOptions()
    return SyslogOptions(
        facility=_syslog_code(SYSLOG_FACILITIES, facility, default.facility, warnings,
                              'outputs.eve-log.facility: invalid syslog facility "{}", '
                              'using "local0"'),
        level=_syslog_code(SYSLOG_LEVELS, level, default.level, warnings,
                           'outputs.eve-log.level: invalid syslog level "{}" (Emergency, '
                           'Alert, Critical, Error, Warning, Notice, Info, Debug), using "Info"'),
        identity=identity)


def _syslog_code(names: Mapping[str, int], value: str | None, default: int,
                 warnings: list[str], invalid: str) -> int:
    """A facility or level name's number; ``default`` (with the warning ``invalid``
    filled in) for a name syslog does not know."""
    if value is None:
        return default
    code = names.get(value.strip().lower())
    if code is None:
        warnings.append(invalid.format(value))
        return default
    return code


def _redis_options(section: dict[str, Any]) -> tuple[RedisOptions, str | None]:
    server = str(section.get("server") or "127.0.0.1")
    key = str(section.get("key") or "suricata")
    mode = str(section.get("mode") or "list").strip().lower()
    command = REDIS_COMMANDS.get(mode)
    if command is None:
        return RedisOptions(), (f"outputs.eve-log.redis.mode: invalid redis mode '{mode}' "
                                "(list, lpush, rpush, channel, publish)")
    port = _int(section.get("port", 6379))
    if port is None or not 0 < port < 65536:
        return RedisOptions(), (f"outputs.eve-log.redis.port: '{section.get('port')}' is not "
                                "a port number")
    batch = 0
    pipelining = section.get("pipelining")
    if isinstance(pipelining, dict) and is_true(pipelining.get("enabled")):
        size = _int(pipelining.get("batch-size", 10))
        if size is None or size < 1:
            return RedisOptions(), (f"outputs.eve-log.redis.pipelining.batch-size: "
                                    f"'{pipelining.get('batch-size')}' is not a positive "
                                    "number")
        batch = size
    return RedisOptions(server=server, port=port, command=command, key=key,
                        batch_size=batch), None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(str(value).strip(), 10)
    except ValueError:
        return None


def open_sink(spec: SinkSpec, logdir: Path, *, append: bool = True,
              blocking: bool = True) -> Sink:
    """The sink ``spec`` names. ``blocking``: offline runs wait for a slow socket reader,
    live runs drop what cannot be sent now. Raises OutputError for a regular file that
    cannot be opened, a misconfiguration, or a missing redis client library."""
    if spec.error is not None:
        raise OutputError(spec.error)
    path = spec.path(logdir)
    if spec.filetype == "unix_dgram":
        return UnixSocketSink(path, socket.SOCK_DGRAM, blocking=blocking)
    if spec.filetype == "unix_stream":
        return UnixSocketSink(path, socket.SOCK_STREAM, blocking=blocking)
    if spec.filetype == "syslog":
        return SyslogSink(spec.syslog, blocking=blocking)
    if spec.filetype == "redis":
        return RedisSink(spec.redis, blocking=blocking)
    return FileSink(path, append=append)


# --- regular file ----------------------------------------------------------------------


@contextlib.contextmanager
def _exclusive(fd: int) -> Iterator[None]:
    """An exclusive ``flock`` on the file while one batch is written: the writers of one
    EVE file (forked workers, each with its own open file description) take turns, so a
    writer that must cut back a partial write knows the file's end is its own."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:  # a filesystem without flock: write unlocked, as before
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)


class FileSink:
    """``path`` opened with ``O_APPEND`` (truncated first unless ``append``). Records are
    batched and each ``write()`` carries whole lines only, so lines of several processes
    never interleave. Raises OutputError when the file cannot be opened.

    Faults after opening never raise and never stop the run: a write that fails (disk full,
    I/O error) keeps the unwritten lines in a bounded backlog retried every second, so the
    file goes on with whole lines once space is back. A write cut inside a line takes that
    line's head out of the file again (``ftruncate``, under an exclusive ``flock`` that
    every writer of the file holds while it writes): another worker's line never follows
    half of one;
    a file removed under the engine (with its directory or alone) is created again as soon
    as its directory exists, instead of writing into the removed inode. What does not fit
    in the backlog is counted in ``stats.lost``."""

    def __init__(self, path: str | Path, *, append: bool = True,
                 what: str = "EVE log") -> None:
        self.path = Path(path)
        self.description = str(self.path)
        self.stats = SinkStats()
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        if not append:
            flags |= os.O_TRUNC
        try:
            self._fd: int | None = os.open(self.path, flags, 0o644)
        except OSError as exc:
            raise OutputError(f"cannot open {what} {self.path}: {exc.strerror}") from exc
        self._buf: list[bytes] = []
        self._buf_len = 0
        self._last_flush = time.monotonic()
        self._reopens_seen = _reopen_requests
        self._backlog = b""  # bytes a failed write left over (may start mid-line)
        self._retry_at = 0.0
        self._removed = False  # the open file was unlinked and could not be created again
        self._closed = False
        self._next_check = time.monotonic() + _RETRY_SECONDS

    def write(self, record: bytes) -> None:
        if self._closed:
            return
        if self._reopens_seen != _reopen_requests:
            self.reopen()
        if self.stats.failing and len(self._backlog) + self._buf_len > _BACKLOG_MAX:
            self.stats.lost += 1
            return
        self._buf.append(record + b"\n")
        self._buf_len += len(record) + 1
        if self._buf_len >= _BATCH_BYTES or time.monotonic() - self._last_flush >= _BATCH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Write buffered lines (one ``write()`` of whole lines)."""
        self._last_flush = time.monotonic()
        if self._fd is not None and self._reopens_seen != _reopen_requests:
            self.reopen()
            return
        self._write_buffer()

    def _write_buffer(self, *, final: bool = False) -> None:
        if self._closed or (not self._buf and not self._backlog):
            return
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + _RETRY_SECONDS
            self._check_removed()
        if self._buf:
            self._backlog += b"".join(self._buf)
            self._buf.clear()
            self._buf_len = 0
        if self._fd is None or self._removed or (self.stats.failing and now < self._retry_at
                                                 and not final):
            return
        data = self._backlog
        done = 0
        start = -1
        with _exclusive(self._fd):
            try:
                start = os.fstat(self._fd).st_size  # O_APPEND: where this write lands
                while done < len(data):
                    done += os.write(self._fd, memoryview(data)[done:])
            except OSError as exc:
                self._retry_at = now + _RETRY_SECONDS
                self.stats.error(f"writing {self.path}: {exc.strerror}")
                done = self._cut_back(start, data, done)
            finally:
                self.stats.written += data.count(b"\n", 0, done)
                self._backlog = data[done:]
        if not self._backlog:
            self.stats.recovered(f"EVE log {self.path}")

    def _cut_back(self, start: int, data: bytes, done: int) -> int:
        """After a write cut short (disk full) inside a line: take the cut line's head out
        of the file again, so the file holds only whole lines and another process's next
        line cannot follow half of ours; the line stays in the backlog, whole. Safe because
        every writer of the file holds the lock while it writes. Returns the bytes kept."""
        keep = data.rfind(b"\n", 0, done) + 1
        if keep == done or start < 0 or self._fd is None:
            return done
        try:
            os.ftruncate(self._fd, start + keep)
        except OSError:
            return done  # cannot shorten: go on where the write stopped, as before
        return keep

    def _check_removed(self) -> None:
        """The file was unlinked (its directory removed, or it alone): create it again at
        its path once that is possible, so lines are not written into the removed inode."""
        if self._fd is None:
            return
        try:
            gone = os.fstat(self._fd).st_nlink == 0
        except OSError:
            gone = True
        if not gone:
            self._removed = False
            return
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        try:
            new_fd = os.open(self.path, flags, 0o644)
        except OSError as exc:
            if not self._removed:
                self._removed = True
                self.stats.error(f"{self.path} was removed and cannot be created again: "
                                 f"{exc.strerror}")
            return
        old_fd, self._fd = self._fd, new_fd
        with contextlib.suppress(OSError):
            os.close(old_fd)
        self._removed = False
        self._retry_at = 0.0
        if self._backlog.find(b"\n") >= 0 and not self._backlog.startswith(b"{"):
            # the head of the backlog is the rest of a line begun in the removed file
            self._backlog = self._backlog[self._backlog.index(b"\n") + 1 :]
            self.stats.lost += 1

    def reopen(self) -> None:
        """Flush and open the path again in append mode (after logrotate moved the file;
        Suricata does this on SIGHUP). An error keeps the old descriptor and is counted."""
        self._reopens_seen = _reopen_requests
        if self._fd is None:
            return
        self._write_buffer()
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        try:
            new_fd = os.open(self.path, flags, 0o644)
        except OSError as exc:
            self.stats.error(f"reopening {self.path}: {exc.strerror}")
            return
        old_fd, self._fd = self._fd, new_fd
        with contextlib.suppress(OSError):
            os.close(old_fd)

    def close(self) -> None:
        if self._closed:
            return
        self._next_check = 0.0
        self._write_buffer(final=True)
        if self._backlog:  # what the last attempt could not write is lost
            self.stats.lost += max(1, self._backlog.count(b"\n"))
            self._backlog = b""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = None
        self._closed = True


# --- unix sockets ------------------------------------------------------------------------


class UnixSocketSink:
    """``filetype: unix_dgram`` (one datagram per line) or ``unix_stream``, connected to
    ``path``. Not connecting is no error: the sink keeps trying (at most every 500 ms) and
    counts the records it could not deliver in ``stats.lost``."""

    def __init__(self, path: str | Path, sock_type: int, *, blocking: bool = True) -> None:
        self.path = str(path)
        self.sock_type = sock_type
        self.blocking = blocking
        kind = "unix_dgram" if sock_type == socket.SOCK_DGRAM else "unix_stream"
        self.description = f"{kind} socket {self.path}"
        self.stats = SinkStats()
        self.connect_error: str | None = None  # why the first connect failed, for a warning
        self._sock: socket.socket | None = None
        self._last_attempt = 0.0
        self._pending = b""  # stream only: the rest of a line a non-blocking send cut
        self._closed = False
        if not self._connect():
            self.connect_error = (f'error connecting to socket "{self.path}": '
                                  f"{self.stats.last_error} (will keep trying)")

    def _connect(self) -> bool:
        self._last_attempt = time.monotonic()
        try:
            sock = _unix_connect(self.path, self.sock_type, self.blocking)
        except OSError as exc:
            self.stats.error(exc.strerror or str(exc))
            return False
        self._sock = sock
        self._pending = b""
        self.stats.recovered(self.description)
        return True

    def _reconnect(self) -> bool:
        # a connection that just failed is retried at once (Suricata resets its timer);
        # a socket that could not connect is retried every 500 ms at most
        was_connected = self._sock is not None
        self._drop_socket()
        if not was_connected and time.monotonic() - self._last_attempt < _RECONNECT_SECONDS:
            return False
        if self._connect():
            self.stats.reconnects += 1
            return True
        return False

    def _drop_socket(self) -> None:
        _close_quietly(self._sock)
        self._sock = None
        if self._pending:  # lines (one cut in half) that die with the connection
            lines = max(1, self._pending.count(b"\n"))
            self.stats.lost += lines
            self.stats.written -= lines
            self._pending = b""

    def write(self, record: bytes) -> None:
        if self._closed:
            return
        if self._sock is None and not self._reconnect():
            self.stats.lost += 1
            return
        if self.sock_type == socket.SOCK_DGRAM:
            self._send_datagram(record + b"\n")
        else:
            self._send_stream(record + b"\n")

    def _send_datagram(self, data: bytes) -> None:
        sent = self._send_some(data)
        if sent is None and self._reconnect():  # one reconnect and retry, as Suricata
            sent = self._send_some(data)
        if sent:
            self.stats.written += 1
        else:  # 0: the reader is behind (live runs drop, never wait); None: no connection
            self.stats.lost += 1

    def _send_stream(self, data: bytes) -> None:
        if self._pending:
            self._drain()
        if self._pending:  # the reader is still behind: queue whole lines, within bounds
            if len(self._pending) + len(data) > _PENDING_MAX:
                self.stats.lost += 1
            else:
                self._pending += data
                self.stats.written += 1
            return
        if self._sock is None and not self._reconnect():
            self.stats.lost += 1
            return
        sent = self._send_some(data)
        if sent is None and self._reconnect():  # one reconnect and retry, as Suricata
            sent = self._send_some(data)
        if sent is None:
            self._drop_socket()
            self.stats.lost += 1
            return
        self._pending = data[sent:]
        self.stats.written += 1

    def _drain(self) -> None:
        """Send what a previous non-blocking send left over."""
        if self._sock is None:
            return
        sent = self._send_some(self._pending)
        if sent is None:
            self._drop_socket()
        else:
            self._pending = self._pending[sent:]

    def _send_some(self, data: bytes) -> int | None:
        """Bytes of ``data`` sent (all of them when blocking, 0 when a non-blocking send
        would block); None when the connection failed."""
        if self._sock is None:
            return None
        for _ in range(2):  # an interrupted send is tried once more
            try:
                if self.blocking:
                    self._sock.sendall(data)
                    return len(data)
                return self._sock.send(data)
            except InterruptedError:
                continue
            except BlockingIOError:
                return 0
            except OSError as exc:
                self.stats.error(f"sending to {self.path}: {exc.strerror}")
                return None
        return 0

    def flush(self) -> None:
        if self._pending:
            self._drain()

    def reopen(self) -> None:
        """Nothing to do: Suricata reopens regular files only."""

    def close(self) -> None:
        if self._closed:
            return
        if self._pending and self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.setblocking(True)
                self._sock.settimeout(1.0)  # give a slow reader a moment, not forever
                self._sock.sendall(self._pending)
                self._pending = b""
        self._drop_socket()
        self._closed = True


# --- syslog ------------------------------------------------------------------------------


def syslog_message(record: bytes, *, facility: int, level: int, identity: str, pid: int,
                   now: float | None = None) -> bytes:
    """A record as glibc's ``syslog()`` sends it with ``LOG_PID``:
    ``<PRI>Mmm dd hh:mm:ss ident[pid]: record`` (local time, day padded with a space)."""
    tm = time.localtime(now)
    stamp = f"{_MONTHS[tm.tm_mon - 1]} {tm.tm_mday:2d} {tm.tm_hour:02d}:{tm.tm_min:02d}:" \
            f"{tm.tm_sec:02d}"
    return f"<{facility | level}>{stamp} {identity}[{pid}]: ".encode() + record


class SyslogSink:
    """``filetype: syslog``: each record is one message to the syslog socket, as Suricata's
    ``openlog(identity, LOG_PID | LOG_NDELAY, facility)`` + ``syslog(level, ...)``. The
    datagram socket is connected at once (LOG_NDELAY); a stream socket (some syslog daemons)
    gets NUL-terminated messages, as glibc sends them. A failed send reconnects once; what
    cannot be sent is counted in ``stats.lost`` (glibc drops it silently)."""

    def __init__(self, options: SyslogOptions, *, blocking: bool = True) -> None:
        self.options = options
        self.identity = options.identity or os.path.basename(sys.argv[0] or "ruleengine")
        self.description = f"syslog {options.address}"
        self._inner = _SyslogSocket(options.address, blocking)
        self.connect_error = (None if self._inner.connected else
                              f'error connecting to syslog socket "{options.address}": '
                              f"{self._inner.stats.last_error} (will keep trying)")
        self.stats = self._inner.stats

    def write(self, record: bytes) -> None:
        self._inner.send(syslog_message(record, facility=self.options.facility,
                                        level=self.options.level, identity=self.identity,
                                        pid=os.getpid()))

    def flush(self) -> None:
        """Nothing is buffered."""

    def reopen(self) -> None:
        """Nothing to do: syslog is not a file."""

    def close(self) -> None:
        self._inner.close()


class _SyslogSocket:
    def __init__(self, address: str, blocking: bool) -> None:
        self.address = address
        self.blocking = blocking
        self.stats = SinkStats()
        self._sock: socket.socket | None = None
        self._stream = False
        self._last_attempt = 0.0
        self.connected = self._connect()

    def _connect(self) -> bool:
        self._last_attempt = time.monotonic()
        for sock_type in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            try:
                sock = _unix_connect(self.address, sock_type, self.blocking)
            except OSError as exc:
                if exc.errno == errno.EPROTOTYPE:  # the daemon listens on a stream socket
                    continue
                self.stats.error(exc.strerror or str(exc))
                return False
            self._sock, self._stream = sock, sock_type == socket.SOCK_STREAM
            return True
        return False

    def send(self, message: bytes) -> None:
        for _ in range(2):  # a failed send reconnects and tries once more, as glibc does
            if self._sock is None and not self._try_connect():
                break
            assert self._sock is not None
            try:
                if self._stream:
                    self._sock.sendall(message + b"\0")
                else:
                    self._sock.send(message)
            except BlockingIOError:
                break
            except OSError as exc:
                self.stats.error(f"sending to {self.address}: {exc.strerror}")
                self.close()
                continue
            self.stats.written += 1
            return
        self.stats.lost += 1

    def _try_connect(self) -> bool:
        if time.monotonic() - self._last_attempt < _RECONNECT_SECONDS:
            return False
        if self._connect():
            self.stats.reconnects += 1
            self.stats.recovered(f"syslog socket {self.address}")
            return True
        return False

    def close(self) -> None:
        _close_quietly(self._sock)
        self._sock = None


def _unix_connect(path: str, sock_type: int, blocking: bool) -> socket.socket:
    """A connected AF_UNIX socket; OSError when it cannot connect (the socket closed). The
    connect has a timeout: a full listen backlog must not hang a live capture."""
    sock = socket.socket(socket.AF_UNIX, sock_type)
    try:
        sock.settimeout(_OFFLINE_TIMEOUT if blocking else _LIVE_TIMEOUT)
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    sock.setblocking(blocking)
    return sock


def _close_quietly(sock: socket.socket | None) -> None:
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()


# --- redis -------------------------------------------------------------------------------


class RedisSink:
    """``filetype: redis``, through the ``redis`` client library (redis-py). Without
    pipelining every record is one command and one reply (Suricata's synchronous mode);
    with ``batch_size`` the commands of that many records go out together. Unlike
    Suricata, which has "no flushing implemented", an unfinished batch is sent on
    ``flush()`` (idle ticks of a live capture, end of the run), so no record waits forever.
    A connection failure costs the records of that command or batch (``stats.lost``) and
    the next attempt waits at least a second (as Suricata's reconnect does)."""

    def __init__(self, options: RedisOptions, *, blocking: bool = True) -> None:
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError:
            raise OutputError("outputs.eve-log.filetype redis needs the Python package "
                              "'redis' (pip install 'ruleengine[redis]')") from None
        self.options = options
        self.description = f"redis {options.server}" + (
            "" if "/" in options.server else f":{options.port}")
        self.stats = SinkStats()
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        # live runs: a dead or slow server costs at most a short wait, once a second
        timeout = _OFFLINE_TIMEOUT if blocking else _LIVE_TIMEOUT
        where: dict[str, Any] = ({"unix_socket_path": options.server}
                                 if "/" in options.server
                                 else {"host": options.server, "port": options.port})
        self._client: Any = redis.Redis(
            **where, socket_timeout=timeout, socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0))
        self._batch: list[bytes] = []
        self._down_since: float | None = None
        self.connect_error: str | None = None
        try:
            self._client.ping()
        except self._errors as exc:
            self._down_since = time.monotonic()
            self.stats.error(str(exc))
            self.connect_error = (f"error connecting to redis server {self.description}: "
                                  f"{exc} (will keep trying)")

    def write(self, record: bytes) -> None:
        if self._client is None:
            return
        if self.options.batch_size:
            self._batch.append(record)
            if len(self._batch) >= self.options.batch_size:
                self._send_batch()
        else:
            self._send([record])

    def _send_batch(self) -> None:
        batch, self._batch = self._batch, []
        if batch:
            self._send(batch)

    def _send(self, records: Sequence[bytes]) -> None:
        if self._down_since is not None and time.monotonic() - self._down_since < 1.0:
            self.stats.lost += len(records)  # reconnect at most once a second
            return
        command, key = self.options.command, self.options.key
        try:
            if len(records) == 1 and not self.options.batch_size:
                replies: list[Any] = [self._client.execute_command(command, key, records[0])]
            else:
                pipe = self._client.pipeline(transaction=False)
                for record in records:
                    pipe.execute_command(command, key, record)
                replies = pipe.execute(raise_on_error=False)
        except self._errors as exc:
            self.stats.lost += len(records)
            self.stats.error(f"redis {command} to {self.description}: {exc}")
            self._down_since = time.monotonic()
            return
        if self._down_since is not None:
            self.stats.reconnects += 1
            self._down_since = None
        self.stats.recovered(self.description)
        for reply in replies:
            if isinstance(reply, BaseException):  # e.g. WRONGTYPE: the key is no list
                self.stats.lost += 1
                self.stats.error(f"redis {command} {key}: {reply}")
            else:
                self.stats.written += 1

    def flush(self) -> None:
        self._send_batch()

    def reopen(self) -> None:
        """Nothing to do: Suricata reopens regular files only."""

    def close(self) -> None:
        if self._client is None:
            return
        self._send_batch()
        with contextlib.suppress(*self._errors):
            self._client.close()
        self._client = None
