"""What ``ruleengine explain`` concludes for one flow, from the trace of the rule.

The verdict always rests on what the engine itself did (``ruleengine.detect.trace``): the
checks that failed, the buffers and bytes inspected, the steps of each buffer program.
The flow's captured bytes (:class:`RawStream`, read from the pcap independently of the
stream engine) only say where the rule's patterns were on the wire, to tell whether
the data that would have matched was ever inspected: cut off by a bypass, the stream
depth or a body limit, rejected by an earlier check, or looked for in the wrong buffer.
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ruleengine.buffers import BUFFERS, BufferDirection
from ruleengine.detect import content as ci
from ruleengine.detect.engine import CRule, canonical_alproto, get_buffer
from ruleengine.detect.trace import MATCH, Evaluation, Inspection
from ruleengine.rules.model import PAYLOAD, Absent, ContentMatch

# verdict codes (JSON ``verdict.code``)
FIRED = "fired"
SILENCED = "silenced"
CHECK_FAILED = "check-failed"
WRONG_BUFFER = "wrong-buffer"
BYPASSED = "bypassed"
STREAM_DEPTH = "stream-depth"
BODY_LIMIT = "body-limit"
APP_LAYER = "app-layer-not-detected"
FLOW_PASSED = "flow-passed"
NOT_EVALUATED = "not-evaluated"
HEADER_MISMATCH = "header-mismatch"  # only for a flow asked for with --flow

KEYWORDS = {ci.K_CONTENT: "content", ci.K_PCRE: "pcre", ci.K_ISDATAAT: "isdataat",
            ci.K_BTEST: "byte_test", ci.K_BJUMP: "byte_jump", ci.K_BEXTRACT: "byte_extract",
            ci.K_BMATH: "byte_math", ci.K_BSIZE: "bsize", ci.K_ABSENT: "absent",
            ci.K_B64: "base64_decode", ci.K_ASN1: "asn1"}
_BODY_BUFFERS = {"http.request_body": "request", "http.client_body": "request",
                 "http.response_body": "response", "http.server_body": "response",
                 "file.data": "response"}
_PRECHECK_RANK = {"pseudo-packet": 0, "app-layer-protocol": 1, "flow": 2, "flowbits": 4,
                  "xbits": 5, "flowint": 5, "stream_size": 5, "flowvar": 5, "pktvar": 5,
                  "payload": 6}


@dataclass
class RawStream:
    """One direction of a flow as captured: TCP bytes placed by sequence number (from
    the first byte), UDP datagrams one after the other (``bounded``: a pattern must lie in
    one datagram). ``starts``/``packets``: where each segment begins, which packet."""

    bounded: bool = False
    data: bytearray = field(default_factory=bytearray)
    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    packets: list[int] = field(default_factory=list)

    def packet_at(self, offset: int) -> int:
        i = bisect.bisect_right(self.starts, offset) - 1
        return self.packets[max(i, 0)] if self.packets else 0

    def find(self, pattern: bytes, nocase: bool, limit: int = 8) -> list[int]:
        hay = self.data.lower() if nocase else self.data
        needle = pattern.lower() if nocase else pattern
        out: list[int] = []
        at = hay.find(needle)
        while at >= 0 and len(out) < limit and needle:
            i = bisect.bisect_right(self.starts, at) - 1
            if not self.bounded or (i >= 0 and at + len(needle) <= self.ends[i]):
                out.append(at)
            at = hay.find(needle, at + 1)
        return out


@dataclass
class Hit:
    """Where a pattern of the rule was on the wire."""

    to_server: bool
    offset: int  # stream offset in that direction
    packet_no: int


@dataclass
class FlowFacts:
    """What the pipeline recorded about a flow at its end (its EVE flow record)."""

    flow: Any
    action: str | None = None  # "pass" / "drop": a flow-level decision
    bypass_packet: int | None = None  # the packet after which it was bypassed


@dataclass
class Verdict:
    code: str
    message: str
    check: str | None = None  # the failed check (keyword, buffer, flow, ...)


@dataclass
class FlowReport:
    facts: FlowFacts
    header_sides: list[str]
    verdict: Verdict
    evaluations: list[Evaluation]
    furthest: Evaluation | None
    notes: list[str] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)

    @property
    def matches(self) -> list[Evaluation]:
        return [ev for ev in self.evaluations if ev.outcome == MATCH]


@dataclass
class Context:
    cr: CRule
    depth: int  # stream.reassembly.depth (0: unlimited)
    streams: dict[bool, RawStream]  # this flow's captured data by direction (to_server)


# --- programs and steps ---------------------------------------------------------------


def failed_step(insp: Inspection) -> int | None:
    """The item the program could not get past (None: it matched, or had no items)."""
    if insp.matched or not insp.program.ops:
        return None
    reached = [i for i, n in enumerate(insp.steps.tries) if n]
    return reached[-1] if reached else 0


def match_path(insp: Inspection) -> list[tuple[int | None, int]]:
    """Per item of a matching program: (start, end) of its match; start None when the
    item has no extent (pcre start, byte_* positions). Ends come from the positions the
    next items were tried from (the last entry of each lies on the matching path)."""
    ops = insp.program.ops
    path: list[tuple[int | None, int]] = []
    for i, op in enumerate(ops):
        end = insp.steps.tried[i + 1][-1] if i + 1 < len(ops) and insp.steps.tried[i + 1] \
            else insp.steps.end
        start = end - len(op.pattern) if op.kind == ci.K_CONTENT and not op.negated else None
        path.append((start, end))
    return path


def describe_op(op: ci.Op, rule_raw: str, rule_col: int) -> str:
    """The item as written in the rule (content with its modifiers)."""
    item = op.item
    if isinstance(item, ContentMatch):
        text = f'content:{"!" if item.negated else ""}"{content_text(item.pattern)}";'
        for name in ("offset", "depth", "distance", "within"):
            value = getattr(item, name)
            if value is not None:
                text += f" {name}:{value};"
        for flag in ("nocase", "startswith", "endswith"):
            if getattr(item, flag):
                text += f" {flag};"
        return text
    span = getattr(item, "span", None)
    if span is not None and span.col >= rule_col:
        text = rule_raw[span.col - rule_col: span.end_col - rule_col].strip()
        if text:
            return text
    return KEYWORDS.get(op.kind, type(item).__name__)


def content_text(pattern: bytes) -> str:
    """A pattern in rule syntax: printable bytes as they are, others as ``|hex|``."""
    out: list[str] = []
    hexrun: list[str] = []
    for b in pattern:
        if 0x20 <= b < 0x7F and chr(b) not in '";|\\':
            if hexrun:
                out.append("|" + " ".join(hexrun) + "|")
                hexrun = []
            out.append(chr(b))
        else:
            hexrun.append(f"{b:02x}")
    if hexrun:
        out.append("|" + " ".join(hexrun) + "|")
    return "".join(out)


# --- the verdict for one flow ---------------------------------------------------------


def explain_flow(ctx: Context, facts: FlowFacts, header_sides: list[str],
                 evaluations: list[Evaluation]) -> FlowReport:
    furthest = max(enumerate(evaluations), key=lambda e: (_progress(ctx.cr, e[1]), e[0]),
                   default=(0, None))[1]
    report = FlowReport(facts, header_sides, Verdict(NOT_EVALUATED, ""), evaluations, furthest)
    matches = report.matches
    if any(ev.alert for ev in matches):
        fired = [ev for ev in matches if ev.alert]
        report.verdict = Verdict(FIRED, f"alerted {len(fired)} time(s), first at packet "
                                 f"#{fired[0].packet_no}")
        return report
    if matches:
        ev = matches[0]
        why = ev.silenced or "cut off after the match (a pass rule earlier in the packet's " \
            "order, or the alert queue)"
        report.verdict = Verdict(SILENCED, f"matched at packet #{ev.packet_no} but no alert "
                                 f"was logged: {why}", ev.silenced)
        return report
    report.verdict = _why_not(ctx, report)
    return report


def _why_not(ctx: Context, report: FlowReport) -> Verdict:
    cr, facts, evs = ctx.cr, report.facts, report.evaluations
    flow = facts.flow
    if cr.is_tx and canonical_alproto(flow.alproto) != cr.alproto and not evs:
        seen = flow.alproto if flow.alproto not in (None, "failed") else None
        what = f"the flow was detected as {seen}" if seen else \
            "the app-layer protocol of the flow was never detected"
        return Verdict(APP_LAYER, f"{what}; the rule inspects {cr.alproto} transactions",
                       "app-layer-protocol")
    probe, hits = _probe_hits(ctx)
    report.hits = hits
    if probe is not None and hits and not _inspected(evs, probe):
        shown = f'"{content_text(probe.pattern)}"'
        first = hits[0]
        where = f"{shown} is in the {_side(first.to_server)} data at stream offset " \
            f"{first.offset} (packet #{first.packet_no})"
        cut = _cut_off(ctx, report, probe, first, where)
        if cut is not None:
            return cut
        blocked = _blocking_check(cr, evs, first.to_server)
        if blocked is not None:
            return Verdict(CHECK_FAILED, f"{where}, but the rule's {blocked} check rejected "
                           f"every {_side(first.to_server)} evaluation: "
                           f"{describe_check(cr, blocked, _first(evs, blocked))}", blocked)
        split = _chunk_split(evs, first, len(probe.pattern))
        if split is not None:
            return Verdict(CHECK_FAILED, f"{where}, but it spans two pieces of the stream "
                           f"that detection inspected separately (split at stream offset "
                           f"{split[0]}: packets #{split[1]} and #{split[2]}), so no "
                           "inspection saw it whole", "payload")
        across = _split_between_transactions(evs, probe)
        if across is not None:
            return Verdict(CHECK_FAILED, f"{where}, but it is split between the {probe.buffer} "
                           f"of transaction {across[0]} and of transaction {across[1]}: the "
                           "parser ended the first one's data there, and each buffer is "
                           "inspected on its own", probe.buffer)
        if evs and not any(ev.inspections for ev in evs):
            return Verdict(CHECK_FAILED, f"{where}, but none of the rule's {len(evs)} "
                           "evaluation(s) had data to inspect: the stream engine never "
                           "delivered these bytes to detection as the rule needs them "
                           "(packet data held for reassembly, or no stream data)", "payload")
        elsewhere = _other_buffers(report, probe)
        if elsewhere:
            return Verdict(WRONG_BUFFER, f"{shown} never was in {probe.buffer}, but it is in "
                           f"{', '.join(elsewhere)} of the same transaction", probe.buffer)
    ev = report.furthest
    if ev is None:
        return _not_evaluated(facts)
    message = describe_failure(cr, ev)
    if probe is not None and hits and not _inspected(evs, probe):
        message += f'; "{content_text(probe.pattern)}" is on the wire ({_side(hits[0].to_server)}' \
            f" stream offset {hits[0].offset}, packet #{hits[0].packet_no}) but no inspected " \
            "buffer held it whole"
    return Verdict(CHECK_FAILED, message, _check_name(ev))


@dataclass
class _Probe:
    buffer: str
    pattern: bytes
    nocase: bool
    side: bool | None  # the direction carrying the buffer (None: either)


def _probes(cr: CRule) -> list[_Probe]:
    """The rule's positive contents (necessary for a match), in rule order."""
    out: list[_Probe] = []
    for bm in cr.rule.buffers:
        if any(isinstance(it, Absent) for it in bm.items):
            continue
        spec = BUFFERS.get(bm.buffer)
        side = None
        if spec is not None and spec.direction is not BufferDirection.BOTH:
            side = spec.direction is BufferDirection.TO_SERVER
        key = bm.buffer if not bm.transforms else None
        for it in bm.items:
            if isinstance(it, ContentMatch) and not it.negated and key is not None:
                out.append(_Probe(key, it.pattern, it.nocase, side))
    return out


