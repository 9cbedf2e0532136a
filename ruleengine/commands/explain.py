"""``ruleengine explain``: why did (or didn't) a rule fire on a pcap?

    ruleengine explain -r PCAP -S RULES --sid N [--flow SRC:PORT-DST:PORT] [--why-fired]
                       [--json] [-c suricata.yaml] [--set key=value ...] [-k none|all]

The pcap is replayed through the real pipeline (the same settings as ``ruleengine run``)
with a trace on the one rule (``DetectEngine.trace_rule``), so every answer comes from
the engine's own matching. For each flow whose addresses, ports and protocol fit the
rule's header, it says how far the rule got: the check that failed and on which packet,
the buffer and bytes inspected and the item that failed at which position; or that the
data arrived after a bypass, beyond the stream depth or the body limit, was looked for in
another buffer, or that the app-layer protocol was never detected. ``--why-fired`` shows
for the flows where it alerted which packet, buffer and match offsets did it.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from capture_backends.pcap_file import PcapError, PcapFileBackend
from ruleengine.commands import explain_findings as fx
from ruleengine.commands.errors import UsageError
from ruleengine.commands.run import (
    CONFIG_OPTIONS,
    _detect_engine,
    _load_rules,
    _settings,
    add_options,
)
from ruleengine.config import Config, ConfigError
from ruleengine.decode.decoder import Decoder
from ruleengine.decode.packet import IPPROTO_TCP, IPPROTO_UDP
from ruleengine.detect.conditions import addr_int
from ruleengine.detect.engine import CRule, DetectEngine
from ruleengine.detect.trace import MATCH, Evaluation, Inspection, RuleTrace
from ruleengine.outputs.eve import EveWriter, OutputError
from ruleengine.outputs.stats import Stats
from ruleengine.pipeline import Pipeline
from ruleengine.rules.classification import classification
from ruleengine.settings import EngineSettings

EXIT_OK = 0
EXIT_FAILURE = 1
HISTORY = 50  # evaluations listed per flow (JSON)
HISTORY_TEXT = 12  # ... in text output
SHOWN_BYTES = 96  # bytes of a buffer shown in text output (around the interesting offset)
MAX_RAW_BYTES = 64 << 20  # captured bytes kept per flow direction for locating patterns
_PROTO_NAMES = {IPPROTO_TCP: "tcp", IPPROTO_UDP: "udp", 1: "icmp", 58: "ipv6-icmp"}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="explain why a rule did or did not fire on a pcap",
        description="Replay a pcap through the engine with a trace on one rule and say, "
        "per flow, how far the rule got.",
    )
    parser.add_argument("-r", dest="pcap", metavar="PCAP", required=True, help="pcap file")
    parser.add_argument("-S", dest="rules", metavar="RULES", action="append", required=True,
                        help="rule file (repeatable)")
    parser.add_argument("--sid", type=int, required=True, help="the rule to explain")
    parser.add_argument("--gid", type=int, default=1, help="its gid (default 1)")
    parser.add_argument("--flow", metavar="SRC:PORT-DST:PORT",
                        help="only this flow (either direction; IPv6 as [addr]:port)")
    parser.add_argument("--why-fired", action="store_true",
                        help="the flows where the rule alerted: packet, buffers, offsets")
    parser.add_argument("--json", action="store_true", help="JSON output")
    add_options(parser, CONFIG_OPTIONS)
    parser.add_argument("--simulate-ips", action="store_true",
                        help="apply drop/reject as an inline IPS would")
    parser.add_argument("-l", dest="logdir", metavar="LOGDIR",
                        help="also keep the replay's eve.json here")
    parser.set_defaults(func=explain_command, extra_rules=[], verbose=0)


def explain_command(args: argparse.Namespace) -> int:
    flow_filter = parse_flow(args.flow) if args.flow else None
    try:
        config, warnings = Config.load(args.config, args.overrides)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    ruleset = _load_rules(args, config, strict=False)
    if ruleset is None:
        return EXIT_FAILURE
    settings = _settings(args, config, ips=args.simulate_ips, offline=True)
    engine = _detect_engine(settings, ruleset)
    trace = RuleTrace(args.sid, args.gid)
    if not engine.trace_rule(trace):
        print(f"error: {_not_loaded(args.gid, args.sid, ruleset, engine)}", file=sys.stderr)
        return EXIT_FAILURE
    cr = next(c for c in engine.rules if c.trace is trace)
    try:
        replay = _replay(args, settings, engine, trace)
        captured = _captured(args.pcap)
    except (OSError, ValueError, PcapError, OutputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    reports = _reports(cr, trace, replay, captured, settings, flow_filter)
    if args.why_fired:
        reports = [r for r in reports if r.verdict.code == fx.FIRED]
    doc = _document(args, cr, trace, reports)
    print(json.dumps(doc, indent=2) if args.json else _text(doc))
    return EXIT_OK


def _not_loaded(gid: int, sid: int, ruleset: Any, engine: DetectEngine) -> str:
    for rule, reason in engine.skipped:
        if rule.sid == sid and rule.gid == gid:
            return f"rule {gid}:{sid} is loaded but the engine does not evaluate it: {reason}"
    for diag in ruleset.errors:
        if getattr(diag, "sid", None) == sid:
            return f"rule {gid}:{sid} failed to load: {diag.message}"
    return f"no rule {gid}:{sid} in the rule files"


def parse_flow(text: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """``SRC:PORT-DST:PORT`` as ((address int, port), (address int, port))."""
    try:
        left, right = text.split("-", 1)
        return _endpoint(left), _endpoint(right)
    except ValueError:
        raise UsageError(f"--flow {text!r}: expected SRC:PORT-DST:PORT, e.g. "
                         "10.0.0.1:40000-10.0.0.2:80 ([addr]:port for IPv6)") from None


def _endpoint(text: str) -> tuple[int, int]:
    host, _, port = text.strip().rpartition(":")
    address = ipaddress.ip_address(host.strip("[]"))
    return int(address), int(port)


# --- the replay -----------------------------------------------------------------------


class _RecordingEve(EveWriter):
    """The replay's EVE writer, also remembering each flow's end record (every flow of
    the run ends there, with its flow-level decision)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.flows: list[fx.FlowFacts] = []

    def flow(self, flow: Any, **kwargs: Any) -> None:
        self.flows.append(fx.FlowFacts(flow, kwargs.get("action")))
        super().flow(flow, **kwargs)


