"""AF_PACKET capture and eBPF bypass on the real kernel, between two network namespaces.

Bypass is judged by what the kernel counted in the flow table versus what was sent, and by
what reached user space: after the flow is inserted none of its packets are captured while
other flows still are. Both loaders (libbpf through ctypes, BCC) are exercised.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from capture_backends.af_packet import AfPacketBackend, AfPacketConfig, AfPacketGroup
from capture_backends.base import (
    LINKTYPE_ETHERNET,
    BackendUnavailable,
    Capability,
    CaptureBackend,
)
from tests import kernel
from tests.capture_backends.afp_helpers import count_flows, drain, flow, parse_flow, udp_frame

pytestmark = pytest.mark.kernel
LOADERS = ["libbpf", "bcc"]
PAYLOAD = 100
UDP4_FRAME = 14 + 20 + 8 + PAYLOAD


def _require(loader: str = "libbpf") -> None:
    kernel.require_root()
    kernel.require_bpf()
    from capture_backends import ebpf

    reason = ebpf.loader_unavailable(loader)
    if reason:
        kernel.skip(reason)


@contextmanager
def capture(net: kernel.NetnsPair, **options: object
            ) -> Iterator[tuple[AfPacketGroup, AfPacketBackend]]:
    """A group and one worker capturing on namespace B's veth end."""
    config = AfPacketConfig(interface=net.if_b, **options)  # type: ignore[arg-type]
    with net.entered(net.ns_b):
        group = AfPacketGroup(config)
        try:
            backend = group.open_worker(0)
        except BaseException:
            group.close()
            raise
    try:
        yield group, backend
    finally:
        backend.close()
        group.close()


def _xdp_on(net: kernel.NetnsPair) -> bool:
    return "xdp" in net.run(net.ns_b, "ip", "link", "show", net.if_b).stdout


@pytest.mark.parametrize("loader", LOADERS)
def test_udp_v4_bypass_both_directions(loader: str) -> None:
    _require(loader)
    with kernel.netns_pair() as net, capture(net, bypass=True, loader=loader) as (group, be):
        assert be.capabilities & Capability.BYPASS
        server = kernel.udp_socket(net, net.ns_b, net.v4_b, 5000)
        client = kernel.udp_socket(net, net.ns_a, net.v4_a, 6000)
        other_server = kernel.udp_socket(net, net.ns_b, net.v4_b, 5001)
        other_client = kernel.udp_socket(net, net.ns_a, net.v4_a, 6001)
        bypassed = flow(net.v4_a, net.v4_b, 6000, 5000)
        control = flow(net.v4_a, net.v4_b, 6001, 5001)

        # before the bypass the flow is captured (both directions)
        assert kernel.udp_exchange(client, server, 5, size=PAYLOAD, reply=True) == 5
        seen = count_flows(drain(be))
        assert seen.get(bypassed) == 5 and seen.get(flow(net.v4_b, net.v4_a, 5000, 6000)) == 5

        # insert from the server's direction: one entry covers both
        assert be.bypass(flow(net.v4_b, net.v4_a, 5000, 6000), 0) is True
        assert be.bypass(bypassed, 0) is True  # already there (EEXIST) is success
        assert kernel.udp_exchange(client, server, 100, size=PAYLOAD, reply=True) == 100
        assert kernel.udp_exchange(other_client, other_server, 50, size=PAYLOAD,
                                   reply=True) == 50
        seen = count_flows(drain(be))
        assert seen.get(bypassed, 0) == 0
        assert seen.get(flow(net.v4_b, net.v4_a, 5000, 6000), 0) == 0
        assert seen.get(control) == 50 and seen.get(flow(net.v4_b, net.v4_a, 5001, 6001)) == 50

        counters = be.bypassed_flow_counters(bypassed)
        assert counters == (100, 100 * UDP4_FRAME, 100, 100 * UDP4_FRAME)
        reverse = be.bypassed_flow_counters(flow(net.v4_b, net.v4_a, 5000, 6000))
        assert reverse == (100, 100 * UDP4_FRAME, 100, 100 * UDP4_FRAME)
        assert be.bypassed_last_seen_ns(bypassed) <= time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        assert be.bypassed_flow_counters(control) is None
        stats = be.stats()
        assert (stats.bypass_v4_success, stats.bypass_v4_fail) == (2, 0)
        assert [f for f, _ in group.bypassed_flows()] == [bypassed]
        assert "kernel bypass: tables of 32768 flows, loader " + loader in group.summary()

        # forgetting the flow brings its packets back
        be.forget_bypassed(bypassed)
        assert be.bypassed_flow_counters(bypassed) is None
        assert kernel.udp_exchange(client, server, 10, size=PAYLOAD) == 10
        assert count_flows(drain(be)).get(bypassed) == 10