def _probe_hits(ctx: Context) -> tuple[_Probe | None, list[Hit]]:
    """The first content of the rule that occurs on the wire, and where."""
    probes = _probes(ctx.cr)
    for probe in probes:
        hits: list[Hit] = []
        for to_server, stream in ctx.streams.items():
            if probe.side is not None and probe.side != to_server:
                continue
            hits.extend(Hit(to_server, at, stream.packet_at(at))
                        for at in stream.find(probe.pattern, probe.nocase))
        if hits:
            return probe, sorted(hits, key=lambda h: h.packet_no)
    return (probes[0] if probes else None), []


def _chunk_split(evs: list[Evaluation], hit: Hit, length: int
                 ) -> tuple[int, int, int] | None:
    """Packet/stream data is inspected piece after piece: the (boundary, packet before,
    packet after) a pattern at ``hit`` straddles, if it does."""
    offset = 0
    previous: int | None = None
    for ev in evs:
        if ev.tx is not None or ev.to_server != hit.to_server:
            continue
        for insp in ev.inspections:
            if insp.buffer != PAYLOAD:
                continue
            if previous is not None and hit.offset < offset < hit.offset + length:
                return offset, previous, ev.packet_no
            offset += insp.size
            previous = ev.packet_no
    return None


def _split_between_transactions(evs: list[Evaluation], probe: _Probe
                                ) -> tuple[int, int] | None:
    """The pattern straddles the probe buffer of two consecutive transactions."""
    last: dict[int, bytes] = {}
    for ev in evs:
        for insp in ev.inspections:
            if ev.tx_id is not None and insp.buffer == probe.buffer:
                last[ev.tx_id] = insp.data
    needle = probe.pattern.lower() if probe.nocase else probe.pattern
    ids = sorted(last)
    for a, b in itertools.pairwise(ids):
        joined = last[a] + last[b]
        if needle in (joined.lower() if probe.nocase else joined):
            return a, b
    return None


