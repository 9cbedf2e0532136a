"""``ruleengine run --engine-analysis``: Suricata's rule and fast-pattern analysis reports.

Suricata's ``detect-engine-analyzer.c`` writes three files to the log directory and exits:

* ``rules_analysis.txt``: per rule ``== Sid: N ==``, the rule text, what it inspects
  ("Rule is ip only.", "Rule matches on packets.", "Rule matches on http uri buffer."...),
  its content and pcre counts, the fast pattern (``Fast Pattern "..." on "..." buffer.``)
  and its warnings (else "No warnings for this rule."); rules that failed to load get a
  ``== Sid: UNKNOWN ==`` block with ``FAILURE: invalid rule.``, file and line;
* ``rules_fast_pattern.txt``: per rule the fast pattern analysis (matcher, flags, set /
  only / chop, original and final content) and a summary of pattern lengths per buffer;
* ``rules.json``: one JSON object per rule (``EngineAnalysisRules2``): raw, id, gid, rev,
  msg, app_proto, type, flags, engines with their matches, mpm, warnings, notes.

The fast pattern and the signature type come from the detection engine itself
(``DetectEngine.analysis``): the report says what the prefilter was built with, not a
second guess. Rules that load but the engine does not evaluate (unsupported keywords) are
listed with the engine's reason (a line Suricata does not have).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruleengine.buffers import BUFFERS, BufferDirection
from ruleengine.detect.engine import DetectEngine, RuleAnalysis
from ruleengine.diagnostics import Diagnostic
from ruleengine.rules.model import (
    PAYLOAD,
    ContentMatch,
    Direction,
    FlowbitCmd,
    PcreMatch,
    Rule,
)

RULES_TXT = "rules_analysis.txt"
FAST_PATTERN_TXT = "rules_fast_pattern.txt"
RULES_JSON = "rules.json"

# Suricata's analyzer_items[], in its order: buffers reported by name ("Rule matches on
# http uri buffer.") and counted as "http content options".
_HTTP_BUFFERS = (
    "http.uri", "http.uri.raw", "http.method", "http.request_line", "http.request_body",
    "http.header", "http.header.raw", "http.cookie", "http.user_agent", "http.host",
    "http.host.raw", "http.accept_enc", "http.referer", "http.content_type",
    "http.header_names", "http.stat_msg", "http.stat_code", "file.data", "http.accept",
    "http.accept_lang", "http.connection", "http.content_len", "http.protocol", "http.start",
    "http.response_line", "http.server", "http.location",
)
_BODY_NAMES = {"http.request_body": "http client body", "file.data": "http server body"}


def _display_name(buffer: str) -> str:
    """Suricata's name of the buffer: ``http.user_agent`` "http user agent",
    ``http.uri.raw`` "http raw uri"; the bodies are named by their side."""
    if buffer in _BODY_NAMES:
        return _BODY_NAMES[buffer]
    words = buffer.removeprefix("http.").replace("_", " ")
    if words.endswith(".raw"):
        words = "raw " + words.removesuffix(".raw")
    return "http " + words


_HTTP_ITEMS = {buffer: _display_name(buffer) for buffer in _HTTP_BUFFERS}
_KIND_TEXT = {
    "ip_only": "Rule is ip only.", "pd_only": "Rule is PD only.",
    "pkt": "Rule is packet inspecting.", "pkt_stream": "Rule is packet and stream inspecting.",
    "stream": "Rule is stream inspecting.", "app_tx": "Rule is App-layer TX inspecting.",
}  # fmt: skip
_NORMALISED = frozenset({"http.uri", "http.header", "http.cookie"})  # check_encoding_match
_RULE_LINE = "-" * 67


@dataclass
class _Facts:
    """What ``EngineAnalysisRules`` counts over a rule's lists."""

    content: int = 0
    content_http: int = 0
    pcre: int = 0
    pcre_http: int = 0
    offset_depth: int = 0  # payload contents with offset/depth
    percent_encoded: bool = False
    items: list[str] = field(default_factory=list)  # display names, table order


