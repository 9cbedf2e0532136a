"""Reconciled accounting of a bypassed flow, and its attribution counters.

When a bypassed flow ends (timeout, eviction or shutdown) its packets are checked::

    wire = inspected + leaked + bypassed

* ``wire``: the flow's totals (every packet the flow table counted, plus what the kernel
  counted for a capture bypass, added by ``BypassManager.flow_ended``);
* ``inspected``: what the flow had when the bypass was set (``Flow.mark_inspected``);
* ``leaked``: packets of a capture-bypassed flow that still reached user space after the
  bypass was set (in flight, or the capture did not take them: ``Flow.count_leaked``);
* ``bypassed``: the flow's ``bypassed{}`` counters (the kernel's for a capture bypass; the
  packets seen but not inspected for a local bypass).

Each side is counted on a different path (flow table, bypass manager, kernel map), so a
packet counted twice or missed shows up as a mismatch (``flow_bypassed.accounting.mismatch``).

Attribution: what each bypass reason and each bypass rule saved, in the stats
(``flow_bypassed.by_reason.<reason>.*``, ``flow_bypassed.by_sid.<sid>.*``). ``pkts`` and
``bytes`` are the bypassed ones; for a capture bypass they never reached user space.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ruleengine.flow.table import BYPASS_CAPTURE, Flow
from ruleengine.outputs.stats import Stats


@dataclass(frozen=True)
class Accounting:
    wire_pkts: int
    wire_bytes: int
    inspected_pkts: int
    inspected_bytes: int
    leaked_pkts: int
    leaked_bytes: int
    bypassed_pkts: int
    bypassed_bytes: int

    @property
    def ok(self) -> bool:
        return (self.wire_pkts == self.inspected_pkts + self.leaked_pkts + self.bypassed_pkts
                and self.wire_bytes
                == self.inspected_bytes + self.leaked_bytes + self.bypassed_bytes)

    def as_flowvar(self, mode: str) -> dict[str, Any]:
        """The flow event's ``bypass_accounting`` flowvar (EVE's flow object has no field
        for it; flowvars take any object)."""
        return {"mode": mode, "inspected_pkts": self.inspected_pkts,
                "inspected_bytes": self.inspected_bytes, "leaked_pkts": self.leaked_pkts,
                "leaked_bytes": self.leaked_bytes, "reconciled": self.ok}


def reconcile(flow: Flow) -> Accounting:
    return Accounting(
        wire_pkts=flow.pkts_toserver + flow.pkts_toclient,
        wire_bytes=flow.bytes_toserver + flow.bytes_toclient,
        inspected_pkts=flow.inspected_pkts,
        inspected_bytes=flow.inspected_bytes,
        leaked_pkts=flow.leaked_pkts,
        leaked_bytes=flow.leaked_bytes,
        bypassed_pkts=flow.bypassed_pkts_toserver + flow.bypassed_pkts_toclient,
        bypassed_bytes=flow.bypassed_bytes_toserver + flow.bypassed_bytes_toclient,
    )


def reason_and_sid(bypass_reason: str | None) -> tuple[str, int | None]:
    """``rule:<sid>`` -> ("rule", sid); other reasons have no sid."""
    reason = bypass_reason or "unknown"
    kind, _, rest = reason.partition(":")
    return kind, (int(rest) if kind == "rule" and rest.isdigit() else None)


def account(stats: Stats, flow: Flow) -> Accounting:
    """Check the ended bypassed flow's accounting and add it to the attribution counters."""
    acct = reconcile(flow)
    stats.incr("flow_bypassed.accounting.ok" if acct.ok else "flow_bypassed.accounting.mismatch")
    if acct.leaked_pkts:
        stats.incr("flow_bypassed.leaked_flows")
    reason, sid = reason_and_sid(flow.bypass_reason)
    prefixes = [f"flow_bypassed.by_reason.{reason}"]
    if sid is not None:
        prefixes.append(f"flow_bypassed.by_sid.{sid}")
    for prefix in prefixes:
        stats.incr(prefix + ".flows")
        stats.incr(prefix + ".pkts", acct.bypassed_pkts)
        stats.incr(prefix + ".bytes", acct.bypassed_bytes)
        stats.incr(prefix + ".leaked_pkts", acct.leaked_pkts)
        stats.incr(prefix + ".leaked_bytes", acct.leaked_bytes)
    return acct


def mode_name(flow: Flow) -> str:
    return "capture" if flow.bypass == BYPASS_CAPTURE else "local"
