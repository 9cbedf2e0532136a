"""Flow tracking: symmetric flow table with Suricata's state-dependent timeouts."""

from ruleengine.flow.table import (
    BYPASS_CAPTURE,
    BYPASS_LOCAL,
    BYPASS_NONE,
    Flow,
    FlowTable,
    FlowTimeouts,
    ProtoTimeouts,
)

__all__ = [
    "BYPASS_CAPTURE",
    "BYPASS_LOCAL",
    "BYPASS_NONE",
    "Flow",
    "FlowTable",
    "FlowTimeouts",
    "ProtoTimeouts",
]