def _replay(args: argparse.Namespace, settings: EngineSettings, engine: DetectEngine,
            trace: RuleTrace) -> _RecordingEve:
    backend = PcapFileBackend(args.pcap)
    with tempfile.TemporaryDirectory(prefix="ruleengine-explain-") as tmp:
        logdir = Path(args.logdir) if args.logdir else Path(tmp)
        try:
            logdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            backend.close()
            raise OutputError(f"cannot create log directory {logdir}: {exc.strerror}") from None
        eve = _RecordingEve(logdir / "eve.json")
        pipeline = Pipeline(settings, engine, eve=eve, stats=Stats(), classify=classification)
        trace.packet_no = 1

        def next_packet() -> None:
            trace.packet_no += 1

        try:
            pipeline.run(backend, on_packet=next_packet)
        finally:
            backend.close()
            eve.close()
    return eve


def _captured_packets(pcap: str) -> Iterator[tuple[int, Any]]:
    backend = PcapFileBackend(pcap)
    decoder = Decoder(backend.linktype, checksum_validation=False)
    try:
        for number, (ts, data, pkt_id) in enumerate(backend.packets(), start=1):
            pkt = decoder.decode(ts, data, pkt_id)
            if pkt is not None and not pkt.invalid and pkt.ip_version:
                yield number, pkt
    finally:
        backend.close()


_Endpoint = tuple[bytes, int]
_Key = tuple[_Endpoint, _Endpoint, int]


