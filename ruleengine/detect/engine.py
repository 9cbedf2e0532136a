"""The detection engine: rule ordering, grouping, prefilter and per-rule inspection.

Flow of one packet (``inspect_packet``) or one HTTP transaction (``inspect_tx``):

1. the rule group of the packet's IP protocol (or of the transaction direction);
2. the prefilter: one multi-pattern scan per buffer gives the rules whose fast pattern is
   present, plus the rules that have no usable fast pattern (always candidates);
3. per candidate: header, app-layer protocol, then the rule's match list (``CRule.matches``:
   each keyword's own compiled test, ``flow``, packet keywords, flowbits, xbits, flowint,
   stream_size, variables, see ``keywords.registry``), then the buffers (content
   inspection engine);
4. post-match: the keywords' post-match steps (flowbits, xbits, flowint commands) right
   away (later rules see them), then thresholds, ``noalert`` and the ``pass`` cut-off when
   the match list is finalised.

The parts: ``crule.py`` (a compiled rule), ``ordering.py``, ``groups.py`` (groups and
prefilter), ``packet_inspect.py`` and ``tx_inspect.py`` (the two paths, combined here),
``state.py`` (what both share), ``flow_state.py`` (``flow.detect``).

Ordering follows ``src/detect-engine-sigorder.c``: action (pass, drop, reject, alert),
flowbits (setters before checkers), priority, then load order.

Use per packet (after stream reassembly and HTTP parsing)::

    matches = engine.inspect_packet(pkt, flow, to_server, stream_chunk)
    for tx in changed_transactions:
        matches += engine.inspect_tx(pkt, flow, to_server, tx, req_done, resp_done)
    for m in matches:   # firing order; m.alert False -> act but do not log
        ...             # m.apply_to_flow -> drop/pass the rest of the flow

or ``engine.inspect(pkt, flow, to_server, stream_chunk, [(tx, req_done, resp_done)])``
for both in one ordered list. Per-flow state lives in ``flow.detect``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from ruleengine.detect import content as ci
from ruleengine.detect.alproto import canonical_alproto
from ruleengine.detect.conditions import FlowLike
from ruleengine.detect.context import PacketCtx
from ruleengine.detect.crule import CRule, HeaderTable, SkipRule, skip_reason
from ruleengine.detect.flow_state import FlowState, printable, split_traffic_bits
from ruleengine.detect.groups import GROUP_KEYS, Group, in_proto_group
from ruleengine.detect.ordering import RuleAnalysis, action_ranks, analysis_of, order_key
from ruleengine.detect.packet_inspect import PacketInspector
from ruleengine.detect.pcre import PcreCompileError
from ruleengine.detect.prefilter import resolve_backend
from ruleengine.detect.state import RawMatch
from ruleengine.detect.tag import TagTable
from ruleengine.detect.threshold import ThresholdTable, track_key
from ruleengine.detect.trace import RuleTrace
from ruleengine.detect.tx_inspect import TxInspector, TxLike, get_buffer
from ruleengine.detect.xbits import XbitsTable
from ruleengine.keywords import flowint as fi
from ruleengine.rules.model import Action, Rule

__all__ = [
    "CRule",
    "DetectEngine",
    "Match",
    "RuleAnalysis",
    "TxLike",
    "action_ranks",
    "canonical_alproto",
    "get_buffer",
]


class Match(NamedTuple):
    """One matched rule, in firing order.

    ``alert``: False when the rule matched but must not be logged (``noalert``,
    ``flowbits:noalert``, a threshold that keeps the action but silences the alert, and
    always for ``pass``, which Suricata never logs); drop/reject/pass still apply. A pass
    match is the last of the list (lower-order rules are cut off).
    ``apply_to_flow``: a drop or pass that Suricata applies to the whole flow (IP-only and
    app-layer rules, stream and transaction matches). ``stream``: matched on reassembled
    stream data.
    """

    rule: Rule
    tx_id: int | None
    to_server: bool
    alert: bool = True
    apply_to_flow: bool = False
    stream: bool = False



class DetectEngine(PacketInspector, TxInspector):
    """Evaluates loaded rules on packets and HTTP transactions.

    ``mpm``: ``"auto"`` (hyperscan if importable, else Aho-Corasick), ``"hs"``, ``"ac"``.
    ``prefilter=False`` inspects every rule of the group (reference mode for tests).
    ``packet_alert_max``: alerts logged per packet (Suricata's ``packet-alert-max``, 15).
    State caps: ``xbits_max`` hosts + IP pairs holding xbits, ``tag_max_hosts`` hosts
    holding tags, ``tag_max_per_key`` tags per flow/host, ``flowint_max`` flowints and
    ``flowvar_max`` flowvars per flow.
    """

    def __init__(
        self,
        rules: Sequence[Rule],
        *,
        mpm: str = "auto",
        prefilter: bool = True,
        packet_alert_max: int = 15,
        xbits_max: int = 65536,
        tag_max_hosts: int = 16384,
        tag_max_per_key: int = 50,
        flowint_max: int = fi.MAX_VARS,
        flowvar_max: int = 256,
        action_order: Sequence[str] = ("pass", "drop", "reject", "alert"),
    ) -> None:
        self.mpm_backend = resolve_backend(mpm)
        self._prefilter = prefilter
        self.packet_alert_max = packet_alert_max  # suricata.yaml packet-alert-max
        self.alerts_discarded = 0  # matches over the limit: acted on, not logged
        self.skipped: list[tuple[Rule, str]] = []
        self.thresholds = ThresholdTable()
        self.errors = 0  # internal errors caught while inspecting (should stay 0)
        self.getter_errors = 0  # buffer getters / tx keywords that hostile data broke
        self.last_error: str | None = None
        self.xbits = XbitsTable(xbits_max)
        self.tags = TagTable(tag_max_hosts, tag_max_per_key)
        self.flowint_max = max(1, flowint_max)
        self.flowvar_max = max(1, flowvar_max)
        self.tagged_packets = 0
        # rule reloads: this engine's generation and, after adopt_state(), the previous
        # generation with its rule index -> this engine's index of the same rule
        self.generation = 0
        self._renumbered: tuple[int, dict[int, int]] = (0, {})
        # packet variables (pcre pkt_ captures) of the packet being inspected
        self._pktvars: tuple[object, dict[str, bytes]] | None = None
        # transformed buffer key -> (plain buffer name, transform chain)
        self._chains: dict[str, tuple[str, tuple[Any, ...]]] = {}
        compiled: list[CRule] = []
        headers = HeaderTable()
        for idx, rule in enumerate(rules):
            reason = skip_reason(rule)
            if reason is None:
                try:
                    compiled.append(CRule(rule, idx, headers))
                except (SkipRule, ci.CompileError, PcreCompileError) as exc:
                    reason = str(exc)
                except Exception as exc:  # hostile rule data must never escape
                    reason = f"cannot compile: {exc!r}"
            if reason is not None:
                self.skipped.append((rule, reason))
        self._compiled = tuple(compiled)  # load order, for analysis()
        ranks = action_ranks(action_order)
        self.rules: list[CRule] = sorted(compiled, key=lambda cr: order_key(cr, ranks))
        for cr in self.rules:
            for cb, _, _ in cr.tx_bufs:
                if cb.transforms:
                    self._chains[cb.key] = (cb.name, cb.transforms)
        for order, cr in enumerate(self.rules):
            cr.idx = order  # firing order from now on
        pkt_rules = [cr for cr in self.rules if not cr.is_tx]
        self._pkt_groups: dict[int, Group] = {}
        for key in GROUP_KEYS:
            members = [cr for cr in pkt_rules if in_proto_group(cr, key)]
            self._pkt_groups[key] = Group(members, self.mpm_backend, prefilter)
        self._keep_raw_stream = any(cr.is_tx and cr.payload is not None for cr in self.rules)
        # tx rules per (app-layer protocol, direction): a transaction only meets the rules
        # of its own protocol (Suricata's per-alproto inspect engines)
        self._tx_groups: dict[tuple[str, bool], Group] = {}
        for alproto in sorted({cr.alproto for cr in self.rules if cr.is_tx}):
            for d in (True, False):
                members = [cr for cr in self.rules
                           if cr.is_tx and cr.alproto == alproto and d in cr.tx_dirs]
                if members:
                    self._tx_groups[(alproto, d)] = Group(members, self.mpm_backend, prefilter)

    # ------------------------------------------------------------------ public API

    def adopt_state(self, old: DetectEngine) -> None:
        """Take over the running engine's state at a rule reload (this engine was built
        beside it): thresholds of the rules both sets have, xbits, tags and counters.
        Per-flow state (flowbits, flowints, flowvars, which rule fired on which
        transaction) lives on the flows and is renumbered lazily, at the flow's next
        inspection (``_state``)."""
        new_ids = {_rule_identity(cr.rule): cr.idx for cr in self.rules}
        renumber = {cr.idx: new_ids[key] for cr in old.rules
                    if (key := _rule_identity(cr.rule)) in new_ids}
        self.thresholds = old.thresholds.remapped(renumber)
        self.xbits = old.xbits
        self.tags = old.tags
        self.tagged_packets = old.tagged_packets
        self.alerts_discarded = old.alerts_discarded
        self.errors = old.errors
        self.getter_errors = old.getter_errors
        self.generation = old.generation + 1
        self._renumbered = (old.generation, renumber)


    def inspect_packet(
        self,
        pkt: Any,
        flow: FlowLike | None,
        to_server: bool,
        stream_chunk: bytes | None = None,
        stream_add: bool | None = None,
    ) -> list[Match]:
        """Packet and stream rules. ``stream_chunk``: newly reassembled stream data of
        this direction (TCP); stream rules inspect it first. ``b""``: nothing to inspect
        as stream yet. ``stream_add``: the packet's payload was added to the stream
        (Suricata's PKT_STREAM_ADD; default: whenever ``stream_chunk`` is given): a
        stream-only rule then skips the packet payload, which it is inspected in later."""
        if getattr(pkt, "invalid", False):
            return []
        try:
            raw = self._packet_raw(PacketCtx(pkt, self), flow, to_server, stream_chunk,
                                   stream_add)
            out = self._finalize(raw, pkt, flow)
        except Exception as exc:  # never let a detection bug take the pipeline down
            self._internal_error(exc)
            return []
        state = self._state(flow)
        if state is not None:
            cut = next((m for m in out if m.rule.action is Action.PASS), None)
            state.pass_cut = (pkt, _rule_pos(self, cut.rule)) if cut is not None else None
        return out

    def inspect_tx(
        self,
        pkt: Any,
        flow: FlowLike,
        to_server: bool,
        tx: TxLike,
        tx_complete_toserver: bool,
        tx_complete_toclient: bool,
    ) -> list[Match]:
        """App-layer (HTTP) rules on one transaction, for the direction of ``pkt``.
        Each rule fires at most once per (transaction, direction); rules whose buffers
        are not available yet are tried again on later calls."""
        try:
            raw = self._tx_raw(PacketCtx(pkt, self), flow, to_server, tx,
                               tx_complete_toserver, tx_complete_toclient)
            state = self._state(flow)
            if state is not None and state.pass_cut is not None and state.pass_cut[0] is pkt:
                limit = state.pass_cut[1]  # a pass in this packet's packet rules
                raw = [m for m in raw if m.cr.idx < limit]
            return self._finalize(raw, pkt, flow)
        except Exception as exc:
            self._internal_error(exc)
            return []

    def inspect(
        self,
        pkt: Any,
        flow: FlowLike | None,
        to_server: bool,
        stream_chunk: bytes | None = None,
        txs: Sequence[tuple[TxLike, bool, bool]] = (),
        stream_add: bool | None = None,
    ) -> list[Match]:
        """Packet rules and the given transactions ``(tx, complete_ts, complete_tc)``
        in one pass, so ``pass`` and rule order apply across both (preferred).
        ``stream_chunk`` / ``stream_add``: as for ``inspect_packet``."""
        if getattr(pkt, "invalid", False):
            return []
        try:
            ctx = PacketCtx(pkt, self)
            raw = self._packet_raw(ctx, flow, to_server, stream_chunk, stream_add)
            if flow is not None:
                for tx, done_ts, done_tc in txs:
                    raw.extend(self._tx_raw(ctx, flow, to_server, tx, done_ts, done_tc))
            raw.sort(key=lambda m: m.cr.idx)
            return self._finalize(raw, pkt, flow)
        except Exception as exc:
            self._internal_error(exc)
            return []

    def trace_rule(self, trace: RuleTrace) -> bool:
        """Report every evaluation of the rule ``trace.gid:trace.sid`` to ``trace``
        (``ruleengine explain``). The rule skips the prefilter and the quick substring
        test, both necessary conditions only, so each packet and transaction reaches its
        checks and the results stay the same. False when no loaded rule has that id."""
        found = False
        for cr in self.rules:
            if cr.rule.sid == trace.sid and cr.rule.gid == trace.gid:
                cr.trace = trace
                cr.quick = ()
                found = True
                for group in (*self._pkt_groups.values(), *self._tx_groups.values()):
                    group.skip_prefilter(cr)
        return found

    def analysis(self) -> list[RuleAnalysis]:
        """Every evaluated rule as the engine runs it, in load order (the skipped ones
        are in ``skipped``); the fast pattern is the one the prefilter was built with."""
        return [analysis_of(cr, self._prefilter) for cr in self._compiled]

    def counters(self) -> dict[str, int]:
        """Detection counters for the stats output."""
        return {
            "detect.rules_loaded": len(self.rules),
            "detect.rules_skipped": len(self.skipped),
            "detect.alerts_discarded": self.alerts_discarded,
            "detect.internal_errors": self.errors,
            "detect.getter_errors": self.getter_errors,
            "detect.xbits_entries": len(self.xbits),
            "detect.xbits_evicted": self.xbits.evicted,
            "detect.tag_hosts": len(self.tags.hosts),
            "detect.tagged_packets": self.tagged_packets,
        }

    # ------------------------------------------------------------------ tags, variables

    def tag_packet(self, pkt: Any, flow: FlowLike | None) -> bool:
        """Is ``pkt`` tagged by an earlier alert's ``tag`` (session or host)? Call once per
        wire packet, after its detection (Suricata's TagHandlePacket)."""
        if not self.tags.active or getattr(pkt, "pseudo", False):
            return False
        try:
            state = self._state(flow)
            tagged = self.tags.handle_packet(pkt, state.tags if state is not None else None)
        except Exception as exc:
            self._internal_error(exc)
            return False
        if tagged:
            self.tagged_packets += 1
        return tagged

    def alert_vars(self, pkt: Any, flow: FlowLike | None) -> dict[str, Any] | None:
        """EVE ``metadata`` of an alert (``EveAddMetadata``): the flow's flowbits,
        flowints and flowvars and the packet's pktvars; None when there are none."""
        out: dict[str, Any] = {}
        if flow is not None:
            bits = getattr(flow, "flowbits", None)
            if bits:
                split_traffic_bits(sorted(bits), out)
            st = flow.detect if isinstance(flow.detect, FlowState) else None
            if st is not None:
                if st.flowints:
                    out["flowints"] = dict(st.flowints)
                if st.flowvars:
                    out["flowvars"] = [{k: printable(v)} for k, v in st.flowvars.items()]
        pv = self._pktvars
        if pv is not None and pv[0] is pkt and pv[1]:
            out["pktvars"] = [{k: printable(v)} for k, v in pv[1].items()]
        return out or None



    # ------------------------------------------------------------------ finalize

    def _finalize(self, raw: Sequence[RawMatch], pkt: Any, flow: FlowLike | None) -> list[Match]:
        """Thresholds, noalert, the per-packet alert limit and the pass cut-off
        (``PacketAlertFinalize``)."""
        out: list[Match] = []
        state = self._state(flow)
        logged = 0  # alerts already logged for this packet (inspect_packet, then inspect_tx)
        if state is not None and state.alerted is not None and state.alerted[0] is pkt:
            logged = state.alerted[1]
        for m in raw:
            cr = m.cr
            rule = cr.rule
            result = 1
            for td in (rule.detection_filter, rule.threshold):
                if td is None:
                    continue
                key = track_key(td, pkt.src, pkt.dst, flow)
                if key is None:
                    continue
                r = self.thresholds.check(cr.idx, td, key, float(pkt.ts))
                if r == 0:
                    result = 0
                    break
                result = max(result, r)
            if result == 0:
                if cr.trace is not None:
                    cr.trace.finalized(cr, m.tx_id, 0, False)
                continue
            if cr.tags:  # tags are set for the matches thresholds let through
                st = self._state(flow)
                self.tags.add(rule.gid, rule.sid, cr.tags, pkt,
                              st.tags if st is not None else None)
            # a pass match is never logged (PacketAlertFinalize stops before counting it)
            alert = (
                result == 1
                and not rule.noalert
                and not cr.fb_noalert
                and rule.action is not Action.PASS
            )
            if alert:
                if logged >= self.packet_alert_max:  # packet-alert-max: discarded, acted on
                    alert = False
                    self.alerts_discarded += 1
                else:
                    logged += 1
            to_flow = rule.action in (Action.DROP, Action.PASS) and (
                cr.applies_to_flow or m.stream or m.tx_id is not None
            )
            out.append(Match(rule, m.tx_id, m.to_server, alert, to_flow, m.stream))
            if cr.trace is not None:
                cr.trace.finalized(cr, m.tx_id, result, alert)
            if rule.action is Action.PASS:
                break
        if state is not None:
            state.alerted = (pkt, logged)
        return out



def _rule_identity(rule: Rule) -> tuple[int, int, int]:
    """What makes two rules of two rule sets the same rule (Suricata: gid, sid, rev)."""
    return (rule.gid, rule.sid, rule.rev)


def _rule_pos(engine: DetectEngine, rule: Rule) -> int:
    for cr in engine.rules:
        if cr.rule is rule:
            return cr.idx
    return len(engine.rules)