@pytest.mark.parametrize("loader", LOADERS)
def test_ipv6_extension_headers_and_vlan(loader: str) -> None:
    """Hand-made frames from A: IPv6 behind hop-by-hop/dest-opts/routing/fragment/AH headers,
    802.1Q and QinQ. The kernel strips the outer tag into metadata before the filter runs;
    the capture puts it back into the frame."""
    _require(loader)
    with kernel.netns_pair() as net, capture(net, bypass=True, loader=loader) as (_g, be):
        mac_a, mac_b = net.mac(net.ns_a, net.if_a), net.mac(net.ns_b, net.if_b)
        tx = net.raw_socket(net.ns_a, net.if_a)
        cases = [  # (flow, ext headers); each flow is bypassed and sent both ways
            (flow("fd00:1::1", "fd00:1::2", 1111, 53), (0, 60)),
            (flow("fd00:1::1", "fd00:1::2", 2222, 53), (43, 44, 51)),
            (flow("10.9.0.1", "10.9.0.2", 3333, 53, vlan=(42,)), ()),
            (flow("fd00:1::1", "fd00:1::2", 4444, 53, vlan=(100, 200)), (0,)),
        ]
        controls = [  # same 5-tuples on another VLAN / untagged: not bypassed
            (flow("10.9.0.1", "10.9.0.2", 3333, 53, vlan=(43,)), ()),
            (flow("fd00:1::1", "fd00:1::2", 4444, 53), (0,)),
        ]

        def send(f, ext, count, reverse=False):  # type: ignore[no-untyped-def]
            src, dst = socket.inet_ntop(_family(f.src), f.src), socket.inet_ntop(
                _family(f.dst), f.dst)
            sport, dport = f.sport, f.dport
            if reverse:
                src, dst, sport, dport = dst, src, dport, sport
            frame = udp_frame(mac_a, mac_b, src, dst, sport, dport, b"x" * PAYLOAD, f.vlan, ext)
            for _ in range(count):
                tx.send(frame)
            return len(frame)

        for f, _ext in cases:
            assert be.bypass(f, 0)
        sizes = {}
        for f, ext in cases:
            sizes[f] = (send(f, ext, 7), send(f, ext, 3, reverse=True))
        for f, ext in controls:
            send(f, ext, 5)
        frames = drain(be)
        seen = count_flows(frames)
        for f, _ext in controls:
            assert seen.get(f) == 5, f"control {f} not captured: {seen}"
        for f, _ext in cases:
            assert seen.get(f, 0) == 0, f"bypassed {f} reached user space"
            ab, ba = sizes[f]
            # frame bytes as counted by the socket filter exclude the stripped outer tag
            outer = 4 if f.vlan else 0
            assert be.bypassed_flow_counters(f) == (7, 7 * (ab - outer), 3, 3 * (ba - outer)), f
        tagged = [fr for fr in frames if (p := parse_flow(fr)) and p[0].vlan == (43,)]
        assert tagged and tagged[0][12:16] == b"\x81\x00\x00\x2b"  # tag re-inserted
        assert be.stats().bypass_v6_success == 3


def _family(a: bytes) -> int:
    return socket.AF_INET6 if len(a) == 16 else socket.AF_INET