def _flow_key(a: _Endpoint, b: _Endpoint, proto: int) -> _Key:
    return (a, b, proto) if a <= b else (b, a, proto)


class _Captured:
    """The pcap as captured (no stream engine): each flow's bytes per sender (TCP placed
    by sequence number from the first data byte, UDP datagram after datagram) and the
    (packet number, timestamp) of its packets."""

    def __init__(self) -> None:
        self.streams: dict[_Key, dict[_Endpoint, fx.RawStream]] = {}
        self.times: dict[_Key, list[tuple[int, float]]] = {}

    def packet_at(self, key: _Key, ts: float) -> int | None:
        """The flow's first packet at or after ``ts`` (the bypass time)."""
        return next((n for n, t in self.times.get(key, []) if t >= ts), None)


def _captured(pcap: str) -> _Captured:
    out = _Captured()
    segments: dict[_Key, dict[_Endpoint, list[tuple[int, int, bytes]]]] = {}
    isn: dict[tuple[_Key, _Endpoint], int] = {}
    for number, pkt in _captured_packets(pcap):
        sender = (pkt.src, pkt.sport)
        key = _flow_key(sender, (pkt.dst, pkt.dport), pkt.proto)
        out.times.setdefault(key, []).append((number, pkt.ts))
        seq = pkt.seq
        if pkt.proto == IPPROTO_TCP and pkt.tcp_flags & 0x02:
            seq = isn[(key, sender)] = (pkt.seq + 1) & 0xFFFFFFFF  # SYN data (fast open)
        if pkt.payload:
            segments.setdefault(key, {}).setdefault(sender, []).append(
                (number, seq, bytes(pkt.payload)))
    for key, senders in segments.items():
        for sender, segs in senders.items():
            out.streams.setdefault(key, {})[sender] = _stream(segs, key[2],
                                                              isn.get((key, sender)))
    return out


def _stream(segs: list[tuple[int, int, bytes]], proto: int, base: int | None) -> fx.RawStream:
    stream = fx.RawStream(bounded=proto != IPPROTO_TCP)
    if proto != IPPROTO_TCP:
        for number, _, data in segs:
            _place(stream, len(stream.data), data, number)
        return stream
    if base is None:
        base = segs[0][1]
    placed: list[tuple[int, int, bytes]] = []
    for number, seq, data in segs:
        offset = (seq - base) & 0xFFFFFFFF
        if offset < MAX_RAW_BYTES:
            placed.append((offset, number, data))
    for offset, number, data in sorted(placed, key=lambda p: (p[0], p[1])):
        end = offset + len(data)
        if stream.ends and end <= stream.ends[-1]:
            continue  # a retransmission of bytes already placed
        _place(stream, offset, data, number)
    return stream


def _place(stream: fx.RawStream, offset: int, data: bytes, number: int) -> None:
    if len(stream.data) < offset:
        stream.data.extend(b"\0" * (offset - len(stream.data)))
    stream.data[offset:offset + len(data)] = data
    stream.starts.append(offset)
    stream.ends.append(offset + len(data))
    stream.packets.append(number)


# --- per-flow reports -------------------------------------------------------------------


def _reports(cr: CRule, trace: RuleTrace, replay: _RecordingEve, captured: _Captured,
             settings: EngineSettings,
             flow_filter: tuple[tuple[int, int], tuple[int, int]] | None
             ) -> list[fx.FlowReport]:
    by_flow: dict[int, list[Evaluation]] = {}
    for ev in trace.evaluations:
        by_flow.setdefault(id(ev.flow), []).append(ev)
    reports = []
    for facts in replay.flows:
        flow = facts.flow
        if flow_filter is not None and not _selected(flow, flow_filter):
            continue
        sides = _header_sides(cr, flow)
        evs = by_flow.get(id(flow), [])
        if not sides and not evs:
            if flow_filter is not None:  # asked for: say which part of the header differs
                reports.append(fx.FlowReport(facts, [], fx.Verdict(
                    fx.HEADER_MISMATCH, _header_mismatch(cr, flow), "header"), [], None))
            continue
        client, server = (flow.src, flow.sport), (flow.dst, flow.dport)
        key = _flow_key(client, server, flow.proto)
        raw = captured.streams.get(key, {})
        if flow.bypass:
            facts.bypass_packet = captured.packet_at(key, flow.bypass_ts)
        ctx = fx.Context(cr, settings.stream.reassembly_depth,
                         {True: raw.get(client, fx.RawStream()),
                          False: raw.get(server, fx.RawStream())})
        reports.append(fx.explain_flow(ctx, facts, sides, evs))
    return reports


