"""``af-packet.pinned-maps``: the bypass tables pinned in a bpffs survive the capture that
made them, are reused by the next one, and are replaced when they no longer fit.

The bpffs is a fresh one the capture mounts itself in a temporary directory
(``pinned-maps-dir``), unmounted at the end: nothing is left under /sys/fs/bpf.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from capture_backends.af_packet import AfPacketConfig, AfPacketGroup
from capture_backends.base import BackendUnavailable
from capture_backends.ebpf import layout, pins, syscall
from tests import kernel
from tests.capture_backends.afp_helpers import count_flows, drain, flow
from tests.capture_backends.test_af_packet_bypass import PAYLOAD, UDP4_FRAME, _require, capture

pytestmark = pytest.mark.kernel


@pytest.fixture
def bpffs_dir(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "bpffs"
    try:
        yield root
    finally:
        if pins.is_bpffs(root):
            subprocess.run(["umount", str(root)], check=False, capture_output=True)


def test_pinned_tables_are_reused_by_the_next_capture_and_stale_ones_replaced(
        bpffs_dir: Path) -> None:
    _require()
    options = {"bypass": True, "pinned_maps": True, "pinned_maps_dir": str(bpffs_dir),
               "pinned_maps_name": "bk2-pins"}
    with kernel.netns_pair("bk2") as net:
        server = kernel.udp_socket(net, net.ns_b, net.v4_b, 5000)
        client = kernel.udp_socket(net, net.ns_a, net.v4_a, 6000)
        bypassed = flow(net.v4_a, net.v4_b, 6000, 5000)
        with capture(net, **options) as (group, be):
            assert any("mounted a bpffs" in n for n in group.notices), group.notices
            assert not group.reused_pins and group.adopted == []
            assert be.bypass(bypassed, 0)
            assert kernel.udp_exchange(client, server, 20, size=PAYLOAD) == 20
            assert be.bypassed_flow_counters(bypassed) == (20, 20 * UDP4_FRAME, 0, 0)
        pin_dir = bpffs_dir / "bk2-pins"
        assert sorted(p.name for p in pin_dir.iterdir()) == [layout.MAP_V4, layout.MAP_V6]

        # a restart: the same tables, with the flow bypassed before; none of it is captured
        with capture(net, **options) as (group, be):
            assert group.reused_pins
            assert not any("stale" in n for n in group.notices), group.notices
            assert any("1 flow(s) bypassed before this run" in n for n in group.notices)
            (adopted,) = group.adopted  # read from the key: either endpoint first
            assert adopted in (bypassed, flow(net.v4_b, net.v4_a, 5000, 6000)), adopted
            assert be.adopted_bypassed() == [adopted]
            assert kernel.udp_exchange(client, server, 10, size=PAYLOAD) == 10
            assert count_flows(drain(be)).get(bypassed, 0) == 0
            assert be.bypassed_flow_counters(bypassed) == (30, 30 * UDP4_FRAME, 0, 0)

        # another ebpf-map-entries: the pinned tables are stale, replaced by empty ones
        with capture(net, **options, map_entries=1024) as (group, be):
            assert not group.reused_pins and group.adopted == []
            stale = [n for n in group.notices if "stale pinned map" in n]
            assert len(stale) == 2 and "entries" in stale[0], group.notices
            assert be.bypassed_flow_counters(bypassed) is None
            assert kernel.udp_exchange(client, server, 5, size=PAYLOAD) == 5
            assert count_flows(drain(be)).get(bypassed) == 5
            fd = syscall.obj_get(str(pin_dir / layout.MAP_V4))
            try:
                assert syscall.map_info(fd).max_entries == 1024
            finally:
                os.close(fd)
        server.close()
        client.close()


def test_pinned_maps_with_the_bcc_loader_is_a_clear_error(bpffs_dir: Path) -> None:
    _require("bcc")
    with kernel.netns_pair("bk2") as net, net.entered(net.ns_b), \
            pytest.raises(BackendUnavailable, match="pinned-maps needs the libbpf loader"):
        AfPacketGroup(AfPacketConfig(interface=net.if_b, bypass=True, loader="bcc",
                                     pinned_maps=True, pinned_maps_dir=str(bpffs_dir)))

