"""Bypass core: Suricata's local vs capture bypass and the bypassed-flow manager.

* ``bypass_capture`` asks the backend to stop delivering a flow (eBPF map entry,
  NFQ mark). If the backend cannot (no BYPASS capability) or refuses (map full),
  the flow falls back to local bypass, counted.
* A bypassed flow gets no more stream/app-layer/detection work; packets that still
  arrive are only counted (``flow_bypassed.local_*``, ``local_capture_*``).
* ``poll`` reads the kernel's per-flow counters of capture-bypassed flows: a flow
  whose counters moved is kept alive (its ``last_ts`` advances); one that stayed
  still ages out through the flow table's ``bypassed`` timeout, and ``flow_ended``
  then deletes its kernel entry and folds the kernel counters into the flow's totals.
* A capture-bypassed flow whose packets still reach user space more than
  ``CAPTURE_DOWNGRADE_S`` after the kernel last counted one for it (the capture layer is
  evidently not taking it, e.g. XDP sees only one direction) is downgraded to a local
  bypass, as Suricata's ``FlowHandlePacketUpdate`` does.
* Inline (NFQ), every packet of a capture-bypassed flow that still reaches the engine is
  handed to ``backend.bypass`` again, so its verdict carries the bypass mark too: a verdict
  without it would let an unconditional ``CONNMARK --save-mark`` wipe the flow's connmark.
  (Most such packets never get here: the backend's fast path marks them when read.)
* A backend's fast path keeps packets of capture-bypassed flows from the engine by their
  flow key (``fast_path_counters``). They reached user space all the same, so they count as
  ``local_capture_*``, in the flow's totals and as its leaked packets, not as bypassed. So
  that the downgrade above still sees a bypass the kernel does not honour, the fast path
  takes only packets stamped up to ``CAPTURE_DOWNGRADE_S`` after the kernel last counted
  one (``fast_path_until``); later ones reach the engine.
* Flows bypassed by a previous run whose tables were pinned (``adopted_bypassed``) have no
  flow here: they are only watched, and their kernel entry is deleted once its counters
  stood still for the protocol's ``bypassed`` timeout (``flow_bypassed.adopted*``). For
  the same reason, with pinned tables (BYPASS_PINNED) a flow still bypassed when the run
  ends keeps its kernel entry: the next run adopts it.
"""

from __future__ import annotations

import contextlib

from ruleengine.capture import BypassCounters, Capability, CaptureBackend, FlowTuple
from ruleengine.flow.table import BYPASS_CAPTURE, BYPASS_LOCAL, Flow, FlowTimeouts
from ruleengine.outputs.stats import Stats

# Suricata: FLOW_BYPASSED_TIMEOUT / 2 (flow-private.h: 6 s)
CAPTURE_DOWNGRADE_S = 3.0


