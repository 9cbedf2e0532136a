"""Transaction rules: a transaction side's buffers (fetched once per progress step,
transformed keys through their chain), its prefilter scans, and per candidate the checks
before the buffers, the quick substring test, the buffer programs and the protocol
keywords. Each rule fires at most once per (transaction, direction)."""

from __future__ import annotations

import inspect
from typing import Any, Protocol

from ruleengine.applayer.base import TxMatchContext
from ruleengine.buffers import BUFFERS, BufferDirection, getter_for
from ruleengine.detect import content as ci
from ruleengine.detect.alproto import alproto_ok, canonical_alproto
from ruleengine.detect.conditions import (
    FlowLike,
)
from ruleengine.detect.context import PacketCtx
from ruleengine.detect.crule import CRule
from ruleengine.detect.flow_state import TX_DONE, FlowState
from ruleengine.detect.groups import header_ok
from ruleengine.detect.prefilter import Mpm
from ruleengine.detect.state import EngineState, RawMatch
from ruleengine.detect.trace import HEADER
from ruleengine.keywords import transform_apply as tf
from ruleengine.rules.model import IntCondition, TxCondition
from ruleengine.safety import HOSTILE_ERRORS


class TxLike(Protocol):
    """What detection reads from an HTTP transaction (``ruleengine.applayer.http1``).

    ``buffer(name, to_server)`` returns the canonical buffer (``ruleengine.buffers``) of
    the given side; for single-direction buffers the side is implied. Implementations
    whose ``buffer`` takes only the name are supported too (see :func:`get_buffer`).
    """

    tx_id: int

    def buffer(self, name: str, /, *args: Any) -> bytes | list[bytes] | None: ...


_BUFFER_TWO_ARGS: dict[type, bool] = {}


