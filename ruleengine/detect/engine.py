"""The detection engine: rule ordering, grouping, prefilter and per-rule inspection.

Flow of one packet (``inspect_packet``) or one HTTP transaction (``inspect_tx``):

1. the rule group of the packet's IP protocol (or of the transaction direction);
2. the prefilter: one multi-pattern scan per buffer gives the rules whose fast pattern is
   present, plus the rules that have no usable fast pattern (always candidates);
3. per candidate, in Suricata's order: header, app-layer protocol, ``flow``, packet
   keywords, flowbits checks, then the buffers (content inspection engine);
4. post-match: flowbits commands right away (later rules see them), then thresholds,
   ``noalert`` and the ``pass`` cut-off when the match list is finalised.

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

from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any, NamedTuple, Protocol

from ruleengine.applayer import registry
from ruleengine.applayer.base import TxMatchContext
from ruleengine.buffers import BUFFERS, BufferDirection, getter_for
from ruleengine.detect import content as ci
from ruleengine.detect import flowint as fi
from ruleengine.detect import stream_size as ssz
from ruleengine.detect.conditions import (
    IP_VERSIONS,
    PROTO_NUMBERS,
    TX_FIELDS,
    CompiledHeader,
    FlowLike,
    addr_int,
    flow_condition_matches,
    packet_condition_matches,
    packet_condition_supported,
)
from ruleengine.detect.flowbits import apply_actions, checks_pass, order_class
from ruleengine.detect.iponly import IpOnlyTable, bits
from ruleengine.detect.pcre import PcreCompileError
from ruleengine.detect.prefilter import Mpm, resolve_backend
from ruleengine.detect.tag import TagEntry, TagTable
from ruleengine.detect.threshold import ThresholdTable, track_key
from ruleengine.detect.trace import HEADER, RuleTrace
from ruleengine.detect.xbits import XbitsTable
from ruleengine.detect.xbits import order_class as xbits_order_class
from ruleengine.keywords import transform_apply as tf
from ruleengine.keywords.applayer import APP_LAYER_EVENT
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
from ruleengine.safety import reraise_bug

HTTP_ALPROTOS = frozenset({"http", "http1"})
_DIRS = {"toserver": BufferDirection.TO_SERVER, "toclient": BufferDirection.TO_CLIENT,
         "both": BufferDirection.BOTH}


def canonical_alproto(name: str | None) -> str | None:
    """A rule's or flow's protocol name in registry terms (``ssl`` -> ``tls``); names the
    registry does not know are kept as they are (``failed``, unparsed protocols)."""
    if name is None:
        return None
    return registry.canonical(name) or name
TCP = 6
_GROUP_KEYS = (6, 17, 1, 58, -1)  # -1: any other IP protocol
_MAX_TX_STATE = 64  # per flow: transactions remembered for "fired once" and MPM caches
_TX_DONE = -1  # marker in a (tx, direction) "fired" set: inspection finished
_NOTHING: frozenset[int] = frozenset()


class TxLike(Protocol):
    """What detection reads from an HTTP transaction (``ruleengine.applayer.http1``).

    ``buffer(name, to_server)`` returns the canonical buffer (``ruleengine.buffers``) of
    the given side; for single-direction buffers the side is implied. Implementations
    whose ``buffer`` takes only the name are supported too (see :func:`get_buffer`).
    """

    tx_id: int

    def buffer(self, name: str, /, *args: Any) -> bytes | list[bytes] | None: ...


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


_ACTION_RANK = {
    Action.PASS: 0,
    Action.DROP: 1,
    Action.REJECT: 2,
    Action.REJECTSRC: 2,
    Action.REJECTDST: 2,
    Action.REJECTBOTH: 2,
    Action.ALERT: 3,
}


class _SkipRule(Exception):
    pass


class _HeaderTable:
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
        "mixed",
        "needs_data",
        "only_stream",
        "payload",
        "pd_once",
        "pf_cond",
        "pkt_conds",
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

    def __init__(self, rule: Rule, idx: int, headers: _HeaderTable) -> None:
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
        self.payload: ci.CompiledBuffer | None = None
        self.tx_bufs: list[tuple[ci.CompiledBuffer, BufferDirection, bool]] = []
        buffer_protos: list[str] = []
        for bm in rule.buffers:
            if bm.transforms:
                try:
                    tf.check_usable(bm.transforms)
                except tf.TransformError as exc:
                    raise _SkipRule(str(exc)) from None
            cb = ci.compile_buffer(bm, rule.base64_data)
            if bm.buffer == PAYLOAD:
                self.payload = cb
                continue
            spec = BUFFERS.get(bm.buffer)
            if spec is None:
                raise _SkipRule(f"buffer {bm.buffer} is not supported")
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
        self.pf_cond = _prefilter_keyword(self.pkt_conds)
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


def action_ranks(action_order: Sequence[str]) -> dict[Action, int]:
    """suricata.yaml ``action-order`` (default pass, drop, reject, alert) as a rank per
    action; the reject variants rank with ``reject``."""
    ranks: dict[Action, int] = {}
    for rank, name in enumerate(action_order):
        for action in _ACTION_RANK:
            group = "reject" if action.is_reject else action.value
            if group == name and action not in ranks:
                ranks[action] = rank
    for action, default in _ACTION_RANK.items():
        ranks.setdefault(action, len(action_order) + default)
    return ranks


def _order_key(cr: CRule, ranks: Mapping[Action, int] = _ACTION_RANK) -> tuple[int, ...]:
    """``SCSigOrderSignatures``: action, then flowbits, flowvar, flowint, pktvar,
    hostbits and ippairbits (setters before readers), priority, load order."""
    r = cr.rule
    host = tuple(x for x in r.xbits if x.track != "ip_pair")
    pair = tuple(x for x in r.xbits if x.track == "ip_pair")
    return (
        ranks.get(r.action, 3),
        -order_class(r.flowbits),
        -_var_order(cr, "flow"),
        -_set_read_class(bool(cr.fi_actions), bool(cr.fi_checks)),
        -_var_order(cr, "pkt"),
        -xbits_order_class(host),
        -xbits_order_class(pair),
        r.severity,
        cr.idx,
    )


def _set_read_class(sets: bool, reads: bool) -> int:
    """Suricata's sigorder classes: set 4, set+read 3, read 2, none 1."""
    if sets and reads:
        return 3
    if sets:
        return 4
    return 2 if reads else 1


