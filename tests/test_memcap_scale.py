"""Memory caps at scale, through ``ruleengine run`` on real pcap files (issue 15 §1).

500,000 distinct TCP flows (SYN only, then SYN + data) with ``flow.memcap: 128mb``, and one
flow of 200,000 overlapping, out-of-order segments with a small ``stream.reassembly.memcap``:
the run's peak RSS stays under the cap plus the engine's base (the same command on a
one-packet pcap), it finishes, and the counters say what was evicted. The figures are printed
(they are the issue's numbers); each run takes 30-90 s on the 2-core CI machine.
"""

from __future__ import annotations

import json
import os
import random
import struct
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MIB = 1 << 20
SERVER = b"\xc0\xa8\x01\x01"
SYN, ACK_PSH = 0x02, 0x18

pytestmark = pytest.mark.slow


def frame(src: bytes, sport: int, seq: int, flags: int, payload: bytes = b"",
          ack: int = 0) -> bytes:
    """Ethernet/IPv4/TCP to the server's port 80, checksums 0 (the runs use ``-k none``)."""
    tcp = struct.pack("!HHIIBBHHH", sport, 80, seq, ack, 5 << 4, flags, 65535, 0, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40 + len(payload), 0, 0, 64, 6, 0, src, SERVER)
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + tcp + payload


def write_pcap(path: Path, frames: Iterable[bytes]) -> int:
    count = 0
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for count, data in enumerate(frames, 1):
            usec = count % 1_000_000  # one second of capture time: no flow times out
            out.write(struct.pack("<IIII", 1_700_000_000, usec, len(data), len(data)))
            out.write(data)
    return count


def syn_flood(flows: int, data: bool) -> Iterator[bytes]:
    for i in range(flows):
        src = struct.pack("!I", 0x0A000000 + (i >> 12))
        sport = 1024 + (i & 0xFFF)
        yield frame(src, sport, 1000, SYN)
        if data:
            yield frame(src, sport, 1001, ACK_PSH, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", ack=1)


def overlapping(segments: int) -> Iterator[bytes]:
    """One client flow: SYN, the server's SYN-ACK, then segments at random offsets within
    the 64 KiB window, each overlapping others and out of order."""
    client = b"\x0a\x63\x00\x01"
    yield frame(client, 40000, 1000, SYN)
    tcp = struct.pack("!HHIIBBHHH", 80, 40000, 5000, 1001, 5 << 4, 0x12, 65535, 0, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 0, 0, 64, 6, 0, SERVER, client)
    yield b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00" + ip + tcp
    rng = random.Random(15)
    payload = bytes(range(256)) * 4
    for _ in range(segments):
        yield frame(client, 40000, 1001 + rng.randrange(60_000), ACK_PSH, payload, ack=5001)


def run_engine(pcap: Path, logdir: Path, *sets: str) -> tuple[int, dict[str, int]]:
    """Peak RSS (KiB) of one ``ruleengine run`` and its last stats counters."""
    logdir.mkdir(exist_ok=True)
    yaml = logdir / "stats-only.yaml"  # half a million flow events would only time the disk
    yaml.write_text("outputs:\n  - eve-log:\n      enabled: yes\n      filename: eve.json\n"
                    "      types: [stats]\n")
    cmd = [sys.executable, "-m", "ruleengine", "run", "-r", str(pcap), "-S", os.devnull,
           "-k", "none", "-l", str(logdir), "-c", str(yaml)]
    for item in sets:
        cmd += ["--set", item]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # VmHWM is the peak of the process's own memory since its exec (ru_maxrss would start
    # from this pytest process's size: a child's maxrss keeps its pre-exec high-water mark);
    # it only grows, so the last reading before the exit is the run's peak
    peak = 0
    started = time.monotonic()
    while proc.poll() is None:
        peak = max(peak, vm_hwm(proc.pid))
        time.sleep(0.02)
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert proc.returncode == 0, err
    sys.__stdout__.write(f"\n[memcap] {pcap.name}: {time.monotonic() - started:.1f} s\n")
    return peak, last_stats(logdir / "eve.json")


def vm_hwm(pid: int) -> int:
    """The process's peak RSS in KiB (0 once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def last_stats(eve: Path) -> dict[str, int]:
    stats: dict[str, object] = {}
    for line in eve.read_text().splitlines():
        event = json.loads(line)
        if event.get("event_type") == "stats":
            stats = event["stats"]
    flat: dict[str, int] = {}

    def walk(prefix: str, node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else key, value)
        elif isinstance(node, int):
            flat[prefix] = node

    walk("", stats)
    return flat


@pytest.fixture(scope="module")
def base_rss(tmp_path_factory: pytest.TempPathFactory) -> int:
    """The engine's base: the same command on a one-packet pcap."""
    tmp = tmp_path_factory.mktemp("base")
    write_pcap(tmp / "one.pcap", syn_flood(1, data=False))
    rss, _ = run_engine(tmp / "one.pcap", tmp / "log")
    return rss


def report(name: str, rss: int, base: int, cap: int, counters: dict[str, int],
           keys: tuple[str, ...]) -> None:
    shown = "  ".join(f"{k}={counters.get(k, 0):,}" for k in keys)
    sys.__stdout__.write(f"\n[memcap] {name}: peak RSS {rss / 1024:.0f} MiB = base "
                         f"{base / 1024:.0f} MiB + {(rss - base) / 1024:.0f} MiB "
                         f"(cap {cap // MIB} MiB)  {shown}\n")


@pytest.mark.parametrize("data", [False, True], ids=["syn-only", "syn-and-data"])
def test_500k_flows_stay_under_flow_memcap(tmp_path: Path, base_rss: int, data: bool) -> None:
    pcap = tmp_path / "flood.pcap"
    packets = write_pcap(pcap, syn_flood(500_000, data))
    rss, counters = run_engine(pcap, tmp_path / "log", "flow.memcap=128mb")
    report(f"500,000 flows ({packets:,} packets)", rss, base_rss, 128 * MIB, counters,
           ("flow.memcap", "flow.total", "decoder.pkts"))
    assert counters.get("decoder.pkts") == packets
    # the table holds what 128 MiB allows; every flow beyond it evicted an old one
    assert counters["flow.memcap"] >= 400_000
    assert rss - base_rss < 128 * 1024


def test_200k_overlapping_segments_stay_under_reassembly_memcap(tmp_path: Path,
                                                                base_rss: int) -> None:
    pcap = tmp_path / "overlap.pcap"
    packets = write_pcap(pcap, overlapping(200_000))
    rss, counters = run_engine(pcap, tmp_path / "log", "stream.reassembly.memcap=16mb",
                               "stream.reassembly.depth=0")
    report(f"1 flow, 200,000 overlapping segments ({packets:,} packets)", rss, base_rss,
           16 * MIB, counters, ("tcp.reassembly_memuse", "tcp.segment_memcap_drop",
                                "tcp.reassembly_gap", "decoder.pkts"))
    assert counters.get("decoder.pkts") == packets
    # 200,000 x 1 KiB of payload offered (195 MiB): what stays is the cap, not the offer
    assert rss - base_rss < 16 * 1024 + 16 * 1024