class BypassManager:
    def __init__(self, backend: CaptureBackend, stats: Stats, timeouts: FlowTimeouts) -> None:
        self._backend = backend
        self._stats = stats
        self._timeouts = timeouts
        self._can_capture = bool(backend.capabilities & Capability.BYPASS)
        self._has_counters = bool(backend.capabilities & Capability.BYPASS_COUNTERS)
        self._inline = bool(backend.capabilities & Capability.INLINE)
        self._pinned = bool(backend.capabilities & Capability.BYPASS_PINNED)
        # flow_id -> (flow, tuple given to the backend, last counters seen)
        self._captured: dict[int, tuple[Flow, FlowTuple, BypassCounters | None]] = {}
        # flow_id -> when the kernel last counted a packet of it (the bypass time at first)
        self._moved: dict[int, float] = {}
        # flow_id -> the backend's fast-path counts already added to the flow
        self._fast: dict[int, BypassCounters] = {}
        # bypassed before this run -> (last kernel counters, when they last moved); the
        # time is set by the first poll
        self._adopted: dict[FlowTuple, tuple[BypassCounters | None, float | None]] = {}
        if self._has_counters:
            try:
                adopted = backend.adopted_bypassed()
            except OSError:
                adopted = []
            self._adopted = dict.fromkeys(adopted, (None, None))
            if adopted:
                stats.incr("flow_bypassed.adopted", len(adopted))

    def __len__(self) -> int:
        return len(self._captured)

    def captured_flows(self) -> list[Flow]:
        """The flows the capture layer is bypassing now."""
        return [flow for flow, _tup, _last in self._captured.values()]

    def bypass_capture(self, flow: Flow, tup: FlowTuple, pkt_id: int, ts: float) -> bool:
        """Try capture bypass; fall back to local. True when the capture layer took it."""
        ok = False
        if self._can_capture:
            try:
                ok = self._backend.bypass(tup, pkt_id)
            except OSError:
                ok = False
            if not ok:
                self._stats.incr("flow_bypassed.capture_fail")
        if not ok:
            self.bypass_local(flow, ts)
            return False
        flow.bypass = BYPASS_CAPTURE
        flow.state = "bypassed"
        flow.bypass_ts = ts
        flow.mark_inspected()
        self._captured[flow.flow_id] = (flow, tup, None)
        self._kernel_moved(flow, tup, ts)
        self._stats.incr("flow_bypassed.capture")
        return True

    def _kernel_moved(self, flow: Flow, tup: FlowTuple, ts: float) -> None:
        self._moved[flow.flow_id] = ts
        if flow.bypass == BYPASS_CAPTURE:
            with contextlib.suppress(OSError):
                self._backend.fast_path_until(tup, ts + CAPTURE_DOWNGRADE_S)

    def bypass_local(self, flow: Flow, ts: float) -> None:
        flow.bypass = BYPASS_LOCAL
        flow.state = "bypassed"
        flow.bypass_ts = ts
        flow.mark_inspected()
        self._stats.incr("flow_bypassed.local")

    def count_packet(self, flow: Flow, length: int, to_server: bool | None = None,
                     ts: float | None = None, pkt_id: int = 0) -> None:
        """A packet of a bypassed flow reached user space anyway. For a local bypass it is
        also the flow's bypassed traffic (EVE ``flow.bypassed``); a capture bypass's
        bypassed traffic is what the kernel counted, added when the flow ends. With ``ts``,
        a capture bypass that the kernel has not honoured for ``CAPTURE_DOWNGRADE_S``
        becomes a local one (its kernel entry is still removed when the flow ends)."""
        if flow.bypass == BYPASS_CAPTURE and ts is not None and \
                ts - self._moved.get(flow.flow_id, flow.bypass_ts) > CAPTURE_DOWNGRADE_S:
            flow.bypass = BYPASS_LOCAL
            self._stats.incr("flow_bypassed.capture_downgraded")
        if flow.bypass == BYPASS_CAPTURE and self._inline and pkt_id:
            self._mark_again(flow, pkt_id)
        if flow.bypass == BYPASS_CAPTURE:
            self._stats.incr("flow_bypassed.local_capture_pkts")
            self._stats.incr("flow_bypassed.local_capture_bytes", length)
            flow.count_leaked(length)
        else:
            self._stats.incr("flow_bypassed.local_pkts")
            self._stats.incr("flow_bypassed.local_bytes", length)
            if to_server is not None:
                flow.count_bypassed(to_server, length)

    def _mark_again(self, flow: Flow, pkt_id: int) -> None:
        entry = self._captured.get(flow.flow_id)
        if entry is None:
            return
        try:
            if self._backend.bypass(entry[1], pkt_id):
                self._stats.incr("flow_bypassed.capture_remarked")
        except OSError:
            self._stats.incr("flow_bypassed.capture_fail")

    def poll(self, now: float) -> None:
        """Keep capture-bypassed flows alive while the kernel still counts packets for them
        (or the backend's fast path still takes some), and account the fast path's."""
        if self._adopted:
            self._poll_adopted(now)
        for flow_id, (flow, tup, last) in list(self._captured.items()):
            if self._fold_fast_path(flow, tup):
                flow.last_ts = max(flow.last_ts, now)
            if not self._has_counters:
                continue
            counters = self._read(tup)
            if counters is None:
                continue
            if counters != last:
                if last is None or _total_pkts(counters) != _total_pkts(last):
                    flow.last_ts = max(flow.last_ts, now)
                if _total_pkts(counters) != (_total_pkts(last) if last else 0):
                    self._kernel_moved(flow, tup, now)
                self._captured[flow_id] = (flow, tup, counters)

    def _poll_adopted(self, now: float) -> None:
        for tup, (last, moved) in list(self._adopted.items()):
            counters = self._read(tup)
            if counters is None:  # gone (deleted by someone else)
                del self._adopted[tup]
                continue
            if moved is None or counters != last:
                self._adopted[tup] = (counters, now)
                continue
            timeouts = self._timeouts.udp if tup.proto == 17 else self._timeouts.tcp
            if now - moved <= timeouts.bypassed:
                continue
            del self._adopted[tup]
            try:
                self._backend.forget_bypassed(tup)
            except OSError:
                self._stats.incr("flow_bypassed.forget_fail")
                continue
            self._stats.incr("flow_bypassed.adopted_expired")
            self._stats.incr("flow_bypassed.adopted_pkts", _total_pkts(counters))

    def _fold_fast_path(self, flow: Flow, tup: FlowTuple) -> bool:
        """Add the packets the backend's fast path took since the last call to the flow and
        to ``local_capture_*``; True when there were any."""
        try:
            fast = self._backend.fast_path_counters(tup)
        except OSError:
            return False
        if fast is None:
            return False
        done = self._fast.get(flow.flow_id)
        new = fast if done is None else BypassCounters(
            *(a - b for a, b in zip(fast, done, strict=True)))
        if not _total_pkts(new):
            return False
        self._fast[flow.flow_id] = fast
        flow.add_leaked(new)
        self._stats.incr("flow_bypassed.local_capture_pkts", _total_pkts(new))
        self._stats.incr("flow_bypassed.local_capture_bytes",
                         new.bytes_toserver + new.bytes_toclient)
        return True

    def flow_ended(self, flow: Flow) -> None:
        """The flow timed out or the run ended: remove kernel state, account its counters."""
        entry = self._captured.get(flow.flow_id)
        if entry is None:
            return
        _, tup, last = entry
        self._fold_fast_path(flow, tup)
        del self._captured[flow.flow_id]
        self._moved.pop(flow.flow_id, None)
        self._fast.pop(flow.flow_id, None)
        counters = self._read(tup) or last
        if flow.end_reason == "shutdown" and self._pinned:
            self._stats.incr("flow_bypassed.kept_pinned")
        else:
            try:
                self._backend.forget_bypassed(tup)
            except OSError:
                self._stats.incr("flow_bypassed.forget_fail")
        self._stats.incr("flow_bypassed.closed")
        if counters is None:
            return
        # Packets that were in flight when the bypass was set were counted by the flow table
        # already (and in bypassed_* by the pipeline); the kernel's counts come on top.
        flow.add_capture_bypassed(counters)
        self._stats.incr("flow_bypassed.pkts", _total_pkts(counters))
        self._stats.incr("flow_bypassed.bytes", counters.bytes_toserver + counters.bytes_toclient)

    def _read(self, tup: FlowTuple) -> BypassCounters | None:
        try:
            return self._backend.bypassed_flow_counters(tup)
        except OSError:
            return None


def _total_pkts(c: BypassCounters) -> int:
    return c.pkts_toserver + c.pkts_toclient