def test_tcp_bypass_stops_delivery_and_counts_both_directions() -> None:
    _require()
    with kernel.netns_pair() as net, capture(net, bypass=True) as (_g, be):
        with net.entered(net.ns_b):
            listener = socket.create_server((net.v4_b, 8080))
        with net.entered(net.ns_a):
            client = socket.socket()
        client.connect((net.v4_b, 8080))
        conn, _ = listener.accept()
        client.sendall(b"GET / HTTP/1.0\r\n\r\n")
        conn.recv(100)
        f = flow(net.v4_a, net.v4_b, client.getsockname()[1], 8080, proto=6)
        assert count_flows(drain(be)).get(f, 0) >= 2
        assert be.bypass(f, 0)
        body = b"z" * 200_000
        threading.Thread(target=conn.sendall, args=(body,), daemon=True).start()
        received = 0
        while received < len(body):
            chunk = client.recv(65536)
            assert chunk
            received += len(chunk)
        client.close()
        conn.close()
        listener.close()
        seen = count_flows(drain(be))
        rev = flow(net.v4_b, net.v4_a, 8080, f.sport, proto=6)
        assert seen.get(f, 0) == 0 and seen.get(rev, 0) == 0
        counters = be.bypassed_flow_counters(f)
        assert counters is not None
        assert counters.bytes_toclient > len(body)  # the data went server -> client
        assert counters.pkts_toserver > 0  # ACKs and FIN went client -> server


@pytest.mark.parametrize("loader", LOADERS)
def test_map_full_bypass_returns_false(loader: str) -> None:
    _require(loader)
    with kernel.netns_pair() as net, capture(net, bypass=True, loader=loader,
                                             map_entries=2) as (_g, be):
        notices: list[str] = []
        be.notice = notices.append
        flows = [flow(net.v4_a, net.v4_b, 7000 + i, 80, proto=6) for i in range(3)]
        assert be.bypass(flows[0], 0) and be.bypass(flows[1], 0)
        assert be.bypass(flows[2], 0) is False  # E2BIG: the engine bypasses locally
        assert be.bypass(flow(net.v4_a, net.v4_b, 0, 0, proto=1), 0) is False  # ICMP: never
        stats = be.stats()
        assert (stats.bypass_v4_success, stats.bypass_v4_fail) == (2, 1)
        assert stats.errors == 0
        assert be.bypass(flow(net.v4_a, net.v4_b, 7010, 80, proto=6), 0) is False
        assert len(notices) == 1 and "bypass table" in notices[0], notices  # said once
        be.forget_bypassed(flows[0])
        assert be.bypass(flows[2], 0) is True


@pytest.mark.parametrize("loader", LOADERS)
def test_percpu_hash_counters_are_summed(loader: str) -> None:
    _require(loader)
    with kernel.netns_pair() as net, capture(net, bypass=True, use_percpu_hash=True,
                                             loader=loader) as (g, be):
        assert g.tables is not None and g.tables.v4.percpu
        server = kernel.udp_socket(net, net.ns_b, net.v4_b, 5000)
        client = kernel.udp_socket(net, net.ns_a, net.v4_a, 6000)
        f = flow(net.v4_a, net.v4_b, 6000, 5000)
        assert be.bypass(f, 0)
        assert kernel.udp_exchange(client, server, 40, size=PAYLOAD, reply=True) == 40
        assert count_flows(drain(be)).get(f, 0) == 0
        assert be.bypassed_flow_counters(f) == (40, 40 * UDP4_FRAME, 40, 40 * UDP4_FRAME)


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("mode", ["soft", "driver"])
def test_xdp_bypass(loader: str, mode: str) -> None:
    _require(loader)
    with kernel.netns_pair() as net:
        with capture(net, bypass=True, loader=loader, xdp_filter_file="xdp_filter.o",
                     xdp_mode=mode) as (group, be):
            assert group.xdp_attached and _xdp_on(net)
            server = kernel.udp_socket(net, net.ns_b, net.v4_b, 5000)
            client = kernel.udp_socket(net, net.ns_a, net.v4_a, 6000)
            other = kernel.udp_socket(net, net.ns_b, net.v4_b, 5001)
            f = flow(net.v4_a, net.v4_b, 6000, 5000)
            assert be.bypass(f, 0)
            # XDP_DROP drops for the whole host: the server gets nothing either
            assert kernel.udp_exchange(client, server, 60, size=PAYLOAD) == 0
            assert kernel.udp_exchange(client, other, 30, size=PAYLOAD) == 30
            seen = count_flows(drain(be))
            assert seen.get(f, 0) == 0
            assert seen.get(flow(net.v4_a, net.v4_b, 6000, 5001)) == 30
            assert be.bypassed_flow_counters(f) == (60, 60 * UDP4_FRAME, 0, 0)
            # XDP sees VLAN tags and IPv6 extension headers in the frame itself
            tagged = flow("fd00:1::1", "fd00:1::2", 1111, 53, vlan=(42,))
            assert be.bypass(tagged, 0)
            frame = udp_frame(net.mac(net.ns_a, net.if_a), net.mac(net.ns_b, net.if_b),
                              "fd00:1::1", "fd00:1::2", 1111, 53, b"v" * PAYLOAD, (42,), (0, 44))
            tx = net.raw_socket(net.ns_a, net.if_a)
            for _ in range(5):
                tx.send(frame)
            tx.close()
            assert count_flows(drain(be)).get(tagged, 0) == 0
            assert be.bypassed_flow_counters(tagged) == (5, 5 * len(frame), 0, 0)
        assert not _xdp_on(net), "XDP program left attached after close()"


