"""NfqBackend on the real kernel: two namespaces joined by veth, the engine side in ``ns_b``.

A small verdict loop in a thread stands in for the engine. Traffic flows only between the
two namespaces the test creates.
"""

from __future__ import annotations

import collections
import contextlib
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from capture_backends.base import BackendUnavailable, Capability, FlowTuple, Verdict
from capture_backends.nfqueue import NfqBackend, NfqConfig
from tests import kernel

pytestmark = pytest.mark.kernel


def _require() -> None:
    kernel.require_root()
    kernel.require_command("iptables", "ip6tables")
    try:
        import netfilterqueue  # noqa: F401
    except ImportError:
        kernel.skip("netfilterqueue binding not installed (pip install '.[nfq]')")


def ports(data: bytes) -> tuple[int, int, int]:
    """(proto, sport, dport) of an IPv4/IPv6 packet without extension headers."""
    if data[0] >> 4 == 4:
        off, proto = (data[0] & 15) * 4, data[9]
    else:
        off, proto = 40, data[6]
    if proto in (6, 17) and len(data) >= off + 4:
        sport, dport = struct.unpack_from("!HH", data, off)
        return proto, sport, dport
    return proto, 0, 0


def flow_of(data: bytes) -> FlowTuple:
    proto, sport, dport = ports(data)
    if data[0] >> 4 == 4:
        return FlowTuple(data[12:16], data[16:20], sport, dport, proto)
    return FlowTuple(data[8:24], data[24:40], sport, dport, proto)


Policy = Callable[[NfqBackend, bytes, int, int], Verdict]


class Consumer:
    """Runs ``backend.packets()`` in a thread and verdicts each packet with ``policy``.
    ``seen`` counts packets per unordered port pair (both directions of a flow)."""

    def __init__(self, backend: NfqBackend, policy: Policy | None = None) -> None:
        self.backend = backend
        self.policy = policy or (lambda _b, _d, _p, _n: Verdict.ACCEPT)
        self.seen: collections.Counter[frozenset[int]] = collections.Counter()
        self.ids: list[tuple[frozenset[int], int]] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        try:
            for _ts, data, pkt_id in self.backend.packets():
                if not data:
                    continue
                _proto, sport, dport = ports(bytes(data))
                key = frozenset((sport, dport))
                self.seen[key] += 1
                self.ids.append((key, pkt_id))
                self.backend.verdict(pkt_id, self.policy(self.backend, bytes(data), pkt_id,
                                                         self.seen[key]))
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def count(self, *port: int) -> int:
        return self.seen[frozenset(port)]

    def start(self) -> Consumer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.backend.stop()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error


@contextlib.contextmanager
def engine(net: kernel.NetnsPair, config: NfqConfig,
           policy: Policy | None = None) -> Iterator[Consumer]:
    """The backend bound in ``ns_b`` with a running consumer; closed (rules removed) after."""
    with net.entered(net.ns_b):
        backend = NfqBackend(config)
    consumer = Consumer(backend, policy)
    try:
        yield consumer.start()
    finally:
        try:
            consumer.stop()
        finally:
            with net.entered(net.ns_b):
                backend.close()


def addrs(net: kernel.NetnsPair, v6: bool) -> tuple[str, str]:
    return (net.v6_a, net.v6_b) if v6 else (net.v4_a, net.v4_b)