def _selected(flow: Any, want: tuple[tuple[int, int], tuple[int, int]]) -> bool:
    mine = {(addr_int(flow.src), flow.sport), (addr_int(flow.dst), flow.dport)}
    return mine == set(want)


def _header_sides(cr: CRule, flow: Any) -> list[str]:
    """The directions of the flow whose packets fit the rule's header (the engine's own
    header test)."""
    c, s = addr_int(flow.src), addr_int(flow.dst)
    sides = []
    if cr.header.matches(flow.proto, flow.ip_version, c, flow.sport, s, flow.dport):
        sides.append("to_server")
    if cr.header.matches(flow.proto, flow.ip_version, s, flow.dport, c, flow.sport):
        sides.append("to_client")
    return sides


def _header_mismatch(cr: CRule, flow: Any) -> str:
    """Which parts of the rule's header the flow's packets fail, per direction."""
    h = cr.header
    if h.protos and flow.proto not in h.protos:
        return f"the rule's protocol {cr.rule.protocol} does not cover " \
            f"{_PROTO_NAMES.get(flow.proto, flow.proto)}"
    if h.ip_version and flow.ip_version != h.ip_version:
        return f"the rule is for IPv{h.ip_version} only"
    c, s = (addr_int(flow.src), flow.sport), (addr_int(flow.dst), flow.dport)
    parts = []
    for name, (src, dst) in (("to_server", (c, s)), ("to_client", (s, c))):
        failed = [what for what, ok in (
            ("source address", h.src.contains(flow.ip_version, src[0])),
            ("source port", h.sport is None or h.sport.contains(src[1])),
            ("destination address", h.dst.contains(flow.ip_version, dst[0])),
            ("destination port", h.dport is None or h.dport.contains(dst[1]))) if not ok]
        parts.append(f"{name} packets fail its {', '.join(failed)}")
    return "the rule's header does not fit this flow: " + "; ".join(parts)


# --- output -----------------------------------------------------------------------------


def _document(args: argparse.Namespace, cr: CRule, trace: RuleTrace,
              reports: list[fx.FlowReport]) -> dict[str, Any]:
    rule = cr.rule
    return {
        "rule": {"gid": rule.gid, "sid": rule.sid, "msg": rule.msg, "text": rule.raw},
        "pcap": str(args.pcap),
        "why_fired": bool(args.why_fired),
        "flows": [_flow_doc(cr, r, args.why_fired) for r in reports],
        "trace": {"evaluations": len(trace.evaluations), "not_kept": trace.dropped},
    }


def _flow_doc(cr: CRule, report: fx.FlowReport, detailed: bool) -> dict[str, Any]:
    flow = report.facts.flow
    doc: dict[str, Any] = {
        "flow": {"src_ip": _ip(flow.src), "src_port": flow.sport, "dest_ip": _ip(flow.dst),
                 "dest_port": flow.dport, "proto": _PROTO_NAMES.get(flow.proto, flow.proto),
                 "app_proto": flow.alproto},
        "header_matches": report.header_sides,
        "verdict": {"code": report.verdict.code, "check": report.verdict.check,
                    "message": report.verdict.message},
        "evaluations": dict(fx.outcome_counts(report.evaluations)),
    }
    if flow.bypass:
        doc["bypass"] = {"reason": flow.bypass_reason, "packet": report.facts.bypass_packet}
    if report.hits:
        doc["pattern_on_wire"] = [{"direction": _dir(h.to_server), "stream_offset": h.offset,
                                   "packet": h.packet_no} for h in report.hits[:8]]
    doc["history"] = [_history(ev) for ev in report.evaluations[:HISTORY]]
    if report.verdict.code == fx.FIRED:
        shown = report.matches if detailed else report.matches[:1]
        doc["matches"] = [_evaluation_doc(cr, ev) for ev in shown]
    elif report.furthest is not None:
        doc["furthest"] = _evaluation_doc(cr, report.furthest)
    return doc


