"""Following one rule through detection, for ``ruleengine explain``.

``DetectEngine.trace_rule(trace)`` hangs a :class:`RuleTrace` on the rule with the trace's
gid:sid. From then on the engine reports each evaluation of that rule whose header
matched: the first check that failed (``rejected``) or the match (``matched``), and then
what became of the match (``finalized``: an alert, or why not). The content inspection
engine reports every buffer program it ran for the rule (``inspected``), step by step.

Only the traced rule pays for this: every other rule passes the hooks with one
``is not None`` test. The trace only records; ``ruleengine.commands.explain`` explains.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ruleengine.detect.content import CompiledBuffer, ProgramSteps
from ruleengine.rules.model import Action, Rule

MATCH = "match"  # Evaluation.outcome of a match; any other outcome names the failed check
HEADER = "header"
MAX_EVALUATIONS = 50_000  # kept per trace (matches are always kept); the rest is counted
MAX_KEPT_BYTES = 1 << 20  # bytes kept of one inspected buffer


class Finalized(Protocol):
    """What ``finalized`` reads of the compiled rule (``crule.CRule``)."""

    rule: Rule
    fb_noalert: bool


@dataclass
class Inspection:
    """One buffer program run: which buffer (its key: name plus transforms, ``payload``
    for packet/stream data), the bytes, the result and the steps."""

    buffer: str
    data: bytes
    size: int  # length of the inspected buffer (``data`` keeps at most MAX_KEPT_BYTES)
    matched: bool
    steps: ProgramSteps
    program: CompiledBuffer


@dataclass
class Evaluation:
    """One evaluation of the rule on a packet (``tx`` None) or on one side of a
    transaction. ``outcome``: MATCH or the check that failed (``flow``, ``flowbits``,
    ``dsize``, ``payload``, a buffer key such as ``http.uri``, ...)."""

    packet_no: int
    ts: float
    pseudo: bool  # a flow-end pseudo packet (no wire packet)
    flow: Any
    to_server: bool
    tx: Any
    outcome: str
    stream: bool = False  # matched on reassembled stream data
    inspections: list[Inspection] = field(default_factory=list)
    alert: bool | None = None  # after finalizing a match: logged or not
    silenced: str | None = None  # why a match was not logged

    @property
    def tx_id(self) -> int | None:
        return None if self.tx is None else int(self.tx.tx_id)


class RuleTrace:
    """The record of one rule's evaluations. ``packet_no``: set by the caller before
    each packet (the pcap packet number), stamped on what that packet causes."""

    def __init__(self, sid: int, gid: int = 1) -> None:
        self.sid = sid
        self.gid = gid
        self.packet_no = 0
        self.evaluations: list[Evaluation] = []
        self.header_misses = 0  # evaluations stopped by the header (not kept)
        self.dropped = 0  # evaluations over MAX_EVALUATIONS (not kept)
        self._pending: list[Inspection] = []  # inspections of the evaluation under way

    # --- called by the detection engine ----------------------------------------------

    def inspected(self, cb: CompiledBuffer, buf: bytes, matched: bool,
                  steps: ProgramSteps) -> None:
        self._pending.append(Inspection(cb.key, bytes(buf[:MAX_KEPT_BYTES]), len(buf),
                                        matched, steps, cb))

    def rejected(self, check: str, pkt: Any, flow: Any, to_server: bool,
                 tx: Any = None) -> None:
        """The evaluation stopped at ``check`` (the name of the failed check)."""
        if check == HEADER:
            self.header_misses += 1
            self._pending = []
            return
        self._close(check, pkt, flow, to_server, tx, False)

    def matched(self, pkt: Any, flow: Any, to_server: bool, tx: Any = None,
                stream: bool = False) -> None:
        self._close(MATCH, pkt, flow, to_server, tx, stream)

    def finalized(self, cr: Finalized, tx_id: int | None, threshold: int, alert: bool) -> None:
        """What ``_finalize`` made of the match of this packet for ``tx_id``: logged, or
        not and why. ``threshold``: the threshold/detection_filter result (0: suppressed,
        1: alert, other: act without an alert)."""
        for ev in reversed(self.evaluations):
            if ev.outcome == MATCH and ev.alert is None and ev.tx_id == tx_id:
                ev.alert = alert
                ev.silenced = None if alert else _silenced(cr, threshold)
                return

    # --- internals -------------------------------------------------------------------

    def _close(self, outcome: str, pkt: Any, flow: Any, to_server: bool, tx: Any,
               stream: bool) -> None:
        inspections, self._pending = self._pending, []
        if outcome != MATCH and len(self.evaluations) >= MAX_EVALUATIONS:
            self.dropped += 1
            return
        self.evaluations.append(Evaluation(
            self.packet_no, float(getattr(pkt, "ts", 0.0)), bool(getattr(pkt, "pseudo", False)),
            flow, to_server, tx, outcome, stream, inspections))


def _silenced(cr: Finalized, threshold: int) -> str:
    rule = cr.rule
    if threshold == 0:
        return "threshold"  # threshold / detection_filter suppressed the match
    if rule.action is Action.PASS:
        return "pass"
    if rule.noalert:
        return "noalert"
    if cr.fb_noalert:
        return "flowbits:noalert"
    if threshold != 1:
        return "threshold"
    return "packet-alert-max"


__all__ = ["HEADER", "MATCH", "Evaluation", "Inspection", "RuleTrace"]
