"""Bypass list maps in the socket and XDP filters, run with BPF_PROG_TEST_RUN on crafted
frames (real verifier, no traffic): CIDR (LPM trie) and port entries are not delivered
and are counted per list entry; entries removed by a reload are delivered again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from capture_backends import ebpf
from capture_backends.bypass_lists import LIST_MAPS, BypassLists, KernelLists
from capture_backends.ebpf import layout, syscall
from tests import kernel
from tests.capture_backends.afp_helpers import udp_frame

pytestmark = pytest.mark.kernel
MAC_A, MAC_B = b"\x02\x00\x00\x00\x00\x0a", b"\x02\x00\x00\x00\x00\x0b"
DELIVER = 0xFFFFFFFF


@pytest.fixture(params=[("bypass_filter.o", "socket", 0, "libbpf"),
                        ("xdp_filter.o", "xdp", 1, "libbpf"),
                        ("bypass_filter.o", "socket", 0, "bcc"),
                        ("xdp_filter.o", "xdp", 1, "bcc")],
                ids=["socket-libbpf", "xdp-libbpf", "socket-bcc", "xdp-bcc"])
def program(request: pytest.FixtureRequest) -> Iterator[tuple[int, KernelLists, int]]:
    kernel.require_root()
    kernel.require_bpf()
    name, kind, is_xdp, loader = request.param
    if reason := ebpf.loader_unavailable(loader):
        kernel.skip(reason)
    # this checkout's objects (the installed package may point at another checkout)
    path = Path(__file__).resolve().parents[2] / "bpf" / name
    obj = ebpf.open_object(loader, path, kind=kind,
                           tables=(layout.MAP_V4, layout.MAP_V6), map_entries=64)
    try:
        maps = {}
        for map_name in LIST_MAPS:
            fd = obj.map_fd(map_name)
            assert fd is not None, map_name
            maps[map_name] = syscall.BpfMap(fd)
        program_name = ebpf.XDP_FILTER_PROGRAM if is_xdp else ebpf.SOCKET_FILTER_PROGRAM
        yield obj.program_fd(program_name), KernelLists(maps), is_xdp
    finally:
        obj.close()


def _bypassed(prog: int, is_xdp: int, frame: bytes) -> bool:
    ret = syscall.prog_test_run(prog, frame)
    return ret == (1 if is_xdp else 0)  # XDP_DROP / socket filter 0 = not delivered


def test_cidr_and_port_entries_bypass_count_and_reload(
        program: tuple[int, KernelLists, int], tmp_path: Path) -> None:
    prog, kmaps, is_xdp = program
    path = tmp_path / "bl.list"
    path.write_text("10.9.0.0/16\n2001:db8:9::/48\nport 8000-8002\n")
    lists = BypassLists()
    assert lists.reload((str(path),)) == []
    kmaps.sync(lists)
    cidr4, cidr6, ports = lists.entries
    in_v4 = udp_frame(MAC_A, MAC_B, "192.0.2.1", "10.9.3.4", 1000, 53, b"x" * 10)
    in_v4_src = udp_frame(MAC_B, MAC_A, "10.9.200.1", "192.0.2.1", 53, 1000, b"y")
    in_v6 = udp_frame(MAC_A, MAC_B, "2001:db8:9:1::5", "2001:db8:77::1", 1000, 53, b"z")
    on_port = udp_frame(MAC_A, MAC_B, "192.0.2.1", "192.0.2.2", 40000, 8002, b"p")
    other = udp_frame(MAC_A, MAC_B, "10.8.0.1", "192.0.2.2", 40000, 8003, b"o")
    for frame in (in_v4, in_v4_src, in_v6, on_port):
        assert _bypassed(prog, is_xdp, frame)
    assert not _bypassed(prog, is_xdp, other)
    # a socket program's skb->len starts at the network header; XDP counts the frame
    def size(frame: bytes) -> int:
        return len(frame) - (0 if is_xdp else 14)

    kmaps.read_counts(lists)
    stats = lists.stats()
    assert stats["bypass_list.bl.list:1.pkts"] == 2
    assert stats["bypass_list.bl.list:1.bytes"] == size(in_v4) + size(in_v4_src)
    assert stats["bypass_list.bl.list:2.pkts"] == 1
    assert stats["bypass_list.bl.list:3.pkts"] == 1
    assert (cidr4.kind, cidr6.kind, ports.kind) == ("cidr", "cidr", "port")
    # edit: the v4 CIDR and the ports go, another port comes; kept entries keep counting
    path.write_text("2001:db8:9::/48\nport 8003\n")
    lists.reload()
    kmaps.sync(lists)
    assert not _bypassed(prog, is_xdp, in_v4)
    assert not _bypassed(prog, is_xdp, on_port)
    assert _bypassed(prog, is_xdp, other)
    assert _bypassed(prog, is_xdp, in_v6)
    kmaps.read_counts(lists)
    assert lists.stats() == {
        "bypass_list.bl.list:1.pkts": 2, "bypass_list.bl.list:1.bytes": 2 * size(in_v6),
        "bypass_list.bl.list:2.pkts": 1, "bypass_list.bl.list:2.bytes": size(other)}
    assert all(len(m) == 1 for m in (kmaps.maps[LIST_MAPS[1]], kmaps.maps[LIST_MAPS[2]]))
    assert kmaps.errors == 0