CRASHING_CAPTURE = """
import sys, time
from capture_backends.af_packet import AfPacketConfig, AfPacketGroup
g = AfPacketGroup(AfPacketConfig(interface=sys.argv[1], bypass=True,
                                 xdp_filter_file="xdp_filter.o", xdp_mode="driver"))
b = g.open_worker(0)
print("ready", flush=True)
time.sleep(60)
"""


def test_crash_leaves_no_state_and_restart_works() -> None:
    _require()
    with kernel.netns_pair() as net:
        proc = net.popen(net.ns_b, sys.executable, "-c", CRASHING_CAPTURE, net.if_b,
                         stdout=subprocess.PIPE, cwd=str(kernel.REPO_ROOT))
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == b"ready", line
        assert _xdp_on(net)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert kernel.wait_for(lambda: not _xdp_on(net), timeout=5), "XDP survived the crash"
        with capture(net, bypass=True, xdp_filter_file="xdp_filter.o",
                     xdp_mode="driver") as (group, _be):
            assert group.xdp_attached


def test_close_from_signal_handler_ends_packets() -> None:
    _require()
    with kernel.netns_pair() as net, capture(net) as (_g, be):
        assert isinstance(be, CaptureBackend)
        assert be.name == "af-packet" and be.linktype == LINKTYPE_ETHERNET
        assert not be.capabilities & Capability.BYPASS  # no filter loaded without bypass
        assert be.bypass(flow(net.v4_a, net.v4_b, 1, 2), 0) is False
        old = signal.signal(signal.SIGALRM, lambda *_: be.close())
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.3)
            start = time.monotonic()
            for _ in be.packets():
                pass
            assert time.monotonic() - start < 2.0
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
        assert list(be.packets()) == []
        be.close()  # idempotent


def test_kernel_stats_accumulate() -> None:
    _require()
    with kernel.netns_pair() as net, capture(net) as (_g, be):
        server = kernel.udp_socket(net, net.ns_b, net.v4_b, 5000)
        client = kernel.udp_socket(net, net.ns_a, net.v4_a, 6000)
        kernel.udp_exchange(client, server, 20)
        drain(be)
        first = be.stats().kernel_packets
        assert first >= 20
        kernel.udp_exchange(client, server, 20)
        drain(be)
        assert be.stats().kernel_packets >= first + 20  # not reset by the kernel's read


def test_unavailable_reasons() -> None:
    _require()
    with pytest.raises(BackendUnavailable, match="no such interface"):
        AfPacketGroup(AfPacketConfig(interface="nonexistent0"))
    with kernel.netns_pair() as net, net.entered(net.ns_b), pytest.raises(
            BackendUnavailable, match="not found"):
        AfPacketGroup(AfPacketConfig(interface=net.if_b, bypass=True,
                                     ebpf_filter_file="/nonexistent/filter.o"))
    with tempfile.NamedTemporaryFile(suffix=".o") as bad:
        bad.write(b"not an ELF object")
        bad.flush()
        with kernel.netns_pair() as net, net.entered(net.ns_b), pytest.raises(
                BackendUnavailable, match="not a valid eBPF ELF object"):
            AfPacketGroup(AfPacketConfig(interface=net.if_b, ebpf_filter_file=bad.name))
    with kernel.netns_pair() as net, net.entered(net.ns_b):
        # veth cannot offload XDP to hardware: the attach fails, nothing is left behind
        with pytest.raises(BackendUnavailable, match="XDP attach"):
            AfPacketGroup(AfPacketConfig(interface=net.if_b, bypass=True,
                                         xdp_filter_file="xdp_filter.o", xdp_mode="hw"))
        assert not _xdp_on(net)
        with capture(net, bypass=True, xdp_filter_file="xdp_filter.o") as (group, _be):
            assert group.xdp_attached


