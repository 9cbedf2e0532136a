"""Bypass end to end: ``ruleengine run --af-packet`` on the real kernel.

The engine runs as a subprocess in namespace B capturing on B's veth end; HTTP/UDP traffic
flows between namespaces A and B. Each test stops the engine with SIGTERM and judges the run
by its EVE events and its final counters (``stats.log``) against what the traffic generator
sent and what the veth itself counted.

"Seen after the bypass" is ``flow_bypassed.local_capture_pkts`` (packets of a capture-bypassed
flow that still reached the engine); "counted by the kernel" is ``flow_bypassed.pkts`` (the
map counters folded in when the flow ends).
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import time
from pathlib import Path
from typing import Any

import pytest

from tests import kernel
from tests.integration import afp_engine as ae
from tests.outputs.eve_schema import validate_line

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(120)]

RULES = ae.DATA / "bypass_http.rules"
SID_HTTP_BYPASS, SID_HTTP_INSPECT, SID_HTTP_RESPONSE = 9100001, 9100002, 9100003
SID_HTTP_PARTIAL = 9100004
SID_UDP_BYPASS, SID_UDP_INSPECT, SID_UDP_QUIET, SID_UDP_SECOND = 9100011, 9100012, 9100013, 9100014
HTTP_PORT = 8080
DEPTH = 1 << 20  # stream.reassembly.depth for the stream.bypass test
PAUSE_AT = DEPTH + (64 << 10)  # bytes of upload before its pause: just past the depth
BYPASSED_TIMEOUT = 2  # flow-timeouts.*.bypassed: the kernel counters must stay still this long
ETH_P_ALL, SOL_PACKET, PACKET_FANOUT = 0x0003, 263, 18
LEAK_RATIO = 0.001  # at most 0.1 % of a bypassed flow's later packets may reach user space


def _require(loader: str = "libbpf") -> None:
    kernel.require_netns()
    kernel.require_bpf()
    from capture_backends import ebpf

    reason = ebpf.loader_unavailable(loader)
    if reason:
        kernel.skip(reason)


def _start(net: kernel.NetnsPair, tmp_path: Path, *, loader: str = "libbpf", workers: int = 1,
           overrides: tuple[str, ...] = (), **config: Any) -> ae.Engine:
    cfg = ae.write_config(tmp_path / "suricata.yaml", threads=workers,
                          bypassed_timeout=BYPASSED_TIMEOUT, **config)
    engine = ae.Engine(net, net.ns_b, net.if_b, RULES, tmp_path / "log", cfg, loader=loader,
                       workers=workers, overrides=overrides)
    engine.wait_ready(net, net.ns_b, net.if_b)
    return engine


def _stop(engine: ae.Engine) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """SIGTERM, clean exit; every EVE line valid against Suricata's EVE schema."""
    assert engine.stop() == 0, engine.stderr()
    assert "Traceback" not in engine.stderr(), engine.stderr()
    for line in (engine.logdir / "eve.json").read_text().splitlines():
        validate_line(line)
    return engine.events(), engine.final_stats()