def _history(ev: Evaluation) -> dict[str, Any]:
    """One line of the flow's evaluations: where, and how far."""
    return {"packet": ev.packet_no, "direction": _dir(ev.to_server), "tx_id": ev.tx_id,
            "outcome": ev.outcome, "stream": ev.stream, "flow_end": ev.pseudo,
            "buffers": [{"buffer": i.buffer, "size": i.size, "matched": i.matched}
                        for i in ev.inspections]}


def _evaluation_doc(cr: CRule, ev: Evaluation) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "packet": ev.packet_no, "flow_end": ev.pseudo, "direction": _dir(ev.to_server),
        "tx_id": ev.tx_id, "outcome": ev.outcome, "stream": ev.stream,
    }
    if ev.outcome == MATCH:
        doc["alert"] = ev.alert
        if ev.silenced:
            doc["silenced"] = ev.silenced
    else:
        doc["reason"] = fx.describe_failure(cr, ev)
    doc["buffers"] = [_inspection_doc(cr, insp) for insp in ev.inspections]
    return doc


def _inspection_doc(cr: CRule, insp: Inspection) -> dict[str, Any]:
    failed = fx.failed_step(insp)
    path = fx.match_path(insp) if insp.matched else []
    steps = []
    for i, op in enumerate(insp.program.ops):
        step: dict[str, Any] = {
            "item": i + 1, "keyword": fx.KEYWORDS.get(op.kind, "?"),
            "text": fx.describe_op(op, cr.rule.raw, cr.rule.span.col),
            "tried_from": sorted(set(insp.steps.tried[i]))[:8], "tries": insp.steps.tries[i],
        }
        if insp.matched:
            step["status"] = "matched"
            step["match_start"], step["match_end"] = path[i]
        elif failed is not None and i < failed:
            step["status"] = "matched"
        elif i == failed:
            step["status"] = "failed"
        else:
            step["status"] = "not reached"
        steps.append(step)
    doc: dict[str, Any] = {"buffer": insp.buffer, "size": insp.size, "matched": insp.matched,
                           "data": escape(insp.data, focus=_focus(insp, path, failed))}
    if not insp.matched and failed is not None:
        doc["failure"] = fx.describe_step_failure(cr, insp)
    doc["steps"] = steps
    return doc


def _focus(insp: Inspection, path: list[tuple[int | None, int]], failed: int | None) -> int:
    if path:
        start = path[0][0]
        return start if start is not None else path[0][1]
    if failed is not None and insp.steps.tried[failed]:
        return insp.steps.tried[failed][-1]
    return 0


