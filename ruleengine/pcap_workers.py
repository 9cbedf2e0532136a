"""A pcap run on several worker processes (``--runmode autofp|workers`` with ``-r``).

The parent reads the capture once and hands every frame to the worker of its flow
(``pcap_fanout.worker_for``: both directions of a 5-tuple, and every fragment of a
datagram, meet in one worker), as Suricata's autofp receive thread feeds its detect
threads through flow-hashed queues. Frames travel over one pipe per worker in records
``(ts, pcap number, length) + frame``, written in batches from non-blocking pipes so
the parent also serves the workers' message pipes (and the unix socket) meanwhile.
The pcap number is the frame's position in the file: a worker stamps ``pcap_cnt`` with
it, so alerts carry the same ``pcap_cnt`` as in a single-process run.

Every worker only sees its own flows' packets, so its clock would stand still while the
other flows go on; a *tick* (a record of length 0) goes to every worker each second of
capture time and drives its flow timeouts as the shared clock does in Suricata's
offline mode (TmThreadsGetMinimalTimestamp).

Each worker writes its own EVE and fast.log file (``<file>.<n>.part``, whole lines
only); ``merge_lines`` joins them into the configured file at the end, in timestamp
order, so no line is ever interleaved with another worker's.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import heapq
import os
import re
import struct
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, ClassVar

from ruleengine.capture import Capability, CaptureBackend, CaptureStats, FlowTuple, RawPacket
from ruleengine.pcap_fanout import FragmentRouter, worker_for

RECORD = struct.Struct("=dQI")  # capture time, pcap number (1-based), frame length
BATCH = 64 * 1024  # bytes buffered for a worker before they are written
HIGH_WATER = 8 * BATCH  # a worker this far behind stops the reading (back-pressure)
STEP_PACKETS = 4096  # frames read per step: the parent's loop comes round this often
TICK_INTERVAL = 1.0  # capture seconds between two ticks to every worker
_F_SETPIPE_SZ = 1031
PIPE_SIZE = 1 << 20  # fewer wake-ups than the default 64 KiB (pipe-max-size permitting)

Scheduler = Callable[[int, bytes | memoryview, int, FragmentRouter], int]


def ippair_worker(linktype: int, data: bytes | memoryview, workers: int,
                  frags: FragmentRouter) -> int:
    """Suricata's ``autofp-scheduler: ippair``: all flows between two hosts in one worker
    (host-pair state such as ip_pair xbits, ftp and ftp-data, stays together)."""
    return worker_for(linktype, data, workers, frags, ports=False)


SCHEDULERS: dict[str, Scheduler] = {"hash": worker_for, "ippair": ippair_worker}


class PcapFeed:
    """The parent's side: reads ``source`` and writes each worker its frames.

    Created before the workers are forked (the pipes must exist in both); each worker
    then calls ``worker_backend(index)``, the parent ``started()``. The parent's loop
    selects on ``wants_write()`` (writable pipes) and calls ``step()``."""

    def __init__(self, source: CaptureBackend, workers: int, *,
                 scheduler: Scheduler = worker_for) -> None:
        self.workers = workers
        self.linktype = int(source.linktype)
        self._packets: Iterator[RawPacket] = source.packets()
        self._scheduler = scheduler
        self._frags = FragmentRouter()
        self._pipes = [os.pipe() for _ in range(workers)]
        self._out = [bytearray() for _ in range(workers)]
        self._dead: set[int] = set()
        self._eof = False
        self._closed = False
        self._number = 0
        self.last_ts = 0.0
        self._next_tick = 0.0
        self.on_packet: Callable[[], None] | None = None  # progress, once per frame
        for _read, write in self._pipes:
            with contextlib.suppress(OSError):  # capped by pipe-max-size: keep the default
                fcntl.fcntl(write, _F_SETPIPE_SZ, PIPE_SIZE)

    # --- in a worker ------------------------------------------------------------------

    def worker_backend(self, index: int) -> FedBackend:
        """In worker ``index`` (forked): its end of its pipe; every other end closed, so
        the worker sees the end of its input when the parent closes its write end."""
        for i, (read, write) in enumerate(self._pipes):
            os.close(write)
            if i != index:
                os.close(read)
        return FedBackend(self._pipes[index][0], self.linktype)

    # --- in the parent ----------------------------------------------------------------

    def started(self) -> None:
        """Every worker was forked: the parent keeps only the write ends."""
        for read, write in self._pipes:
            os.close(read)
            os.set_blocking(write, False)

    @property
    def done(self) -> bool:
        return self._closed

    def stop(self) -> None:
        """SIGINT/SIGTERM: read no more; what is buffered is dropped."""
        self._eof = True
        for buf in self._out:
            buf.clear()

    def wants_write(self) -> list[int]:
        return [self._pipes[i][1] for i, buf in enumerate(self._out)
                if buf and i not in self._dead and not self._closed]

    def can_read(self) -> bool:
        """More frames can be read now without waiting for a worker."""
        return not self._eof and all(len(b) < HIGH_WATER for b in self._out)

    def step(self, writable: Iterable[int] = ()) -> None:
        """Write to the pipes that can take data, read the next frames, and once the
        file is read and everything written, close the pipes (the workers finish)."""
        by_fd = {self._pipes[i][1]: i for i in range(self.workers)}
        for fd in writable:
            self._flush(by_fd[fd])
        if self.can_read():
            self._read_some()
        if self._eof and not self._closed and not any(
                buf for i, buf in enumerate(self._out) if i not in self._dead):
            self._close()

    def _read_some(self) -> None:
        out, workers, frags = self._out, self.workers, self._frags
        linktype, schedule, pack = self.linktype, self._scheduler, RECORD.pack
        on_packet = self.on_packet
        for _ in range(STEP_PACKETS):
            try:
                ts, data, _id = next(self._packets)
            except StopIteration:
                self._eof = True
                self._tick_all(self.last_ts)
                break
            self._number += 1
            self.last_ts = ts
            index = schedule(linktype, data, workers, frags)
            buf = out[index]
            buf += pack(ts, self._number, len(data))
            buf += data
            if ts >= self._next_tick:
                self._next_tick = ts + TICK_INTERVAL
                self._tick_all(ts)
            if on_packet is not None:
                on_packet()
            if len(buf) >= BATCH:
                self._flush(index)
                if len(buf) >= HIGH_WATER:
                    break  # this worker is behind: wait until its pipe drains
        for index, buf in enumerate(out):
            if buf:
                self._flush(index)

    def _tick_all(self, ts: float) -> None:
        tick = RECORD.pack(ts, 0, 0)
        for buf in self._out:
            buf += tick

    def _flush(self, index: int) -> None:
        buf = self._out[index]
        if index in self._dead:
            buf.clear()
            return
        try:
            written = os.write(self._pipes[index][1], buf)
        except BlockingIOError:
            return
        except OSError as exc:  # the worker is gone (EPIPE): its frames go nowhere
            if exc.errno != errno.EPIPE:
                raise
            self._dead.add(index)
            buf.clear()
            if len(self._dead) == self.workers:
                self.stop()  # nobody left to read for
            return
        del buf[:written]

    def _close(self) -> None:
        self._closed = True
        for _read, write in self._pipes:
            with contextlib.suppress(OSError):
                os.close(write)


class FedBackend:
    """A worker's capture: the frames its parent sent, ``(ts, frame, pcap number)``;
    ticks are idle ticks ``(ts, b"", 0)``. ``numbered``: the packet id is the frame's
    pcap number (the pipeline's ``pcap_cnt``)."""

    name: ClassVar[str] = "pcap"
    capabilities = Capability.OFFLINE
    numbered = True

    def __init__(self, fd: int, linktype: int) -> None:
        self._fd = fd
        self.linktype = linktype

    def packets(self) -> Iterator[RawPacket]:
        rest = b""
        size, unpack = RECORD.size, RECORD.unpack_from
        while self._fd >= 0:
            chunk = os.read(self._fd, PIPE_SIZE)
            if not chunk:
                return
            data = rest + chunk if rest else chunk
            off, end = 0, len(data)
            while off + size <= end:
                ts, number, length = unpack(data, off)
                stop = off + size + length
                if stop > end:
                    break
                yield ts, data[off + size:stop], number
                off = stop
            rest = data[off:]

    def verdict(self, pkt_id: int, verdict: object) -> None:
        return None

    def bypass(self, flow: object, pkt_id: int) -> bool:
        return False

    def bypassed_flow_counters(self, flow: object) -> None:
        return None

    def forget_bypassed(self, flow: object) -> None:
        return None

    def adopted_bypassed(self) -> list[FlowTuple]:
        return []  # a pcap has no kernel tables to take over

    def fast_path_counters(self, flow: object) -> None:
        return None

    def fast_path_until(self, flow: object, ts: float) -> None:
        return None

    def stats(self) -> CaptureStats:
        return CaptureStats()

    def close(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1


def part_path(path: Path, index: int) -> Path:
    """Worker ``index``'s own file beside ``path`` (merged into ``path`` at the end)."""
    return path.with_name(f"{path.name}.{index + 1}.part")


_EVE_TS = re.compile(rb'"timestamp":"([^"]*)"')


def eve_key(line: bytes) -> bytes:
    """An EVE line's timestamp (same offset in every line of a run: text order is time
    order); lines without one sort first."""
    found = _EVE_TS.search(line, 0, 256)
    return found.group(1) if found else b""


def fast_key(line: bytes) -> bytes:
    """fast.log's ``MM/DD/YYYY-HH:MM:SS.uuuuuu`` as a sortable key."""
    return line[6:10] + line[0:2] + line[3:5] + line[10:26]


def merge_lines(parts: list[Path], target: Path, key: Callable[[bytes], bytes], *,
                append: bool) -> int:
    """Join the workers' files into ``target`` (each file's order kept, lines of
    different files by ``key``), delete them, and return the number of lines. A torn
    last line (a worker killed mid-write) is completed with a newline, never glued to
    another worker's line."""
    files: list[BinaryIO] = []
    lines = 0
    try:
        for part in parts:
            with contextlib.suppress(FileNotFoundError):
                files.append(open(part, "rb"))  # noqa: SIM115 (closed below)
        with open(target, "ab" if append else "wb") as out:
            for line in heapq.merge(*(_whole(f) for f in files), key=key):
                out.write(line)
                lines += 1
    finally:
        for fh in files:
            fh.close()
        for part in parts:
            with contextlib.suppress(FileNotFoundError):
                part.unlink()
    return lines


def _whole(lines: Iterable[bytes]) -> Iterator[bytes]:
    for line in lines:
        yield line if line.endswith(b"\n") else line + b"\n"


def worker_count(ratio: float, cpus: int | None = None) -> int:
    """Suricata's autofp thread count: online CPUs times ``threading.detect-thread-ratio``,
    at least one."""
    if cpus is None:
        try:
            cpus = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cpus = os.cpu_count() or 1
    return max(1, int(cpus * ratio))
