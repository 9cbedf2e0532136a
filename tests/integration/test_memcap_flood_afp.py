"""``flow.memcap`` on live traffic (issue 15 §1): a bounded flood of 300,000 distinct SYN
flows from a namespace over veth into ``ruleengine run --af-packet``. The engine's peak RSS
(VmHWM) grows by less than the cap over its idle size, and the stats say what was evicted
(``flow.memcap``) and what the kernel dropped in the ring (the flood outruns one Python
worker: that is the point). Needs root (namespaces ``mcf-*``)."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ruleengine.flow.table import FLOW_COST_BYTES
from tests import kernel
from tests.test_memcap_scale import last_stats, overlapping, vm_hwm

pytestmark = [pytest.mark.kernel, pytest.mark.slow]
FLOWS = 300_000
CAP_MIB = 32


def _syn(src_mac: bytes, dst_mac: bytes, dst_ip: bytes, i: int) -> bytes:
    src = struct.pack("!I", 0x0B000000 + (i >> 12))  # 11.x.y.z: one address per 4,096 ports
    tcp = struct.pack("!HHIIBBHHH", 1024 + (i & 0xFFF), 80, 1, 0, 5 << 4, 0x02, 65535, 0, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 0, 0, 64, 6, 0, src, dst_ip)
    return dst_mac + src_mac + b"\x08\x00" + ip + tcp


Frames = Callable[[bytes, bytes, bytes], Iterator[bytes]]


def _flood(tmp_path: Path, yaml_extra: str, frames: Frames) -> tuple[int, int, dict[str, int]]:
    """Run the engine on the veth, send ``frames(src_mac, dst_mac, dst_ip)`` from the other
    namespace as fast as Python sends, let the ring drain, stop it: (idle, peak) VmHWM in
    KiB and the last stats."""
    kernel.require_root()
    yaml_file, logdir = tmp_path / "s.yaml", tmp_path / "log"
    logdir.mkdir()
    yaml_file.write_text(
        "%YAML 1.1\n---\naf-packet:\n  - interface: default\n    threads: 1\n"
        f"{yaml_extra}"
        "outputs:\n  - eve-log:\n      enabled: yes\n      filename: eve.json\n"
        "      types: [stats]\n")
    env = dict(os.environ, PYTHONPATH=str(kernel.REPO_ROOT))
    with kernel.netns_pair("mcf") as net:
        net.disable_offloads(net.ns_a, net.if_a)
        with open(tmp_path / "engine.out", "wb") as out:
            proc = net.popen(net.ns_b, sys.executable, "-m", "ruleengine", "run",
                             "--af-packet", net.if_b, "-S", os.devnull, "-k", "none",
                             "-l", str(logdir), "-c", str(yaml_file), "--no-progress",
                             stdout=out, stderr=subprocess.STDOUT, env=env,
                             cwd=str(kernel.REPO_ROOT))
        try:
            lines = lambda: net.run(net.ns_b, "cat", "/proc/net/packet").stdout  # noqa: E731
            assert kernel.wait_for(lambda: len(lines().splitlines()) > 1
                                   or proc.poll() is not None, timeout=30)
            assert proc.poll() is None, (tmp_path / "engine.out").read_text()
            time.sleep(1.0)
            idle = peak = vm_hwm(proc.pid)
            tx = net.raw_socket(net.ns_a, net.if_a)
            src_mac, dst_mac = net.mac(net.ns_a, net.if_a), net.mac(net.ns_b, net.if_b)
            dst_ip = bytes(int(x) for x in net.v4_b.split("."))
            for i, data in enumerate(frames(src_mac, dst_mac, dst_ip)):
                tx.send(data)
                if i % 20_000 == 0:
                    peak = max(peak, vm_hwm(proc.pid))
            tx.close()
            for _ in range(100):  # what is in the ring is worked through
                time.sleep(0.1)
                peak = max(peak, vm_hwm(proc.pid))
            proc.send_signal(signal.SIGINT)
            while proc.poll() is None:
                peak = max(peak, vm_hwm(proc.pid))
                time.sleep(0.02)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    output = (tmp_path / "engine.out").read_text()
    assert proc.returncode == 0, output
    return idle, peak, last_stats(logdir / "eve.json")


def test_syn_flood_stays_under_flow_memcap(tmp_path: Path) -> None:
    idle, peak, stats = _flood(
        tmp_path, f"flow:\n  memcap: {CAP_MIB}mb\n",
        lambda src, dst, ip: (_syn(src, dst, ip, i) for i in range(FLOWS)))
    seen = stats.get("flow.total", 0)
    sys.__stdout__.write(
        f"\n[memcap] af-packet flood: {FLOWS:,} SYN flows sent, {seen:,} flows seen, "
        f"flow.memcap={stats.get('flow.memcap', 0):,}, kernel drops="
        f"{stats.get('capture.kernel_drops', 0):,}; peak RSS {peak / 1024:.0f} MiB = idle "
        f"{idle / 1024:.0f} MiB + {(peak - idle) / 1024:.0f} MiB (cap {CAP_MIB} MiB)\n")
    # the table holds what the cap allows: far more flows were seen than it can hold, and
    # each of those beyond it evicted an old one
    table = CAP_MIB * (1 << 20) // FLOW_COST_BYTES
    assert seen > 2 * table, stats
    assert stats.get("flow.memcap", 0) >= seen - table - 100
    assert peak - idle < CAP_MIB * 1024


def test_overlapping_segment_flood_stays_bounded(tmp_path: Path) -> None:
    """200,000 overlapping, out-of-order segments of one flow (1 KiB each: 200 MiB offered)
    with ``stream.reassembly.memcap: 16mb``."""
    def frames(src: bytes, dst: bytes, _ip: bytes) -> Iterator[bytes]:
        return (dst + src + data[12:] for data in overlapping(200_000))

    idle, peak, stats = _flood(tmp_path, "stream:\n  reassembly:\n    memcap: 16mb\n",
                               frames)
    sys.__stdout__.write(
        f"\n[memcap] af-packet overlap flood: 200,002 frames sent, "
        f"{stats.get('decoder.pkts', 0):,} decoded, tcp.overlap={stats.get('tcp.overlap', 0):,},"
        f" kernel drops={stats.get('capture.kernel_drops', 0):,}; peak RSS "
        f"{peak / 1024:.0f} MiB = idle {idle / 1024:.0f} MiB + {(peak - idle) / 1024:.0f} MiB"
        " (cap 16 MiB)\n")
    assert stats.get("tcp.overlap", 0) > 1000, stats  # the segments reached the stream
    assert peak - idle < 16 * 1024 + 16 * 1024
