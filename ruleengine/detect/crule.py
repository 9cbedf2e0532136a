"""A rule compiled for evaluation (``CRule``): what detection needs of a parsed ``Rule``,
computed once at load time (its compiled header, buffer programs, keyword lists, flags
such as Suricata's SIG_FLAG_REQUIRE_PACKET/STREAM, IPONLY, PDONLY), and the reasons a rule
is skipped. The engine (``engine.py``) builds one per loaded rule; ``trace.py`` and
``commands/explain`` read them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ruleengine.applayer import registry
from ruleengine.buffers import BUFFERS, BufferDirection
from ruleengine.detect import content as ci
from ruleengine.detect.alproto import canonical_alproto
from ruleengine.detect.conditions import IP_VERSIONS, PROTO_NUMBERS, CompiledHeader
from ruleengine.keywords import REGISTRY
from ruleengine.keywords import transform_apply as tf
from ruleengine.keywords.applayer import APP_LAYER_EVENT
from ruleengine.keywords.packet import TX_FIELDS, packet_condition_supported
from ruleengine.keywords.registry import MatchStep, PostmatchStep, StepCache
from ruleengine.rules.model import (
    PAYLOAD,
    Absent,
    Action,
    ContentMatch,
    Direction,
    Flowbit,
    FlowbitCmd,
    FlowCondition,
    IntCondition,
    PacketCondition,
    Rule,
    TxCondition,
    VarCheck,
)

if TYPE_CHECKING:
    from ruleengine.detect.trace import RuleTrace

ACTION_RANK = {
    Action.PASS: 0,
    Action.DROP: 1,
    Action.REJECT: 2,
    Action.REJECTSRC: 2,
    Action.REJECTDST: 2,
    Action.REJECTBOTH: 2,
    Action.ALERT: 3,
}


_MATCH_SETUPS = REGISTRY.match_setups()
_POSTMATCH_SETUPS = REGISTRY.postmatch_setups()
_Step = TypeVar("_Step")


def _compiled(setups: tuple[Callable[[Rule], tuple[_Step, ...]], ...],
              rule: Rule) -> tuple[_Step, ...]:
    """The steps of every setup for the rule, in setup order. The keywords share their
    steps between rules (``StepCache``); so do rules whose whole list is the same, so
    the engine adds few objects per rule for the garbage collector to walk."""
    parts = [steps for setup in setups if (steps := setup(rule))]
    if len(parts) <= 1:
        return parts[0] if parts else ()
    key = tuple(parts)
    return _LISTS.get(key, lambda: tuple(step for steps in parts for step in steps))  # type: ignore[no-any-return]


_LISTS: StepCache[Any] = StepCache()


class SkipRule(Exception):
    pass


class HeaderTable:
    """Interns identical rule headers: thousands of rules share a handful of headers
    (``$HOME_NET any -> $EXTERNAL_NET $HTTP_PORTS``), so a packet tests each once."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[object, ...], CompiledHeader] = {}

    def get(self, rule: Rule) -> CompiledHeader:
        both = rule.direction is Direction.BOTH
        protos = PROTO_NUMBERS.get(rule.protocol, ())
        version = IP_VERSIONS.get(rule.protocol, 0)
        key = (protos, version, rule.src, rule.src_ports, rule.dst, rule.dst_ports, both)
        header = self._by_key.get(key)
        if header is None:
            header = CompiledHeader(
                protos, rule.src, rule.src_ports, rule.dst, rule.dst_ports, both
            )
            header.hid = len(self._by_key)
            header.ip_version = IP_VERSIONS.get(rule.protocol, 0)
            self._by_key[key] = header
        return header


# packet keywords whose setup sets SIG_FLAG_REQUIRE_PACKET in Suricata (detect-dsize.c,
# detect-tcp-flags.c, detect-ttl.c, detect-tcp-seq.c): their rule inspects the packet
# payload only, never the stream (a `flags:S; content` rule sees a TCP Fast Open SYN's data)
_PACKET_KEYWORDS = frozenset({"dsize", "tcp.flags", "ttl", "seq"})