def _only(events: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(events) == 1, events
    return events[0]


def _pkts(flow: dict[str, Any]) -> int:
    return int(flow["pkts_toserver"]) + int(flow["pkts_toclient"])


def _bypassed_pkts(flow: dict[str, Any]) -> int:
    b = flow["bypassed"]
    return int(b["pkts_toserver"]) + int(b["pkts_toclient"])


# --------------------------------------------------------------------------------------------
# a bypass rule on HTTP: the kernel takes the flow, other flows are still inspected
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("loader", ["libbpf", "bcc"])
def test_bypass_rule_http_flow_leaves_user_space(loader: str, tmp_path: Path) -> None:
    _require(loader)
    size = 20_000_000
    with kernel.netns_pair("e2e") as net:
        engine = _start(net, tmp_path, loader=loader)
        server = ae.HttpServer(net, net.ns_b, net.v4_b, HTTP_PORT)
        rx0, tx0 = ae.link_packets(net, net.ns_b, net.if_b)
        # the response body comes 1 s after the request: the engine has matched by then, so
        # everything after the match is the flow's "later packets"
        bypassed = ae.start_client(net, net.ns_a, (net.v4_b, HTTP_PORT), (net.v4_a, 40001),
                                   f"/bypass-me?size={size}&delay=1.0")
        inspected = ae.start_client(net, net.ns_a, (net.v4_b, HTTP_PORT), (net.v4_a, 40002),
                                    "/inspect-me?size=300000&delay=0.6")
        # a bypass rule whose first content matches but whose second does not: no bypass
        partial = ae.start_client(net, net.ns_a, (net.v4_b, HTTP_PORT), (net.v4_a, 40003),
                                  "/bypass-partial?size=300000&delay=0.6")
        got_bypassed = ae.finish_client(bypassed)
        got_inspected = ae.finish_client(inspected)
        ae.finish_client(partial)
        assert got_bypassed.received > size and got_inspected.received > 300_000
        rx1, tx1 = ae.link_packets(net, net.ns_b, net.if_b)
        time.sleep(BYPASSED_TIMEOUT + 2.5)  # kernel counters still -> the flow times out
        events, stats = _stop(engine)
        server.close()

    alerts = ae.alerts_by_sid(events)
    # the bypass rule alerted (bypass runs after the match), once
    assert [a["src_port"] for a in alerts[SID_HTTP_BYPASS]] == [40001]
    # the other flow was inspected both ways; the bypassed one's response was not
    assert [a["src_port"] for a in alerts[SID_HTTP_INSPECT]] == [40002]
    assert sorted(a["dest_port"] for a in alerts.get(SID_HTTP_RESPONSE, [])) == [40002, 40003]
    assert SID_HTTP_PARTIAL not in alerts

    assert stats["capture.bypass.ipv4_success"] == 1
    assert stats.get("capture.bypass.ipv4_fail", 0) == 0
    assert stats["flow_bypassed.closed"] == 1
    kernel_pkts = stats["flow_bypassed.pkts"]
    leaked = stats.get("flow_bypassed.local_capture_pkts", 0)
    assert kernel_pkts > size // 1500, stats
    assert leaked <= LEAK_RATIO * kernel_pkts, (leaked, kernel_pkts)

    last = [e["stats"] for e in events if e.get("event_type") == "stats"][-1]
    assert last["flow_bypassed"]["pkts"] == kernel_pkts
    assert last["flow_bypassed"]["closed"] == 1
    assert last["capture"]["kernel_packets"] == stats["capture.kernel_packets"]

    flow = _only(ae.flow_events_for(events, 40001, HTTP_PORT))
    body = flow["flow"]
    assert body["state"] == "bypassed" and body["bypass"] == "capture"
    assert body["reason"] == "timeout"
    assert flow["app_proto"] == "http" and body["alerted"] is True
    assert _bypassed_pkts(body) == kernel_pkts
    assert body["bypassed"]["bytes_toclient"] > size - (1 << 20)
    # totals include the bypassed part: together with the inspected flow they are what the
    # veth carried (a few IPv6 neighbour/router packets aside)
    others = [_only(ae.flow_events_for(events, port, HTTP_PORT))["flow"] for port in (40002, 40003)]
    assert all(o.get("bypass") is None and o["state"] != "bypassed" for o in others), others
    link_total = (rx1 - rx0) + (tx1 - tx0)
    flows_total = _pkts(body) + sum(_pkts(o) for o in others)
    assert 0 <= link_total - flows_total <= 20, (link_total, body, others)
    assert body["bytes_toclient"] > got_bypassed.received


# --------------------------------------------------------------------------------------------
# stream.bypass: depth reached -> the kernel takes the rest, both directions, IPv6
# --------------------------------------------------------------------------------------------


def test_stream_depth_bypass_ipv6_both_directions(tmp_path: Path) -> None:
    _require()
    up, down = 25_000_000, 25_000_000  # 50 MB in total, 1 MiB depth
    with kernel.netns_pair("e2e") as net:
        engine = _start(net, tmp_path, stream_bypass=True, depth="1mb")
        server = ae.HttpServer(net, net.ns_b, net.v6_b, HTTP_PORT)
        rx0, tx0 = ae.link_packets(net, net.ns_b, net.if_b)
        # the upload pauses just past the depth: the engine decides while little is in
        # flight (the Python engine needs the depth-reaching packet before it can decide)
        got = ae.http_client(net, net.ns_a, (net.v6_b, HTTP_PORT), (net.v6_a, 40010),
                             f"/upload?size={down}", upload=up, pause_at=PAUSE_AT, pause=0.5)
        rx1, tx1 = ae.link_packets(net, net.ns_b, net.if_b)
        time.sleep(BYPASSED_TIMEOUT + 2.5)
        events, stats = _stop(engine)
        server.close()

    assert got.sent > up and got.received > down
    flow = _only(ae.flow_events_for(events, 40010, HTTP_PORT))
    body = flow["flow"]
    assert flow["src_ip"] == net.v6_a and flow["dest_ip"] == net.v6_b
    assert body["state"] == "bypassed" and body["bypass"] == "capture"
    assert body["reason"] == "timeout"
    assert stats["capture.bypass.ipv6_success"] == 1
    assert stats["flow_bypassed.closed"] == 1
    bypassed = body["bypassed"]
    # the upload passed the depth first: the rest of it and the whole download went by the
    # kernel; the engine saw the upload up to the pause
    # (frame bytes: payload plus about 6 % of Ethernet/IPv6/TCP headers)
    assert up - PAUSE_AT < bypassed["bytes_toserver"] < (up - DEPTH) * 1.1, body
    assert bypassed["bytes_toclient"] > down - (1 << 20), body
    assert _bypassed_pkts(body) == stats["flow_bypassed.pkts"]
    leaked = stats.get("flow_bypassed.local_capture_pkts", 0)
    # totals (inspected + in flight + kernel) are every packet the veth carried for the flow
    link_total = (rx1 - rx0) + (tx1 - tx0)
    assert 0 <= link_total - _pkts(body) <= 20, (link_total, body)
    assert body["bytes_toserver"] >= got.sent and body["bytes_toclient"] >= got.received
    assert body["bytes_toserver"] < got.sent * 1.1 + 100_000
    # what reached the engine after its decision is what was in flight when it decided:
    # at most the upload between the depth and the pause, and the ACKs for it
    assert leaked <= 2 * (PAUSE_AT - DEPTH) // 1000 + 100, (leaked, body)


# --------------------------------------------------------------------------------------------
# two workers with the eBPF load balancer: each flow, both directions, on one worker
# --------------------------------------------------------------------------------------------


def test_fanout_ebpf_two_workers_keep_flows_whole(tmp_path: Path) -> None:
    _require()
    with kernel.netns_pair("e2e") as net:
        engine = _start(net, tmp_path, workers=2, cluster_type="cluster_ebpf")
        servers = [ae.HttpServer(net, net.ns_b, net.v4_b, HTTP_PORT),
                   ae.HttpServer(net, net.ns_b, net.v6_b, HTTP_PORT)]
        clients = []
        ports = list(range(41000, 41012))
        for i, port in enumerate(ports):
            v6 = i % 2 == 1
            target = (net.v6_b if v6 else net.v4_b, HTTP_PORT)
            local = (net.v6_a if v6 else net.v4_a, port)
            path = "/bypass-me?size=2000000&delay=1.0" if port == ports[-1] else \
                f"/inspect-me?size={50_000 + 1000 * i}"
            clients.append(ae.start_client(net, net.ns_a, target, local, path))
        for proc in clients:
            ae.finish_client(proc)
        time.sleep(BYPASSED_TIMEOUT + 2.5)
        events, stats = _stop(engine)
        for server in servers:
            server.close()

    alerts = ae.alerts_by_sid(events)
    inspected = ports[:-1]
    # each flow was parsed by one worker that saw the request and the response
    assert sorted(a["src_port"] for a in alerts[SID_HTTP_INSPECT]) == inspected
    assert sorted(a["dest_port"] for a in alerts[SID_HTTP_RESPONSE]) == inspected
    assert [a["src_port"] for a in alerts[SID_HTTP_BYPASS]] == [ports[-1]]
    for port in ports:
        flow = _only(ae.flow_events_for(events, port, HTTP_PORT))  # not split in two
        body = flow["flow"]
        assert body["pkts_toserver"] > 0 and body["pkts_toclient"] > 0, flow
        if port != ports[-1]:
            assert body["state"] == "closed", flow
            assert flow["tcp"]["syn"] and flow["tcp"]["fin"], flow
    # no worker picked up a flow in the middle (that would be a second flow record)
    tcp_flows = [e for e in events if e.get("event_type") == "flow" and e.get("proto") == "TCP"]
    assert len(tcp_flows) == len(ports)
    bypassed = _only(ae.flow_events_for(events, ports[-1], HTTP_PORT))["flow"]
    assert bypassed["bypass"] == "capture" and _bypassed_pkts(bypassed) > 1000
    assert stats["capture.bypass.ipv6_success"] == 1  # ports[-1] is an IPv6 flow
    assert stats["flow_bypassed.closed"] == 1
    # EVE's stats events are the totals of both workers (Suricata's), the last one final
    series = [e["stats"] for e in events if e.get("event_type") == "stats"]
    kernel_packets = [s["capture"]["kernel_packets"] for s in series]
    assert kernel_packets == sorted(kernel_packets), kernel_packets  # no one-worker events
    last = series[-1]
    assert last["capture"]["kernel_packets"] == stats["capture.kernel_packets"]
    assert last["flow_bypassed"]["closed"] == 1
    assert last["flow_bypassed"]["pkts"] == stats["flow_bypassed.pkts"] > 1000


# --------------------------------------------------------------------------------------------
# XDP mode (UDP: XDP_DROP drops for the whole host, so the flow must not need replies)
# --------------------------------------------------------------------------------------------


def _udp_burst(net: kernel.NetnsPair, engine: ae.Engine, dport: int, sport: int,
               payload: bytes, count: int, *, first_sid: int | None, v6: bool = False) -> None:
    """One datagram, wait until the engine has decided on it (its alert ``first_sid``), then
    ``count - 1`` more."""
    server, client = (net.v6_b, net.v6_a) if v6 else (net.v4_b, net.v4_a)
    rx = kernel.udp_socket(net, net.ns_b, server, dport)
    tx = kernel.udp_socket(net, net.ns_a, client, sport)
    try:
        tx.sendto(payload, (server, dport))
        if first_sid is not None:
            assert ae.wait_for_event(engine, lambda e: e.get("event_type") == "alert"
                                     and e["alert"]["signature_id"] == first_sid
                                     and e["src_port"] == sport), engine.stderr()
        else:
            time.sleep(0.5)
        for i in range(count - 1):
            tx.sendto(payload, (server, dport))
            if i % 50 == 49:
                time.sleep(0.001)  # veth queues are short
    finally:
        rx.close()
        tx.close()


@pytest.mark.parametrize(("loader", "workers"), [("libbpf", 1), ("bcc", 1), ("libbpf", 2)])
def test_xdp_bypass_udp(loader: str, workers: int, tmp_path: Path) -> None:
    _require(loader)
    count = 2000
    with kernel.netns_pair("e2e") as net:
        engine = _start(net, tmp_path, loader=loader, xdp=True, workers=workers,
                        cluster_type="cluster_ebpf" if workers > 1 else "cluster_flow")
        assert "xdp" in net.run(net.ns_b, "ip", "link", "show", net.if_b).stdout
        _udp_burst(net, engine, 7000, 50000, b"bypass-me" * 10, count, first_sid=SID_UDP_BYPASS)
        _udp_burst(net, engine, 7002, 50002, b"bypass-me" * 10, count, first_sid=None)
        _udp_burst(net, engine, 7001, 50001, b"inspect-me" * 10, 50, first_sid=SID_UDP_INSPECT)
        time.sleep(BYPASSED_TIMEOUT + 2.5)
        events, stats = _stop(engine)
        assert "xdp" not in net.run(net.ns_b, "ip", "link", "show", net.if_b).stdout

    alerts = ae.alerts_by_sid(events)
    assert len(alerts[SID_UDP_BYPASS]) == 1  # alerted once, then never inspected again
    assert SID_UDP_QUIET not in alerts  # noalert: bypassed without an alert
    assert len(alerts[SID_UDP_INSPECT]) == 50  # the other flow: every packet inspected
    assert stats["capture.bypass.ipv4_success"] == 2
    for sport, dport in ((50000, 7000), (50002, 7002)):
        body = _only(ae.flow_events_for(events, sport, dport, "UDP"))["flow"]
        assert body["bypass"] == "capture" and body["reason"] == "timeout"
        assert body["pkts_toserver"] == count, body  # every datagram is accounted for
        assert body["bypassed"]["pkts_toserver"] >= count - 1 - count * LEAK_RATIO, body
    leaked = stats.get("flow_bypassed.local_capture_pkts", 0)
    assert leaked <= LEAK_RATIO * stats["flow_bypassed.pkts"], stats


# --------------------------------------------------------------------------------------------
# map full: the insert fails (E2BIG), the flow is bypassed locally, counted
# --------------------------------------------------------------------------------------------


def test_map_full_falls_back_to_local_bypass(tmp_path: Path) -> None:
    _require()
    count = 500
    with kernel.netns_pair("e2e") as net:
        engine = _start(net, tmp_path, map_entries=1)
        _udp_burst(net, engine, 7000, 50000, b"bypass-me" * 10, count, first_sid=SID_UDP_BYPASS)
        _udp_burst(net, engine, 7003, 50003, b"bypass-me" * 10, count, first_sid=SID_UDP_SECOND)
        # the IPv6 table has its own single entry
        for dport, sid in ((7000, SID_UDP_BYPASS), (7003, SID_UDP_SECOND)):
            _udp_burst(net, engine, dport, dport + 43010, b"bypass-me" * 10, count,
                       first_sid=sid, v6=True)
        time.sleep(BYPASSED_TIMEOUT + 2.5)
        events, stats = _stop(engine)

    assert stats["capture.bypass.ipv4_success"] == 1
    assert stats["capture.bypass.ipv4_fail"] == 1
    assert stats["capture.bypass.ipv6_success"] == 1
    assert stats["capture.bypass.ipv6_fail"] == 1
    assert stats["flow_bypassed.capture_fail"] == 2
    assert stats["flow_bypassed.local"] == 2
    # the local flows' packets still reach user space, counted but not inspected
    assert stats["flow_bypassed.local_pkts"] == 2 * (count - 1)
    assert stats["flow_bypassed.local_bytes"] == (count - 1) * ((14 + 20 + 8 + 90)
                                                                + (14 + 40 + 8 + 90))
    assert len(ae.alerts_by_sid(events)[SID_UDP_SECOND]) == 2
    v6_local = _only(ae.flow_events_for(events, 50013, 7003, "UDP"))["flow"]
    assert v6_local["bypass"] == "local" and v6_local["bypassed"]["pkts_toserver"] == count - 1
    v6_capture = _only(ae.flow_events_for(events, 50010, 7000, "UDP"))["flow"]
    assert v6_capture["bypass"] == "capture" and v6_capture["pkts_toserver"] == count
    capture = _only(ae.flow_events_for(events, 50000, 7000, "UDP"))["flow"]
    local = _only(ae.flow_events_for(events, 50003, 7003, "UDP"))["flow"]
    assert capture["bypass"] == "capture" and capture["pkts_toserver"] == count
    assert local["bypass"] == "local" and local["state"] == "bypassed"
    assert local["reason"] == "timeout"
    assert local["pkts_toserver"] == count
    assert local["bypassed"]["pkts_toserver"] == count - 1


# --------------------------------------------------------------------------------------------
# the bypassed-flow manager: moving kernel counters keep a flow; still ones end it
# --------------------------------------------------------------------------------------------


def test_bypassed_flow_kept_while_counting_then_entry_deleted(tmp_path: Path) -> None:
    _require()
    with kernel.netns_pair("e2e") as net:
        engine = _start(net, tmp_path)
        rx = kernel.udp_socket(net, net.ns_b, net.v4_b, 7000)
        tx = kernel.udp_socket(net, net.ns_a, net.v4_a, 50000)
        try:
            tx.sendto(b"bypass-me", (net.v4_b, 7000))
            assert ae.wait_for_alert(engine, SID_UDP_BYPASS), engine.stderr()
            # a trickle longer than the bypassed timeout: the kernel counters keep moving,
            # so the flow must stay one flow
            trickle = 0
            end = time.monotonic() + BYPASSED_TIMEOUT * 1.75
            while time.monotonic() < end:
                tx.sendto(b"bypass-me", (net.v4_b, 7000))
                trickle += 1
                time.sleep(0.1)
            time.sleep(BYPASSED_TIMEOUT + 2.5)  # now still: timeout, kernel entry deleted
            assert ae.wait_for_event(engine, lambda e: e.get("event_type") == "flow"
                                     and e.get("src_port") == 50000)
            # the same 5-tuple again: user space sees it (no stale entry), a new flow
            tx.sendto(b"bypass-me", (net.v4_b, 7000))
            assert ae.wait_for_event(
                engine, lambda e: e.get("event_type") == "alert"
                and e["alert"]["signature_id"] == SID_UDP_BYPASS
                and e["timestamp"] != first_alert_ts(engine))
        finally:
            rx.close()
            tx.close()
        events, stats = _stop(engine)

    assert len(ae.alerts_by_sid(events)[SID_UDP_BYPASS]) == 2
    first, second = ae.flow_events_for(events, 50000, 7000, "UDP")
    assert first["flow"]["reason"] == "timeout" and first["flow"]["bypass"] == "capture"
    assert first["flow"]["pkts_toserver"] == 1 + trickle
    assert first["flow"]["bypassed"]["pkts_toserver"] == trickle
    assert first["flow"]["age"] >= BYPASSED_TIMEOUT * 1.5
    assert second["flow"]["reason"] == "shutdown" and second["flow"]["pkts_toserver"] == 1
    assert stats["capture.bypass.ipv4_success"] == 2
    assert stats["flow_bypassed.closed"] == 2
    assert stats["flow_bypassed.pkts"] == trickle


def first_alert_ts(engine: ae.Engine) -> str | None:
    alerts = engine.events("alert")
    return alerts[0]["timestamp"] if alerts else None


def test_capture_without_bypass_support_bypasses_locally(tmp_path: Path) -> None:
    _require()
    count = 300
    with kernel.netns_pair("e2e") as net:
        # af-packet bypass: no (from the command line) -> no kernel table
        engine = _start(net, tmp_path, overrides=("af-packet.0.bypass=no",))
        _udp_burst(net, engine, 7000, 50000, b"bypass-me" * 10, count, first_sid=SID_UDP_BYPASS)
        time.sleep(BYPASSED_TIMEOUT + 2.5)
        events, stats = _stop(engine)

    assert len(ae.alerts_by_sid(events)[SID_UDP_BYPASS]) == 1  # the rest was not inspected
    assert stats["flow_bypassed.local"] == 1
    assert "flow_bypassed.capture" not in stats and "flow_bypassed.pkts" not in stats
    assert stats["flow_bypassed.local_pkts"] == count - 1
    body = _only(ae.flow_events_for(events, 50000, 7000, "UDP"))["flow"]
    assert body["bypass"] == "local" and body["reason"] == "timeout"
    assert body["pkts_toserver"] == count and body["bypassed"]["pkts_toserver"] == count - 1


# --------------------------------------------------------------------------------------------
# a capture that cannot start is an error message and exit status 1, never a traceback
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_workers_that_cannot_join_the_fanout_group_fail_cleanly(workers: int,
                                                                tmp_path: Path) -> None:
    _require()
    with kernel.netns_pair("e2e") as net:
        # another program already holds fanout group 77 on this interface, in another mode
        with net.entered(net.ns_b):
            squatter = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        try:
            squatter.bind((net.if_b, ETH_P_ALL))
            squatter.setsockopt(SOL_PACKET, PACKET_FANOUT, struct.pack("=I", 77 | (1 << 16)))
            cfg = ae.write_config(tmp_path / "suricata.yaml", threads=workers,
                                  cluster_type="cluster_ebpf")
            engine = ae.Engine(net, net.ns_b, net.if_b, RULES, tmp_path / "log", cfg,
                               workers=workers)
            assert engine.proc.wait(timeout=30) == 1
        finally:
            squatter.close()
    err = engine.stderr()
    assert "Traceback" not in err and "internal error" not in err, err
    assert "error: " in err, err


def test_sigterm_under_load_exits_cleanly_with_flow_and_stats_events(tmp_path: Path) -> None:
    _require()
    with kernel.netns_pair("e2e") as net:
        engine = _start(net, tmp_path, workers=2, cluster_type="cluster_ebpf")
        server = ae.HttpServer(net, net.ns_b, net.v4_b, HTTP_PORT)
        client = ae.start_client(net, net.ns_a, (net.v4_b, HTTP_PORT), (net.v4_a, 43000),
                                 "/inspect-me?size=400000000&rate=50000000")  # 8 s at 400 Mbit/s
        time.sleep(1.5)
        t0 = time.monotonic()
        events, stats = _stop(engine)  # while the engine is busy with the transfer
        stop_seconds = time.monotonic() - t0
        client.kill()
        server.close()

    assert stop_seconds < 10, stop_seconds
    flow = _only(ae.flow_events_for(events, 43000, HTTP_PORT))
    assert flow["flow"]["reason"] == "shutdown" and flow["flow"]["pkts_toclient"] > 1000
    assert [a["src_port"] for a in ae.alerts_by_sid(events)[SID_HTTP_INSPECT]] == [43000]
    assert stats["capture.kernel_packets"] > 1000
    assert [e for e in events if e.get("event_type") == "stats"]


# --------------------------------------------------------------------------------------------
# a worker dies: the parent sweeps the kernel entries nobody looks after any more
# --------------------------------------------------------------------------------------------


def test_entries_of_a_dead_worker_are_swept_by_the_parent(tmp_path: Path) -> None:
    _require()
    flows = 8
    with kernel.netns_pair("e2e") as net:
        engine = _start(net, tmp_path, workers=2, cluster_type="cluster_ebpf")
        rx = kernel.udp_socket(net, net.ns_b, net.v4_b, 7000)
        senders = [kernel.udp_socket(net, net.ns_a, net.v4_a, 50100 + i) for i in range(flows)]
        try:
            def send_all(times: int) -> None:
                for _ in range(times):
                    for tx in senders:
                        tx.sendto(b"bypass-me", (net.v4_b, 7000))
                    time.sleep(0.002)

            def alerts() -> int:
                return len(ae.alerts_by_sid(engine.events()).get(SID_UDP_BYPASS, []))

            send_all(1)
            assert kernel.wait_for(lambda: alerts() == flows, timeout=5), engine.stderr()
            send_all(20)  # now counted in the kernel table, by whichever worker owns the flow
            victim = int(Path(f"/proc/{engine.proc.pid}/task/{engine.proc.pid}/children")
                         .read_text().split()[0])
            os.kill(victim, signal.SIGKILL)  # its flows' entries stay in the kernel
            # live worker: its entries go after the bypassed timeout; the dead one's are
            # orphans, swept when idle for 2 x 2 s + 2 x 1 s + 1 s (every 5 s)
            time.sleep(13)
            send_all(1)  # every flow reaches user space again: alerted again
            assert kernel.wait_for(lambda: alerts() == 2 * flows, timeout=5), alerts()
        finally:
            rx.close()
            for tx in senders:
                tx.close()
        _events, stats = _stop(engine)

    # each first-round flow was either closed by the surviving worker or swept as an
    # orphan; the second round is closed at shutdown by the surviving worker
    orphans = stats.get("flow_bypassed.orphans_expired", 0)
    assert stats["flow_bypassed.closed"] + orphans == 2 * flows, stats


def test_capture_bypass_the_kernel_does_not_honour_is_downgraded_to_local(tmp_path: Path
                                                                          ) -> None:
    # XDP sees only what the interface receives: the answers the server sends back are not
    # counted in the kernel and keep reaching user space. Suricata (FlowHandlePacketUpdate)
    # downgrades such a flow to a local bypass after FLOW_BYPASSED_TIMEOUT / 2 = 3 s.
    _require()
    answers = 50
    with kernel.netns_pair("e2e") as net:
        engine = _start(net, tmp_path, xdp=True)
        server = kernel.udp_socket(net, net.ns_b, net.v4_b, 7000)
        client = kernel.udp_socket(net, net.ns_a, net.v4_a, 50000)
        try:
            client.sendto(b"bypass-me", (net.v4_b, 7000))
            assert ae.wait_for_alert(engine, SID_UDP_BYPASS), engine.stderr()
            for _ in range(answers):  # 5 s of answers, none counted by XDP
                server.sendto(b"answer", (net.v4_a, 50000))
                time.sleep(0.1)
        finally:
            server.close()
            client.close()
        time.sleep(BYPASSED_TIMEOUT + 2.5)
        events, stats = _stop(engine)

    assert stats["capture.bypass.ipv4_success"] == 1
    assert stats["flow_bypassed.capture_downgraded"] == 1
    body = _only(ae.flow_events_for(events, 50000, 7000, "UDP"))["flow"]
    assert body["bypass"] == "local" and body["state"] == "bypassed", body
    assert body["pkts_toserver"] == 1 and body["pkts_toclient"] == answers
    seen_as_capture = stats["flow_bypassed.local_capture_pkts"]
    # about 3 s of answers as "capture bypassed", the rest as local bypass
    assert 20 <= seen_as_capture <= 40, stats
    # the ring reader's fast path took them (undecoded) until the downgrade was due: they
    # still count as reaching user space, and the later ones reached the engine
    assert stats["capture.bypass.fast_path_pkts"] == seen_as_capture, stats
    assert body["bypassed"]["pkts_toclient"] == answers - seen_as_capture
    assert stats["flow_bypassed.local_pkts"] == answers - seen_as_capture
    assert stats["flow_bypassed.closed"] == 1  # its kernel entry was still removed