def tcp_transfer(net: kernel.NetnsPair, v6: bool, port: int, nbytes: int, sport: int,
                 timeout: float = 30.0, progress: Callable[[int], None] | None = None) -> int:
    """Send ``nbytes`` from ns_a:sport to ns_b:port over TCP; returns the bytes received."""
    a, b = addrs(net, v6)
    family = socket.AF_INET6 if v6 else socket.AF_INET
    with net.entered(net.ns_b):
        srv = socket.socket(family, socket.SOCK_STREAM)
    with net.entered(net.ns_a):
        cli = socket.socket(family, socket.SOCK_STREAM)
    received = [0]

    def sink() -> None:
        conn, _ = srv.accept()
        conn.settimeout(timeout)
        buf = bytearray(1 << 16)
        with conn:
            while True:
                n = conn.recv_into(buf)
                if not n:
                    return
                received[0] += n
                if progress is not None:
                    progress(received[0])

    try:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((b, port))
        srv.listen(1)
        srv.settimeout(timeout)
        def sink_quietly() -> None:
            with contextlib.suppress(OSError):  # a timeout shows up as a short count
                sink()

        th = threading.Thread(target=sink_quietly, daemon=True)
        th.start()
        cli.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        cli.bind((a, sport))
        cli.settimeout(timeout)
        cli.connect((b, port))
        chunk = b"\x5a" * (1 << 16)
        left = nbytes
        while left > 0:
            cli.sendall(chunk[:min(left, len(chunk))])
            left -= min(left, len(chunk))
        cli.shutdown(socket.SHUT_WR)
        th.join(timeout)
        return received[0]
    finally:
        cli.close()
        srv.close()


# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
def test_drop_verdicts_drop_and_accept_verdicts_pass(v6: bool) -> None:
    _require()
    with kernel.netns_pair("nfq") as net:
        a, b = addrs(net, v6)

        def policy(_b: NfqBackend, data: bytes, _id: int, _n: int) -> Verdict:
            return Verdict.DROP if ports(data)[2] == 7002 else Verdict.ACCEPT

        config = NfqConfig(queues=(1,), install_rules=True)
        with engine(net, config, policy) as consumer:
            assert consumer.backend.capabilities & Capability.INLINE
            assert not consumer.backend.capabilities & Capability.BYPASS
            rx_ok = kernel.udp_socket(net, net.ns_b, b, 7001)
            rx_drop = kernel.udp_socket(net, net.ns_b, b, 7002)
            tx = kernel.udp_socket(net, net.ns_a, a, 0)
            assert kernel.udp_exchange(tx, rx_ok, 100) == 100
            assert kernel.udp_exchange(tx, rx_drop, 100) == 0
            counters = consumer.backend.counters()
        assert consumer.count(tx.getsockname()[1], 7001) == 100
        assert consumer.count(tx.getsockname()[1], 7002) == 100
        assert counters.dropped == 100 and counters.accepted >= 100  # + IPv6 ND/MLD noise
        assert counters.verdict_errors == 0


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
def test_bypass_mark_and_connmark_keep_the_rest_of_the_flow_out_of_the_queue(v6: bool) -> None:
    _require()
    nbytes = 10_000_000
    with kernel.netns_pair("nfq") as net:
        bypassed: list[bool] = []

        def policy(backend: NfqBackend, data: bytes, pkt_id: int, nth: int) -> Verdict:
            if ports(data)[2] == 8002 and nth == 10:
                bypassed.append(backend.bypass(flow_of(data), pkt_id))
            return Verdict.ACCEPT

        config = NfqConfig(queues=(0,), bypass_mark=0x4, bypass_mask=0x4, install_rules=True)
        with engine(net, config, policy) as consumer:
            assert consumer.backend.capabilities & Capability.BYPASS
            full = tcp_transfer(net, v6, 8001, nbytes, 41001)
            short = tcp_transfer(net, v6, 8002, nbytes, 41002)
            counters = consumer.backend.counters()
        assert full == nbytes and short == nbytes
        assert bypassed == [True]
        assert counters.bypass_marked == 1 + counters.fast_path  # queued before: marked too
        queued_full, queued_bypassed = consumer.count(41001, 8001), consumer.count(41002, 8002)
        assert queued_full > 5000, queued_full  # ~7000 data segments plus ACKs
        assert queued_bypassed <= 50, queued_bypassed