def test_interface_down_then_removed() -> None:
    """Link down: errors are counted, no busy loop, capture resumes when it comes back up.
    Interface removed: the socket is let go, the capture waits without spinning and
    re-attaches when an interface of that name exists again."""
    _require()
    # the reader lives in the interface's namespace, as the engine does (it looks the
    # interface up by name to tell "down" from "gone")
    with kernel.netns_pair() as net, capture(net) as (_g, be), net.entered(net.ns_b):
        notices: list[str] = []
        be.notice = notices.append
        net.run(net.ns_b, "ip", "link", "set", net.if_b, "down")
        deadline = time.monotonic() + 3
        while be.stats().errors == 0 and time.monotonic() < deadline:
            be.read_batch(100)  # drains what was queued before (IPv6 MLD/ND reports...)
        assert be.stats().errors >= 1
        time.sleep(0.05)  # a block filled before the link went down retires by its timeout
        drain(be, quiet_ms=50)
        start = time.monotonic()
        for _ in range(3):
            assert be.read_batch(100) == []
        assert time.monotonic() - start >= 0.25  # waited in poll(), did not spin
        # one warning per outage, however many errors it causes
        assert len(notices) == 1 and "resumes by itself when" in notices[0], notices
        net.run(net.ns_b, "ip", "link", "set", net.if_b, "up")
        for ns, ifname in ((net.ns_a, net.if_a), (net.ns_b, net.if_b)):
            assert kernel.wait_for(lambda ns=ns, ifname=ifname: "LOWER_UP" in net.run(
                ns, "ip", "link", "show", ifname).stdout)
        server = kernel.udp_socket(net, net.ns_b, net.v4_b, 5000)
        client = kernel.udp_socket(net, net.ns_a, net.v4_a, 6000)
        kernel.udp_exchange(client, server, 10)
        assert count_flows(drain(be)).get(flow(net.v4_a, net.v4_b, 6000, 5000)) == 10
        assert len(notices) == 1, notices

        # removed, then created again: the capture waits (idle ticks, no spinning) and
        # re-attaches to the new interface of that name
        infos: list[str] = []
        be.info = infos.append
        net.run(net.ns_a, "ip", "link", "del", net.if_a)
        ticks, start = 0, time.monotonic()
        for _ts, frame, _ in be.packets():
            ticks += not frame
            if "is gone" in notices[-1] or time.monotonic() - start > 3:
                break
        assert "is gone" in notices[-1] and len(notices) == 2, notices
        assert "re-attaches" in notices[-1]
        start = time.monotonic()
        assert be.read_batch(100) == [] and be.read_batch(100) == []
        assert time.monotonic() - start >= 0.15  # waited, did not spin
        net.recreate_link()
        server.close()
        client.close()
        server = kernel.udp_socket(net, net.ns_b, net.v4_b, 5000)
        client = kernel.udp_socket(net, net.ns_a, net.v4_a, 6001)
        assert kernel.wait_for(lambda: be.read_batch(50) is not None and be._ring is not None,
                               timeout=3)
        kernel.udp_exchange(client, server, 10)
        assert count_flows(drain(be)).get(flow(net.v4_a, net.v4_b, 6001, 5000)) == 10
        assert len(infos) == 1 and "re-attached to" in infos[0], infos


def test_kernel_drops_are_counted_when_the_ring_is_full() -> None:
    _require()
    # 2 blocks of 4 KiB hold a handful of frames; nobody reads while 300 datagrams arrive
    with kernel.netns_pair() as net, capture(net, ring_size=2, block_size=4096,
                                             frame_size=2048, block_timeout_ms=1) as (_g, be):
        server = kernel.udp_socket(net, net.ns_b, net.v4_b, 5000)
        client = kernel.udp_socket(net, net.ns_a, net.v4_a, 6000)
        kernel.udp_exchange(client, server, 300, size=1000)
        stats = be.stats()
        assert stats.kernel_drops > 0
        assert stats.kernel_packets >= 300  # tp_packets counts the dropped ones too
        captured = len(drain(be))
        assert 0 < captured < 300


