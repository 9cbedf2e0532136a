"""BypassManager on a scripted backend: capture vs local decisions, the fallbacks when the
capture layer cannot or will not take a flow, kernel counters keeping a flow alive, the
downgrade of a capture bypass the kernel ignores, and the accounting at flow end."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import pytest

from ruleengine.bypass import CAPTURE_DOWNGRADE_S, BypassManager
from ruleengine.bypass_accounting import reconcile
from ruleengine.capture import (
    BypassCounters,
    Capability,
    CaptureBackend,
    CaptureStats,
    FlowTuple,
    RawPacket,
    Verdict,
)
from ruleengine.flow.table import BYPASS_CAPTURE, BYPASS_LOCAL, BYPASS_NONE, Flow, FlowTable
from ruleengine.outputs.stats import Stats
from tests.decode.frames import decode_one, tcp_frame

T0 = 1000.0


class FakeBackend:
    """The capture interface with every bypass answer scripted and every call recorded."""

    name: ClassVar[str] = "fake"
    linktype = 1

    def __init__(self, capabilities: Capability = Capability.LIVE | Capability.BYPASS
                 | Capability.BYPASS_COUNTERS, *, accept: bool = True,
                 bypass_error: bool = False, forget_error: bool = False) -> None:
        self.capabilities = capabilities
        self.accept = accept
        self.bypass_error = bypass_error
        self.forget_error = forget_error
        self.counters: dict[FlowTuple, BypassCounters | OSError] = {}
        self.bypass_calls: list[tuple[FlowTuple, int]] = []
        self.forgotten: list[FlowTuple] = []
        self.fast: dict[FlowTuple, BypassCounters] = {}  # what the fast path took
        self.until: dict[FlowTuple, float] = {}  # fast_path_until calls, the last per flow
        self.adopted: list[FlowTuple] = []  # bypassed before the run (pinned tables)

    def packets(self) -> Iterator[RawPacket]:
        return iter(())

    def verdict(self, pkt_id: int, verdict: Verdict) -> None:
        return None

    def bypass(self, flow: FlowTuple, pkt_id: int) -> bool:
        self.bypass_calls.append((flow, pkt_id))
        if self.bypass_error:
            raise OSError("map update failed")
        return self.accept

    def bypassed_flow_counters(self, flow: FlowTuple) -> BypassCounters | None:
        value = self.counters.get(flow)
        if isinstance(value, OSError):
            raise value
        return value

    def forget_bypassed(self, flow: FlowTuple) -> None:
        self.forgotten.append(flow)
        if self.forget_error:
            raise OSError("map delete failed")

    def adopted_bypassed(self) -> list[FlowTuple]:
        return list(self.adopted)

    def fast_path_counters(self, flow: FlowTuple) -> BypassCounters | None:
        return self.fast.get(flow)

    def fast_path_until(self, flow: FlowTuple, ts: float) -> None:
        self.until[flow] = ts

    def stats(self) -> CaptureStats:
        return CaptureStats()

    def close(self) -> None:
        return None


def _flow(table: FlowTable | None = None, sport: int = 40000) -> tuple[Flow, FlowTuple]:
    table = table or FlowTable()
    pkt = decode_one(tcp_frame("S", 1, sport=sport), ts=T0)
    flow, _ = table.lookup(pkt)
    return flow, FlowTuple(flow.src, flow.dst, flow.sport, flow.dport, flow.proto, flow.vlan)


def _manager(backend: FakeBackend) -> tuple[BypassManager, Stats]:
    stats = Stats()
    table = FlowTable()
    return BypassManager(backend, stats, table.timeouts), stats


def test_the_fake_backend_is_a_capture_backend() -> None:
    assert isinstance(FakeBackend(), CaptureBackend)


def test_capture_bypass_when_the_backend_takes_the_flow() -> None:
    backend = FakeBackend()
    mgr, stats = _manager(backend)
    flow, tup = _flow()
    assert mgr.bypass_capture(flow, tup, pkt_id=7, ts=T0 + 1)
    assert backend.bypass_calls == [(tup, 7)]
    assert (flow.bypass, flow.state, flow.bypass_ts) == (BYPASS_CAPTURE, "bypassed", T0 + 1)
    assert len(mgr) == 1
    assert stats.get("flow_bypassed.capture") == 1
    assert stats.get("flow_bypassed.local") == stats.get("flow_bypassed.capture_fail") == 0


@pytest.mark.parametrize("backend", [FakeBackend(accept=False), FakeBackend(bypass_error=True)],
                         ids=["refused", "oserror"])
def test_a_refused_capture_bypass_falls_back_to_local(backend: FakeBackend) -> None:
    mgr, stats = _manager(backend)
    flow, tup = _flow()
    assert not mgr.bypass_capture(flow, tup, pkt_id=1, ts=T0)
    assert flow.bypass == BYPASS_LOCAL and flow.state == "bypassed"
    assert len(mgr) == 0
    assert stats.get("flow_bypassed.capture_fail") == 1
    assert stats.get("flow_bypassed.local") == 1
    assert stats.get("flow_bypassed.capture") == 0


def test_without_the_capability_the_backend_is_not_asked() -> None:
    backend = FakeBackend(Capability.OFFLINE)
    mgr, stats = _manager(backend)
    flow, tup = _flow()
    assert not mgr.bypass_capture(flow, tup, pkt_id=1, ts=T0)
    assert backend.bypass_calls == []
    assert flow.bypass == BYPASS_LOCAL
    # not a failure of the capture layer: it was never able to
    assert stats.get("flow_bypassed.capture_fail") == 0
    assert stats.get("flow_bypassed.local") == 1


def test_packets_of_a_local_bypass_are_the_flows_bypassed_traffic() -> None:
    mgr, stats = _manager(FakeBackend(Capability.OFFLINE))
    flow, _ = _flow()
    mgr.bypass_local(flow, T0)
    mgr.count_packet(flow, 100, to_server=True, ts=T0 + 1)
    mgr.count_packet(flow, 60, to_server=False, ts=T0 + 2)
    mgr.count_packet(flow, 10)  # direction unknown: counted in stats only
    assert (stats.get("flow_bypassed.local_pkts"), stats.get("flow_bypassed.local_bytes")) == (
        3, 170)
    assert (flow.bypassed_pkts_toserver, flow.bypassed_bytes_toserver) == (1, 100)
    assert (flow.bypassed_pkts_toclient, flow.bypassed_bytes_toclient) == (1, 60)
    assert stats.get("flow_bypassed.local_capture_pkts") == 0


def test_packets_leaking_past_a_capture_bypass_are_counted_apart() -> None:
    mgr, stats = _manager(FakeBackend())
    flow, tup = _flow()
    mgr.bypass_capture(flow, tup, 1, T0)
    mgr.count_packet(flow, 80, to_server=True, ts=T0 + CAPTURE_DOWNGRADE_S / 2)
    assert (stats.get("flow_bypassed.local_capture_pkts"),
            stats.get("flow_bypassed.local_capture_bytes")) == (1, 80)
    assert stats.get("flow_bypassed.local_pkts") == 0
    assert flow.bypassed_pkts_toserver == 0  # the kernel's counters are the bypassed traffic
    assert flow.bypass == BYPASS_CAPTURE


def test_a_capture_bypass_the_kernel_ignores_is_downgraded_to_local() -> None:
    backend = FakeBackend()
    mgr, stats = _manager(backend)
    flow, tup = _flow()
    mgr.bypass_capture(flow, tup, 1, T0)
    mgr.count_packet(flow, 50, to_server=True, ts=T0 + CAPTURE_DOWNGRADE_S + 0.5)
    assert flow.bypass == BYPASS_LOCAL
    assert stats.get("flow_bypassed.capture_downgraded") == 1
    assert stats.get("flow_bypassed.local_pkts") == 1
    assert flow.bypassed_bytes_toserver == 50
    # its kernel entry is still removed when the flow ends
    mgr.flow_ended(flow)
    assert backend.forgotten == [tup]


def test_kernel_counters_that_move_postpone_the_downgrade_and_keep_the_flow_alive() -> None:
    backend = FakeBackend()
    mgr, stats = _manager(backend)
    flow, tup = _flow()
    mgr.bypass_capture(flow, tup, 1, T0)
    backend.counters[tup] = BypassCounters(5, 500, 0, 0)
    mgr.poll(T0 + 10)
    assert flow.last_ts == T0 + 10
    # the kernel counted a packet at T0+10: a leaked packet shortly after is no downgrade
    mgr.count_packet(flow, 50, to_server=True, ts=T0 + 10 + CAPTURE_DOWNGRADE_S / 2)
    assert flow.bypass == BYPASS_CAPTURE
    # counters that stayed still do not keep the flow alive
    mgr.poll(T0 + 20)
    assert flow.last_ts == T0 + 10
    backend.counters[tup] = BypassCounters(6, 600, 0, 0)
    mgr.poll(T0 + 30)
    assert flow.last_ts == T0 + 30
    assert stats.get("flow_bypassed.capture_downgraded") == 0


def test_packets_the_fast_path_took_reached_user_space_and_count_as_leaked() -> None:
    backend = FakeBackend()
    mgr, stats = _manager(backend)
    flow, tup = _flow()
    flow.pkts_toserver, flow.pkts_toclient, flow.bytes_toclient = 1, 2, 200  # before it
    mgr.bypass_capture(flow, tup, 1, T0)
    backend.fast[tup] = BypassCounters(1, 60, 3, 300)
    mgr.poll(T0 + 1)
    assert flow.last_ts == T0 + 1  # still arriving: the flow lives on
    assert (stats.get("flow_bypassed.local_capture_pkts"),
            stats.get("flow_bypassed.local_capture_bytes")) == (4, 360)
    assert (flow.pkts_toserver, flow.pkts_toclient, flow.bytes_toclient) == (2, 5, 500)
    mgr.poll(T0 + 2)  # nothing new: nothing added twice, no keep-alive
    assert flow.last_ts == T0 + 1 and stats.get("flow_bypassed.local_capture_pkts") == 4
    backend.fast[tup] = BypassCounters(1, 60, 4, 400)
    mgr.flow_ended(flow)  # the rest is added when the flow ends
    assert stats.get("flow_bypassed.local_capture_pkts") == 5
    assert (flow.pkts_toclient, flow.bytes_toclient) == (6, 600)
    # not the bypassed traffic: the kernel did not bypass them; leaked, and the flow's
    # accounting still adds up
    assert flow.bypassed_pkts_toserver == flow.bypassed_pkts_toclient == 0
    assert stats.get("flow_bypassed.pkts") == 0
    assert (flow.leaked_pkts, flow.leaked_bytes) == (5, 460)
    assert reconcile(flow).ok, reconcile(flow)


def test_the_fast_path_takes_packets_only_until_the_downgrade_would_be_decided() -> None:
    backend = FakeBackend()
    mgr, _ = _manager(backend)
    flow, tup = _flow()
    mgr.bypass_capture(flow, tup, 1, T0)
    assert backend.until[tup] == T0 + CAPTURE_DOWNGRADE_S
    backend.counters[tup] = BypassCounters(5, 500, 0, 0)
    mgr.poll(T0 + 10)  # the kernel counted some: the limit moves on
    assert backend.until[tup] == T0 + 10 + CAPTURE_DOWNGRADE_S
    mgr.poll(T0 + 11)  # still counters: unchanged
    assert backend.until[tup] == T0 + 10 + CAPTURE_DOWNGRADE_S
    # a later packet reached the engine: downgraded, and the limit stays where it was
    mgr.count_packet(flow, 50, to_server=True, ts=T0 + 14)
    assert flow.bypass == BYPASS_LOCAL
    backend.counters[tup] = BypassCounters(6, 600, 0, 0)
    mgr.poll(T0 + 15)
    assert backend.until[tup] == T0 + 10 + CAPTURE_DOWNGRADE_S


def test_flows_bypassed_before_the_run_are_timed_out_once_the_kernel_stops_counting() -> None:
    backend = FakeBackend()
    _, tup = _flow()
    gone = tup._replace(sport=40001)
    backend.adopted = [tup, gone]
    backend.counters[tup] = BypassCounters(5, 500, 9, 900)
    mgr, stats = _manager(backend)
    assert stats.get("flow_bypassed.adopted") == 2
    timeout = FlowTable().timeouts.tcp.bypassed
    mgr.poll(T0)  # the first look: the clock starts; ``gone`` has no entry any more
    backend.counters[tup] = BypassCounters(6, 600, 9, 900)
    mgr.poll(T0 + timeout)  # still counting
    mgr.poll(T0 + 2 * timeout)  # still for exactly the timeout: kept
    assert backend.forgotten == []
    mgr.poll(T0 + 2 * timeout + 1)
    assert backend.forgotten == [tup]
    assert stats.get("flow_bypassed.adopted_expired") == 1
    assert stats.get("flow_bypassed.adopted_pkts") == 15
    mgr.poll(T0 + 3 * timeout)  # once only
    assert backend.forgotten == [tup]


@pytest.mark.parametrize("reason", ["shutdown", "timeout"])
def test_pinned_tables_keep_the_entries_of_flows_bypassed_at_shutdown(reason: str) -> None:
    backend = FakeBackend(Capability.LIVE | Capability.BYPASS | Capability.BYPASS_COUNTERS
                          | Capability.BYPASS_PINNED)
    mgr, stats = _manager(backend)
    flow, tup = _flow()
    mgr.bypass_capture(flow, tup, 1, T0)
    backend.counters[tup] = BypassCounters(4, 400, 0, 0)
    flow.end_reason = reason
    mgr.flow_ended(flow)
    assert backend.forgotten == ([] if reason == "shutdown" else [tup])
    assert stats.get("flow_bypassed.kept_pinned") == (reason == "shutdown")
    assert flow.bypassed_pkts_toserver == 4  # what the kernel counted so far, either way


def test_without_kernel_counters_nothing_is_adopted() -> None:
    backend = FakeBackend(Capability.LIVE | Capability.BYPASS)
    _, tup = _flow()
    backend.adopted = [tup]
    mgr, stats = _manager(backend)
    mgr.poll(T0 + 1000)
    assert stats.get("flow_bypassed.adopted") == 0 and backend.forgotten == []


def test_poll_without_counter_support_reads_nothing() -> None:
    backend = FakeBackend(Capability.LIVE | Capability.BYPASS)
    mgr, _ = _manager(backend)
    flow, tup = _flow()
    mgr.bypass_capture(flow, tup, 1, T0)
    backend.counters[tup] = BypassCounters(5, 500, 0, 0)
    mgr.poll(T0 + 10)
    assert flow.last_ts == T0


def test_a_failing_counter_read_is_skipped() -> None:
    backend = FakeBackend()
    mgr, _ = _manager(backend)
    flow, tup = _flow()
    mgr.bypass_capture(flow, tup, 1, T0)
    backend.counters[tup] = OSError("map lookup failed")
    mgr.poll(T0 + 10)
    assert flow.last_ts == T0


def test_flow_end_forgets_the_kernel_entry_and_adds_its_counters() -> None:
    backend = FakeBackend()
    mgr, stats = _manager(backend)
    flow, tup = _flow()
    flow.pkts_toserver, flow.bytes_toserver = 3, 180  # seen before the bypass
    mgr.bypass_capture(flow, tup, 1, T0)
    backend.counters[tup] = BypassCounters(4, 400, 2, 1200)
    mgr.flow_ended(flow)
    assert backend.forgotten == [tup]
    assert len(mgr) == 0
    assert (flow.bypassed_pkts_toserver, flow.bypassed_bytes_toserver) == (4, 400)
    assert (flow.bypassed_pkts_toclient, flow.bypassed_bytes_toclient) == (2, 1200)
    assert (flow.pkts_toserver, flow.bytes_toserver) == (7, 580)
    assert (flow.pkts_toclient, flow.bytes_toclient) == (2, 1200)
    assert stats.get("flow_bypassed.closed") == 1
    assert (stats.get("flow_bypassed.pkts"), stats.get("flow_bypassed.bytes")) == (6, 1600)
    mgr.flow_ended(flow)  # a second end is a no-op
    assert backend.forgotten == [tup] and stats.get("flow_bypassed.closed") == 1


def test_flow_end_uses_the_last_counters_when_the_entry_is_gone() -> None:
    backend = FakeBackend()
    mgr, stats = _manager(backend)
    flow, tup = _flow()
    mgr.bypass_capture(flow, tup, 1, T0)
    backend.counters[tup] = BypassCounters(2, 200, 0, 0)
    mgr.poll(T0 + 1)
    del backend.counters[tup]  # e.g. the kernel map entry expired
    mgr.flow_ended(flow)
    assert flow.bypassed_pkts_toserver == 2 and stats.get("flow_bypassed.pkts") == 2


def test_a_failing_forget_is_counted_and_the_flow_still_ends() -> None:
    backend = FakeBackend(forget_error=True)
    mgr, stats = _manager(backend)
    flow, tup = _flow()
    mgr.bypass_capture(flow, tup, 1, T0)
    mgr.flow_ended(flow)
    assert stats.get("flow_bypassed.forget_fail") == 1
    assert stats.get("flow_bypassed.closed") == 1
    assert len(mgr) == 0


def test_ending_a_flow_that_was_never_capture_bypassed_touches_no_kernel_state() -> None:
    backend = FakeBackend()
    mgr, stats = _manager(backend)
    flow, _ = _flow()
    assert flow.bypass == BYPASS_NONE
    mgr.bypass_local(flow, T0)
    mgr.flow_ended(flow)
    assert backend.forgotten == []
    assert stats.get("flow_bypassed.closed") == 0


def test_flows_are_tracked_independently() -> None:
    backend = FakeBackend()
    mgr, stats = _manager(backend)
    table = FlowTable()
    a, tup_a = _flow(table, sport=40001)
    b, tup_b = _flow(table, sport=40002)
    mgr.bypass_capture(a, tup_a, 1, T0)
    mgr.bypass_capture(b, tup_b, 2, T0)
    backend.counters[tup_a] = BypassCounters(1, 10, 0, 0)
    backend.counters[tup_b] = BypassCounters(9, 90, 0, 0)
    mgr.poll(T0 + 5)
    mgr.flow_ended(a)
    assert len(mgr) == 1 and backend.forgotten == [tup_a]
    assert a.bypassed_pkts_toserver == 1 and b.bypassed_pkts_toserver == 0
    assert stats.get("flow_bypassed.capture") == 2