def _inspected(evs: list[Evaluation], probe: _Probe) -> bool:
    needle = probe.pattern.lower() if probe.nocase else probe.pattern
    for ev in evs:
        for insp in ev.inspections:
            hay = insp.data.lower() if probe.nocase else insp.data
            if needle in hay:
                return True
    return False


def _cut_off(ctx: Context, report: FlowReport, probe: _Probe, hit: Hit,
             where: str) -> Verdict | None:
    """The pattern was sent but never inspected: bypass, stream depth, body limit or a
    pass decision cut the flow's inspection short."""
    facts, flow = report.facts, report.facts.flow
    if flow.bypass and facts.bypass_packet is not None and hit.packet_no > facts.bypass_packet:
        by = flow.bypass_reason or "bypass"
        return Verdict(BYPASSED, f"the flow was bypassed at packet #{facts.bypass_packet} "
                       f"({_bypass_text(by)}) before the data arrived: {where}", by)
    if ctx.depth and hit.offset >= ctx.depth and _depth_hit(flow, hit.to_server):
        return Verdict(STREAM_DEPTH, f"{where}, beyond stream.reassembly.depth "
                       f"({ctx.depth} bytes): the stream was not inspected that far",
                       "stream.reassembly.depth")
    side = _BODY_BUFFERS.get(probe.buffer)
    if side is not None:
        truncated = [ev for ev in report.evaluations if ev.tx is not None and
                     getattr(ev.tx, f"{side}_body_truncated", False)]
        if truncated:
            tx = truncated[-1].tx
            kept = len(getattr(tx, f"{side}_body", b""))
            return Verdict(BODY_LIMIT, f"{where}, but the {side} body was cut at the "
                           f"{side}-body-limit ({kept} of "
                           f"{getattr(tx, f'{side}_body_len_seen', '?')} bytes kept)",
                           f"{side}-body-limit")
    if facts.action == "pass":
        return Verdict(FLOW_PASSED, f"a pass rule matched on the flow, so the rest of it was "
                       f"not inspected: {where}", "pass")
    return None