def test_bypass_is_refused_without_mask_or_after_the_verdict() -> None:
    _require()
    with kernel.netns_pair("nfq") as net:
        answers: list[tuple[bool, bool]] = []

        def policy(backend: NfqBackend, data: bytes, pkt_id: int, _n: int) -> Verdict:
            answers.append((backend.bypass(flow_of(data), pkt_id), False))
            return Verdict.ACCEPT

        with engine(net, NfqConfig(queues=(0,), install_rules=True), policy) as consumer:
            rx = kernel.udp_socket(net, net.ns_b, net.v4_b, 7001)
            tx = kernel.udp_socket(net, net.ns_a, net.v4_a, 0)
            assert kernel.udp_exchange(tx, rx, 5) == 5
            last = consumer.ids[-1][1]
            assert consumer.backend.bypass(FlowTuple(b"", b"", 0, 0, 17), last) is False
        assert answers and not any(took for took, _ in answers)


@pytest.mark.parametrize("fail_open", [True, False], ids=["fail-open", "fail-closed"])
def test_fail_open_lets_an_overloaded_queue_pass(fail_open: bool) -> None:
    _require()
    with kernel.netns_pair("nfq") as net:
        config = NfqConfig(queues=(2,), queue_maxlen=16, fail_open=fail_open, install_rules=True)
        with net.entered(net.ns_b):
            backend = NfqBackend(config)  # bound, but nobody reads: the queue fills up
        try:
            rx = kernel.udp_socket(net, net.ns_b, net.v4_b, 7001)
            tx = kernel.udp_socket(net, net.ns_a, net.v4_a, 0)
            got = kernel.udp_exchange(tx, rx, 200)
            stats = backend.kernel_queue_stats()[2]
        finally:
            with net.entered(net.ns_b):
                backend.close()
        assert stats["total"] == 16  # the queue is full in both cases
        if fail_open:
            assert got >= 200 - 16, got
            assert stats["dropped"] == 0
        else:
            assert got == 0
            assert stats["dropped"] >= 200 - 16  # (plus IPv6 ND/MLD noise)


def test_close_accepts_pending_packets_and_removes_rules() -> None:
    _require()
    with kernel.netns_pair("nfq") as net:
        with net.entered(net.ns_b):
            backend = NfqBackend(NfqConfig(queues=(0,), install_rules=True))
        held: list[int] = []

        def hold() -> None:  # takes packets but never gives a verdict
            for _ts, data, pkt_id in backend.packets():
                if data and 7001 in ports(bytes(data)):
                    held.append(pkt_id)

        th = threading.Thread(target=hold, daemon=True)
        th.start()
        rx = kernel.udp_socket(net, net.ns_b, net.v4_b, 7001)
        tx = kernel.udp_socket(net, net.ns_a, net.v4_a, 0)
        assert kernel.udp_exchange(tx, rx, 20) == 0
        assert kernel.wait_for(lambda: len(held) == 20)
        assert backend.pending >= 20
        backend.stop()
        th.join(5)
        with net.entered(net.ns_b):
            backend.close()
            backend.close()  # idempotent
        rx.settimeout(2)
        delivered = 0
        with contextlib.suppress(TimeoutError):
            while delivered < 20:
                rx.recv(2048)
                delivered += 1
        assert delivered == 20
        assert "ruleengine" not in net.run(net.ns_b, "iptables", "-t", "mangle", "-S").stdout
        backend.verdict(held[0], Verdict.DROP)  # after close: ignored, no exception
        assert backend.counters().verdict_errors == 1


def test_repeat_mode_reinjects_with_the_repeat_mark_and_bypass_still_works() -> None:
    _require()
    nbytes = 5_000_000
    with kernel.netns_pair("nfq") as net:
        def policy(backend: NfqBackend, data: bytes, pkt_id: int, nth: int) -> Verdict:
            if ports(data)[2] == 8002 and nth == 10:
                backend.bypass(flow_of(data), pkt_id)
            return Verdict.ACCEPT

        config = NfqConfig(queues=(0,), mode="repeat", repeat_mark=0x2, repeat_mask=0x2,
                           bypass_mark=0x1, bypass_mask=0x1, install_rules=True)
        with engine(net, config, policy) as consumer:
            rx = kernel.udp_socket(net, net.ns_b, net.v4_b, 7001)
            tx = kernel.udp_socket(net, net.ns_a, net.v4_a, 0)
            assert kernel.udp_exchange(tx, rx, 50) == 50
            assert tcp_transfer(net, False, 8002, nbytes, 41002) == nbytes
            counters = consumer.backend.counters()
        assert consumer.count(tx.getsockname()[1], 7001) == 50  # each packet queued once
        assert counters.repeated >= 50 and counters.accepted == 0  # (+ IPv6 ND/MLD noise)
        assert counters.bypass_marked == 1 + counters.fast_path  # queued before: marked too
        assert consumer.count(41002, 8002) <= 50, consumer.count(41002, 8002)