class CRule:
    """A rule compiled for evaluation (positions, compiled buffers, flags)."""

    __slots__ = (
        "alproto",
        "alproto_conds",
        "fb_actions",
        "fb_checks",
        "fb_noalert",
        "fi_actions",
        "fi_checks",
        "flow",
        "header",
        "idx",
        "iponly",
        "is_tx",
        "matches",
        "mixed",
        "needs_data",
        "only_stream",
        "payload",
        "pd_once",
        "pf_cond",
        "pkt_conds",
        "postmatches",
        "quick",
        "require_packet",
        "require_stream",
        "rule",
        "stateful",
        "stream_size",
        "tags",
        "trace",
        "transactional",
        "tx_alproto_check",
        "tx_bufs",
        "tx_conds",
        "tx_dirs",
        "tx_keywords",
        "var_checks",
        "xb_actions",
        "xb_checks",
    )  # fmt: skip

    def __init__(self, rule: Rule, idx: int, headers: HeaderTable) -> None:
        self.rule = rule
        self.idx = idx
        self.header = headers.get(rule)
        self.alproto_conds = _alproto_conditions(rule)
        self.flow: FlowCondition | None = rule.flow
        self.fb_checks: tuple[Flowbit, ...] = tuple(f for f in rule.flowbits if f.is_check)
        self.fb_actions: tuple[Flowbit, ...] = tuple(
            f
            for f in rule.flowbits
            if f.cmd in (FlowbitCmd.SET, FlowbitCmd.UNSET, FlowbitCmd.TOGGLE)
        )
        self.fb_noalert = any(f.cmd is FlowbitCmd.NOALERT for f in rule.flowbits)
        self.pkt_conds: tuple[PacketCondition, ...] = tuple(
            c for c in rule.packet_conditions if c.field not in TX_FIELDS
        )
        self.tx_conds: tuple[PacketCondition, ...] = tuple(
            c for c in rule.packet_conditions if c.field in TX_FIELDS
        )
        self.xb_checks = tuple(x for x in rule.xbits if x.is_check)
        self.xb_actions = tuple(x for x in rule.xbits if not x.is_check)
        self.fi_checks = tuple(f for f in rule.flowints if f.is_check)
        self.fi_actions = tuple(f for f in rule.flowints if not f.is_check)
        self.stream_size = tuple(rule.stream_size)
        self.var_checks: tuple[VarCheck, ...] = tuple(rule.var_checks)
        self.tags = tuple(rule.tags)
        # any check on state kept outside the packet (xbits, flowint, stream, variables)
        self.stateful = bool(self.xb_checks or self.fi_checks or self.stream_size
                             or self.var_checks)
        # the match list (after header and app-layer protocol) and the post-match list,
        # each keyword's own steps as its registry entry compiles them (detect-*.c's Match)
        self.matches: tuple[MatchStep, ...] = _compiled(_MATCH_SETUPS, rule)
        self.postmatches: tuple[PostmatchStep, ...] = _compiled(_POSTMATCH_SETUPS, rule)
        self.payload: ci.CompiledBuffer | None = None
        self.tx_bufs: list[tuple[ci.CompiledBuffer, BufferDirection, bool]] = []
        buffer_protos: list[str] = []
        for bm in rule.buffers:
            if bm.transforms:
                try:
                    tf.check_usable(bm.transforms)
                except tf.TransformError as exc:
                    raise SkipRule(str(exc)) from None
            cb = ci.compile_buffer(bm, rule.base64_data)
            if bm.buffer == PAYLOAD:
                self.payload = cb
                continue
            spec = BUFFERS.get(bm.buffer)
            if spec is None:
                raise SkipRule(f"buffer {bm.buffer} is not supported")
            self.tx_bufs.append((cb, spec.direction, spec.multi))
            buffer_protos.append(spec.alproto)
        self.tx_keywords: tuple[tuple[TxCondition, Any], ...] = tuple(
            (cond, _tx_matcher(cond)) for cond in rule.tx_conditions
        )
        self.is_tx = bool(self.tx_bufs or self.tx_conds or self.tx_keywords)
        # the protocol whose transactions this rule inspects (tx rules)
        self.alproto = _rule_alproto(rule, buffer_protos, self.tx_conds) if self.is_tx else ""
        self.tx_alproto_check = any(
            neg or mode in ("to_server", "to_client") or canonical_alproto(name) != self.alproto
            for name, neg, mode in self.alproto_conds
        )
        fc = self.flow
        self.only_stream = bool(fc and fc.only_stream) or rule.protocol == "tcp-stream"
        self.require_stream, self.require_packet = self._payload_sources()
        self.transactional = rule.direction is Direction.TRANSACTIONAL
        self.tx_dirs, self.mixed = self._tx_directions()
        self.iponly = (
            not self.is_tx
            and self.payload is None
            and not self.pkt_conds
            and fc is None
            and not self.fb_checks
            and not self.stateful
            and not self.xb_actions
            and not self.fi_actions
            and not self.alproto_conds
            and rule.src_ports.is_any
            and rule.dst_ports.is_any
        )
        self.pd_once = self._detection_only()
        # cannot match a packet without payload and without new stream data
        self.needs_data = self._needs_data()
        # the packet keyword the prefilter tests for a rule without fast pattern
        self.pf_cond = prefilter_keyword(self.pkt_conds)
        self.trace: RuleTrace | None = None  # set by DetectEngine.trace_rule (explain)
        # tx rules: (buffer, side, pattern, nocase) that must all occur (cheap early reject)
        self.quick: tuple[tuple[str, bool | None, bytes, bool], ...] = self._quick_checks()

    def _payload_sources(self) -> tuple[bool, bool]:
        """(SIG_FLAG_REQUIRE_STREAM, SIG_FLAG_REQUIRE_PACKET) as Suricata's SigValidate sets
        them ("TCP: pkt vs stream vs depth/offset"): a payload rule without an explicit
        choice (_PACKET_KEYWORDS, flow:no_stream/only_stream, tcp-pkt/tcp-stream) inspects
        the stream,
        and the packet too when one of its contents has a depth or an offset (startswith
        is a depth) or the rule uses stream_size: such a "pkt_stream" rule is matched on
        the packet payload and again on the raw stream."""
        rule, fc = self.rule, self.flow
        explicit_packet = (bool(fc and fc.no_stream) or rule.protocol == "tcp-pkt"
                           or any(c.field in _PACKET_KEYWORDS for c in self.pkt_conds))
        if self.only_stream:
            return True, explicit_packet
        if explicit_packet or self.payload is None:
            return False, explicit_packet
        positioned = any(
            isinstance(it, ContentMatch)
            and (it.depth is not None or it.offset is not None or it.startswith)
            for bm in rule.buffers if bm.buffer == PAYLOAD and not bm.transforms
            for it in bm.items
        )
        return True, positioned or bool(self.stream_size)

    def _needs_data(self) -> bool:
        """True when a packet with no payload and no stream chunk can never match: a
        payload content that must be present, or a dsize that 0 does not satisfy."""
        for cond in self.pkt_conds:
            if cond.field == "dsize" and isinstance(cond.cond, IntCondition) \
                    and not cond.cond.matches(0):
                return True
        for bm in self.rule.buffers:
            if bm.buffer != PAYLOAD or bm.transforms:
                continue
            if any(isinstance(it, Absent) for it in bm.items):
                continue
            if any(isinstance(it, ContentMatch) and not it.negated and it.pattern
                   for it in bm.items):
                return True
        return False

    def _quick_checks(self) -> tuple[tuple[str, bool | None, bytes, bool], ...]:
        if not self.is_tx or self.mixed:
            return ()
        out = []
        for cb, spec, _ in self.tx_bufs:
            bm = next(b for b in self.rule.buffers if tf.chain_key(b.buffer, b.transforms)
                      == cb.key)
            if any(isinstance(it, Absent) for it in bm.items):
                continue
            side = {BufferDirection.TO_SERVER: True, BufferDirection.TO_CLIENT: False}.get(spec)
            for it in bm.items:
                if isinstance(it, ContentMatch) and not it.negated:
                    pattern = it.pattern.lower() if it.nocase else it.pattern
                    out.append((cb.key, side, pattern, it.nocase))
        # longest first: the rarest patterns reject soonest
        out.sort(key=lambda q: -len(q[2]))
        return tuple(out)

    def _tx_directions(self) -> tuple[tuple[bool, ...], bool]:
        """Directions (to_server flags) in which the tx rule is evaluated, and whether it
        needs buffers of both sides (then it is evaluated toclient, once both exist)."""
        if not self.is_tx:
            return (), False
        ts = tc = False
        for _, direction, _ in self.tx_bufs:
            ts |= direction is BufferDirection.TO_SERVER
            tc |= direction is BufferDirection.TO_CLIENT
        if self.tx_conds:
            ts = True
        for cond, _ in self.tx_keywords:
            ts |= cond.direction == "toserver"
            tc |= cond.direction == "toclient"
        if (ts and tc) or self.transactional:
            return (False,), True
        fc = self.flow
        if ts:
            return (True,), False
        if tc:
            return (False,), False
        if fc is not None and fc.to_server:
            return (True,), False
        if fc is not None and fc.to_client:
            return (False,), False
        return (True, False), False

    @property
    def applies_to_flow(self) -> bool:
        """drop/pass on the whole flow: IP-only, protocol-detection-only and app-layer
        rules (SIG_FLAG_IPONLY, SIG_FLAG_PDONLY, SIG_FLAG_APPLAYER = a sticky buffer);
        stream and tx matches are added by the caller. ``drop http ... (dsize:0;)`` is a
        packet rule: it drops packets, not the flow."""
        pd_only = (
            any(not neg for _, neg, _ in self.alproto_conds)
            and self.payload is None
            and not self.pkt_conds
            and self.flow is None
            and not self.fb_checks
            and not self.stateful
        )
        return self.iponly or self.is_tx or pd_only

    def _detection_only(self) -> bool:
        """Only app-layer-protocol (and flow) beyond the header: Suricata inspects such a
        rule on the packet that completes protocol detection of a direction
        (PKT_PROTO_DETECT_TS/TC_DONE), so it fires at most once per direction."""
        if registry.canonical(self.rule.protocol) is not None:
            return False  # ``alert http ...``: the header's protocol makes it a packet rule
        return (any(not neg for _, neg, _ in self.alproto_conds) and self.payload is None
                and not self.is_tx and not self.pkt_conds and not self.fb_checks
                and not self.stateful)



