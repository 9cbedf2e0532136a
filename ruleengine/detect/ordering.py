"""Rule order (``src/detect-engine-sigorder.c``), the fast pattern a rule gives the
prefilter, and the ``--engine-analysis`` view of a compiled rule."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from ruleengine.detect import content as ci
from ruleengine.detect.alproto import canonical_alproto
from ruleengine.detect.crule import ACTION_RANK, CRule
from ruleengine.detect.xbits import order_class as xbits_order_class
from ruleengine.keywords import transform_apply as tf
from ruleengine.keywords.flowbits import order_class
from ruleengine.rules.model import PAYLOAD, Absent, Action, ContentMatch, Rule


def action_ranks(action_order: Sequence[str]) -> dict[Action, int]:
    """suricata.yaml ``action-order`` (default pass, drop, reject, alert) as a rank per
    action; the reject variants rank with ``reject``."""
    ranks: dict[Action, int] = {}
    for rank, name in enumerate(action_order):
        for action in ACTION_RANK:
            group = "reject" if action.is_reject else action.value
            if group == name and action not in ranks:
                ranks[action] = rank
    for action, default in ACTION_RANK.items():
        ranks.setdefault(action, len(action_order) + default)
    return ranks


def order_key(cr: CRule, ranks: Mapping[Action, int] = ACTION_RANK) -> tuple[int, ...]:
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


def prefilter_content(cr: CRule) -> tuple[str, ContentMatch] | None:
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


def analysis_of(cr: CRule, prefilter: bool) -> RuleAnalysis:
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
                        prefilter_content(cr) if prefilter else None, packet, stream)