def _facts(rule: Rule) -> _Facts:
    facts = _Facts()
    seen: set[str] = set()
    for bm in rule.buffers:
        http = bm.buffer in _HTTP_ITEMS
        if http:
            seen.add(bm.buffer)
        for item in bm.items:
            if isinstance(item, PcreMatch):
                if http:
                    facts.pcre_http += 1
                else:
                    facts.pcre += 1
            elif isinstance(item, ContentMatch):
                if not http:
                    facts.content += 1
                    if bm.buffer == PAYLOAD and (item.offset is not None
                                                 or item.depth is not None):
                        facts.offset_depth += 1
                    continue
                facts.content_http += 1
                if bm.buffer in _NORMALISED and _has_percent_encoding(item.pattern):
                    facts.percent_encoded = True
    facts.items = [name for key, name in _HTTP_ITEMS.items() if key in seen]
    return facts


def _has_percent_encoding(pattern: bytes) -> bool:
    hexdigits = b"0123456789abcdefABCDEF|"  # Suricata's class [0-9|a-f|A-F] has the '|'
    return any(pattern[i] == 0x25 and pattern[i + 1] in hexdigits
               and pattern[i + 2] in hexdigits for i in range(len(pattern) - 2))


def _directions(rule: Rule) -> tuple[bool, bool]:
    """(to_server, to_client) as Suricata's SIG_FLAG_TOSERVER/TOCLIENT: from ``flow``,
    else from the sides of the rule's buffers, else both."""
    fc = rule.flow
    if fc is not None and (fc.to_server or fc.to_client):
        return fc.to_server, fc.to_client
    sides = {BUFFERS[bm.buffer].direction for bm in rule.buffers if bm.buffer in BUFFERS}
    ts = BufferDirection.TO_SERVER in sides
    tc = BufferDirection.TO_CLIENT in sides
    if ts or tc:
        return ts, tc
    return True, True


def _warnings(rule: Rule, an: RuleAnalysis, facts: _Facts) -> list[str]:
    """``EngineAnalysisRules``' warnings, in its order and wording."""
    out: list[str] = []
    http = an.alproto == "http"
    if facts.pcre and not facts.content and not facts.content_http:
        out.append("Warning: Rule uses pcre without a content option present.\n"
                   "             -Consider adding a content to improve performance of "
                   "this rule.")
    if facts.content_http and facts.pcre and not facts.pcre_http:
        out.append("Warning: Rule uses content options with http_* and pcre options "
                   "without http modifiers.\n             -Consider adding http pcre modifier.")
    elif http and facts.pcre and not facts.pcre_http:
        out.append("Warning: Rule app layer protocol is http, but pcre options do not have "
                   "http modifiers.\n             -Consider adding http pcre modifiers.")
    if facts.content and facts.content_http:
        out.append("Warning: Rule contains content with http_* and content without http_*.\n"
                   "             -Consider adding http content modifiers.")
    if http and facts.content and not facts.content_http:
        out.append("Warning: Rule app layer protocol is http, but content options do not "
                   "have http_* modifiers.\n             -Consider adding http content "
                   "modifiers.")
    if facts.percent_encoded:
        out.append("Warning: Rule may contain percent encoded content for a normalized "
                   "http buffer match.")
    has_flags = any(pc.field == "tcp.flags" for pc in rule.packet_conditions)
    flowbits = any(f.cmd is not FlowbitCmd.NOALERT for f in rule.flowbits)
    if (rule.flow is None and not has_flags and rule.protocol in ("tcp", "tcp-pkt",
                                                                  "tcp-stream")
            and (facts.content or facts.content_http or facts.pcre or facts.pcre_http
                 or flowbits or rule.flowints)):
        out.append("Warning: TCP rule without a flow or flags option.\n"
                   "             -Consider adding flow or flags to improve performance of "
                   "this rule.")
    out.extend(_direction_warnings(rule, facts))
    stream, packet = an.requires_stream, an.requires_packet
    if facts.offset_depth and stream and packet:
        out.append("Warning: Rule has depth/offset with raw content keywords.  Please note "
                   "the offset/depth will be checked against both packet payloads and "
                   "stream.  If you meant to have the offset/depth checked against just the "
                   "payload, you can update the signature as \"alert tcp-pkt...\"")
    if facts.offset_depth and not stream and packet and an.alproto:
        out.append(f"Warning: Rule has offset/depth set along with a match on a specific "
                   f"app layer protocol - {an.alproto}.  This can lead to FNs if we have a "
                   "offset/depth content match on a packet payload before we can detect the "
                   "app layer protocol for the flow.")
    if an.fast_pattern is not None and an.fast_pattern[0] == PAYLOAD and http:
        out.append("Warning: Rule app layer protocol is http, but the fast_pattern is set on "
                   "the raw stream.  Consider adding fast_pattern over a http buffer for "
                   "increased performance.")
    ts, tc = _directions(rule)
    if ts and tc and rule.protocol not in ("ip", "ipv4", "ipv6", "pkthdr"):
        out.append("Warning: Rule is inspecting both the request and the response.")
    return out