_PREFILTER_FIELDS = ("flags", "tcp.flags", "itype", "icode", "dsize", "ack", "tcp.ack",
                     "seq", "tcp.seq", "ttl")


def prefilter_keyword(conds: Sequence[PacketCondition]) -> PacketCondition | None:
    for name in _PREFILTER_FIELDS:
        for pc in conds:
            if pc.field == name:
                return pc
    return None


_ALPROTO_MODES = frozenset({"direction", "to_server", "to_client", "either", "final",
                            "original"})


def _alproto_conditions(rule: Rule) -> tuple[tuple[str, bool, str], ...]:
    """Every ``app-layer-protocol`` the rule requires, as (name, negated, mode); all must
    hold. ``mode`` (Suricata 7+): ``direction`` (default: the protocol of the packet's
    direction), ``to_server``, ``to_client``, ``either``, ``final``, ``original``. The model
    keeps one ``app_proto``; repeated keywords (``!http; !tls``) come from the options."""
    conds: list[tuple[str, bool, str]] = []
    for name, value in rule.options:
        if name == "app-layer-protocol" and value:
            parts = [p.strip() for p in value.strip().strip('"').split(",")]
            text = parts[0]
            mode = parts[1].lower() if len(parts) > 1 and parts[1] else "direction"
            neg = text.startswith("!")
            conds.append((text.lstrip("!").strip().lower(), neg,
                          mode if mode in _ALPROTO_MODES else "direction"))
    if rule.app_proto is not None and not any(
            n == rule.app_proto and neg == rule.app_proto_negated for n, neg, _ in conds):
        # the header's protocol (``alert http``) is the flow's: Suricata compares
        # FlowGetAppProtocol() for established packets, whichever direction decided it
        conds.append((rule.app_proto, rule.app_proto_negated, "header"))
    return tuple(conds)