def _bypass_text(reason: str) -> str:
    if reason.startswith("rule:"):
        return f"by the bypass rule sid {reason[5:]}"
    if reason == "stream-depth":
        return "stream depth reached with stream.bypass"
    if reason == "encryption":
        return "encryption-handling: bypass"
    if reason == "auto":
        return "stream.auto-bypass: no loaded rule could still match the flow"
    return reason


def _depth_hit(flow: Any, to_server: bool) -> bool:
    tcp = getattr(flow, "tcp", None)
    if tcp is None:
        return True
    half = tcp.client if to_server else tcp.server
    return bool(getattr(half, "depth_hit", True))


def _blocking_check(cr: CRule, evs: list[Evaluation], to_server: bool) -> str | None:
    """A check before the buffers that failed on every evaluation of that side."""
    checks = {ev.outcome for ev in evs if ev.to_server == to_server}
    if len(checks) != 1:
        return None
    check = checks.pop()
    before_buffers = {*_PRECHECK_RANK, *(c.field for c in cr.pkt_conds)} - {"payload"}
    return check if check in before_buffers else None


def _first(evs: list[Evaluation], check: str) -> Evaluation | None:
    return next((ev for ev in evs if ev.outcome == check), None)


def _other_buffers(report: FlowReport, probe: _Probe) -> list[str]:
    """Buffers of the evaluated transactions that hold the pattern."""
    found: list[str] = []
    needle = probe.pattern.lower() if probe.nocase else probe.pattern
    txs = {id(ev.tx): ev.tx for ev in report.evaluations if ev.tx is not None}
    for tx in txs.values():
        for name, spec in BUFFERS.items():
            if name in found or name == probe.buffer or spec.alproto not in (
                    "", canonical_alproto(report.facts.flow.alproto)):
                continue
            sides = (True, False) if spec.direction is BufferDirection.BOTH else \
                (spec.direction is BufferDirection.TO_SERVER,)
            for side in sides:
                try:
                    value = get_buffer(tx, name, side)
                except Exception:  # a getter of another protocol: not this tx's buffer
                    continue
                values = value if isinstance(value, list) else [value]
                if any(isinstance(v, bytes) and needle in (v.lower() if probe.nocase else v)
                       for v in values):
                    found.append(name)
                    break
    return found


