"""Rule-aware auto-bypass (``stream.auto-bypass``): flows that no loaded rule can still match.

What can still match a flow is decided from the rule set when the engine is built
(:meth:`AutoBypassPlan.build`), not guessed per flow; the pipeline only asks, for a flow it
inspects, whether the flow has reached a point after which nothing can (:class:`FlowWatch`).
The analysis reads the compiled rules' public attributes (``DetectEngine.rules``) only.

A flow can be auto-bypassed only when **no packet/stream rule could match it**: every
loaded rule without app-layer buffers (payload/raw-stream rules, header-only rules, flags,
dsize, stream_size, flowbits-only...) whose protocol, addresses and ports could fit the flow
in either direction and whose app-layer protocol condition does not exclude the flow's
protocol counts as "could still match" (a *blocker*). IP-only rules and
protocol-detection-only rules are not blockers: they are evaluated on the first packet of
each direction and when protocol detection completes, both long past at the points below.
Then, per protocol phase:

``http`` (a download past the body limit): the flow's last transaction has its request
complete and inspected (earlier ones are complete both ways: their last evaluation is
done), the request side is idle, the response has no trailers to come (framed by
Content-Length, or by the server's close) and its body reached ``response-body-limit``:
every response buffer a rule can read is final. And no later request can be inspected
either, because

* the client said this request is its last (``Connection: close``, or HTTP/1.0 without
  keep-alive), or
* the server did (response ``Connection: close``, or an HTTP/1.0 response without
  keep-alive), or the body runs until the server closes: the server answers no later
  request, and a client that got the close must not send one (RFC 9112 9.6); a request
  pipelined before the response arrived is already parsed (the request side would not be
  idle, or a second transaction would be the last), or
* ``stream.bypass`` is on and the response ends past ``stream.reassembly.depth`` of the
  to-client stream (``AutoBypassPlan.depth_bypass``): the depth bypass takes the flow
  before the response completes, so nothing after it would be inspected anyway; the
  auto-bypass only comes earlier, without the completion's evaluation (which the depth
  bypass prevents as well: the same alerts as depth bypass alone). The one request that
  depth bypass alone would still see is one the client pipelines *during* the download,
  before the depth is reached (allowed on a keep-alive connection, not done by browsers
  or curl): it is not inspected here.

Otherwise the rules would be evaluated once more when the response completes;
the pipeline does that evaluation now, on a view of the transaction marked complete
(:meth:`FlowWatch.ready` returns it), then bypasses. Refused when an HTTP rule evaluated
on the response side depends on something that still changes after that point: raw
content (the stream window moves), packet keywords (the evaluating packet), xbits (other
flows), stream_size, pktvars, thresholds/detection_filter (time), ``absent`` buffers and
app-layer events (the completion and later parsing decide them).

encrypted (TLS, SSH after the handshake, with ``encryption-handling: default``, where the
parser is no longer fed): every transaction is complete both ways and was inspected so in
both directions. Refused when a rule of the protocol uses one of the features above.

Rule sets with ``tag`` rules are refused as a whole (tagged packets of the flow are logged
after the match). When in doubt, a flow is not bypassed.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from ruleengine.applayer.http1.tx import Progress
from ruleengine.detect.conditions import CompiledHeader, addr_int
from ruleengine.detect.engine import canonical_alproto
from ruleengine.keywords.applayer import APP_LAYER_EVENT
from ruleengine.rules.model import Absent

AUTO = "auto"
"""The bypass reason (EVE ``bypass_reason``, ``flow_bypassed.reason.auto``)."""

HTTP = "http"
ENCRYPTED = "encrypted"  # the phase after a handshake, whatever the protocol
_TCP = 6


@dataclass(frozen=True)
class Blocker:
    """A packet/stream rule that could still match every packet of a flow it fits."""

    sid: int
    header: CompiledHeader
    # (canonical protocol, negated) the rule requires of the flow's app-layer protocol
    alprotos: tuple[tuple[str, bool], ...]

    def fits(self, flow: Any, protos: frozenset[str]) -> bool:
        """Could the rule match a packet of ``flow`` (either direction)? ``protos``: the
        flow's known app-layer protocols (final and per direction), canonical."""
        return self.fits_tuple(_FlowKey.of(flow), protos)

    def fits_tuple(self, key: _FlowKey, protos: frozenset[str]) -> bool:
        for name, negated in self.alprotos:
            if negated and protos == {name}:
                return False
            if not negated and name not in protos:
                return False
        proto, ver, cli, cport, srv, sport = key
        return (self.header.matches(proto, ver, cli, cport, srv, sport)
                or self.header.matches(proto, ver, srv, sport, cli, cport))