def skip_reason(rule: Rule) -> str | None:
    if rule.unsupported:
        return "unsupported keywords: " + ", ".join(rule.unsupported)
    if rule.action is Action.CONFIG or rule.action not in ACTION_RANK:
        return f"action {rule.action.value} is not evaluated by detection"
    alproto = rule.app_proto
    if alproto is not None and not rule.app_proto_negated \
            and registry.canonical(alproto) is None:
        return f"app-layer protocol {alproto} is not supported"
    if rule.protocol not in PROTO_NUMBERS:
        return f"protocol {rule.protocol} is not supported"
    for cond in rule.packet_conditions:
        if not packet_condition_supported(cond):
            return f"keyword {cond.field} is not supported"
    return None


def _rule_alproto(rule: Rule, buffer_protos: list[str],
                  tx_conds: tuple[PacketCondition, ...]) -> str:
    """The protocol of a tx rule: its buffers' and keywords' (all must agree), else the
    header's; urilen and rules without app keywords are HTTP's."""
    protos = {p for p in buffer_protos if p}
    protos.update(c.alproto for c in rule.tx_conditions if c.alproto)
    if tx_conds:
        protos.add("http")
    if len(protos) > 1:
        raise SkipRule("buffers of several app-layer protocols: " + ", ".join(sorted(protos)))
    alproto = protos.pop() if protos else canonical_alproto(rule.app_proto) or "http"
    # a buffer several protocols register (file.data) takes the rule's protocol, which
    # must be one of them (Suricata: file.data of ftp-data is not built here)
    for bm in rule.buffers:
        spec = BUFFERS.get(bm.buffer)
        if spec is not None and not spec.alproto \
                and alproto not in registry.buffer_protocols(bm.buffer):
            raise SkipRule(f"{bm.buffer} of {alproto} is not supported")
    return alproto


def _tx_matcher(cond: TxCondition) -> Any:
    """The match function of a protocol keyword (None for app-layer-event)."""
    if cond.keyword == APP_LAYER_EVENT:
        return None
    entry = registry.tx_keywords().get(cond.keyword)
    if entry is None:
        raise SkipRule(f"keyword {cond.keyword} is not registered")
    return entry.keyword.match