def _not_evaluated(facts: FlowFacts) -> Verdict:
    flow = facts.flow
    if flow.bypass and facts.bypass_packet is not None:
        return Verdict(BYPASSED, f"the flow was bypassed at packet #{facts.bypass_packet} "
                       f"({_bypass_text(flow.bypass_reason or 'bypass')}) before the rule "
                       "had anything to inspect", flow.bypass_reason)
    if facts.action == "pass":
        return Verdict(FLOW_PASSED, "a pass rule matched on the flow before the rule had "
                       "anything to inspect", "pass")
    return Verdict(NOT_EVALUATED, "the header matched but no packet or transaction of the "
                   "flow reached the rule's checks (no data in the rule's direction, or its "
                   "transactions never progressed)")


# --- describing one failed evaluation ---------------------------------------------------


def _progress(cr: CRule, ev: Evaluation) -> tuple[float, ...]:
    if ev.outcome == MATCH:
        return (10.0,)
    rank = _PRECHECK_RANK.get(ev.outcome)
    if rank is None:
        buffers = {cb.key for cb, _, _ in cr.tx_bufs} | {c.field for c in cr.tx_conds}
        rank = 7 if ev.outcome in buffers else 8 if any(
            c.keyword == ev.outcome for c, _ in cr.tx_keywords) else 3
    done = sum(1 for insp in ev.inspections if insp.matched)
    deepest = 0.0
    failing = [i for i in ev.inspections if not i.matched]
    if failing and failing[-1].program.ops:
        step = failed_step(failing[-1]) or 0
        deepest = step / len(failing[-1].program.ops)
    return (float(rank), float(done), deepest)


def _check_name(ev: Evaluation) -> str:
    insp = _failing_inspection(ev)
    if insp is not None:
        step = failed_step(insp)
        if step is not None:
            return KEYWORDS.get(insp.program.ops[step].kind, "item")
    return ev.outcome