def _direction_warnings(rule: Rule, facts: _Facts) -> list[str]:
    out: list[str] = []
    fc = rule.flow
    to_server = fc is not None and fc.to_server and not fc.to_client
    to_client = fc is not None and fc.to_client and not fc.to_server
    bidirectional = rule.direction is Direction.BOTH
    sp_any, dp_any = rule.src_ports.is_any, rule.dst_ports.is_any
    client_side_ports = (to_server and not sp_any and dp_any) or \
        (to_client and not dp_any and sp_any)
    if fc is not None and not bidirectional and client_side_ports:
        out.append("Warning: Rule contains ports or port variables only on the client "
                   "side.\n             -Flow direction possibly inconsistent with rule.")
    if fc is not None and bidirectional and (to_server or to_client):
        out.append("Warning: Rule is bidirectional and has a flow option with a specific "
                   "direction.")
    if "http method" in facts.items:
        if to_client:
            out.append("Warning: Rule uses content or pcre for http_method with "
                       "flow:to_client or from_server")
        if "http server body" in facts.items:
            out.append("Warning: Rule uses content or pcre for http_method with content or "
                       "pcre for http_server_body.")
        if not facts.content and not facts.content_http and (facts.pcre or facts.pcre_http):
            out.append("Warning: Rule uses pcre with only a http_method content; possible "
                       "performance issue.")
    return out


def _print_raw(data: bytes) -> str:
    """``PrintRawUriFp``: printable bytes as they are, others (and ``"``) as ``\\xNN``."""
    return "".join(chr(b) if 0x20 <= b < 0x7F and b != 0x22 else f"\\x{b:02X}"
                   for b in data)


def _pretty(data: bytes) -> str:
    """``DetectContentPatternPrettyPrint``: printable bytes as is, the rest as ``|NN|``."""
    return "".join(chr(b) if 0x20 <= b < 0x7F and chr(b) not in '"\\;:|' else f"|{b:02X}|"
                   for b in data)


def _buffer_text(an: RuleAnalysis, key: str) -> str:
    if key == PAYLOAD:
        if an.requires_packet and an.requires_stream:
            return "payload and reassembled stream"
        return "reassembled stream" if an.requires_stream else "payload"
    return key


