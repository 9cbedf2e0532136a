from __future__ import annotations

from capture_backends import load_backend
from capture_backends.base import (
    BypassCounters,
    Capability,
    CaptureBackend,
    FlowTuple,
    Verdict,
)
from capture_backends.memory import MemoryBackend
from ruleengine.decode.decoder import Decoder
from tests.decode.frames import tcp_frame

A = tcp_frame("S", 1)
B = tcp_frame("SA", 9, 2, to_server=False)
OTHER = tcp_frame("S", 1, sport=5555)


def _key(frame: bytes) -> FlowTuple | None:
    pkt = Decoder(1).decode(0.0, frame)
    if pkt is None or not pkt.ip_version:
        return None
    return FlowTuple(pkt.src, pkt.dst, pkt.sport, pkt.dport, pkt.proto, pkt.vlan)


def test_offline_packets_and_protocol() -> None:
    backend = MemoryBackend([(1.0, A), (2.0, B)])
    assert isinstance(backend, CaptureBackend)
    assert load_backend("memory") is MemoryBackend
    assert list(backend.packets()) == [(1.0, A, 0), (2.0, B, 0)]
    assert backend.linktype == 1 and backend.capabilities == Capability.OFFLINE


def test_inline_ids_and_verdicts_recorded() -> None:
    backend = MemoryBackend([(1.0, A), (2.0, B)], capabilities=Capability.INLINE)
    ids = [pkt_id for _, _, pkt_id in backend.packets()]
    assert ids == [1, 2]
    backend.verdict(1, Verdict.ACCEPT)
    backend.verdict(2, Verdict.DROP)
    assert backend.verdicts == [(1, Verdict.ACCEPT), (2, Verdict.DROP)]


def test_explicit_ids_kept() -> None:
    backend = MemoryBackend([(1.0, A, 42)])
    assert list(backend.packets()) == [(1.0, A, 42)]


def test_bypass_result_and_stats() -> None:
    flow4 = _key(A)
    assert flow4 is not None
    flow6 = FlowTuple(b"\0" * 16, b"\1" * 16, 1, 2, 6)
    backend = MemoryBackend([], bypass_result=lambda f: len(f.src) == 4)
    assert backend.bypass(flow4, 7) is True
    assert backend.bypass(flow6, 8) is False
    assert backend.bypass_calls == [(flow4, 7), (flow6, 8)]
    stats = backend.stats()
    assert (stats.bypass_v4_success, stats.bypass_v6_fail) == (1, 1)


def test_capture_bypass_withholds_later_packets_of_the_flow() -> None:
    frames = [(1.0, A), (2.0, B), (3.0, OTHER), (4.0, A)]
    backend = MemoryBackend(
        frames,
        capabilities=Capability.BYPASS | Capability.INLINE,
        bypass_result=True,
        flow_key=_key,
    )
    it = backend.packets()
    first = next(it)
    flow = _key(first[1])
    assert flow is not None
    assert backend.bypass(flow, first[2]) is True
    rest = list(it)
    assert [ts for ts, _, _ in rest] == [3.0]  # both directions of the flow withheld
    counters = backend.bypassed_flow_counters(flow)
    assert counters is not None and counters.pkts_toserver == 2
    assert backend.withheld == 2
    assert (2, Verdict.ACCEPT) in backend.verdicts  # the kernel lets them through unseen
    backend.forget_bypassed(flow)
    assert backend.bypassed_flow_counters(flow) is None and backend.forgotten == [flow]


def test_counters_override_and_close() -> None:
    flow = FlowTuple(b"\1\2\3\4", b"\5\6\7\10", 1, 2, 17)
    backend = MemoryBackend([(1.0, A), (2.0, B)], counters={flow: BypassCounters(5, 500, 1, 100)})
    assert backend.bypassed_flow_counters(flow) == BypassCounters(5, 500, 1, 100)
    it = backend.packets()
    next(it)
    backend.close()
    assert list(it) == [] and backend.closed
