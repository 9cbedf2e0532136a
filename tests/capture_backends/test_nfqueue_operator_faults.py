"""NFQUEUE fail-open counted when the operator wrote the firewall rule, not the engine
(issue 15, section 3), on the real kernel: ``-j NFQUEUE --queue-num N --queue-bypass`` in the
operator's own chain, an engine slower than the traffic. Namespaces ``f15-*``, queues 53-54,
chains ``f15-op*``."""

from __future__ import annotations

import socket
import time

import pytest

from capture_backends.iptables import queue_rule_hits
from capture_backends.nfqueue import NfqBackend, NfqConfig
from tests import kernel
from tests.capture_backends.test_nfqueue_faults import NsConsumer, _slow
from tests.capture_backends.test_nfqueue_kernel import _require

pytestmark = pytest.mark.kernel
SO_RCVBUFFORCE = 33


def _operator_rule(net: kernel.NetnsPair, queue: int, port: int) -> None:
    """What an operator writes: their own chain, only the UDP port under test queued (the
    namespace's IPv6 ND/MLD packets stay out, so the figures are exact)."""
    chain = f"f15-op{queue}"
    for args in (["-N", chain],
                 ["-A", "PREROUTING", "-p", "udp", "--dport", str(port), "-j", chain],
                 ["-A", chain, "-j", "NFQUEUE", "--queue-num", str(queue), "--queue-bypass"]):
        net.run(net.ns_b, "iptables", "-t", "mangle", *args)


def _flood(net: kernel.NetnsPair, port: int, count: int) -> tuple[int, int]:
    """``count`` datagrams ns_a -> ns_b:port; (received, source port)."""
    rx = kernel.udp_socket(net, net.ns_b, net.v4_b, port)
    rx.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)  # hold the whole flood
    tx = kernel.udp_socket(net, net.ns_a, net.v4_a, 0)
    try:
        return kernel.udp_exchange(tx, rx, count), tx.getsockname()[1]
    finally:
        rx.close()
        tx.close()


def _run(net: kernel.NetnsPair, backend: NfqBackend, port: int, sent: int
         ) -> tuple[int, int, int | None, dict[str, int]]:
    """The flood through a slow consumer; (received, judged, fail-open, kernel figures)."""
    consumer = NsConsumer(net, backend, _slow(0.004))
    consumer.start()
    try:
        got, sport = _flood(net, port, sent)
        assert kernel.wait_for(lambda: backend.pending == 0, timeout=10)
        time.sleep(0.3)  # quiet: the figure is exact
        with net.entered(net.ns_b):
            fail_open = backend.fail_open_accepted()
            extra = dict(backend.stats().extra)
            figures = backend.kernel_queue_stats()[backend.config.queues[0]]
    finally:
        consumer.stop()
        with net.entered(net.ns_b):
            backend.close()
    assert extra.get("nfq.fail_open_accepted") == fail_open
    judged = consumer.count(sport, port)
    counters = backend.counters()
    # every packet read got exactly one verdict, none left in the kernel's queue
    assert counters.delivered == counters.received == judged
    assert counters.accepted == judged and counters.verdict_errors == 0
    assert figures["total"] == 0 and figures["dropped"] == 0 and figures["user_dropped"] == 0
    return got, judged, fail_open, figures


def test_operator_rule_full_queue_fail_open_is_counted_from_the_rule_counters() -> None:
    """maxlen 8: the queue is full long before the socket; the kernel numbers none of the
    packets it lets through, the operator's rule counted them all."""
    _require()
    queue, port, sent = 53, 7453, 600
    with kernel.netns_pair("f15") as net:
        _operator_rule(net, queue, port)
        before, _ = _flood(net, port, 20)  # no engine yet: --queue-bypass lets them pass
        with net.entered(net.ns_b):
            assert queue_rule_hits([queue], ("ipv4",)) == 20
            backend = NfqBackend(NfqConfig(queues=(queue,), queue_maxlen=8, fail_open=True))
        notices: list[str] = []
        backend.notice = notices.append
        got, judged, fail_open, figures = _run(net, backend, port, sent)
    assert before == 20 and got == sent  # the traffic went on: verdicts plus fail-open
    assert 0 < judged < sent, judged
    assert figures["id_sequence"] == judged  # the kernel numbered only what it queued
    # the operator's 20 earlier hits are not fail-open: counted from the bind on
    assert fail_open == sent - judged, (fail_open, judged)
    assert notices == []
    print(f"operator rule, full queue: {sent} sent, {judged} judged, {fail_open} fail-open")


def test_full_socket_fail_open_is_counted_from_the_kernel_figures_alone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A long queue and a tiny socket buffer: the kernel numbers each packet, then cannot
    deliver it and accepts it (fail-open). With no iptables rule to read (as with a native
    nft rule) /proc/net/netfilter/nfnetlink_queue alone gives the exact count."""
    _require()
    queue, port, sent = 54, 7454, 600
    monkeypatch.setattr("capture_backends.iptables.queue_rule_hits", lambda *_a, **_k: None)
    with kernel.netns_pair("f15") as net:
        _operator_rule(net, queue, port)
        with net.entered(net.ns_b):
            backend = NfqBackend(NfqConfig(queues=(queue,), queue_maxlen=4096, fail_open=True))
        for q in backend._queues:  # shrink what SO_RCVBUFFORCE gave: the socket overflows
            q.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        notices: list[str] = []
        backend.notice = notices.append
        got, judged, fail_open, figures = _run(net, backend, port, sent)
    assert got == sent
    assert 0 < judged < sent, judged
    assert figures["id_sequence"] == sent  # every packet numbered, most never delivered
    assert fail_open == sent - judged, (fail_open, judged)
    assert len(notices) == 1 and "no iptables rule sending to queue 54" in notices[0], notices
    print(f"full socket, kernel figures only: {sent} sent, {judged} judged, "
          f"{fail_open} fail-open")