def _rule_block(an: RuleAnalysis) -> str:
    rule = an.rule
    facts = _facts(rule)
    lines = [f"== Sid: {rule.sid} ==", rule.raw.strip(), f"    {_KIND_TEXT[an.kind]}"]
    if rule.protocol == "ipv6":
        lines.append("    Rule is IPv6 only.")
    if rule.protocol == "ipv4":
        lines.append("    Rule is IPv4 only.")
    if an.requires_packet:
        lines.append("    Rule matches on packets.")
    fc = rule.flow
    if an.requires_stream and not (fc is not None and fc.no_stream) and (
            fc is not None or rule.flowbits or rule.flowints or facts.content or facts.pcre):
        lines.append("    Rule matches on reassembled stream.")
    lines.extend(f"    Rule matches on {name} buffer." for name in facts.items)
    if an.alproto:
        lines.append(f"    App layer protocol is {an.alproto}.")
    if facts.content or facts.content_http or facts.pcre or facts.pcre_http:
        lines.append(f"    Rule contains {facts.content} content options, "
                     f"{facts.content_http} http content options, {facts.pcre} pcre "
                     f"options, and {facts.pcre_http} pcre options with http modifiers.")
    if rule.prefilter:
        lines.append("    Prefilter on: a non-content keyword (prefilter).")
    elif an.fast_pattern is not None:
        key, content = an.fast_pattern
        lines.append(f"    Fast Pattern \"{_print_raw(content.mpm_pattern)}\" on "
                     f"\"{_buffer_text(an, key)}\" buffer.")
    warnings = _warnings(rule, an, facts)
    lines.extend(f"    {w}" for w in warnings)
    if not warnings:
        lines.append("    No warnings for this rule.")
    return "\n".join(lines) + "\n\n"


def _skipped_block(rule: Rule, reason: str) -> str:
    return (f"== Sid: {rule.sid} ==\n{rule.raw.strip()}\n"
            f"    Rule is not evaluated by the engine: {reason}.\n\n")


def _failure_block(diag: Diagnostic) -> str:
    return (f"== Sid: UNKNOWN ==\n{diag.source_line.strip()}\n    FAILURE: invalid rule.\n"
            f"    File: {diag.file}.\n    Line: {diag.line}.\n\n")


def _fp_block(an: RuleAnalysis, stats: dict[str, list[int]]) -> str:
    rule = an.rule
    lines = [f"== Sid: {rule.sid} ==", rule.raw.strip(), "    Fast Pattern analysis:"]
    if rule.prefilter:
        lines.append("        Prefilter on: a non-content keyword (prefilter)")
        return "\n".join(lines) + "\n\n"
    if an.fast_pattern is None:
        lines.append("        No content present")
        return "\n".join(lines) + "\n\n"
    key, cd = an.fast_pattern
    lines.append(f"        Fast pattern matcher: {'content' if key == PAYLOAD else key}")
    flags = [name for name, on in (("Offset", cd.offset is not None),
                                   ("Depth", cd.depth is not None),
                                   ("Within", cd.within is not None),
                                   ("Distance", cd.distance is not None),
                                   ("Nocase", cd.nocase), ("Negated", cd.negated)) if on]
    lines.append("        Flags: " + (" ".join(flags) if flags else "None"))
    chop = cd.fast_pattern_chop if cd.fast_pattern else None
    lines.append(f"        Fast pattern set: {'yes' if cd.fast_pattern else 'no'}")
    only = cd.fast_pattern and cd.fast_pattern_only
    lines.append(f"        Fast pattern only set: {'yes' if only else 'no'}")
    lines.append(f"        Fast pattern chop set: {'yes' if chop and not only else 'no'}")
    if chop and not only:
        lines.append(f"        Fast pattern offset, length: {chop[0]}, {chop[1]}")
    lines.append(f"        Original content: {_print_raw(cd.pattern)}")
    lines.append(f"        Final content: {_print_raw(cd.mpm_pattern)}")
    stats.setdefault(key, []).append(len(cd.mpm_pattern))
    return "\n".join(lines) + "\n\n"


def _fp_summary(stats: dict[str, list[int]]) -> str:
    out = ["============", "Summary:", "============"]
    for key in sorted(stats):
        lengths = stats[key]
        name = "content" if key == PAYLOAD else key
        out.append(f"{name}, smallest pattern {min(lengths)} byte(s), longest pattern "
                   f"{max(lengths)} byte(s), number of patterns {len(lengths)}, avg pattern "
                   f"len {sum(lengths) / len(lengths):.2f} byte(s)")
    return "\n".join(out) + "\n"


