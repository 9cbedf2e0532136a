"""A restart keeps the bypasses: ``af-packet.pinned-maps`` on the real kernel.

``ruleengine run --af-packet`` in namespace B bypasses a 1 GiB HTTP download (a ``bypass``
rule on the request), paced to last about 12 s. The engine is stopped and a new one started
with the same configuration while the download runs. Its flow tables are the ones the first
run pinned (in a bpffs the test mounts in a temporary directory, shared by both engines'
mount namespaces), so the new engine's socket filter keeps the flow out of user space from
its first packet: the second engine captures almost nothing of the ~700,000 frames, adopts
the entry and deletes it once the download is over and the kernel stopped counting.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from capture_backends.ebpf import layout, pins, syscall
from tests import kernel
from tests.integration import afp_engine as ae
from tests.integration.test_af_packet_bypass import (
    BYPASSED_TIMEOUT,
    RULES,
    SID_HTTP_BYPASS,
    _require,
)
from tests.outputs.eve_schema import validate_line

pytestmark = [pytest.mark.kernel, pytest.mark.slow, pytest.mark.timeout(180)]

PORT = 8080
CLIENT_PORT = 42433
SIZE = 1 << 30
RATE = SIZE // 12  # bytes/s: about 12 s of download
PIN_NAME = "bk2-restart"


def _engine(net: kernel.NetnsPair, cfg: Path, logdir: Path) -> ae.Engine:
    engine = ae.Engine(net, net.ns_b, net.if_b, RULES, logdir, cfg)
    engine.wait_ready(net, net.ns_b, net.if_b, timeout=30)
    return engine


def _stop(engine: ae.Engine) -> dict[str, int]:
    assert engine.stop() == 0, engine.stderr()
    assert "Traceback" not in engine.stderr(), engine.stderr()
    for line in (engine.logdir / "eve.json").read_text().splitlines():
        validate_line(line)
    return engine.final_stats()


def _pinned_entries(pin_dir: Path) -> int:
    fd = syscall.obj_get(str(pin_dir / layout.MAP_V4))
    try:
        return len(syscall.BpfMap(fd))
    finally:
        os.close(fd)


def test_restart_during_a_bypassed_1gib_download_keeps_it_out_of_user_space(
        tmp_path: Path) -> None:
    _require()
    kernel.require_command("mount", "umount")
    bpffs = tmp_path / "bpffs"
    bpffs.mkdir()
    subprocess.run(["mount", "-t", "bpf", "bpf", str(bpffs)], check=True, capture_output=True)
    try:
        assert pins.is_bpffs(bpffs)
        cfg = ae.write_config(tmp_path / "suricata.yaml", bypassed_timeout=BYPASSED_TIMEOUT,
                              extra_afp={"pinned-maps": True, "pinned-maps-dir": str(bpffs),
                                         "pinned-maps-name": PIN_NAME})
        with kernel.netns_pair("bk2") as net:
            first = _engine(net, cfg, tmp_path / "log1")
            server = ae.HttpServer(net, net.ns_b, net.v4_b, PORT)
            client = ae.start_client(net, net.ns_a, (net.v4_b, PORT), (net.v4_a, CLIENT_PORT),
                                     f"/bypass-me?size={SIZE}&delay=0.5&rate={RATE}")
            try:
                assert ae.wait_for_alert(first, SID_HTTP_BYPASS, timeout=10), first.stderr()
                time.sleep(1.0)  # the body flows, bypassed by the kernel
                stats1 = _stop(first)
                second = _engine(net, cfg, tmp_path / "log2")
                rx0, tx0 = ae.link_packets(net, net.ns_b, net.if_b)
                transfer = ae.finish_client(client, timeout=120)
                rx1, tx1 = ae.link_packets(net, net.ns_b, net.if_b)
                # the kernel counters stand still: the adopted entry times out
                time.sleep(BYPASSED_TIMEOUT + 3)
                stats2 = _stop(second)
            finally:
                server.close()
        assert transfer.received >= SIZE, transfer
        assert stats1["capture.bypass.ipv4_success"] == 1, stats1
        assert "1 flow(s) bypassed before this run" in second.stderr(), second.stderr()
        wire = (rx1 - rx0) + (tx1 - tx0)
        print(f"restart: first engine bypassed after {stats1.get('capture.kernel_packets')} "
              f"captured packets; under the second {wire} frames on the veth, "
              f"{stats2.get('capture.kernel_packets', 0)} captured, adopted entry counted "
              f"{stats2.get('flow_bypassed.adopted_pkts')} packets")
        assert wire > SIZE // 1500 // 2, wire  # most of the download ran under the second
        # what reached the second engine: a few packets (ARP, ND), none of the flow's bulk
        captured = stats2.get("capture.kernel_packets", 0)
        assert captured <= max(50, wire // 1000), (captured, wire, stats2)
        assert stats2["flow_bypassed.adopted"] == 1, stats2
        assert stats2["flow_bypassed.adopted_expired"] == 1, stats2
        assert stats2["flow_bypassed.adopted_pkts"] >= wire, (wire, stats2)
        assert stats2.get("capture.bypass.ipv4_success", 0) == 0, stats2  # nothing to redo
        assert _pinned_entries(bpffs / PIN_NAME) == 0  # deleted, the pins stay for the next
    finally:
        subprocess.run(["umount", str(bpffs)], check=False, capture_output=True)
