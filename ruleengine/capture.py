"""The contract between the engine and its capture backends: the one small interface
every backend implements and the vocabulary both sides share (link types, verdicts,
capabilities, the bypass flow tuple, capture counters).

The engine owns it and imports nothing else from the capture side; backends import
this module (through ``capture_backends.base``, which adds their shared defaults) and
never any other part of the engine. This module imports nothing from ruleengine, so
it sits below every layer. The CLI picks a backend from ``capture_backends.BACKENDS``
and hands it to ``ruleengine.pipeline``; an in-memory backend
(``capture_backends.memory``) drives the engine in unit tests.
Data crosses the boundary as plain tuples and ints so the hot path allocates nothing
it does not need:

* a packet is ``(ts, data, pkt_id)``: capture time in seconds (float, wall clock),
  the frame bytes starting at the link header given by ``backend.linktype``, and an
  opaque id the engine passes back to ``verdict``/``bypass`` (``0`` when the backend
  is not inline); live backends yield an *idle tick* ``(now, b"", 0)`` at least every
  few hundred milliseconds while no packets arrive, so the engine can run its timers
  (flow timeouts, bypassed-flow polling, stats) and notice a stop request; idle ticks
  get no verdict;
* a flow is a ``FlowTuple``: the 5-tuple of the packet that triggered the bypass,
  in that packet's direction. Backends canonicalise it themselves (one kernel map
  entry covers both directions).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar, NamedTuple, Protocol, runtime_checkable

# Link types (pcap LINKTYPE_* values) the decoder understands.
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_C_HDLC = 104  # Cisco HDLC
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
# Old/BSD DLT values some writers put in pcap headers for raw IP.
DLT_RAW_12 = 12
DLT_RAW_14 = 14
# The link types whose frames start with the IP header (the version nibble says which):
# one set for the decoder's link table and ruleengine.rawflow.
RAW_IP_LINKTYPES = frozenset((LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6, DLT_RAW_12, DLT_RAW_14))

# Ethernet types and VLAN tags every reader of raw frames (the decoder, ruleengine.rawflow)
# agrees on, so that they find the same IP header in the same frame.
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
VLAN_TPIDS = frozenset((0x8100, 0x88A8, 0x9100, 0x9200))
MAX_VLAN_LAYERS = 3

RawPacket = tuple[float, bytes | memoryview, int]
"""``(ts, data, pkt_id)`` as yielded by ``CaptureBackend.packets``."""


class Capability(enum.Flag):
    """What a backend can do; the engine adapts (e.g. local bypass without BYPASS)."""

    NONE = 0
    OFFLINE = enum.auto()  # reads a file: no real time, no verdicts
    LIVE = enum.auto()  # captures from an interface
    INLINE = enum.auto()  # every packet needs a verdict (IPS)
    BYPASS = enum.auto()  # bypass() can make the kernel stop delivering a flow
    BYPASS_COUNTERS = enum.auto()  # bypassed_flow_counters() reports per-flow kernel counters
    BYPASS_PINNED = enum.auto()  # bypass entries outlive the run (pinned tables): kept at exit


class Verdict(enum.IntEnum):
    """Per-packet decision for inline backends."""

    ACCEPT = 0
    DROP = 1


class FlowTuple(NamedTuple):
    """A flow's 5-tuple as seen on one packet. Addresses are packed bytes (4 or 16)."""

    src: bytes
    dst: bytes
    sport: int
    dport: int
    proto: int
    vlan: tuple[int, ...] = ()


class BypassCounters(NamedTuple):
    """Kernel-side counters of one bypassed flow (both directions summed where the
    backend cannot split them; ``*_toclient`` are then 0)."""

    pkts_toserver: int
    bytes_toserver: int
    pkts_toclient: int
    bytes_toclient: int


@dataclass(frozen=True)
class CaptureStats:
    """Counters for the ``capture`` section of the stats event."""

    kernel_packets: int = 0
    kernel_drops: int = 0
    errors: int = 0
    bypass_v4_success: int = 0
    bypass_v4_fail: int = 0
    bypass_v6_success: int = 0
    bypass_v6_fail: int = 0
    # packets of already-bypassed flows the backend recognised by their flow key and kept
    # from the engine (still in the ring / queue when the bypass was set)
    bypass_fast_path_pkts: int = 0
    # backend-specific counters, written as ``capture.<name>`` (e.g. NFQ's fail-open accepts)
    extra: tuple[tuple[str, int], ...] = ()


class BackendUnavailable(Exception):
    """Raised by a backend's constructor/open when the host cannot run it
    (no root, missing kernel feature, missing library). The message says why."""


@runtime_checkable
class CaptureBackend(Protocol):
    name: ClassVar[str]
    capabilities: Capability
    linktype: int

    def packets(self) -> Iterator[RawPacket]:
        """Yield packets until the source ends (pcap) or ``close()`` is called (live)."""
        ...

    def verdict(self, pkt_id: int, verdict: Verdict) -> None:
        """Give the verdict for one packet. No-op unless INLINE. Exactly once per packet."""
        ...

    def bypass(self, flow: FlowTuple, pkt_id: int) -> bool:
        """Ask the capture layer to stop delivering ``flow``.

        ``pkt_id`` is the triggering packet (NFQ marks that packet's verdict).
        Returns True when the capture layer took it (capture bypass), False when
        it cannot (no support, map full): the engine then bypasses locally.
        """
        ...

    def bypassed_flow_counters(self, flow: FlowTuple) -> BypassCounters | None:
        """Current kernel counters for a capture-bypassed flow (None if unknown)."""
        ...

    def forget_bypassed(self, flow: FlowTuple) -> None:
        """Remove the kernel state of a bypassed flow (its timeout expired)."""
        ...

    def adopted_bypassed(self) -> list[FlowTuple]:
        """Flows the capture layer bypasses since before this run (tables pinned by a previous
        run): the engine has no flow for them, only times them out."""
        ...

    def fast_path_counters(self, flow: FlowTuple) -> BypassCounters | None:
        """The packets of a capture-bypassed flow that reached user space (the kernel did not
        bypass them: already in the ring or queue, or the kernel is not honouring the bypass)
        and that the backend kept from the engine by their flow key, undecoded. None when
        the backend has no such fast path or does not hold the flow."""
        ...

    def fast_path_until(self, flow: FlowTuple, ts: float) -> None:
        """Let the fast path take packets of ``flow`` stamped up to ``ts`` only: later ones
        reach the engine, which decides whether the kernel is honouring the bypass."""
        ...

    def stats(self) -> CaptureStats:
        """Kernel packet/drop counters and bypass insert successes/failures."""
        ...

    def close(self) -> None:
        """Release everything (detach programs, unbind queues). Idempotent."""
        ...