def _content_json(cd: ContentMatch, is_mpm: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "pattern": _pretty(cd.pattern), "length": len(cd.pattern), "nocase": cd.nocase,
        "negated": cd.negated, "starts_with": cd.startswith, "ends_with": cd.endswith,
        "is_mpm": is_mpm,
    }
    for name in ("offset", "depth", "distance", "within"):
        value = getattr(cd, name)
        if value is not None:
            out[name] = value if isinstance(value, int) else str(value)
    out["fast_pattern"] = cd.fast_pattern
    return out


def _rule_json(an: RuleAnalysis) -> dict[str, Any]:
    rule = an.rule
    facts = _facts(rule)
    notes: list[str] = []
    engines: list[dict[str, Any]] = []
    mpm = an.fast_pattern
    for bm in rule.buffers:
        matches: list[dict[str, Any]] = []
        for item in bm.items:
            if isinstance(item, ContentMatch):
                matches.append({"name": "content", "content": _content_json(
                    item, mpm is not None and item is mpm[1])})
                if item.fast_pattern_only:
                    notes.append("'fast_pattern:only' option is silently ignored and is "
                                 "interpreted as regular 'fast_pattern'")
            elif isinstance(item, PcreMatch):
                matches.append({"name": "pcre", "pcre": {
                    "relative": item.relative, "nocase": "i" in item.flags,
                    "negated": item.negated}})
                if item.rawbytes:
                    notes.append("'/B' (rawbytes) option is a no-op and is silently ignored")
            else:
                matches.append({"name": type(item).__name__.lower()})
        engines.append({"name": "payload" if bm.buffer == PAYLOAD else bm.buffer,
                        "is_mpm": mpm is not None and mpm[0] == bm.buffer,
                        "matches": matches})
    ts, tc = _directions(rule)
    flags = [name for name, on in (("toserver", ts), ("toclient", tc),
                                   ("need_packet", an.requires_packet),
                                   ("need_stream", an.requires_stream),
                                   ("prefilter", rule.prefilter)) if on]
    doc: dict[str, Any] = {"raw": rule.raw.strip(), "id": rule.sid, "gid": rule.gid,
                           "rev": rule.rev, "msg": rule.msg,
                           "app_proto": an.alproto or "unknown", "type": an.kind,
                           "flags": flags, "engines": engines}
    if mpm is not None:
        doc["mpm"] = {"buffer": "payload" if mpm[0] == PAYLOAD else mpm[0],
                      "content": _content_json(mpm[1], True)}
    warnings = [" ".join(w.split()) for w in _warnings(rule, an, facts)]
    if warnings:
        doc["warnings"] = warnings
    if notes:
        doc["notes"] = notes
    return doc


def _header() -> str:
    stamp = time.strftime("%d/%m/%Y -- %H:%M:%S", time.localtime())
    return f"{_RULE_LINE}\nDate: {stamp}\n{_RULE_LINE}\n"


def write_reports(logdir: Path, engine: DetectEngine, failures: Iterable[Diagnostic],
                  prefix: str = "") -> list[Path]:
    """Write the three reports to ``logdir`` (file names with Suricata's
    ``engine-analysis`` prefix when given); returns the paths. Raises OSError."""
    analysis: Sequence[RuleAnalysis] = engine.analysis()
    rules_txt = [_header()]
    fp_txt = [_header()]
    json_lines: list[str] = []
    stats: dict[str, list[int]] = {}
    for an in analysis:
        rules_txt.append(_rule_block(an))
        fp_txt.append(_fp_block(an, stats))
        json_lines.append(json.dumps(_rule_json(an), separators=(",", ":")))
    rules_txt.extend(_skipped_block(rule, reason) for rule, reason in engine.skipped)
    rules_txt.extend(_failure_block(d) for d in failures)
    fp_txt.append(_fp_summary(stats))
    paths = [logdir / f"{prefix}{name}" for name in (RULES_TXT, FAST_PATTERN_TXT, RULES_JSON)]
    paths[0].write_text("".join(rules_txt), encoding="utf-8")
    paths[1].write_text("".join(fp_txt), encoding="utf-8")
    paths[2].write_text("".join(line + "\n" for line in json_lines), encoding="utf-8")
    return paths