def test_two_queues_in_one_process() -> None:
    _require()
    with kernel.netns_pair("nfq") as net:
        # --queue-balance hashes the addresses (not the ports): send from 20 source addresses
        prefix = net.v4_a.rsplit(".", 1)[0]
        sources = [f"{prefix}.{100 + i}" for i in range(20)]
        for src in sources:
            net.run(net.ns_a, "ip", "addr", "add", f"{src}/24", "dev", net.if_a)
        with engine(net, NfqConfig(queues=(2, 3), install_rules=True)) as consumer:
            rx = kernel.udp_socket(net, net.ns_b, net.v4_b, 7001)
            total = 0
            for src in sources:
                tx = kernel.udp_socket(net, net.ns_a, src, 0)
                total += kernel.udp_exchange(tx, rx, 5)
                tx.close()
            assert total == 100
        ids = [pid for key, pid in consumer.ids if 7001 in key]
        assert len(set(ids)) == 100
        assert {pid >> 32 for pid in ids} == {0, 1}


def test_a_queue_bound_twice_is_a_clear_error() -> None:
    _require()
    with kernel.netns_pair("nfq") as net, net.entered(net.ns_b):
        first = NfqBackend(NfqConfig(queues=(9,)))
        try:
            with pytest.raises(BackendUnavailable, match="cannot bind queue 9"):
                NfqBackend(NfqConfig(queues=(9,)))
        finally:
            first.close()
        NfqBackend(NfqConfig(queues=(9,))).close()  # free again after close


_CONSUMER = """
import sys
from capture_backends.base import Verdict
from capture_backends.nfqueue import NfqBackend, NfqConfig
backend = NfqBackend(NfqConfig(queues=(0,), install_rules=True, fail_open=True))
print("ready", flush=True)
for _ts, data, pkt_id in backend.packets():
    if data:
        backend.verdict(pkt_id, Verdict.ACCEPT)
"""


def test_engine_killed_mid_transfer_queue_bypass_lets_the_transfer_complete() -> None:
    _require()
    nbytes = 30_000_000
    with kernel.netns_pair("nfq") as net:
        env = dict(os.environ, PYTHONPATH=str(kernel.REPO_ROOT))
        proc = net.popen(net.ns_b, sys.executable, "-c", _CONSUMER, stdout=subprocess.PIPE,
                         env=env)
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        assert ready and proc.stdout.readline().strip() == b"ready"
        killed = threading.Event()
        queued_before_kill: list[int] = []

        def kill_midway(received: int) -> None:
            if received > 3_000_000 and not killed.is_set():
                killed.set()
                status = net.run(net.ns_b, "cat", "/proc/net/netfilter/nfnetlink_queue").stdout
                queued_before_kill.append(int(status.split()[7]))  # id_sequence of queue 0
                proc.send_signal(signal.SIGKILL)

        t0 = time.monotonic()
        got = tcp_transfer(net, False, 8100, nbytes, 41100, timeout=30, progress=kill_midway)
        assert killed.is_set()
        assert queued_before_kill[0] > 1000  # the transfer really went through the engine
        assert proc.wait(5) == -signal.SIGKILL
        assert got == nbytes, f"{got} of {nbytes} bytes after {time.monotonic() - t0:.1f}s"
        # the rules are still there (the engine could not remove them) ...
        listing = net.run(net.ns_b, "iptables", "-t", "mangle", "-S").stdout
        assert "--queue-bypass" in listing and "ruleengine-0" in listing
        # ... and the next start cleans them up before installing its own
        with net.entered(net.ns_b):
            NfqBackend(NfqConfig(queues=(0,), install_rules=True)).close()
        assert "ruleengine" not in net.run(net.ns_b, "iptables", "-t", "mangle", "-S").stdout


