"""In-memory capture backend: packets from a list, verdicts and bypasses recorded.

It drives the engine in unit tests the way httpx's ``MockTransport`` drives a client:
no kernel, no file, every interaction observable afterwards.

* ``packets`` given at construction as ``(ts, frame)`` pairs (or full
  ``(ts, frame, pkt_id)`` tuples); ids are assigned ``1..n`` when the backend is
  INLINE, 0 otherwise (offline convention).
* ``verdicts``: ``[(pkt_id, Verdict)]`` in call order; ``bypass_calls``:
  ``[(FlowTuple, pkt_id)]``; ``forgotten``: flows passed to ``forget_bypassed``.
* ``bypass_result``: what ``bypass()`` returns (a bool, or a callable deciding per
  flow). With a ``flow_key`` function (frame → ``FlowTuple`` or None, supplied by the
  test so this module stays engine-free) packets of capture-bypassed flows are no
  longer yielded, like a kernel filter would do, and are counted per flow for
  ``bypassed_flow_counters``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import ClassVar

from capture_backends.base import (
    LINKTYPE_ETHERNET,
    BaseBackend,
    BypassCounters,
    Capability,
    CaptureStats,
    FlowTuple,
    RawPacket,
    Verdict,
)

FlowKeyFunc = Callable[[bytes], FlowTuple | None]


def _canonical(flow: FlowTuple) -> tuple[object, ...]:
    a = (flow.src, flow.sport)
    b = (flow.dst, flow.dport)
    lo, hi = (a, b) if a <= b else (b, a)
    return (lo, hi, flow.proto, flow.vlan)


class MemoryBackend(BaseBackend):
    """A scripted capture source for tests."""

    name: ClassVar[str] = "memory"

    def __init__(
        self,
        packets: Iterable[tuple[float, bytes] | tuple[float, bytes, int]],
        *,
        linktype: int = LINKTYPE_ETHERNET,
        capabilities: Capability = Capability.OFFLINE,
        bypass_result: bool | Callable[[FlowTuple], bool] = False,
        flow_key: FlowKeyFunc | None = None,
        counters: dict[FlowTuple, BypassCounters] | None = None,
    ) -> None:
        self.linktype = linktype
        self.capabilities = capabilities
        self.bypass_result = bypass_result
        self.flow_key = flow_key
        inline = Capability.INLINE in capabilities
        items: list[RawPacket] = []
        for i, item in enumerate(packets):
            ts, data = item[0], item[1]
            pkt_id = item[2] if len(item) > 2 else (i + 1 if inline else 0)
            items.append((float(ts), bytes(data), int(pkt_id)))
        self._packets: Sequence[RawPacket] = items
        self.verdicts: list[tuple[int, Verdict]] = []
        self.bypass_calls: list[tuple[FlowTuple, int]] = []
        self.forgotten: list[FlowTuple] = []
        self.closed = False
        self.counters_override = counters or {}
        self._bypassed: dict[tuple[object, ...], list[int]] = {}
        self.withheld = 0
        self._stats = {"ok4": 0, "fail4": 0, "ok6": 0, "fail6": 0}

    def packets(self) -> Iterator[RawPacket]:
        for raw in self._packets:
            if self.closed:
                return
            if self._bypassed and self.flow_key is not None:
                key = self.flow_key(bytes(raw[1]))
                if key is not None:
                    counts = self._bypassed.get(_canonical(key))
                    if counts is not None:
                        counts[0] += 1
                        counts[1] += len(raw[1])
                        self.withheld += 1
                        if Capability.INLINE in self.capabilities:
                            self.verdicts.append((raw[2], Verdict.ACCEPT))
                        continue
            yield raw

    def verdict(self, pkt_id: int, verdict: Verdict) -> None:
        self.verdicts.append((pkt_id, verdict))

    def bypass(self, flow: FlowTuple, pkt_id: int) -> bool:
        self.bypass_calls.append((flow, pkt_id))
        result = self.bypass_result
        ok = bool(result(flow)) if callable(result) else bool(result)
        v6 = len(flow.src) == 16
        self._stats[("ok" if ok else "fail") + ("6" if v6 else "4")] += 1
        if ok:
            self._bypassed.setdefault(_canonical(flow), [0, 0])
        return ok

    def bypassed_flow_counters(self, flow: FlowTuple) -> BypassCounters | None:
        if flow in self.counters_override:
            return self.counters_override[flow]
        counts = self._bypassed.get(_canonical(flow))
        if counts is None:
            return None
        return BypassCounters(counts[0], counts[1], 0, 0)

    def forget_bypassed(self, flow: FlowTuple) -> None:
        self.forgotten.append(flow)
        self._bypassed.pop(_canonical(flow), None)

    def stats(self) -> CaptureStats:
        s = self._stats
        return CaptureStats(
            kernel_packets=len(self._packets),
            kernel_drops=0,
            errors=0,
            bypass_v4_success=s["ok4"],
            bypass_v4_fail=s["fail4"],
            bypass_v6_success=s["ok6"],
            bypass_v6_fail=s["fail6"],
        )

    def close(self) -> None:
        self.closed = True