def _failing_inspection(ev: Evaluation) -> Inspection | None:
    failing = [i for i in ev.inspections if not i.matched]
    if not failing:
        return None
    key = PAYLOAD if ev.outcome == "payload" else ev.outcome
    mine = [i for i in failing if i.buffer == key] or failing
    return max(mine, key=lambda i: failed_step(i) or 0)


def describe_failure(cr: CRule, ev: Evaluation) -> str:
    """One sentence: which check failed on this evaluation, and how."""
    where = f"packet #{ev.packet_no}" + (" (flow end)" if ev.pseudo else "") + \
        f" ({_side(ev.to_server)})" + (f", transaction {ev.tx_id}" if ev.tx is not None else "")
    insp = _failing_inspection(ev)
    if insp is not None:
        return f"{where}: in {insp.buffer}, {describe_step_failure(cr, insp)}"
    if ev.outcome == "payload":
        return f"{where}: no data to inspect on this packet (its data is inspected as " \
            "reassembled stream, or the rule needs stream data)"
    buffers = {cb.key for cb, _, _ in cr.tx_bufs}
    if ev.outcome in buffers:
        return f"{where}: the transaction has no {ev.outcome} (yet)"
    return f"{where}: {describe_check(cr, ev.outcome, ev)}"


def describe_check(cr: CRule, check: str, ev: Evaluation | None) -> str:
    rule = cr.rule
    if check == "flow" and rule.flow is not None and ev is not None:
        fc = rule.flow
        if (fc.to_client and ev.to_server) or (fc.to_server and not ev.to_server):
            want = "to_client" if fc.to_client else "to_server"
            return f"flow:{want} but the data goes {_side(ev.to_server)}"
        if fc.established:
            return "flow:established but the flow was not established yet"
        if fc.not_established:
            return "flow:not_established but the flow was established"
        return "the flow keyword did not hold"
    if check == "flowbits":
        names = [f"{f.cmd.value} {'|'.join(f.names)}" for f in cr.fb_checks]
        return f"flowbits check failed ({', '.join(names)})"
    if check == "app-layer-protocol" and ev is not None:
        return f"app-layer-protocol did not hold (the flow's protocol: {ev.flow.alproto})"
    if check == "pseudo-packet":
        return "a flow-end pseudo packet never matches packet keywords"
    for cond in cr.pkt_conds:
        if cond.field == check:
            return f"{check} condition did not hold"
    return f"{check} did not hold"


def describe_step_failure(cr: CRule, insp: Inspection) -> str:
    if insp.program.absent == "only":
        return "the buffer must be absent (absent;) but is present"
    step = failed_step(insp)
    if step is None:
        return "its program did not match"
    op = insp.program.ops[step]
    text = describe_op(op, cr.rule.raw, cr.rule.span.col)
    tried = insp.steps.tried[step]
    pos = ", ".join(str(p) for p in sorted(set(tried))[:6])
    msg = f"item {step + 1} {text} failed (tried from position {pos}"
    msg += f", {insp.steps.tries[step]} time(s))" if insp.steps.tries[step] > 1 else ")"
    if insp.steps.calls >= ci.RECURSION_LIMIT:
        msg += "; the inspection recursion limit was reached"
    if op.kind == ci.K_CONTENT and not op.negated:
        hay = insp.data.lower() if op.nocase else insp.data
        found: list[int] = []
        at = hay.find(op.pattern)
        while at >= 0 and len(found) < 5:
            found.append(at)
            at = hay.find(op.pattern, at + 1)
        if found:
            msg += f"; the pattern is in this buffer at offset {', '.join(map(str, found))}," \
                " outside the window its offset/depth/distance/within allow"
        else:
            msg += f"; the pattern is nowhere in this buffer ({insp.size} bytes)"
    elif op.kind == ci.K_CONTENT:
        msg += "; the negated pattern is present"
    return msg


def _side(to_server: bool) -> str:
    return "to_server" if to_server else "to_client"


def outcome_counts(evs: list[Evaluation]) -> Counter[str]:
    return Counter(ev.outcome for ev in evs)