def test_packets_carrying_the_inject_mark_leave_without_being_queued() -> None:
    """The engine's own RST/ICMP (reject) must not be queued back to it: it would drop them
    together with the rejected flow."""
    _require()
    with kernel.netns_pair("nfq") as net:
        def drop_all_udp(_b: NfqBackend, data: bytes, _id: int, _n: int) -> Verdict:
            return Verdict.DROP if ports(data)[0] == 17 else Verdict.ACCEPT

        with engine(net, NfqConfig(queues=(0,), install_rules=True), drop_all_udp) as consumer:
            mark = consumer.backend.inject_mark
            assert mark == 0x40000000
            rx = kernel.udp_socket(net, net.ns_a, net.v4_a, 7001)
            plain = kernel.udp_socket(net, net.ns_b, net.v4_b, 0)
            marked = kernel.udp_socket(net, net.ns_b, net.v4_b, 0)
            marked.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, mark)
            assert kernel.udp_exchange(plain, rx, 10) == 0
            assert kernel.udp_exchange(marked, rx, 10) == 10
        assert consumer.count(plain.getsockname()[1], 7001) == 10
        assert consumer.count(marked.getsockname()[1], 7001) == 0


def test_without_cap_net_admin_the_reason_is_clear() -> None:
    _require()
    kernel.require_command("setpriv")
    code = ("from capture_backends.base import BackendUnavailable\n"
            "from capture_backends.nfqueue import NfqBackend, NfqConfig\n"
            "try:\n"
            "    NfqBackend(NfqConfig(queues=(0,)))\n"
            "except BackendUnavailable as exc:\n"
            "    print(exc)\n")
    env = dict(os.environ, PYTHONPATH=str(kernel.REPO_ROOT))
    proc = subprocess.run(["setpriv", "--inh-caps=-net_admin", "--bounding-set=-net_admin",
                           sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=30, check=False)
    assert proc.stdout.strip() == "nfq: binding a netfilter queue needs root (CAP_NET_ADMIN)", (
        proc.stdout + proc.stderr)


def _udp_packet(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    """A complete IPv4/IPv6 UDP packet (UDP checksum 0 is legal for IPv4 only: compute it)."""
    v6 = ":" in src
    family = socket.AF_INET6 if v6 else socket.AF_INET
    s, d = socket.inet_pton(family, src), socket.inet_pton(family, dst)
    length = 8 + len(payload)
    pseudo = s + d + (struct.pack("!IxxxB", length, 17) if v6 else struct.pack("!xBH", 17, length))
    udp = struct.pack("!HHHH", sport, dport, length, 0) + payload
    data = pseudo + udp + b"\0" * (len(udp) % 2)
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    udp = udp[:6] + struct.pack("!H", ~total & 0xFFFF or 0xFFFF) + udp[8:]
    if v6:
        return struct.pack("!IHBB", 6 << 28, length, 17, 64) + s + d + udp
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + length, 1, 0, 64, 17, 0, s, d)
    words = sum(struct.unpack("!10H", header))
    while words >> 16:
        words = (words & 0xFFFF) + (words >> 16)
    return header[:10] + struct.pack("!H", ~words & 0xFFFF) + header[12:] + udp


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
def test_inject_sends_past_the_queue(v6: bool) -> None:
    _require()
    with kernel.netns_pair("nfq") as net:
        def drop_all_udp(_b: NfqBackend, data: bytes, _id: int, _n: int) -> Verdict:
            return Verdict.DROP if ports(data)[0] == 17 else Verdict.ACCEPT

        a, b = addrs(net, v6)
        with engine(net, NfqConfig(queues=(0,), install_rules=True), drop_all_udp) as consumer:
            rx = kernel.udp_socket(net, net.ns_a, a, 7001)
            rx.settimeout(2)
            with net.entered(net.ns_b):  # raw sockets are made (lazily) in the engine's namespace
                sent = [consumer.backend.inject(_udp_packet(b, a, 7777, 7001, b"reset %d" % i))
                        for i in range(5)]
            got = [rx.recv(100) for _ in range(5)]
            counters = consumer.backend.counters()
        assert sent == [True] * 5
        assert sorted(got) == [b"reset %d" % i for i in range(5)]
        assert consumer.count(7777, 7001) == 0
        assert counters.injected == 5 and counters.inject_errors == 0


_HOLDER = """
import signal
from capture_backends.nfqueue import NfqBackend, NfqConfig
backend = NfqBackend(NfqConfig(queues=(0,), install_rules=True))
signal.signal(signal.SIGTERM, lambda *_: backend.stop())  # what the engine's handler does
print("ready", flush=True)
held = [pkt_id for _ts, data, pkt_id in backend.packets() if data]  # no verdicts at all
backend.close()
print("held", len(held), "errors", backend.counters().verdict_errors, flush=True)
"""


def test_sigterm_gives_pending_packets_their_verdicts_and_removes_the_rules() -> None:
    _require()
    with kernel.netns_pair("nfq") as net:
        env = dict(os.environ, PYTHONPATH=str(kernel.REPO_ROOT))
        proc = net.popen(net.ns_b, sys.executable, "-c", _HOLDER, stdout=subprocess.PIPE,
                         env=env)
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        assert ready and proc.stdout.readline().strip() == b"ready"
        rx = kernel.udp_socket(net, net.ns_b, net.v4_b, 7001)
        tx = kernel.udp_socket(net, net.ns_a, net.v4_a, 0)
        assert kernel.udp_exchange(tx, rx, 20) == 0  # held in the queue by the consumer

        def waiting() -> int:
            status = net.run(net.ns_b, "cat", "/proc/net/netfilter/nfnetlink_queue").stdout
            return int(status.split()[2]) if status.strip() else 0

        assert kernel.wait_for(lambda: waiting() >= 20)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0
        assert out.split()[:1] == [b"held"] and int(out.split()[1]) >= 20
        rx.settimeout(2)
        assert [rx.recv(2048) for _ in range(20)]  # all 20 delivered after the verdicts
        assert "ruleengine" not in net.run(net.ns_b, "iptables", "-t", "mangle", "-S").stdout


def test_batchcount_accepts_in_batches_and_drops_stay_dropped() -> None:
    _require()
    with kernel.netns_pair("nfq") as net:
        def policy(_b: NfqBackend, data: bytes, _id: int, _n: int) -> Verdict:
            return Verdict.DROP if ports(data)[2] == 7002 else Verdict.ACCEPT

        config = NfqConfig(queues=(0,), batchcount=16, install_rules=True)
        with engine(net, config, policy) as consumer:
            rx_ok = kernel.udp_socket(net, net.ns_b, net.v4_b, 7001)
            rx_drop = kernel.udp_socket(net, net.ns_b, net.v4_b, 7002)
            tx = kernel.udp_socket(net, net.ns_a, net.v4_a, 0)
            for _ in range(3):  # interleaved accepts and drops
                assert kernel.udp_exchange(tx, rx_ok, 40, pace_every=0) == 40
                assert kernel.udp_exchange(tx, rx_drop, 10, pace_every=0) == 0
            assert kernel.udp_exchange(tx, rx_ok, 3) == 3  # a short burst is flushed at once
            counters = consumer.backend.counters()
        assert counters.dropped == 30 and counters.accepted >= 123
        assert 0 < counters.verdict_batches < counters.accepted
        assert counters.verdict_errors == 0


def test_verdicts_the_kernel_refuses_are_counted() -> None:
    _require()
    from capture_backends.nfqueue import build_batch_verdict

    with kernel.netns_pair("nfq") as net, engine(net, NfqConfig(queues=(4,))) as consumer:
        # an accept for packets that do not exist: the kernel answers ENOENT
        consumer.backend._queues[0].sock.send(build_batch_verdict(4, 77, 1))
        assert kernel.wait_for(lambda: consumer.backend.counters().verdict_errors == 1)
        assert consumer.backend.stats().errors == 1