def _var_order(cr: CRule, scope: str) -> int:
    """flowvar/pktvar class: pcre ``flow_``/``pkt_`` captures set, the keyword reads."""
    progs = [cb for cb, _, _ in cr.tx_bufs]
    if cr.payload is not None:
        progs.append(cr.payload)
    sets = any(_sets_scope(cb, scope) for cb in progs)
    reads = any(v.scope == scope for v in cr.var_checks)
    return _set_read_class(sets, reads)


def _sets_scope(cb: ci.CompiledBuffer, scope: str) -> bool:
    for op in cb.ops:
        if any(c[1] == scope for c in op.captures):
            return True
        if op.data is not None and _sets_scope(op.data, scope):
            return True
    return False


def _choose_fast_pattern(cr: CRule, names: Iterable[str]) -> tuple[str, ContentMatch] | None:
    """The content the prefilter looks for: the rule's fast_pattern when usable, else the
    longest positive content. Only contents that must be present for the rule to match
    qualify (not negated, in a buffer without ``absent``)."""
    allowed = set(names)
    usable: list[tuple[str, ContentMatch]] = []
    for bm in cr.rule.buffers:
        key = tf.chain_key(bm.buffer, bm.transforms)  # transformed lists: their own MPM
        if key not in allowed:
            continue
        if any(isinstance(it, Absent) for it in bm.items):
            continue
        usable.extend((key, it) for it in bm.items if isinstance(it, ContentMatch))
    usable = [(b, c) for b, c in usable if not c.negated]
    fp = cr.rule.fast_pattern
    if fp is not None:
        for b, c in usable:
            if c is fp[1]:
                return b, c
    if not usable:
        return None
    return max(usable, key=lambda bc: (len(bc[1].pattern), bc[0] != PAYLOAD))


def _prefilter_content(cr: CRule) -> tuple[str, ContentMatch] | None:
    """The (buffer key, content) the prefilter registers for ``cr``; None when the rule
    is always a candidate (``prefilter`` keyword, buffers of both sides, no content)."""
    if cr.rule.prefilter or cr.mixed:
        return None
    names = [PAYLOAD] if not cr.is_tx else [cb.key for cb, _, _ in cr.tx_bufs]
    return _choose_fast_pattern(cr, names)


class RuleAnalysis(NamedTuple):
    """How the engine runs one loaded rule (``--engine-analysis``).

    ``kind``: Suricata's signature type (``ip_only``, ``pd_only``, ``pkt``, ``pkt_stream``,
    ``stream``, ``app_tx``); ``alproto``: the protocol whose transactions it inspects
    (tx rules) else the header's; ``fast_pattern``: the (buffer key, content) the
    prefilter looks for, None when the rule is always a candidate; ``requires_packet``
    / ``requires_stream``: where payload contents are matched."""

    rule: Rule
    kind: str
    alproto: str | None
    fast_pattern: tuple[str, ContentMatch] | None
    requires_packet: bool
    requires_stream: bool


def _analysis(cr: CRule, prefilter: bool) -> RuleAnalysis:
    stream = packet = False
    if cr.iponly:
        kind = "ip_only"
    elif cr.is_tx:
        kind = "app_tx"
    elif cr.pd_once:
        kind = "pd_only"
    elif cr.payload is not None and cr.rule.protocol not in ("udp", "icmp", "icmpv6"):
        packet = cr.require_packet or not cr.require_stream
        stream = cr.require_stream
        kind = "stream" if not packet else ("pkt" if not stream else "pkt_stream")
    else:
        packet = cr.payload is not None
        kind = "pkt"
    alproto = cr.alproto if cr.is_tx else canonical_alproto(cr.rule.app_proto)
    return RuleAnalysis(cr.rule, kind, alproto or None,
                        _prefilter_content(cr) if prefilter else None, packet, stream)