class _FlowKey(NamedTuple):
    """A flow's tuple as header tests take it (addresses as integers)."""

    proto: int
    ver: int
    cli: int
    cport: int
    srv: int
    sport: int

    @classmethod
    def of(cls, flow: Any) -> _FlowKey:
        return cls(flow.proto, 4 if len(flow.src) == 4 else 6, addr_int(flow.src), flow.sport,
                   addr_int(flow.dst), flow.dport)


def late_feature(cr: Any) -> str | None:
    """Why an app-layer rule's result could still change after its buffers are final
    (None: it cannot). ``cr`` is a compiled rule (``DetectEngine.rules``)."""
    rule = cr.rule
    if cr.payload is not None:
        return "raw content"
    if cr.pkt_conds:
        return "packet keyword"
    if cr.xb_checks:
        return "xbits"
    if cr.stream_size:
        return "stream_size"
    if any(vc.scope != "flow" for vc in cr.var_checks):
        return "pktvar"
    if rule.threshold is not None or rule.detection_filter is not None:
        return "threshold"
    if any(isinstance(it, Absent) for bm in rule.buffers for it in bm.items):
        return "absent"
    if any(cond.keyword == APP_LAYER_EVENT for cond in rule.tx_conditions):
        return APP_LAYER_EVENT
    return None


class AutoBypassPlan:
    """What the rule set allows: built once per detection engine (and at each reload)."""

    def __init__(self, blockers: Sequence[Blocker], refused: dict[str, tuple[int, str]],
                 disabled: str | None) -> None:
        self.blockers = tuple(blockers)
        # phase (``http``, ``encrypted:<alproto>``) -> (sid, why) of the first rule refusing it
        self.refused = refused
        self.disabled = disabled  # the whole rule set refuses (tag rules)
        # stream.reassembly.depth when stream.bypass is on (0: off or unlimited), set by the
        # pipeline: a response ending past it is depth-bypassed before it completes
        self.depth_bypass = 0

    @classmethod
    def build(cls, rules: Iterable[Any]) -> AutoBypassPlan:
        """From the compiled rules of a detection engine (``DetectEngine.rules``)."""
        blockers: list[Blocker] = []
        refused: dict[str, tuple[int, str]] = {}
        disabled: str | None = None
        for cr in rules:
            rule = cr.rule
            if rule.tags and disabled is None:
                disabled = f"sid {rule.sid} uses tag"
            if not cr.is_tx:
                if not cr.iponly and not cr.pd_once:
                    alprotos = tuple((canonical_alproto(name) or name, neg)
                                     for name, neg, _ in cr.alproto_conds)
                    blockers.append(Blocker(rule.sid, cr.header, alprotos))
                continue
            why = late_feature(cr)
            if why is None:
                continue
            alproto = canonical_alproto(cr.alproto) or cr.alproto
            refused.setdefault(f"{ENCRYPTED}:{alproto}", (rule.sid, why))
            if alproto == HTTP and False in cr.tx_dirs:
                refused.setdefault(HTTP, (rule.sid, why))
        return cls(blockers, refused, disabled)

    def blocker_for(self, flow: Any) -> int | None:
        """The sid of a packet/stream rule that could match ``flow``, else None."""
        protos = frozenset(p for p in (canonical_alproto(getattr(flow, name, None))
                                       for name in ("alproto", "alproto_ts", "alproto_tc"))
                           if p is not None)
        key = _FlowKey.of(flow)
        return next((b.sid for b in self.blockers if b.fits_tuple(key, protos)), None)

    def why_not(self, phase: str) -> str | None:
        """Why the rule set refuses a phase (``http``, ``encrypted:tls``), or None."""
        if self.disabled is not None:
            return self.disabled
        found = self.refused.get(phase)
        return None if found is None else f"sid {found[0]}: {found[1]}"

    def watch(self, flow: Any) -> FlowWatch | None:
        """The flow's watcher once its protocol is known; None while it is not."""
        alproto = canonical_alproto(flow.alproto)
        if alproto is None or flow.app is None:
            return None
        never = (self.disabled is not None or flow.proto != _TCP
                 or self.blocker_for(flow) is not None)
        http_ok = alproto == HTTP and self.why_not(HTTP) is None
        encrypted_ok = self.why_not(f"{ENCRYPTED}:{alproto}") is None
        return FlowWatch(self, never=never or not (http_ok or encrypted_ok),
                         http=http_ok, encrypted=encrypted_ok)


