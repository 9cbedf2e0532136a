"""The eBPF programs run directly on crafted frames with BPF_PROG_TEST_RUN (real kernel
verifier and JIT, no interface or traffic): the fanout load balancer is symmetric and keeps
fragments together; the socket and XDP filters match exactly the flows in their tables."""

from __future__ import annotations

import ipaddress
import random
import struct
from collections.abc import Iterator

import pytest

from capture_backends import ebpf
from capture_backends.ebpf import layout, syscall
from tests import kernel
from tests.capture_backends.afp_helpers import flow, udp_frame

pytestmark = pytest.mark.kernel
LOADERS = ["libbpf", "bcc"]
MAC_A, MAC_B = b"\x02\x00\x00\x00\x00\x0a", b"\x02\x00\x00\x00\x00\x0b"
DELIVER = 0xFFFFFFFF
XDP_DROP, XDP_PASS = 1, 2


def _load(loader: str, name: str, kind: str = "socket",
          tables: tuple[str, ...] = (), vlan_in_key: bool = True) -> ebpf.BpfObject:
    kernel.require_root()
    kernel.require_bpf()
    if reason := ebpf.loader_unavailable(loader):
        kernel.skip(reason)
    return ebpf.open_object(loader, ebpf.bundled_path(name), kind=kind, tables=tables,
                            map_entries=1024, vlan_in_key=vlan_in_key)


@pytest.fixture(params=LOADERS)
def lb(request: pytest.FixtureRequest) -> Iterator[int]:
    obj = _load(request.param, "lb.o")
    try:
        yield obj.program_fd(ebpf.LB_PROGRAM)
    finally:
        obj.close()


def _random_flow(rng: random.Random, v6: bool) -> tuple[str, str, int, int, tuple[int, ...]]:
    make = ipaddress.IPv6Address if v6 else ipaddress.IPv4Address
    bits = 128 if v6 else 32
    a, b = str(make(rng.getrandbits(bits))), str(make(rng.getrandbits(bits)))
    vlan = tuple(rng.randrange(1, 4095) for _ in range(rng.randrange(0, 3)))
    return a, b, rng.randrange(1, 65536), rng.randrange(1, 65536), vlan


def test_lb_is_symmetric_and_balanced(lb: int) -> None:
    rng = random.Random(7)
    buckets = [0, 0, 0]
    hashes = set()
    for i in range(300):
        a, b, ap, bp, vlan = _random_flow(rng, v6=i % 2 == 1)
        ext = (0, 60) if i % 4 == 1 else ()
        forward = syscall.prog_test_run(lb, udp_frame(MAC_A, MAC_B, a, b, ap, bp, b"q", vlan,
                                                      ext))
        backward = syscall.prog_test_run(lb, udp_frame(MAC_B, MAC_A, b, a, bp, ap, b"r", vlan,
                                                       ext))
        assert forward == backward, (a, b, ap, bp, vlan)
        buckets[forward % 3] += 1
        hashes.add(forward)
    assert len(hashes) >= 295  # distinct flows spread over distinct values
    assert all(60 <= n <= 140 for n in buckets), buckets


def _ipv4_fragment(src: str, dst: str, offset_units: int, more: bool, body: bytes) -> bytes:
    flags = (0x2000 if more else 0) | offset_units
    ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(body), 77, flags, 64, 17, 0) + \
        ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed
    return MAC_B + MAC_A + b"\x08\x00" + ip + body


def _ipv6_fragment(src: str, dst: str, offset_units: int, more: bool, body: bytes) -> bytes:
    frag = struct.pack("!BBHI", 17, 0, (offset_units << 3) | int(more), 99)
    ip = struct.pack("!IHBB", 6 << 28, len(frag) + len(body), 44, 64) + \
        ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed
    return MAC_B + MAC_A + b"\x86\xdd" + ip + frag + body