class _Group:
    """Rules of one packet group or tx direction, with their prefilter tables."""

    def __init__(self, rules: Sequence[CRule], mpm_backend: str, use_mpm: bool) -> None:
        self.rules = sorted(rules, key=lambda cr: cr.idx)  # the engine's firing order
        self.always: list[int] = []
        self.iponly: list[int] = []  # always candidates, once per flow direction
        self.by_pid: dict[str, dict[int, list[int]]] = {}
        self.mpms: dict[str, Mpm] = {}
        self.version = 0  # bumped when the prefilter tables change (explain's trace)
        for pos, cr in enumerate(self.rules):
            if cr.iponly:
                self.iponly.append(pos)
                continue
            chosen = self._mpm_for(cr) if use_mpm else None
            if chosen is None:
                self.always.append(pos)
                continue
            bufname, pattern, nocase = chosen
            mpm = self.mpms.get(bufname)
            if mpm is None:
                mpm = self.mpms[bufname] = Mpm(mpm_backend)
            pid = mpm.add(pattern, nocase)
            self.by_pid.setdefault(bufname, {}).setdefault(pid, []).append(pos)
        for mpm in self.mpms.values():
            mpm.build()
        # IP-only rules by address table (the prefilter's); without it every one is tried
        self.iponly_table: IpOnlyTable | None = None
        self.iponly_by_bit: list[list[int]] = []  # header bit -> rule positions
        self.iponly_traced: list[int] = []  # explain: tried whatever the addresses
        if use_mpm and self.iponly:
            self._build_iponly()

    def _build_iponly(self) -> None:
        bit_of: dict[int, int] = {}
        headers: list[CompiledHeader] = []
        for pos in self.iponly:
            header = self.rules[pos].header
            bit = bit_of.get(header.hid)
            if bit is None:
                bit = bit_of[header.hid] = len(headers)
                headers.append(header)
                self.iponly_by_bit.append([])
            self.iponly_by_bit[bit].append(pos)
        self.iponly_table = IpOnlyTable(headers)

    def iponly_candidates(self, ctx: _PacketCtx) -> list[int]:
        """Positions of the IP-only rules whose addresses may fit the packet (all of
        them without the table); their headers are still tested in full."""
        table = self.iponly_table
        if table is None:
            return self.iponly
        out = list(self.iponly_traced)
        for bit in bits(table.lookup(ctx.ver, ctx.src, ctx.dst)):
            out.extend(self.iponly_by_bit[bit])
        return out

    def _mpm_for(self, cr: CRule) -> tuple[str, bytes, bool] | None:
        chosen = _prefilter_content(cr)
        if chosen is None:
            return None
        return chosen[0], chosen[1].mpm_pattern, chosen[1].nocase

    def skip_prefilter(self, traced: CRule) -> None:
        """``traced`` becomes an always-candidate, so every packet or transaction reaches
        its inspection (its fast pattern is a necessary condition: no result changes)."""
        pos = next((p for p, cr in enumerate(self.rules) if cr is traced), None)
        if pos is not None and pos in self.iponly and pos not in self.iponly_traced:
            self.iponly_traced.append(pos)
        if pos is None or pos in self.always or pos in self.iponly:
            return
        for table in self.by_pid.values():
            for positions in table.values():
                if pos in positions:
                    positions.remove(pos)
        self.always = sorted([*self.always, pos])
        self.version += 1

    def resolve(self, ctx: _PacketCtx, to_server: bool, payloadless: bool,
                key: tuple[object, ...] = ()) -> _Resolved:
        """The always-candidates whose header fits this packet's tuple and whose ``flow``
        direction fits ``to_server`` (Suricata's signature group head of the packet:
        protocol, addresses, ports, direction). A traced rule stays in, so explain still
        sees its checks fail. ``payloadless``: only the rules that can match a packet
        without payload or stream data (pure ACKs, SYNs, FINs). Rules with a prefilter
        keyword (flags, dsize, itype...) are kept by keyword, so a packet tests each
        distinct keyword once instead of each rule."""
        plain: list[int] = []
        keyed: dict[tuple[object, ...], tuple[PacketCondition, list[int]]] = {}
        for pos in self.always:
            cr = self.rules[pos]
            if cr.trace is None:
                if payloadless and cr.needs_data:
                    continue
                fc = cr.flow
                if fc is not None and (fc.to_client if to_server else fc.to_server):
                    continue  # flow:to_client on a packet to the server, and back
                if not _header_ok(cr.header, ctx, False):
                    continue
                pc = cr.pf_cond
                if pc is not None:
                    entry = keyed.setdefault((pc.field, pc.cond), (pc, []))
                    entry[1].append(pos)
                    continue
            plain.append(pos)
        return _Resolved(self, key, plain, tuple(keyed.values()))

    def candidates(self, hits_by_buf: dict[str, set[int]], iponly: Sequence[int] = (),
                   base: list[int] | None = None) -> list[int]:
        """Positions (rule order) of the rules to inspect. ``iponly``: the IP-only rules
        to try (see :meth:`iponly_candidates`). ``base``: the always-candidates to start
        from (default: all of them; the packet path passes the ones resolved for the
        flow, see :meth:`resolve`)."""
        always = self.always if base is None else base
        extra: list[int] = list(iponly)
        for bufname, hits in hits_by_buf.items():
            table = self.by_pid.get(bufname)
            if table is None or not hits:
                continue
            for pid in hits:
                positions = table.get(pid)
                if positions:
                    extra.extend(positions)
        if not extra:
            return always
        return sorted({*always, *extra})


class _FlowState:
    """Per-flow detection state kept in ``flow.detect``."""

    __slots__ = (
        "alerted", "buffers", "data_seen", "fired", "flowints", "flowvars", "generation",
        "iponly_done", "mpm_cache", "pass_cut", "pd_done", "raw", "sgh", "tags",
    )  # fmt: skip

    def __init__(self, generation: int = 0) -> None:
        # the DetectEngine generation whose rule indices ``fired``/``pd_done``/``mpm_cache``
        # use (a rule reload renumbers the rules: Suricata's flow de_ctx_version)
        self.generation = generation
        # (tx_id, side) -> (progress of that side, fetched buffers): getters run once per
        # progress step
        self.buffers: dict[
            tuple[int, bool], tuple[int | None, dict[tuple[str, bool], bytes | list[bytes] | None]]
        ] = {}
        self.alerted: tuple[object, int] | None = None  # (packet, alerts logged for it)
        # directions that carried data: Suricata knows a flow's app-layer protocol per
        # direction (alproto_ts / alproto_tc), once that direction's data was parsed
        self.data_seen: set[bool] = set()
        # (rule index, direction) of protocol-detection-only rules that matched: once
        # per direction, as Suricata inspects them once the direction's protocol is known
        self.pd_done: set[tuple[int, bool]] = set()
        # recent raw stream bytes per direction (index: to_server), for the payload part
        # of app-layer rules (Suricata's stream inspect engine of tx rules)
        self.raw: tuple[bytearray, bytearray] = (bytearray(), bytearray())
        self.fired: dict[tuple[int, bool], set[int]] = {}
        self.mpm_cache: dict[tuple[int, bool, str], tuple[object, set[int]]] = {}
        self.iponly_done: set[bool] = set()
        # per (direction, payloadless): the packet group's always-candidates resolved for
        # this flow's tuple, keyed by what they were resolved for (tuple, group version)
        self.sgh: dict[tuple[bool, bool], _Resolved] = {}
        self.pass_cut: tuple[object, int] | None = None
        self.flowints: dict[str, int] = {}  # flowint (unsigned 32-bit)
        self.flowvars: dict[str, bytes] = {}  # pcre flow_ captures
        self.tags: list[TagEntry] = []  # session tags

    def release(self, tx_id: int, side: bool) -> None:
        """Drop the cached buffers and scans of a finished (transaction, side)."""
        self.buffers.pop((tx_id, side), None)
        for key in [k for k in self.mpm_cache if k[0] == tx_id and k[1] == side]:
            del self.mpm_cache[key]

    def forget_old(self, tx_id: int) -> None:
        if len(self.fired) <= 2 * _MAX_TX_STATE:
            return
        floor = tx_id - _MAX_TX_STATE
        self.fired = {k: v for k, v in self.fired.items() if k[0] >= floor}
        self.mpm_cache = {k: v for k, v in self.mpm_cache.items() if k[0] >= floor}
        self.buffers = {k: v for k, v in self.buffers.items() if k[0] >= floor}