class FlowWatch:
    """One flow's progress towards the point where no rule can still match it."""

    __slots__ = ("done_dirs", "encrypted", "http", "never", "plan", "request_done")

    def __init__(self, plan: AutoBypassPlan, *, never: bool, http: bool,
                 encrypted: bool) -> None:
        self.plan = plan  # the plan it was decided by (a reload decides again)
        self.never = never
        self.http = http
        self.encrypted = encrypted
        self.request_done: int | None = None  # tx id seen complete on a to-server pass
        self.done_dirs: set[bool] = set()  # encrypted: directions inspected when complete

    def ready(self, flow: Any, to_server: bool, encrypted: bool) -> list[Any] | None:
        """Called after detection ran on a packet of the flow: None while a rule could
        still match; else the transaction views to inspect once more before the bypass
        (``inspect_tx(pkt, flow, to_server, view, True, True)``), possibly none."""
        if self.never:
            return None
        txs = getattr(flow.app, "transactions", None)
        if not txs:
            return None
        if encrypted:
            return self._encrypted_ready(txs, to_server) if self.encrypted else None
        if self.http:
            return self._http_ready(flow, txs, to_server)
        return None

    def _encrypted_ready(self, txs: Sequence[Any], to_server: bool) -> list[Any] | None:
        if not all(tx.request_complete and tx.response_complete for tx in txs):
            return None
        self.done_dirs.add(to_server)  # this direction's pass saw them complete
        return [] if len(self.done_dirs) == 2 else None

    def _http_ready(self, flow: Any, txs: Sequence[Any], to_server: bool
                    ) -> list[Any] | None:
        parser = flow.app
        if getattr(parser, "request_state", None) != "idle":
            return None
        tx = txs[-1]
        if any(not (t.request_complete and t.response_complete) for t in txs[:-1]):
            return None
        if to_server:
            # this pass inspected the request side at its final progress
            if tx.request_complete:
                self.request_done = tx.tx_id
            return None
        if self.request_done != tx.tx_id:
            return None
        if not (tx.response_progress == Progress.BODY and tx.response_body_truncated):
            return None
        framing = getattr(parser, "response_state", None)
        past_depth = framing == "body-length" and self._ends_past_depth(flow, tx)
        if framing == "body-length":  # no trailers; who ends the connection?
            if not (past_depth or _client_closes(tx) or _server_closes(tx)):
                return None
        elif framing != "body-until-close":  # chunked (trailers), or not in a body
            return None
        if past_depth:
            # the depth bypass comes before the response completes: its completion is
            # never evaluated, with or without this bypass (the same alerts as depth alone)
            return []
        # what the response side is evaluated on when it completes: the same, final buffers
        view = copy.copy(tx)
        view.response_progress = Progress.COMPLETE
        return [view]

    def _ends_past_depth(self, flow: Any, tx: Any) -> bool:
        """The response's last byte lies past the depth of the to-client stream: with
        stream.bypass the flow is bypassed before the response completes."""
        depth = self.plan.depth_bypass
        ssn = getattr(flow, "tcp", None)
        length = tx.response_content_length
        if not depth or ssn is None or length is None:
            return False
        remaining = length - tx.response_message_len  # body bytes not yet delivered
        return bool(ssn.server.app_off + remaining > depth)


def _announces_close(connection: bytes | None, protocol: bytes | None) -> bool:
    """A side's ``Connection`` header (or HTTP/1.0 without keep-alive) says this message is
    its last on the connection (RFC 9112 9.6)."""
    tokens = {t.strip().lower() for t in (connection or b"").split(b",")}
    if b"close" in tokens:
        return True
    return protocol == b"HTTP/1.0" and b"keep-alive" not in tokens


def _client_closes(tx: Any) -> bool:
    return _announces_close(tx.request_header(b"connection"), tx.request_protocol)


def _server_closes(tx: Any) -> bool:
    return _announces_close(tx.response_header(b"connection"), tx.response_protocol)