def _takes_side(kind: Any) -> bool:
    """Does ``kind.buffer`` take the side after the name? Read from its signature, not by
    calling it and catching TypeError: a TypeError inside a getter is a bug to see."""
    try:
        params = list(inspect.signature(kind.buffer).parameters.values())
    except (TypeError, ValueError):  # no signature to read (a builtin): assume it does
        return True
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
        return True
    positional = [p for p in params if p.kind in (inspect.Parameter.POSITIONAL_ONLY,
                                                   inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 3  # self, name, side


def get_buffer(tx: Any, name: str, to_server: bool) -> bytes | list[bytes] | None:
    """``tx.buffer(name, to_server)``; ``tx.buffer(name)`` for transaction types whose
    ``buffer`` takes only the name (learnt once per type)."""
    kind = type(tx)
    if not hasattr(kind, "buffer"):
        getter = getter_for(name, to_server) if name in BUFFERS else None
        return None if getter is None else getter(tx)
    two = _BUFFER_TWO_ARGS.get(kind)
    if two is None:
        two = _BUFFER_TWO_ARGS[kind] = _takes_side(kind)
    if two:
        return tx.buffer(name, to_server)  # type: ignore[no-any-return]
    return tx.buffer(name)  # type: ignore[no-any-return]


_UNSET: Any = object()
_TABLES: dict[type, bool] = {}


def _buffer_table(tx: Any, to_server: bool) -> Any:
    """``tx.buffer_table(to_server)`` (name -> getter of that side) for transaction types
    that have one, else None (learnt once per type)."""
    kind = type(tx)
    has = _TABLES.get(kind)
    if has is None:
        has = _TABLES[kind] = callable(getattr(kind, "buffer_table", None))
    return tx.buffer_table(to_server) if has else None


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


class TxInspector(EngineState):
    """The transaction-rule half of ``DetectEngine``."""

    # ------------------------------------------------------------------ tx rules

    def _tx_raw(
        self,
        ctx: PacketCtx,
        flow: FlowLike,
        to_server: bool,
        tx: TxLike,
        done_ts: bool,
        done_tc: bool,
    ) -> list[RawMatch]:
        group = self._tx_groups.get((canonical_alproto(flow.alproto) or "", to_server))
        if group is None:
            return []
        state = self._state(flow)
        assert state is not None
        ctx.flow, ctx.to_server, ctx.state = flow, to_server, state
        tx_id = tx.tx_id
        fired = state.fired.setdefault((tx_id, to_server), set())
        if TX_DONE in fired:
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
                try:
                    if chain is None:
                        value = _as_buffer(get_buffer(tx, name, side))
                    else:
                        value = tf.apply_multi(chain[1], fetch(chain[0], side))
                except HOSTILE_ERRORS as exc:  # the transaction's data, not a bug
                    value = None  # this buffer is absent at this progress step
                    self._hostile_input(exc)
                bufs[key] = value
                state.buffers[(tx_id, side)][1][key] = value
            return bufs[key]

        lowered: dict[tuple[str, bool], list[bytes]] = {}
        hits = self._mpm_hits(state, group.mpms, tx, tx_id, to_server, bufs, fetch)
        out: list[RawMatch] = []
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
                failed = self._tx_keywords_check(cr, tx, flow, to_server)
            if cr.trace is not None:
                if failed is None:
                    cr.trace.matched(pkt, flow, to_server, tx)
                else:
                    cr.trace.rejected(failed, pkt, flow, to_server, tx)
            if failed is not None:
                continue
            fired.add(cr.idx)
            self._postmatch(cr, ctx, caps)
            out.append(RawMatch(cr, tx_id, to_server, False))
        if done_ts if to_server else done_tc:
            # this side of the transaction is complete and was fully inspected: like
            # Suricata, it is not inspected again (later flowbits changes do not count)
            fired.add(TX_DONE)
            state.release(tx_id, to_server)
        return out

    def _mpm_hits(
        self,
        state: FlowState,
        mpms: dict[str, Mpm],
        tx: Any,
        tx_id: int,
        to_server: bool,
        bufs: dict[tuple[str, bool], bytes | list[bytes] | None],
        fetch: Any,
    ) -> dict[str, set[int]]:
        """The prefilter hits of every MPM buffer of this side. The plain buffers come
        straight from the transaction's getter table when it has one (one call per
        buffer instead of ``fetch`` -> ``get_buffer`` -> ``buffer`` -> getter: a side
        has a dozen MPM buffers and most are fetched once); transformed ones, and
        transactions without a table, through ``fetch``. An absent buffer has no hits."""
        table = _buffer_table(tx, to_server)
        chains = self._chains
        store = state.buffers[(tx_id, to_server)][1]
        mpm_cache = state.mpm_cache
        hits: dict[str, set[int]] = {}
        for name, mpm in mpms.items():
            key = (name, to_server)
            buf = bufs.get(key, _UNSET)
            if buf is _UNSET:
                if table is None or name in chains:
                    buf = fetch(name, to_server)
                else:
                    getter = table.get(name)  # none: the buffer is absent, as in ``buffer``
                    try:
                        buf = None if getter is None else getter(tx)
                        if buf is not None and type(buf) is not bytes:
                            buf = _as_buffer(buf)
                    except HOSTILE_ERRORS as exc:  # the transaction's data, not a bug
                        buf = None
                        self._hostile_input(exc)
                    bufs[key] = store[key] = buf
            if buf is None:
                hits[name] = set()
                continue
            cached = mpm_cache.get((tx_id, to_server, name))
            if cached is not None and cached[0] is buf:
                hits[name] = cached[1]
            else:
                hits[name] = self._tx_scan(state, mpm, tx_id, to_server, name, buf)
        return hits

    @staticmethod
    def _tx_scan(
        state: FlowState,
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

    def _tx_prechecks(self, cr: CRule, ctx: PacketCtx, flow: FlowLike,
                      to_server: bool) -> str | None:
        """None when every check before the buffers holds, else the failed one's name."""
        # transactional (=>) rules: the header is written client -> server
        if not header_ok(cr.header, ctx, cr.transactional and not to_server):
            return HEADER
        # the flow is HTTP here: only other app-layer-protocol conditions need a test
        if cr.tx_alproto_check and not alproto_ok(cr.alproto_conds, flow, to_server):
            return "app-layer-protocol"
        # the match list: each keyword's own test (flow, dsize, flowbits, xbits, ...)
        for match, arg, name in cr.matches:
            if not match(ctx, arg):
                return name
        return None

    def _tx_keywords_check(self, cr: CRule, tx: Any, flow: FlowLike,
                           to_server: bool) -> str | None:
        """None when every protocol keyword of the rule holds on the transaction, else
        the failed keyword. A keyword that cannot tell yet (None) is a non-match now; the
        transaction is inspected again later. A keyword that hostile data broke (one of
        ``HOSTILE_ERRORS``) is a non-match and an engine event."""
        ctx = TxMatchContext(to_server, getattr(flow, "src", b""), getattr(flow, "dst", b""))
        for cond, match in cr.tx_keywords:
            if match is None:
                if not _has_event(cond, tx):
                    return cond.keyword
                continue
            try:
                ok = match(cond.arg, tx, ctx) is True
            except HOSTILE_ERRORS as exc:
                self._hostile_input(exc)
                ok = False
            if not ok:
                return cond.keyword
        return None

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


def _has_event(cond: TxCondition, tx: Any) -> bool:
    name, negated = cond.arg
    events = getattr(tx, "events", None) or ()
    found = name in events or f"{cond.alproto}.{name}" in events
    return bool(found != negated)

