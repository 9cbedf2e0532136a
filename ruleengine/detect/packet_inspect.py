"""Packet and stream rules: the packet group's candidates (prefilter, IP-only table,
resolved always-candidates), the checks before the payload, and the payload/stream
inspection (Suricata's DetectEngineInspectRulePayloadMatches)."""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet

from ruleengine.detect import content as ci
from ruleengine.detect.alproto import alproto_known_ok
from ruleengine.detect.conditions import (
    FlowLike,
)
from ruleengine.detect.context import PacketCtx
from ruleengine.detect.crule import CRule
from ruleengine.detect.flow_state import FlowState, Resolved, append_raw
from ruleengine.detect.groups import Group, header_ok
from ruleengine.detect.state import EngineState, RawMatch
from ruleengine.detect.trace import HEADER
from ruleengine.rules.model import PAYLOAD

TCP = 6
_NOTHING: frozenset[int] = frozenset()


class PacketInspector(EngineState):
    """The packet-rule half of ``DetectEngine``."""

    # ------------------------------------------------------------------ packet rules

    def _packet_raw(
        self,
        ctx: PacketCtx,
        flow: FlowLike | None,
        to_server: bool,
        stream_chunk: bytes | None,
        stream_add: bool | None = None,
    ) -> list[RawMatch]:
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
        ctx.flow, ctx.to_server, ctx.state = flow, to_server, state
        if state is not None and (payload or stream_chunk):
            state.data_seen.add(to_server)
        if state is not None and self._keep_raw_stream and ctx.proto == TCP:
            append_raw(state.raw[to_server], payload if stream_chunk is None else stream_chunk)
        iponly: Sequence[int] = ()
        if state is None or to_server not in state.iponly_done:
            iponly = group.iponly_candidates(ctx)
        if state is not None:
            state.iponly_done.add(to_server)
        known: AbstractSet[int]
        if self._prefilter:
            res = resolved(group, ctx, state, to_server, not payload and not stream_chunk)
            base, known = res.for_packet(pkt), res.known
        else:  # reference mode: every rule of the group, headers tested per packet
            base, known = group.always, _NOTHING
        out: list[RawMatch] = []
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
            self._postmatch(cr, ctx, caps)
            if cr.pd_once and state is not None:
                state.pd_done.add((cr.idx, to_server))
            out.append(RawMatch(cr, None, to_server, on_stream))
        return out

    def _packet_prechecks(
        self, cr: CRule, ctx: PacketCtx, flow: FlowLike | None, to_server: bool,
        header_known: bool = False,
    ) -> str | None:
        """None when every check before the payload holds, else the failed one's name
        (what ``ruleengine explain`` reports). ``header_known``: the header was already
        found to fit (the flow's resolved group)."""
        if getattr(ctx.pkt, "pseudo", False) and cr.pkt_conds:
            # A flow-end pseudo packet is no wire packet: packet keywords (dsize, ...) never
            # match it (Suricata's PKT_IS_PSEUDOPKT checks).
            return "pseudo-packet"
        if not header_known and not header_ok(cr.header, ctx, False):
            return HEADER
        if cr.alproto_conds and not alproto_known_ok(cr.alproto_conds, flow, to_server):
            return "app-layer-protocol"
        # the match list: each keyword's own test (flow, dsize, flowbits, xbits, ...)
        for match, arg, name in cr.matches:
            if not match(ctx, arg):
                return name
        return None

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


def resolved(group: Group, ctx: PacketCtx, state: FlowState | None, to_server: bool,
              payloadless: bool) -> Resolved:
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