@pytest.mark.parametrize("make", [_ipv4_fragment, _ipv6_fragment], ids=["ipv4", "ipv6"])
def test_lb_keeps_fragments_of_a_datagram_together(lb: int, make: object) -> None:
    assert callable(make)
    src, dst = ("10.1.1.1", "10.2.2.2") if make is _ipv4_fragment else ("fd00::1", "fd00::2")
    udp_head = struct.pack("!HHHH", 5353, 53, 3000, 0)
    first = syscall.prog_test_run(lb, make(src, dst, 0, True, udp_head + b"a" * 1400))
    middle = syscall.prog_test_run(lb, make(src, dst, 176, True, b"b" * 1400))
    last = syscall.prog_test_run(lb, make(src, dst, 352, False, b"c" * 200))
    reply = syscall.prog_test_run(lb, make(dst, src, 0, True, udp_head + b"d" * 1400))
    assert first == middle == last == reply


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("xdp", [False, True], ids=["socket", "xdp"])
def test_filters_match_exactly_the_flows_in_the_tables(loader: str, xdp: bool) -> None:
    name, kind = ("xdp_filter.o", "xdp") if xdp else ("bypass_filter.o", "socket")
    obj = _load(loader, name, kind, (layout.MAP_V4, layout.MAP_V6))
    try:
        prog = obj.program_fd(ebpf.XDP_FILTER_PROGRAM if xdp else ebpf.SOCKET_FILTER_PROGRAM)
        tables = {name: syscall.BpfMap(obj.map_fd(name) or -1)
                  for name in (layout.MAP_V4, layout.MAP_V6)}
        hit, miss = (XDP_DROP, XDP_PASS) if xdp else (0, DELIVER)
        rng = random.Random(11)
        for i in range(40):
            a, b, ap, bp, vlan = _random_flow(rng, v6=i % 2 == 0)
            f = flow(a, b, ap, bp, vlan=vlan)
            frame = udp_frame(MAC_A, MAC_B, a, b, ap, bp, b"p" * 30, vlan, (60,) if i % 3 else ())
            reply = udp_frame(MAC_B, MAC_A, b, a, bp, ap, b"p" * 10, vlan)
            assert syscall.prog_test_run(prog, frame) == miss
            key, _ = layout.canonical_key(f)
            table = tables[layout.map_name(f)]
            assert table.update(key, layout.ZERO_COUNTERS, syscall.BPF_NOEXIST) == 0
            assert syscall.prog_test_run(prog, frame) == hit
            assert syscall.prog_test_run(prog, reply) == hit
            other_vlan = udp_frame(MAC_A, MAC_B, a, b, ap, bp, b"p", (*vlan[:1], 4000)[:2])
            assert syscall.prog_test_run(prog, other_vlan) == miss
            raw = table.lookup(key)
            assert raw is not None
            counters = layout.sum_counters(raw)
            # test-run hands socket programs an skb whose Ethernet header is already pulled
            # (on an AF_PACKET socket the filter sees it pushed back: whole frames counted)
            pulled = 0 if xdp else 14
            assert (counters.pkts_ab + counters.pkts_ba, counters.bytes_ab + counters.bytes_ba) \
                == (2, len(frame) + len(reply) - 2 * pulled)
        # (test-run itself refuses IP frames shorter than their fixed header; the AF_PACKET
        # kernel tests inject those for real)
        for junk in (b"\x00" * 20,
                     MAC_A + MAC_B + b"\x08\x00" + b"\x4f" + b"\x00" * 19,  # ihl 15, 20 bytes
                     MAC_A + MAC_B + b"\x08\x00" + b"\x35" + b"\x00" * 19,  # version 3
                     MAC_A + MAC_B + b"\x86\xdd" + b"\x60" + b"\x00" * 39):  # HBH cut off
            assert syscall.prog_test_run(prog, junk) == miss, junk.hex()
    finally:
        obj.close()


@pytest.mark.parametrize("loader", LOADERS)
def test_without_vlan_tracking_vlan_ids_are_ignored(loader: str) -> None:
    """vlan.use-for-tracking: no. A flow whose two directions travel on different VLANs is
    one flow for the filters and for the load balancer; with tracking on it is not."""
    a, b = "10.3.0.1", "10.3.0.2"
    request = udp_frame(MAC_A, MAC_B, a, b, 4000, 53, b"q", (10,))
    reply = udp_frame(MAC_B, MAC_A, b, a, 53, 4000, b"r", (20, 30))
    untagged = udp_frame(MAC_A, MAC_B, a, b, 4000, 53, b"u")
    for vlan_in_key in (False, True):
        lb_obj = _load(loader, "lb.o", vlan_in_key=vlan_in_key)
        filt = _load(loader, "bypass_filter.o", tables=(layout.MAP_V4, layout.MAP_V6),
                     vlan_in_key=vlan_in_key)
        try:
            lb_fd = lb_obj.program_fd(ebpf.LB_PROGRAM)
            hashes = {syscall.prog_test_run(lb_fd, f) for f in (request, reply, untagged)}
            assert (len(hashes) == 1) is (not vlan_in_key)
            prog = filt.program_fd(ebpf.SOCKET_FILTER_PROGRAM)
            table = syscall.BpfMap(filt.map_fd(layout.MAP_V4) or -1)
            key, _ = layout.canonical_key(flow(a, b, 4000, 53, vlan=(10,)), vlan_in_key)
            assert table.update(key, layout.ZERO_COUNTERS) == 0
            verdicts = [syscall.prog_test_run(prog, f) for f in (request, reply, untagged)]
            assert verdicts == ([0, 0, 0] if not vlan_in_key else [0, DELIVER, DELIVER])
        finally:
            lb_obj.close()
            filt.close()
