"""Fanout: N forked worker processes, one TPACKET_V3 ring each, in one PACKET_FANOUT group.
Every flow, both directions, must land on exactly one worker, with the eBPF symmetric load
balancer (both loaders) and with the kernel's cluster_flow hash; a bypassed flow reaches none.
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
from typing import Any

import pytest

from capture_backends.af_packet import AfPacketConfig, AfPacketGroup
from capture_backends.base import FlowTuple
from tests import kernel
from tests.capture_backends.afp_helpers import flow, parse_flow, undirected

pytestmark = pytest.mark.kernel
WORKERS = 3
PER_DIRECTION = 20
BIG_DATAGRAMS = 2


def _worker(group: AfPacketGroup, index: int, ready: Any, results: Any) -> None:
    backend = group.open_worker(index)
    signal.signal(signal.SIGTERM, lambda *_: backend.close())
    ready.set()
    counts: dict[FlowTuple, int] = {}
    for _ts, data, _id in backend.packets():
        parsed = parse_flow(bytes(data))
        if parsed is not None:
            counts[parsed[0]] = counts.get(parsed[0], 0) + 1
    results.put((index, counts, backend.stats().kernel_packets))


@pytest.mark.parametrize(("cluster_type", "loader"), [
    ("cluster_ebpf", "libbpf"), ("cluster_ebpf", "bcc"), ("cluster_flow", "libbpf")])
def test_every_flow_reaches_exactly_one_worker(cluster_type: str, loader: str) -> None:
    kernel.require_root()
    kernel.require_bpf()
    from capture_backends import ebpf

    if reason := ebpf.loader_unavailable(loader):
        kernel.skip(reason)
    ctx = multiprocessing.get_context("fork")
    with kernel.netns_pair() as net:
        config = AfPacketConfig(interface=net.if_b, threads=WORKERS, cluster_type=cluster_type,
                                cluster_id=4242, bypass=True, loader=loader)
        results: Any = ctx.Queue()
        ready = [ctx.Event() for _ in range(WORKERS)]
        with net.entered(net.ns_b):  # forked workers start in namespace B
            group = AfPacketGroup(config)
            procs = [ctx.Process(target=_worker, args=(group, i, ready[i], results))
                     for i in range(WORKERS)]
            for p in procs:
                p.start()
        try:
            assert all(ev.wait(10) for ev in ready), "a worker did not start"
            flows = [(net.v4_a, net.v4_b, 40000 + i, 7000 + i) for i in range(8)]
            flows += [(net.v6_a, net.v6_b, 41000 + i, 7100 + i) for i in range(4)]
            bypassed = flow(*flows[0])
            # the parent's maps are the workers' maps: a bypass here applies everywhere
            assert group.tables is not None
            assert group.tables.insert(bypassed) == 0
            for src, dst, sport, dport in flows:
                server = kernel.udp_socket(net, net.ns_b, dst, dport)
                client = kernel.udp_socket(net, net.ns_a, src, sport)
                got = kernel.udp_exchange(client, server, PER_DIRECTION, size=64, reply=True)
                assert got == PER_DIRECTION
                if (src, dst, sport, dport) in flows[1:4]:  # IPv4, fragmented on the wire
                    assert kernel.udp_exchange(client, server, BIG_DATAGRAMS, size=3000) == \
                        BIG_DATAGRAMS
                server.close()
                client.close()
            kernel.wait_for(lambda: False, timeout=0.3)  # let the last blocks retire
            bypassed_counters = group.tables.counters(bypassed)
            for p in procs:
                p.terminate()  # SIGTERM -> backend.close() -> packets() returns
            collected = []
            for _ in procs:
                try:
                    collected.append(results.get(timeout=10))
                except queue.Empty:
                    pytest.fail("a worker did not report")
        finally:
            for p in procs:
                p.join(5)
                if p.is_alive():
                    p.kill()
                    p.join(5)
            group.close()

    owners: dict[object, set[int]] = {}
    totals: dict[FlowTuple, int] = {}
    for index, counts, _kernel_packets in collected:
        for f, n in counts.items():
            owners.setdefault(undirected(f), set()).add(index)
            totals[f] = totals.get(f, 0) + n
    for src, dst, sport, dport in flows[1:]:
        fwd, rev = flow(src, dst, sport, dport), flow(dst, src, dport, sport)
        # the kernel reassembles IPv4 fragments before the fanout hash (defrag: yes), so a
        # big datagram arrives whole, on the flow's worker
        big = BIG_DATAGRAMS if (src, dst, sport, dport) in flows[1:4] else 0
        assert totals.get(fwd) == PER_DIRECTION + big, (fwd, totals)
        assert totals.get(rev) == PER_DIRECTION, (rev, totals)
        assert len(owners[undirected(fwd)]) == 1, f"{fwd} split over workers {owners}"
    assert undirected(bypassed) not in owners, "bypassed flow reached a worker"
    expected = {undirected(flow(*f)) for f in flows[1:]}
    assert set(owners) == expected, f"unexpected flows (unreassembled fragments?): " \
        f"{set(owners) - expected}"
    used = set().union(*(owners[undirected(flow(*f))] for f in flows[1:]))
    assert len(used) >= 2, f"all flows on one worker: {used}"
    assert bypassed_counters is not None
    assert (bypassed_counters.pkts_toserver, bypassed_counters.pkts_toclient) == (
        PER_DIRECTION, PER_DIRECTION)