def escape(data: bytes, focus: int = 0, limit: int = SHOWN_BYTES) -> str:
    """Printable ASCII as is, other bytes as ``\\xNN`` (``\\r``, ``\\n``, ``\\t``);
    longer data is cut around ``focus`` with the bytes left out counted."""
    start = 0
    if len(data) > limit:
        start = max(0, min(focus - limit // 4, len(data) - limit))
    part = data[start:start + limit]
    text = "".join(_char(b) for b in part)
    if start:
        text = f"[{start} bytes]..." + text
    rest = len(data) - start - len(part)
    if rest > 0:
        text += f"...[{rest} bytes]"
    return text


def _char(b: int) -> str:
    special = {0x0D: "\\r", 0x0A: "\\n", 0x09: "\\t", 0x5C: "\\\\"}
    if b in special:
        return special[b]
    return chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02x}"


def _ip(packed: bytes) -> str:
    return str(ipaddress.ip_address(packed))


def _dir(to_server: bool) -> str:
    return "to_server" if to_server else "to_client"


def _text(doc: dict[str, Any]) -> str:
    rule = doc["rule"]
    lines = [f"rule {rule['gid']}:{rule['sid']} {rule['msg']!r}", f"  {rule['text']}", ""]
    if not doc["flows"] and doc["why_fired"]:
        lines.append("the rule did not alert on this pcap (without --why-fired: why not)")
    elif not doc["flows"]:
        lines.append("no flow of the pcap fits the rule's header (protocol, addresses, "
                     "ports)")
    for flow in doc["flows"]:
        lines.extend(_flow_text(flow))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _flow_text(flow: dict[str, Any]) -> list[str]:
    f = flow["flow"]
    verdict = flow["verdict"]
    head = f"flow {f['src_ip']}:{f['src_port']} -> {f['dest_ip']}:{f['dest_port']} " \
        f"{f['proto']}" + (f" ({f['app_proto']})" if f["app_proto"] else "")
    lines = [head, f"  verdict: {verdict['code'].upper()}"
             + (f" [{verdict['check']}]" if verdict["check"] else ""),
             f"  {verdict['message']}"]
    counts = flow["evaluations"]
    if counts:
        lines.append("  evaluations: " + ", ".join(f"{k} x{v}" for k, v in counts.items()))
    history = flow["history"]
    if len(history) > 1:
        lines.append("  history:")
        for h in history[:HISTORY_TEXT]:
            bufs = ", ".join(f"{b['buffer']} {b['size']}B {'ok' if b['matched'] else 'no'}"
                             for b in h["buffers"])
            tx = f" tx {h['tx_id']}" if h["tx_id"] is not None else ""
            # a pkt_stream rule can match a packet and later the stream holding it
            where = (" on stream" if h["stream"] else "") + \
                (" (flow end)" if h["flow_end"] else "")
            lines.append(f"    #{h['packet']} {h['direction']}{tx}: {h['outcome']}{where}"
                         + (f" ({bufs})" if bufs else ""))
        if len(history) > HISTORY_TEXT:
            lines.append(f"    ... {len(history) - HISTORY_TEXT} more (--json lists them)")
    for ev in flow.get("matches", []):
        lines.extend(_evaluation_text(ev))
    if "furthest" in flow:
        lines.append("  furthest evaluation:")
        lines.extend(_evaluation_text(flow["furthest"]))
    return lines


def _evaluation_text(ev: dict[str, Any]) -> list[str]:
    where = f"packet #{ev['packet']}" + (" (flow end)" if ev["flow_end"] else "") + \
        f" {ev['direction']}" + (f" tx {ev['tx_id']}" if ev["tx_id"] is not None else "")
    if ev["outcome"] == MATCH:
        state = "alert" if ev.get("alert") else f"no alert ({ev.get('silenced')})"
        lines = [f"    {where}: matched{' on stream data' if ev['stream'] else ''}, {state}"]
    else:
        lines = [f"    {where}: stopped at {ev['outcome']}", f"      {ev['reason']}"]
    for buf in ev["buffers"]:
        mark = "matched" if buf["matched"] else "no match"
        lines.append(f"      {buf['buffer']} ({buf['size']} bytes, {mark}): \"{buf['data']}\"")
        for step in buf["steps"]:
            line = f"        {step['item']}. {step['text']}  {step['status']}"
            if step.get("match_end") is not None:
                start = step.get("match_start")
                line += f" at {start}..{step['match_end']}" if start is not None \
                    else f" (position {step['match_end']})"
            lines.append(line)
        if "failure" in buf:
            lines.append(f"        -> {buf['failure']}")
    return lines