def test_expire_idle_removes_quiet_flows_only() -> None:
    _require()
    with kernel.netns_pair() as net, capture(net, bypass=True) as (group, be):
        server = kernel.udp_socket(net, net.ns_b, net.v4_b, 5000)
        client = kernel.udp_socket(net, net.ns_a, net.v4_a, 6000)
        quiet = flow(net.v4_a, net.v4_b, 6001, 5001)
        busy = flow(net.v4_a, net.v4_b, 6000, 5000)
        assert be.bypass(quiet, 0) and be.bypass(busy, 0)
        time.sleep(1.0)
        kernel.udp_exchange(client, server, 5)
        assert group.expire_idle(10.0) == []
        expired = group.expire_idle(0.6)
        assert [f for f, _ in expired] == [quiet]
        assert be.bypassed_flow_counters(quiet) is None
        assert be.bypassed_flow_counters(busy) == (5, 5 * (UDP4_FRAME), 0, 0)


@pytest.mark.parametrize("loader", LOADERS)
def test_malformed_frames_are_delivered_not_matched(loader: str) -> None:
    """Truncated headers, bogus lengths, tag and extension-header chains longer than the
    programs walk: the filter never matches them, so every one reaches user space intact.
    The one valid frame among them (the bypassed IPv6 flow behind 10 hop-by-hop headers)
    reaches the ring too, where the reader's fast path, which walks every extension header as
    the decoder does, recognises it as the bypassed flow: counted there, not delivered."""
    import random

    _require(loader)
    rng = random.Random(4)
    with kernel.netns_pair() as net, capture(net, bypass=True, loader=loader) as (_g, be):
        mac_a, mac_b = net.mac(net.ns_a, net.if_a), net.mac(net.ns_b, net.if_b)
        assert be.bypass(flow("10.9.0.1", "10.9.0.2", 1, 2), 0)
        deep_flow = flow("fd00::1", "fd00::2", 1, 2)
        assert be.bypass(deep_flow, 0)
        head = mac_b + mac_a
        frames = [
            head + b"\x08\x00" + b"\x45",  # IPv4, 1 byte of header
            head + b"\x08\x00" + b"\x4f" + b"\x00" * 19,  # ihl 15 but 20 bytes
            head + b"\x08\x00" + b"\x41" + b"\x00" * 30,  # ihl 1 (< 5)
            head + b"\x86\xdd" + b"\x60" + b"\x00" * 10,  # IPv6, truncated
            head + b"\x81\x00\x00\x05\x08\x00\x45\x00",  # VLAN tag, 2 bytes of IPv4
            head + b"\x81\x00\x00\x05\x81\x00\x00\x06\x81\x00\x00\x07\x08\x00" + b"\x45" * 40,
        ]
        # IPv6 from fd00::1 to fd00::2 behind 10 hop-by-hop headers (the programs walk 8)
        deep = (head + b"\x86\xdd" + bytes([0x60, 0, 0, 0, 0, 96, 0, 64]) +
                bytes.fromhex("fd000000000000000000000000000001") +
                bytes.fromhex("fd000000000000000000000000000002") +
                (b"\x00\x00" + b"\x01\x04\x00\x00\x00\x00") * 9 +
                b"\x11\x00\x01\x04\x00\x00\x00\x00" + b"\x00\x01\x00\x02\x00\x08\x00\x00")
        frames += [head + rng.choice([b"\x08\x00", b"\x86\xdd", b"\x81\x00", b"\x88\xa8"]) +
                   rng.randbytes(rng.randrange(0, 80)) for _ in range(40)]
        tx = net.raw_socket(net.ns_a, net.if_a)
        for frame in [*frames, deep]:
            tx.send(frame)
        tx.close()
        captured = drain(be)
        for frame in frames:
            if frame[12:14] in (b"\x81\x00", b"\x88\xa8") and len(frame) < 14 + 6:
                continue  # the kernel drops such runts while untagging, before any tap
            assert frame in captured, frame.hex()
        assert deep not in captured
        skipped = be.fast_path_counters(deep_flow)
        assert skipped is not None and skipped.pkts_toserver + skipped.pkts_toclient == 1


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("xdp", [False, True], ids=["socket", "xdp"])
def test_kernel_and_python_keys_agree_on_random_flows(loader: str, xdp: bool) -> None:
    """Differential check of the canonical key: random flows (IPv4/IPv6, equal addresses or
    ports, 0-2 VLAN tags) inserted from Python, one frame each sent in a random direction;
    the kernel must match every one and count it on the side Python expects."""
    import ipaddress
    import random

    _require(loader)
    rng = random.Random(20261125 + xdp)
    options = {"xdp_filter_file": "xdp_filter.o"} if xdp else {}
    with kernel.netns_pair() as net, capture(net, bypass=True, loader=loader,
                                             **options) as (_g, be):
        mac_a, mac_b = net.mac(net.ns_a, net.if_a), net.mac(net.ns_b, net.if_b)
        tx = net.raw_socket(net.ns_a, net.if_a)
        cases = []
        for i in range(60):
            v6 = i % 2 == 1
            bits = 128 if v6 else 32
            make = ipaddress.IPv6Address if v6 else ipaddress.IPv4Address
            a = str(make(rng.getrandbits(bits)))
            b = a if i % 7 == 0 else str(make(rng.getrandbits(bits)))
            ap = rng.randrange(1, 65536)
            bp = ap if i % 5 == 0 and a != b else rng.randrange(1, 65536)
            vlan = tuple(rng.randrange(1, 4095) for _ in range(rng.randrange(0, 3)))
            f = flow(a, b, ap, bp, vlan=vlan)
            assert be.bypass(f, 0), f
            reverse = rng.random() < 0.5
            src, dst, sport, dport = (b, a, bp, ap) if reverse else (a, b, ap, bp)
            tx.send(udp_frame(mac_a, mac_b, src, dst, sport, dport, b"d" * 20, vlan))
            cases.append((f, reverse))
        tx.close()
        assert count_flows(drain(be)) == {}, "a frame of a bypassed flow reached user space"
        for f, reverse in cases:
            c = be.bypassed_flow_counters(f)
            assert c is not None
            assert (c.pkts_toserver, c.pkts_toclient) == ((0, 1) if reverse else (1, 0)), f