def _flow_state(flow: FlowLike | None, generation: int = 0) -> _FlowState | None:
    if flow is None:
        return None
    st = flow.detect
    if not isinstance(st, _FlowState):
        st = _FlowState(generation)
        flow.detect = st
    return st


def _rule_identity(rule: Rule) -> tuple[int, int, int]:
    """What makes two rules of two rule sets the same rule (Suricata: gid, sid, rev)."""
    return (rule.gid, rule.sid, rule.rev)


_BUFFER_TWO_ARGS: dict[type, bool] = {}


def get_buffer(tx: Any, name: str, to_server: bool) -> bytes | list[bytes] | None:
    """``tx.buffer(name, to_server)``; falls back to ``tx.buffer(name)`` for
    transaction types whose ``buffer`` takes only the name (learnt once per type)."""
    kind = type(tx)
    if not hasattr(kind, "buffer"):
        getter = getter_for(name, to_server) if name in BUFFERS else None
        return None if getter is None else getter(tx)
    two = _BUFFER_TWO_ARGS.get(kind)
    if two is None:
        try:
            value = tx.buffer(name, to_server)
        except TypeError:
            _BUFFER_TWO_ARGS[kind] = False
            value = tx.buffer(name)
        else:
            _BUFFER_TWO_ARGS[kind] = True
        return value  # type: ignore[no-any-return]
    if two:
        return tx.buffer(name, to_server)  # type: ignore[no-any-return]
    return tx.buffer(name)  # type: ignore[no-any-return]


def _side_progress(tx: Any, to_server: bool) -> int | None:
    """``request_progress`` / ``response_progress`` of the transaction (None: unknown)."""
    value = getattr(tx, "request_progress" if to_server else "response_progress", None)
    return int(value) if isinstance(value, int) else None


