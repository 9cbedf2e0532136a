"""What every capture backend shares: the engine's contract (re-exported from
``ruleengine.capture``, the only engine module a backend may import) and the defaults for
its optional parts (``BaseBackend``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from ruleengine.capture import (
    LINKTYPE_ETHERNET as LINKTYPE_ETHERNET,
)
from ruleengine.capture import (
    LINKTYPE_IPV4 as LINKTYPE_IPV4,
)
from ruleengine.capture import (
    LINKTYPE_IPV6 as LINKTYPE_IPV6,
)
from ruleengine.capture import (
    LINKTYPE_LINUX_SLL as LINKTYPE_LINUX_SLL,
)
from ruleengine.capture import (
    LINKTYPE_LINUX_SLL2 as LINKTYPE_LINUX_SLL2,
)
from ruleengine.capture import (
    LINKTYPE_LOOP as LINKTYPE_LOOP,
)
from ruleengine.capture import (
    LINKTYPE_NULL as LINKTYPE_NULL,
)
from ruleengine.capture import (
    LINKTYPE_RAW as LINKTYPE_RAW,
)
from ruleengine.capture import (
    BackendUnavailable as BackendUnavailable,
)
from ruleengine.capture import (
    BypassCounters as BypassCounters,
)
from ruleengine.capture import (
    Capability as Capability,
)
from ruleengine.capture import (
    CaptureBackend as CaptureBackend,
)
from ruleengine.capture import (
    CaptureStats as CaptureStats,
)
from ruleengine.capture import (
    FlowTuple as FlowTuple,
)
from ruleengine.capture import (
    RawPacket as RawPacket,
)
from ruleengine.capture import (
    Verdict as Verdict,
)


class BaseBackend:
    """Defaults for the optional parts of the interface (offline, no bypass)."""

    name: ClassVar[str] = "base"
    capabilities: Capability = Capability.NONE
    linktype: int = LINKTYPE_ETHERNET

    def verdict(self, pkt_id: int, verdict: Verdict) -> None:
        return None

    def bypass(self, flow: FlowTuple, pkt_id: int) -> bool:
        return False

    def bypassed_flow_counters(self, flow: FlowTuple) -> BypassCounters | None:
        return None

    def forget_bypassed(self, flow: FlowTuple) -> None:
        return None

    def adopted_bypassed(self) -> list[FlowTuple]:
        return []

    def fast_path_counters(self, flow: FlowTuple) -> BypassCounters | None:
        return None

    def fast_path_until(self, flow: FlowTuple, ts: float) -> None:
        return None

    def stats(self) -> CaptureStats:
        return CaptureStats()

    def close(self) -> None:
        return None


BackendOptions = Mapping[str, object]