@pytest.mark.parametrize("loader", LOADERS)
def test_asymmetric_vlans_without_vlan_tracking(loader: str) -> None:
    """vlan.use-for-tracking: no (with_vlan_tracking(False)): the request on VLAN 10 and the
    reply on VLAN 20 are one flow, bypassed by one key without VLAN ids."""
    _require(loader)
    with kernel.netns_pair() as net:
        config = AfPacketConfig(interface=net.if_b, bypass=True, loader=loader)
        config = config.with_vlan_tracking(False)
        with net.entered(net.ns_b):
            group = AfPacketGroup(config)
            be = group.open_worker(0)
        try:
            mac_a, mac_b = net.mac(net.ns_a, net.if_a), net.mac(net.ns_b, net.if_b)
            tx = net.raw_socket(net.ns_a, net.if_a)
            f = flow("10.7.0.1", "10.7.0.2", 4000, 53, vlan=(10,))
            assert be.bypass(f, 0)
            request = udp_frame(mac_a, mac_b, "10.7.0.1", "10.7.0.2", 4000, 53, b"q" * 20, (10,))
            reply = udp_frame(mac_a, mac_b, "10.7.0.2", "10.7.0.1", 53, 4000, b"r" * 20, (20,))
            other = udp_frame(mac_a, mac_b, "10.7.0.1", "10.7.0.2", 4001, 53, b"o" * 20, (10,))
            for frame in (request, reply, reply, other):
                tx.send(frame)
            tx.close()
            seen = count_flows(drain(be))
            assert seen == {flow("10.7.0.1", "10.7.0.2", 4001, 53, vlan=(10,)): 1}
            assert be.bypassed_flow_counters(flow("10.7.0.1", "10.7.0.2", 4000, 53)) == (
                1, len(request) - 4, 2, 2 * (len(reply) - 4))
        finally:
            be.close()
            group.close()


def test_close_from_another_thread_during_read_batch() -> None:
    _require()
    with kernel.netns_pair() as net, capture(net) as (_g, be):
        timer = threading.Timer(0.1, be.close)
        timer.start()
        try:
            start = time.monotonic()
            while time.monotonic() - start < 2.0 and be.read_batch(500):
                pass  # (IPv6 MLD/ND frames may be queued) the ring is released after return
            assert time.monotonic() - start < 2.0
        finally:
            timer.join()
        assert be.read_batch(10) == [] and list(be.packets()) == []