def _as_buffer(value: object) -> bytes | list[bytes] | None:
    """Only bytes (or a list of bytes for multi-buffers) are inspected."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, list):
        return [bytes(v) for v in value if isinstance(v, bytes | bytearray | memoryview)]
    return None


class _RawMatch(NamedTuple):
    cr: CRule
    tx_id: int | None
    to_server: bool
    stream: bool


class _PacketCtx:
    """Per-packet values computed once."""

    __slots__ = ("dport", "dst", "fcache", "hcache", "pkt", "proto", "sport", "src", "ver")

    def __init__(self, pkt: Any) -> None:
        self.pkt = pkt
        self.fcache: dict[FlowCondition, bool] = {}  # flow keyword results (tx rules)
        self.hcache: dict[int, bool] = {}  # header id (~id: reversed) -> result
        self.proto = pkt.proto
        self.ver = pkt.ip_version
        self.src = addr_int(pkt.src)
        self.dst = addr_int(pkt.dst)
        self.sport = pkt.sport
        self.dport = pkt.dport


class DetectEngine:
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
        headers = _HeaderTable()
        for idx, rule in enumerate(rules):
            reason = _skip_reason(rule)
            if reason is None:
                try:
                    compiled.append(CRule(rule, idx, headers))
                except (_SkipRule, ci.CompileError, PcreCompileError) as exc:
                    reason = str(exc)
                except Exception as exc:  # hostile rule data must never escape
                    reason = f"cannot compile: {exc!r}"
            if reason is not None:
                self.skipped.append((rule, reason))
        self._compiled = tuple(compiled)  # load order, for analysis()
        ranks = action_ranks(action_order)
        self.rules: list[CRule] = sorted(compiled, key=lambda cr: _order_key(cr, ranks))
        for cr in self.rules:
            for cb, _, _ in cr.tx_bufs:
                if cb.transforms:
                    self._chains[cb.key] = (cb.name, cb.transforms)
        for order, cr in enumerate(self.rules):
            cr.idx = order  # firing order from now on
        pkt_rules = [cr for cr in self.rules if not cr.is_tx]
        self._pkt_groups: dict[int, _Group] = {}
        for key in _GROUP_KEYS:
            members = [cr for cr in pkt_rules if _in_proto_group(cr, key)]
            self._pkt_groups[key] = _Group(members, self.mpm_backend, prefilter)
        self._keep_raw_stream = any(cr.is_tx and cr.payload is not None for cr in self.rules)
        # tx rules per (app-layer protocol, direction): a transaction only meets the rules
        # of its own protocol (Suricata's per-alproto inspect engines)
        self._tx_groups: dict[tuple[str, bool], _Group] = {}
        for alproto in sorted({cr.alproto for cr in self.rules if cr.is_tx}):
            for d in (True, False):
                members = [cr for cr in self.rules
                           if cr.is_tx and cr.alproto == alproto and d in cr.tx_dirs]
                if members:
                    self._tx_groups[(alproto, d)] = _Group(members, self.mpm_backend, prefilter)

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
        self.generation = old.generation + 1
        self._renumbered = (old.generation, renumber)

    def _state(self, flow: FlowLike | None) -> _FlowState | None:
        st = _flow_state(flow, self.generation)
        if st is not None and st.generation != self.generation:
            self._renumber(st)
        return st

    def _renumber(self, st: _FlowState) -> None:
        """A flow inspected by an earlier rule set: its per-rule memory follows the rules
        into this set's numbering (rules that are gone are forgotten); a flow older than
        the previous set starts over. Caches of prefilter results are dropped."""
        previous, renumber = self._renumbered
        if st.generation == previous:
            st.fired = {k: {renumber[i] for i in v if i in renumber}
                        for k, v in st.fired.items()}
            st.pd_done = {(renumber[i], d) for i, d in st.pd_done if i in renumber}
        else:
            st.fired = {}
            st.pd_done = set()
        st.mpm_cache = {}
        st.sgh = {}  # positions of the previous set's groups
        st.pass_cut = None
        st.generation = self.generation

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
            raw = self._packet_raw(_PacketCtx(pkt), flow, to_server, stream_chunk,
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
            raw = self._tx_raw(
                _PacketCtx(pkt), flow, to_server, tx, tx_complete_toserver, tx_complete_toclient
            )
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
            ctx = _PacketCtx(pkt)
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
        return [_analysis(cr, self._prefilter) for cr in self._compiled]

    def counters(self) -> dict[str, int]:
        """Detection counters for the stats output."""
        return {
            "detect.rules_loaded": len(self.rules),
            "detect.rules_skipped": len(self.skipped),
            "detect.alerts_discarded": self.alerts_discarded,
            "detect.internal_errors": self.errors,
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
                _split_traffic_bits(sorted(bits), out)
            st = flow.detect if isinstance(flow.detect, _FlowState) else None
            if st is not None:
                if st.flowints:
                    out["flowints"] = dict(st.flowints)
                if st.flowvars:
                    out["flowvars"] = [{k: _printable(v)} for k, v in st.flowvars.items()]
        pv = self._pktvars
        if pv is not None and pv[0] is pkt and pv[1]:
            out["pktvars"] = [{k: _printable(v)} for k, v in pv[1].items()]
        return out or None


    def _internal_error(self, exc: Exception) -> None:
        """Counted (``errors``) and remembered for diagnostics; the packet gets no match.
        A bug (not what hostile data can cause) is raised in strict runs (tests)."""
        reraise_bug(exc)
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"

    # ------------------------------------------------------------------ packet rules

    def _packet_raw(
        self,
        ctx: _PacketCtx,
        flow: FlowLike | None,
        to_server: bool,
        stream_chunk: bytes | None,
        stream_add: bool | None = None,
    ) -> list[_RawMatch]:
        group = self._pkt_groups.get(ctx.proto) or self._pkt_groups[-1]
        pkt = ctx.pkt
        payload: bytes = pkt.payload
        use_stream = ctx.proto == TCP and stream_chunk is not None
        added = use_stream if stream_add is None else use_stream and stream_add
        hits: dict[str, set[int]] = {}
        mpm = group.mpms.get(PAYLOAD)
        if mpm is not None:
            hits[PAYLOAD] = mpm.scan(payload)
            # stream rules look at the chunk; it is usually this very payload
            if use_stream and stream_chunk and stream_chunk != payload:
                hits[PAYLOAD] = hits[PAYLOAD] | mpm.scan(stream_chunk)
        state = self._state(flow)
        if state is not None and (payload or stream_chunk):
            state.data_seen.add(to_server)
        if state is not None and self._keep_raw_stream and ctx.proto == TCP:
            _append_raw(state.raw[to_server], payload if stream_chunk is None else stream_chunk)
        iponly: Sequence[int] = ()
        if state is None or to_server not in state.iponly_done:
            iponly = group.iponly_candidates(ctx)
        if state is not None:
            state.iponly_done.add(to_server)
        known: AbstractSet[int]
        if self._prefilter:
            res = _resolved(group, ctx, state, to_server, not payload and not stream_chunk)
            base, known = res.for_packet(pkt), res.known
        else:  # reference mode: every rule of the group, headers tested per packet
            base, known = group.always, _NOTHING
        out: list[_RawMatch] = []
        for pos in group.candidates(hits, iponly, base):
            cr = group.rules[pos]
            if cr.pd_once and state is not None and (cr.idx, to_server) in state.pd_done:
                continue
            failed = self._packet_prechecks(cr, ctx, flow, to_server,
                                            pos in known and cr.trace is None)
            if failed is not None:
                if cr.trace is not None:
                    cr.trace.rejected(failed, pkt, flow, to_server)
                continue
            caps: list[tuple[str, str, bytes]] | None = [] if cr.payload is not None \
                and cr.payload.captures else None
            matched, on_stream = self._match_payload(
                cr, payload, stream_chunk, use_stream, caps, added
            )
            if cr.trace is not None:
                if not matched:
                    cr.trace.rejected("payload", pkt, flow, to_server)
                else:
                    cr.trace.matched(pkt, flow, to_server, stream=on_stream)
            if not matched:
                continue
            self._postmatch(cr, pkt, flow, caps)
            if cr.pd_once and state is not None:
                state.pd_done.add((cr.idx, to_server))
            out.append(_RawMatch(cr, None, to_server, on_stream))
        return out

    def _packet_prechecks(
        self, cr: CRule, ctx: _PacketCtx, flow: FlowLike | None, to_server: bool,
        header_known: bool = False,
    ) -> str | None:
        """None when every check before the payload holds, else the failed one's name
        (what ``ruleengine explain`` reports). ``header_known``: the header was already
        found to fit (the flow's resolved group)."""
        if getattr(ctx.pkt, "pseudo", False) and cr.pkt_conds:
            # A flow-end pseudo packet is no wire packet: packet keywords (dsize, ...) never
            # match it (Suricata's PKT_IS_PSEUDOPKT checks).
            return "pseudo-packet"
        if not header_known and not _header_ok(cr.header, ctx, False):
            return HEADER
        if cr.alproto_conds and not _alproto_known_ok(cr, flow, to_server):
            return "app-layer-protocol"
        pkt = ctx.pkt
        if cr.flow is not None and not flow_condition_matches(
            cr.flow, flow, to_server, bool(pkt.frag)
        ):
            return "flow"
        for cond in cr.pkt_conds:
            if not packet_condition_matches(cond, pkt):
                return cond.field
        if cr.fb_checks and not checks_pass(
            cr.fb_checks, flow.flowbits if flow is not None else None
        ):
            return "flowbits"
        return self._state_failure(cr, pkt, flow) if cr.stateful else None

    @staticmethod
    def _match_payload(
        cr: CRule, payload: bytes, chunk: bytes | None, use_stream: bool,
        caps: list[tuple[str, str, bytes]] | None = None,
        added: bool = True,
    ) -> tuple[bool, bool]:
        """(matched, matched on stream data), as Suricata's
        DetectEngineInspectRulePayloadMatches: a stream rule inspects the new stream data
        first; without a match it falls back to the packet payload only when it also
        requires the packet (a "pkt_stream" rule) or the packet was not added to the
        stream. A pkt_stream rule can thus alert on the packet and again on the stream."""
        cb = cr.payload
        if cb is None:
            return True, False
        if use_stream and cr.require_stream:
            assert chunk is not None
            if chunk and ci.inspect(cb, chunk, {}, caps, cr.trace):
                return True, True
            if added and not cr.require_packet:
                return False, False  # the packet's data is inspected as stream
        if cr.only_stream:
            return False, False
        return ci.inspect(cb, payload, {}, caps, cr.trace), False

    # ------------------------------------------------------------------ tx rules

    def _tx_raw(
        self,
        ctx: _PacketCtx,
        flow: FlowLike,
        to_server: bool,
        tx: TxLike,
        done_ts: bool,
        done_tc: bool,
    ) -> list[_RawMatch]:
        group = self._tx_groups.get((canonical_alproto(flow.alproto) or "", to_server))
        if group is None:
            return []
        state = self._state(flow)
        assert state is not None
        tx_id = tx.tx_id
        fired = state.fired.setdefault((tx_id, to_server), set())
        if _TX_DONE in fired:
            return []
        progress = _side_progress(tx, to_server)
        if progress == 0 and not (done_ts if to_server else done_tc):
            return []  # nothing of this side parsed yet: no buffer, no possible match
        state.forget_old(tx_id)
        # buffers fetched earlier at the same progress of their side are reused
        cached = {side: state.buffers.get((tx_id, side)) for side in (True, False)}
        views = {side: _side_progress(tx, side) for side in (True, False)}
        bufs: dict[tuple[str, bool], bytes | list[bytes] | None] = {}
        for side in (True, False):
            entry = cached[side]
            if entry is not None and views[side] is not None and entry[0] == views[side]:
                bufs.update(entry[1])
            else:
                state.buffers[(tx_id, side)] = (views[side], {})

        chains = self._chains

        def fetch(name: str, side: bool) -> bytes | list[bytes] | None:
            """A buffer by key; a transformed key is its plain buffer through the chain
            (computed once per transaction side and progress, like the plain ones)."""
            key = (name, side)
            if key not in bufs:
                chain = chains.get(name)
                if chain is None:
                    value = _as_buffer(get_buffer(tx, name, side))
                else:
                    value = tf.apply_multi(chain[1], fetch(chain[0], side))
                bufs[key] = value
                state.buffers[(tx_id, side)][1][key] = value
            return bufs[key]

        lowered: dict[tuple[str, bool], list[bytes]] = {}
        hits: dict[str, set[int]] = {}
        for name, mpm in group.mpms.items():
            hits[name] = self._tx_scan(state, mpm, tx_id, to_server, name, fetch(name, to_server))
        out: list[_RawMatch] = []
        pkt = ctx.pkt
        for pos in group.candidates(hits):
            cr = group.rules[pos]
            if cr.idx in fired:
                continue
            failed = self._tx_prechecks(cr, ctx, flow, to_server)
            caps: list[tuple[str, str, bytes]] = []
            if failed is None and cr.payload is not None and not ci.inspect(
                cr.payload, bytes(state.raw[to_server]) or pkt.payload, {}, caps, cr.trace
            ):
                failed = "payload"
            # (a traced rule has no quick test: trace_rule clears it)
            if failed is None and cr.quick and not _quick_ok(cr, to_server, fetch, lowered):
                continue
            if failed is None:
                failed = self._tx_buffers_check(cr, to_server, fetch, done_ts, done_tc, caps)
            if failed is None and cr.tx_keywords:
                failed = _tx_keywords_check(cr, tx, flow, to_server)
            if cr.trace is not None:
                if failed is None:
                    cr.trace.matched(pkt, flow, to_server, tx)
                else:
                    cr.trace.rejected(failed, pkt, flow, to_server, tx)
            if failed is not None:
                continue
            fired.add(cr.idx)
            self._postmatch(cr, pkt, flow, caps)
            out.append(_RawMatch(cr, tx_id, to_server, False))
        if done_ts if to_server else done_tc:
            # this side of the transaction is complete and was fully inspected: like
            # Suricata, it is not inspected again (later flowbits changes do not count)
            fired.add(_TX_DONE)
            state.release(tx_id, to_server)
        return out

    @staticmethod
    def _tx_scan(
        state: _FlowState,
        mpm: Mpm,
        tx_id: int,
        side: bool,
        name: str,
        buf: bytes | list[bytes] | None,
    ) -> set[int]:
        """One MPM scan per buffer per transaction (re-scanned only when it changed)."""
        if buf is None:
            return set()
        key = (tx_id, side, name)
        cached = state.mpm_cache.get(key)
        if cached is not None and cached[0] is buf:
            return cached[1]
        if isinstance(buf, list):
            hits: set[int] = set()
            for b in buf:
                hits |= mpm.scan(b)
        else:
            hits = mpm.scan(buf)
        state.mpm_cache[key] = (buf, hits)
        return hits

    def _tx_prechecks(self, cr: CRule, ctx: _PacketCtx, flow: FlowLike,
                      to_server: bool) -> str | None:
        """None when every check before the buffers holds, else the failed one's name."""
        # transactional (=>) rules: the header is written client -> server
        if not _header_ok(cr.header, ctx, cr.transactional and not to_server):
            return HEADER
        # the flow is HTTP here: only other app-layer-protocol conditions need a test
        if cr.tx_alproto_check and not _alproto_ok(cr, flow, to_server):
            return "app-layer-protocol"
        fc = cr.flow
        if fc is not None:
            ok = ctx.fcache.get(fc)
            if ok is None:
                ok = ctx.fcache[fc] = flow_condition_matches(
                    fc, flow, to_server, bool(ctx.pkt.frag)
                )
            if not ok:
                return "flow"
        for cond in cr.pkt_conds:
            if not packet_condition_matches(cond, ctx.pkt):
                return cond.field
        if cr.fb_checks and not checks_pass(cr.fb_checks, flow.flowbits):
            return "flowbits"
        return self._state_failure(cr, ctx.pkt, flow) if cr.stateful else None

    def _state_failure(self, cr: CRule, pkt: Any, flow: FlowLike | None) -> str | None:
        """xbits, flowint, stream_size, flowvar and pktvar checks (match list): None when
        all hold, else the failed keyword."""
        if cr.xb_checks and not self.xbits.checks_pass(
            cr.xb_checks, pkt.src, pkt.dst, float(pkt.ts)
        ):
            return "xbits"
        state = self._state(flow)
        if cr.fi_checks and (
            state is None or not fi.checks_pass(cr.fi_checks, state.flowints)
        ):
            return "flowint"
        if cr.stream_size and not ssz.all_match(
            cr.stream_size, pkt.proto, getattr(flow, "tcp", None)
        ):
            return "stream_size"
        for vc in cr.var_checks:
            if vc.scope == "flow":
                value = state.flowvars.get(vc.name) if state is not None else None
            else:
                pv = self._pktvars
                value = pv[1].get(vc.name) if pv is not None and pv[0] is pkt else None
            if value is None or vc.content not in value:
                return f"{vc.scope}var"
        return None

    def _postmatch(self, cr: CRule, pkt: Any, flow: FlowLike | None,
                   captures: list[tuple[str, str, bytes]] | None) -> None:
        """The rule matched: flowbits, xbits and flowint commands and pcre variable
        captures take effect now (later rules of this packet see them)."""
        if flow is not None and cr.fb_actions:
            apply_actions(cr.fb_actions, flow.flowbits)
        if cr.xb_actions:
            self.xbits.apply(cr.xb_actions, pkt.src, pkt.dst, float(pkt.ts))
        state = self._state(flow)
        if cr.fi_actions and state is not None:
            fi.apply(cr.fi_actions, state.flowints, self.flowint_max)
        if captures:
            for scope, name, value in captures:
                if scope == "flow":
                    if state is not None and (
                        name in state.flowvars or len(state.flowvars) < self.flowvar_max
                    ):
                        state.flowvars[name] = value
                    continue
                pv = self._pktvars
                if pv is None or pv[0] is not pkt:
                    pv = self._pktvars = (pkt, {})
                if name in pv[1] or len(pv[1]) < self.flowvar_max:
                    pv[1][name] = value

    @staticmethod
    def _tx_buffers_check(
        cr: CRule,
        to_server: bool,
        fetch: Any,
        done_ts: bool,
        done_tc: bool,
        caps: list[tuple[str, str, bytes]] | None = None,
    ) -> str | None:
        """None when the transaction's buffers (and urilen) match, else the failed one:
        the keyword (``urilen``) or the buffer's key (missing, or its program failed)."""
        variables: dict[str, int] = {}
        for cond in cr.tx_conds:
            raw = cond.field in ("urilen.raw", "urilen_raw")
            uri = fetch("http.uri.raw" if raw else "http.uri", True)
            if not isinstance(uri, bytes) or not isinstance(cond.cond, IntCondition):
                return cond.field
            if not cond.cond.matches(min(len(uri), 0xFFFF)):
                return cond.field
        for cb, direction, multi in cr.tx_bufs:
            if direction is BufferDirection.TO_SERVER:
                side = True
            elif direction is BufferDirection.TO_CLIENT:
                side = False
            else:
                side = to_server
            buf = fetch(cb.key, side)
            if buf is None:
                complete = done_ts if side else done_tc
                if not (complete and cb.absent is not None):
                    return cb.key
                continue
            if multi or isinstance(buf, list):
                items = buf if isinstance(buf, list) else [buf]
                if not ci.inspect_any(cb, items, variables, caps, cr.trace):
                    return cb.key
            elif not ci.inspect(cb, buf, variables, caps, cr.trace):
                return cb.key
        return None

    # ------------------------------------------------------------------ finalize

    def _finalize(self, raw: Sequence[_RawMatch], pkt: Any, flow: FlowLike | None) -> list[Match]:
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


RAW_STREAM_WINDOW = 16384


def _append_raw(window: bytearray, data: bytes) -> None:
    if data:
        window += data
        if len(window) > RAW_STREAM_WINDOW:
            del window[: len(window) - RAW_STREAM_WINDOW]


def _printable(value: bytes) -> str:
    """Suricata's PrintStringsToBuffer: printable ASCII as is, other bytes as '.'."""
    return "".join(chr(c) if 0x20 <= c < 0x7F else "." for c in value)


def _rule_pos(engine: DetectEngine, rule: Rule) -> int:
    for cr in engine.rules:
        if cr.rule is rule:
            return cr.idx
    return len(engine.rules)


def _quick_ok(
    cr: CRule, to_server: bool, fetch: Any, lowered: dict[tuple[str, bool], list[bytes]]
) -> bool:
    """Every required content of the rule occurs somewhere in its buffer (necessary for a
    match; a plain substring test is far cheaper than the inspection engine)."""
    for name, side, pattern, nocase in cr.quick:
        s = to_server if side is None else side
        buf = fetch(name, s)
        if buf is None:
            return False
        if nocase:
            key = (name, s)
            low = lowered.get(key)
            if low is None:
                low = lowered[key] = (
                    [b.lower() for b in buf] if isinstance(buf, list) else [buf.lower()]
                )
            if not any(pattern in b for b in low):
                return False
        elif isinstance(buf, list):
            if not any(pattern in b for b in buf):
                return False
        elif pattern not in buf:
            return False
    return True


class _Resolved:
    """A packet group resolved for one flow direction (see :meth:`_Group.resolve`):
    ``plain`` rules always met, ``keyed`` (prefilter keyword, rules) met when the
    packet satisfies the keyword; ``known``: every position, their headers fit."""

    __slots__ = ("group", "key", "keyed", "known", "plain")

    def __init__(self, group: _Group, key: tuple[object, ...], plain: list[int],
                 keyed: tuple[tuple[PacketCondition, list[int]], ...]) -> None:
        self.group = group  # the group itself, not its id(): ids of freed objects recur
        self.key = key
        self.plain = plain
        self.keyed = keyed
        self.known = set(plain).union(*(positions for _, positions in keyed))

    def for_packet(self, pkt: Any) -> list[int]:
        """The always-candidates of this packet, in rule order."""
        if not self.keyed:
            return self.plain
        passed = [pos for pc, positions in self.keyed
                  if packet_condition_matches(pc, pkt) for pos in positions]
        if not passed:
            return self.plain
        return sorted([*self.plain, *passed])


# Prefilter keywords, most selective first (Suricata's packet-header prefilter engines:
# detect-tcp-flags.c, detect-dsize.c, detect-icmp-*.c, detect-tcp-ack.c, -seq.c, -ttl.c)
_PREFILTER_FIELDS = ("flags", "tcp.flags", "itype", "icode", "dsize", "ack", "tcp.ack",
                     "seq", "tcp.seq", "ttl")


def _prefilter_keyword(conds: Sequence[PacketCondition]) -> PacketCondition | None:
    for name in _PREFILTER_FIELDS:
        for pc in conds:
            if pc.field == name:
                return pc
    return None


def _resolved(group: _Group, ctx: _PacketCtx, state: _FlowState | None, to_server: bool,
              payloadless: bool) -> _Resolved:
    """The group's always-candidates for this packet, resolved once per flow, direction
    and payload class (a flow's packets of one direction share the tuple, so their header
    results are the same; the key is checked anyway, so an ICMP error or a reused flow
    slot resolves anew)."""
    if state is None:
        return group.resolve(ctx, to_server, payloadless)
    key = (group.version, ctx.proto, ctx.ver, ctx.src, ctx.sport, ctx.dst, ctx.dport)
    slot = (to_server, payloadless)
    res = state.sgh.get(slot)
    if res is None or res.group is not group or res.key != key:
        res = state.sgh[slot] = group.resolve(ctx, to_server, payloadless, key)
    return res


def _header_ok(header: CompiledHeader, ctx: _PacketCtx, reverse: bool) -> bool:
    key = ~header.hid if reverse else header.hid
    ok = ctx.hcache.get(key)
    if ok is None:
        if reverse:
            ok = header.matches(ctx.proto, ctx.ver, ctx.dst, ctx.dport, ctx.src, ctx.sport)
        else:
            ok = header.matches(ctx.proto, ctx.ver, ctx.src, ctx.sport, ctx.dst, ctx.dport)
        ctx.hcache[key] = ok
    return ok


def _in_proto_group(cr: CRule, key: int) -> bool:
    protos = cr.header.protos
    if not protos:
        return True
    return key in protos


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


def _alproto_known_ok(cr: CRule, flow: FlowLike | None, to_server: bool) -> bool:
    """Packet-level app-layer-protocol test: the protocol of this direction must be
    known (its data seen) and satisfy every condition."""
    state = _flow_state(flow)
    if state is None:
        return False
    if to_server not in state.data_seen and any(m != "header" for _, _, m in cr.alproto_conds):
        return False
    return _alproto_ok(cr, flow, to_server)


def _same_alproto(a: str, b: str) -> bool:
    return a == b or canonical_alproto(a) == canonical_alproto(b)


def _known(alproto: str | None) -> str | None:
    return None if alproto in (None, "failed", "unknown") else alproto


def _direction_alproto(flow: FlowLike | None, to_server: bool) -> str | None:
    """The protocol of one direction: the flow's own per-direction one (None while that
    direction's data was not parsed yet), or the flow's protocol for flows that keep one."""
    if flow is None:
        return None
    final = _known(flow.alproto)
    name = "alproto_ts" if to_server else "alproto_tc"
    if not hasattr(flow, name):
        return final
    return _known(getattr(flow, name)) if final is not None else None


def _alproto_ok(cr: CRule, flow: FlowLike | None, to_server: bool) -> bool:
    if not cr.alproto_conds:
        return True
    if flow is None:
        return False
    final = _known(flow.alproto)
    if final is None:
        return False
    # per-direction protocols (Suricata's alproto_ts / alproto_tc)
    ts = _direction_alproto(flow, True)
    tc = _direction_alproto(flow, False)
    for want, negated, mode in cr.alproto_conds:
        if mode == "either":
            hit = _same_alproto(ts or "", want) or _same_alproto(tc or "", want)
        else:
            have = {"to_server": ts, "to_client": tc,
                    "direction": ts if to_server else tc}.get(mode, final)
            if have is None:
                return False  # that direction's protocol is not known (yet)
            hit = _same_alproto(have, want)
        if hit == negated:
            return False
    return True


def _skip_reason(rule: Rule) -> str | None:
    if rule.unsupported:
        return "unsupported keywords: " + ", ".join(rule.unsupported)
    if rule.action is Action.CONFIG or rule.action not in _ACTION_RANK:
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
        raise _SkipRule("buffers of several app-layer protocols: " + ", ".join(sorted(protos)))
    alproto = protos.pop() if protos else canonical_alproto(rule.app_proto) or "http"
    # a buffer several protocols register (file.data) takes the rule's protocol, which
    # must be one of them (Suricata: file.data of ftp-data is not built here)
    for bm in rule.buffers:
        spec = BUFFERS.get(bm.buffer)
        if spec is not None and not spec.alproto \
                and alproto not in registry.buffer_protocols(bm.buffer):
            raise _SkipRule(f"{bm.buffer} of {alproto} is not supported")
    return alproto


def _tx_matcher(cond: TxCondition) -> Any:
    """The match function of a protocol keyword (None for app-layer-event)."""
    if cond.keyword == APP_LAYER_EVENT:
        return None
    entry = registry.tx_keywords().get(cond.keyword)
    if entry is None:
        raise _SkipRule(f"keyword {cond.keyword} is not registered")
    return entry.keyword.match


def _tx_keywords_check(cr: CRule, tx: Any, flow: FlowLike, to_server: bool) -> str | None:
    """None when every protocol keyword of the rule holds on the transaction, else the
    failed keyword. A keyword that cannot tell yet (None) is a non-match now; the
    transaction is inspected again later."""
    ctx = TxMatchContext(to_server, getattr(flow, "src", b""), getattr(flow, "dst", b""))
    for cond, match in cr.tx_keywords:
        if match is None:
            if not _has_event(cond, tx):
                return cond.keyword
            continue
        if match(cond.arg, tx, ctx) is not True:
            return cond.keyword
    return None


def _has_event(cond: TxCondition, tx: Any) -> bool:
    name, negated = cond.arg
    events = getattr(tx, "events", None) or ()
    found = name in events or f"{cond.alproto}.{name}" in events
    return bool(found != negated)


_TRAFFIC_PREFIXES = (("traffic/id/", "id"), ("traffic/label/", "label"))


def _split_traffic_bits(bits: list[str], out: dict[str, Any]) -> None:
    """Flowbits named ``traffic/id/<x>`` / ``traffic/label/<x>`` are logged as
    ``traffic: {id: [x], label: [x]}`` (Suricata's TRAFFIC_ID/LABEL_PREFIX); others as
    ``flowbits``."""
    plain: list[str] = []
    traffic: dict[str, list[str]] = {}
    for bit in bits:
        for prefix, key in _TRAFFIC_PREFIXES:
            if bit.startswith(prefix):
                traffic.setdefault(key, []).append(bit[len(prefix):])
                break
        else:
            plain.append(bit)
    if plain:
        out["flowbits"] = plain
    if traffic:
        out["traffic"] = traffic
