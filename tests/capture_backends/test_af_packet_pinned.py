"""``af-packet.pinned-maps``: the bypass tables pinned in a bpffs survive the capture that
made them, are reused by the next one, and are replaced when they no longer fit.

The bpffs is a fresh one the capture mounts itself in a temporary directory
(``pinned-maps-dir``), unmounted at the end: nothing is left under /sys/fs/bpf.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from capture_backends import ebpf
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


@pytest.mark.parametrize("xdp", [False, True], ids=["socket", "xdp"])
def test_pinned_tables_are_reused_by_the_next_capture_and_stale_ones_replaced(
        bpffs_dir: Path, xdp: bool) -> None:
    _require()
    options: dict[str, object] = {
        "bypass": True, "pinned_maps": True, "pinned_maps_dir": str(bpffs_dir),
        "pinned_maps_name": "b14a-pins"}
    if xdp:  # the XDP program holds the tables (no socket filter is loaded)
        options["xdp_filter_file"] = "xdp_filter.o"
    # XDP_DROP drops for the whole host: the server receives none of a bypassed flow
    delivered = 0 if xdp else 1
    with kernel.netns_pair("b14a") as net:
        server = kernel.udp_socket(net, net.ns_b, net.v4_b, 5000)
        client = kernel.udp_socket(net, net.ns_a, net.v4_a, 6000)
        bypassed = flow(net.v4_a, net.v4_b, 6000, 5000)
        with capture(net, **options) as (group, be):
            assert group.xdp_attached == xdp
            assert any("mounted a bpffs" in n for n in group.notices), group.notices
            assert not group.reused_pins and group.adopted == []
            assert be.bypass(bypassed, 0)
            assert kernel.udp_exchange(client, server, 20, size=PAYLOAD) == 20 * delivered
            assert be.bypassed_flow_counters(bypassed) == (20, 20 * UDP4_FRAME, 0, 0)
        pin_dir = bpffs_dir / "b14a-pins"
        assert sorted(p.name for p in pin_dir.iterdir()) == sorted(
            [layout.MAP_V4, layout.MAP_V6, pins.STAMP_MAP])
        stamp = pins.read_stamp(pin_dir)
        assert stamp is not None and stamp.layout_version == pins.PIN_LAYOUT_VERSION

        # a restart: the same tables, with the flow bypassed before; none of it is captured
        with capture(net, **options) as (group, be):
            assert group.reused_pins
            assert not any("stale" in n for n in group.notices), group.notices
            assert any("1 flow(s) bypassed before this run" in n for n in group.notices)
            (adopted,) = group.adopted  # read from the key: either endpoint first
            assert adopted in (bypassed, flow(net.v4_b, net.v4_a, 5000, 6000)), adopted
            assert be.adopted_bypassed() == [adopted]
            assert kernel.udp_exchange(client, server, 10, size=PAYLOAD) == 10 * delivered
            assert count_flows(drain(be)).get(bypassed, 0) == 0
            assert be.bypassed_flow_counters(bypassed) == (30, 30 * UDP4_FRAME, 0, 0)

        # another ebpf-map-entries: the pinned tables are stale, replaced by empty ones
        with capture(net, **{**options, "map_entries": 1024}) as (group, be):
            assert not group.reused_pins and group.adopted == []
            stale = [n for n in group.notices if "stale" in n]
            assert len(stale) == 1 and "ebpf-map-entries was 32768" in stale[0], group.notices
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


def _pin_hash_map(path: Path, key_size: int, value_size: int) -> None:
    """A real BPF hash map pinned at ``path`` (as another build or tool would leave it)."""
    attr = pins._MapCreateAttr(1, key_size, value_size, 16, 0, 0, 0, b"b14a_other")
    fd = syscall.bpf(0, attr)
    assert fd >= 0, os.strerror(-fd)
    try:
        syscall.obj_pin(fd, str(path))
    finally:
        os.close(fd)


def _stale_notices(group: AfPacketGroup) -> list[str]:
    return [n for n in group.notices if "stale" in n]


def test_pins_of_another_layout_or_program_are_removed_with_one_message(
        bpffs_dir: Path, tmp_path: Path) -> None:
    _require()
    options: dict[str, object] = {
        "bypass": True, "pinned_maps": True, "pinned_maps_dir": str(bpffs_dir),
        "pinned_maps_name": "b14a-layout"}
    pin_dir = bpffs_dir / "b14a-layout"
    with kernel.netns_pair("b14a") as net:
        with capture(net, **options) as (group, be):  # mounts the bpffs, pins the tables
            assert be.bypass(flow(net.v4_a, net.v4_b, 6000, 5000), 0)
        ours = pins.read_stamp(pin_dir)
        assert ours is not None

        # an older table layout: tables of other sizes under a stamp of layout version 0
        for name in (layout.MAP_V4, layout.MAP_V6):
            (pin_dir / name).unlink()
            _pin_hash_map(pin_dir / name, 12, 16)
        pins.write_stamp(pin_dir, dataclasses.replace(ours, layout_version=0))
        with capture(net, **options) as (group, be):
            (stale,) = _stale_notices(group)
            assert "table layout version 0, this build has 1" in stale, stale
            assert layout.MAP_V4 in stale and layout.MAP_V6 in stale
            assert not group.reused_pins and group.adopted == []
        fd = syscall.obj_get(str(pin_dir / layout.MAP_V4))
        try:  # replaced by this program's table, and the stamp by this run's
            assert syscall.map_info(fd).key_size == layout.KEY_V4.size
        finally:
            os.close(fd)
        assert pins.read_stamp(pin_dir) == ours

        # tables of the right sizes but no stamp (an older build): not trusted either
        (pin_dir / pins.STAMP_MAP).unlink()
        with capture(net, **options) as (group, be):
            (stale,) = _stale_notices(group)
            assert "no version stamp" in stale, stale
        # another program object (same layout, other code): its tables are not reused
        other = tmp_path / "other_filter.o"
        other.write_bytes(ebpf.bundled_path(ebpf.SOCKET_FILTER_OBJECT).read_bytes() + b"\0")
        with capture(net, **options, ebpf_filter_file=str(other)) as (group, be):
            (stale,) = _stale_notices(group)
            assert "written by another program" in stale, stale
        # vlan.use-for-tracking changes the keys
        with capture(net, **options, ebpf_filter_file=str(other), vlan_in_key=False
                     ) as (group, be):
            (stale,) = _stale_notices(group)
            assert "vlan.use-for-tracking was on" in stale, stale
        # and the same run again reuses what it pinned, without a message
        with capture(net, **options, ebpf_filter_file=str(other), vlan_in_key=False
                     ) as (group, be):
            assert _stale_notices(group) == [] and group.reused_pins


def test_pinned_maps_with_the_bcc_loader_is_a_clear_error(bpffs_dir: Path) -> None:
    _require("bcc")
    with kernel.netns_pair("bk2") as net, net.entered(net.ns_b), \
            pytest.raises(BackendUnavailable, match="pinned-maps needs the libbpf loader"):
        AfPacketGroup(AfPacketConfig(interface=net.if_b, bypass=True, loader="bcc",
                                     pinned_maps=True, pinned_maps_dir=str(bpffs_dir)))

