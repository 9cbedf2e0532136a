"""pcap_workers: the reader's feed, a worker's backend, and the merge of the workers' logs."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP, fragment
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from capture_backends.memory import MemoryBackend
from ruleengine import pcap_workers
from ruleengine.capture import LINKTYPE_ETHERNET
from ruleengine.pcap_workers import (
    FedBackend,
    PcapFeed,
    eve_key,
    fast_key,
    merge_lines,
    part_path,
    worker_count,
)

MAC_A, MAC_B = "02:00:00:00:00:01", "02:00:00:00:00:02"  # no ARP lookups by scapy


def _frames() -> list[tuple[float, bytes, int]]:
    frames: list[tuple[float, bytes, int]] = []
    ts = 1_700_000_000.0
    for n in range(40):
        client = f"10.0.{n // 200}.{n % 200 + 1}"
        for to_server in (True, False, True):
            src, dst = (client, "192.0.2.80") if to_server else ("192.0.2.80", client)
            sport, dport = (40000 + n, 80) if to_server else (80, 40000 + n)
            pkt = Ether(src=MAC_A, dst=MAC_B) / IP(src=src, dst=dst) / TCP(
                sport=sport, dport=dport) / Raw(b"x" * n)
            frames.append((ts, bytes(pkt), 0))
            ts += 0.3
    big = Ether(src=MAC_A, dst=MAC_B) / IP(src="10.9.9.9", dst="192.0.2.53", id=7) / UDP(
        sport=5353, dport=53) / Raw(b"y" * 3000)
    for frag in fragment(big[IP], fragsize=1000):
        frames.append((ts, bytes(Ether(src=MAC_A, dst=MAC_B) / frag), 0))
        ts += 0.01
    return frames


def _drain(feed: PcapFeed, tmp: Path, monkeypatch: pytest.MonkeyPatch
           ) -> list[list[tuple[float, bytes, int]]]:
    """Run the feed to its end in this process (no fork), reading every pipe as it fills,
    then read each worker's bytes back through ``FedBackend`` (in small reads, so records
    straddle them)."""
    reads = [read for read, _write in feed._pipes]
    raw = [bytearray() for _ in reads]
    for fd in reads:
        os.set_blocking(fd, False)
    while True:
        feed.step(feed.wants_write())
        for i, fd in enumerate(reads):
            while True:
                try:
                    chunk = os.read(fd, 1 << 20)
                except BlockingIOError:
                    break
                if not chunk:
                    break
                raw[i] += chunk
        if feed.done:
            break
    monkeypatch.setattr(pcap_workers, "PIPE_SIZE", 333)
    seen = []
    for i, fd in enumerate(reads):
        os.close(fd)
        path = tmp / f"w{i}"
        path.write_bytes(bytes(raw[i]))
        backend = FedBackend(os.open(path, os.O_RDONLY), LINKTYPE_ETHERNET)
        seen.append([(ts, bytes(data), n) for ts, data, n in backend.packets()])
        backend.close()
    return seen


def _feed(frames: list[tuple[float, bytes, int]], workers: int) -> PcapFeed:
    feed = PcapFeed(MemoryBackend(frames), workers)
    for _read, write in feed._pipes:
        os.set_blocking(write, False)
    return feed


def test_every_frame_reaches_one_worker_numbered_in_file_order(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frames = _frames()
    seen = _drain(_feed(frames, 3), tmp_path, monkeypatch)
    got = sorted((n, data) for part in seen for _ts, data, n in part if data)
    assert got == [(i + 1, data) for i, (_ts, data, _id) in enumerate(frames)]
    assert all(any(data for _ts, data, _n in part) for part in seen), "a worker got nothing"
    for part in seen:  # each worker's frames stay in file order
        numbers = [n for _ts, data, n in part if data]
        assert numbers == sorted(numbers)


def test_both_directions_and_all_fragments_meet_in_one_worker(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frames = _frames()
    seen = _drain(_feed(frames, 3), tmp_path, monkeypatch)
    owner = {n: i for i, part in enumerate(seen) for _ts, data, n in part if data}
    for conn in range(40):  # three frames per connection: client, server, client
        assert len({owner[3 * conn + k] for k in (1, 2, 3)}) == 1
    frag_numbers = range(121, len(frames) + 1)
    assert len({owner[n] for n in frag_numbers}) == 1


def test_every_worker_gets_ticks_that_follow_capture_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frames = _frames()
    seen = _drain(_feed(frames, 2), tmp_path, monkeypatch)
    for part in seen:
        ticks = [ts for ts, data, _n in part if not data]
        gaps = [b - a for a, b in itertools.pairwise(ticks)]
        # frames are 0.3 s apart: a tick comes at the first frame a second after the last
        assert gaps and max(gaps) <= pcap_workers.TICK_INTERVAL + 0.3 + 1e-6
        assert ticks[0] == frames[0][0] and ticks[-1] == frames[-1][0]
        stamps = [ts for ts, _d, _n in part]
        assert stamps == sorted(stamps)


def test_stop_drops_what_is_buffered_and_closes() -> None:
    feed = _feed(_frames(), 2)
    feed.step()
    feed.stop()
    feed.step()
    assert feed.done
    for read, _write in feed._pipes:
        os.close(read)


def test_merge_keeps_whole_lines_in_time_order(tmp_path: Path) -> None:
    target = tmp_path / "eve.json"
    a, b = part_path(target, 0), part_path(target, 1)
    a.write_bytes(b'{"timestamp":"2026-01-01T00:00:01.000000+0000","n":1}\n'
                  b'{"timestamp":"2026-01-01T00:00:03.000000+0000","n":3}\n')
    long_line = b'{"timestamp":"2026-01-01T00:00:02.000000+0000","x":"' + b"z" * 100_000 + b'"}'
    b.write_bytes(long_line + b"\n" + b'{"timestamp":"2026-01-01T00:00:04.000000+0000","x')  # torn
    assert merge_lines([a, b], target, eve_key, append=False) == 4
    lines = target.read_bytes().split(b"\n")
    assert lines[0].endswith(b'"n":1}') and lines[1] == long_line and lines[2].endswith(b"3}")
    assert lines[3] == b'{"timestamp":"2026-01-01T00:00:04.000000+0000","x' and lines[4] == b""
    assert not a.exists() and not b.exists()


def test_fast_key_orders_by_date_then_time() -> None:
    early = b"12/31/2025-23:59:59.000001  [**] [1:1:0] a [**]\n"
    late = b"01/01/2026-00:00:00.000000  [**] [1:2:0] b [**]\n"
    assert fast_key(early) < fast_key(late)


@pytest.mark.parametrize(("ratio", "cpus", "expected"),
                         [(1.0, 2, 2), (1.5, 2, 3), (0.1, 4, 1), (1.0, 1, 1)])
def test_worker_count_is_cpus_times_ratio(ratio: float, cpus: int, expected: int) -> None:
    assert worker_count(ratio, cpus) == expected
