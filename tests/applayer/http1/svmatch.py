"""Test helper: a tiny matcher for the simplest suricata-verify HTTP rules (sticky buffers,
legacy modifiers, content/uricontent, nocase, flow direction). It exists only to check the
parser's buffers against Suricata's expected alert counts; rules using anything else are
reported as unsupported and skipped."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from ruleengine.applayer.http1 import HttpConfig, HttpTransaction
from ruleengine.buffers import (
    BUFFERS,
    LEGACY_MODIFIERS,
    PCRE_LETTERS,
    STICKY_KEYWORDS,
    BufferDirection,
)

from .pcapfeed import CORPUS, parse_pcap

_IGNORED = {"msg", "sid", "rev", "classtype", "reference", "metadata", "fast_pattern", "gid",
            "priority", "target"}


@dataclass
class Content:
    pattern: bytes
    buffer: str | None = None
    nocase: bool = False
    negated: bool = False


@dataclass
class Pcre:
    regex: re.Pattern[bytes]
    buffer: str
    negated: bool = False


@dataclass
class UriLen:
    op: str
    low: int
    high: int
    raw: bool


@dataclass
class SimpleRule:
    sid: int
    direction: bool | None = None  # True to_server, False to_client
    contents: list[Content] = field(default_factory=list)
    pcres: list[Pcre] = field(default_factory=list)
    urilens: list[UriLen] = field(default_factory=list)


def _parse_pcre(value: str) -> Pcre | None:
    negated = value.startswith("!")
    value = value.lstrip("!").strip()
    if value.startswith('"'):
        value = value[1:-1]
    end = value.rindex("/")
    pattern, flags = value[1:end], value[end + 1 :]
    re_flags = 0
    buffer = None
    for letter in flags:
        if letter == "i":
            re_flags |= re.IGNORECASE
        elif letter == "s":
            re_flags |= re.DOTALL
        elif letter == "m":
            re_flags |= re.MULTILINE
        elif letter in PCRE_LETTERS:
            buffer = PCRE_LETTERS[letter]
        else:
            return None  # relative and other modes are detection's business
    if buffer is None:
        return None
    return Pcre(re.compile(pattern.encode(), re_flags), buffer, negated)


def _parse_urilen(value: str) -> UriLen | None:
    spec, _, mode = value.partition(",")
    spec, raw = spec.strip(), mode.strip() == "raw"
    if "<>" in spec:
        low, high = spec.split("<>")
        return UriLen("<>", int(low), int(high), raw)
    if spec[0] in "<>":
        return UriLen(spec[0], int(spec[1:]), 0, raw)
    return UriLen("=", int(spec), 0, raw)


def _urilen_ok(spec: UriLen, tx: HttpTransaction) -> bool:
    value = tx.buffer("http.uri.raw" if spec.raw else "http.uri", True)
    if not isinstance(value, bytes):
        return False
    n = len(value)
    if spec.op == "<>":
        return spec.low < n < spec.high
    if spec.op == "<":
        return n < spec.low
    if spec.op == ">":
        return n > spec.low
    return n == spec.low


def _options(text: str) -> list[tuple[str, str | None]]:
    body = text[text.index("(") + 1 : text.rindex(")")]
    out: list[tuple[str, str | None]] = []
    for part in re.split(r"(?<!\\);", body):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition(":")
        out.append((name.strip(), value.strip() if sep else None))
    return out


def _decode_content(value: str) -> tuple[bytes, bool]:
    negated = value.startswith("!")
    value = value.lstrip("!").strip()
    value = value[1:-1] if value.startswith('"') else value
    out = bytearray()
    for i, piece in enumerate(value.split("|")):
        if i % 2:
            out += bytes.fromhex(piece)
        else:
            out += re.sub(r"\\(.)", r"\1", piece).encode()
    return bytes(out), negated


def parse_simple_rule(text: str) -> SimpleRule | None:
    header = text[: text.index("(")].split()
    if header[1] not in ("http", "http1", "tcp"):
        return None
    rule = SimpleRule(sid=0)
    sticky: str | None = None
    for name, value in _options(text):
        if name == "sid" and value:
            rule.sid = int(value)
        elif name in _IGNORED:
            continue
        elif name == "flow" and value:
            for item in value.replace(" ", "").split(","):
                if item in ("to_server", "from_client"):
                    rule.direction = True
                elif item in ("to_client", "from_server"):
                    rule.direction = False
                elif item not in ("established",):
                    return None
        elif name in ("content", "uricontent") and value:
            pattern, negated = _decode_content(value)
            buffer = "http.uri" if name == "uricontent" else sticky
            rule.contents.append(Content(pattern, buffer, negated=negated))
        elif name == "pcre" and value:
            pcre = _parse_pcre(value)
            if pcre is None:
                return None
            rule.pcres.append(pcre)
        elif name == "urilen" and value:
            rule.urilens.append(_parse_urilen(value))
        elif name == "nocase" and rule.contents:
            rule.contents[-1].nocase = True
        elif name in LEGACY_MODIFIERS and value is None and rule.contents and sticky is None:
            rule.contents[-1].buffer = LEGACY_MODIFIERS[name]
        elif name in STICKY_KEYWORDS and value is None:
            sticky = STICKY_KEYWORDS[name]
        else:
            return None
    if not (rule.contents or rule.pcres or rule.urilens):
        return None
    if any(c.buffer is None for c in rule.contents):
        return None
    return rule


def _sides(rule: SimpleRule, buffer: str) -> list[bool]:
    direction = BUFFERS[buffer].direction
    if direction is BufferDirection.TO_SERVER:
        return [True]
    if direction is BufferDirection.TO_CLIENT:
        return [False]
    return [rule.direction] if rule.direction is not None else [True, False]


def rule_matches(rule: SimpleRule, tx: HttpTransaction) -> bool:
    if not all(_urilen_ok(spec, tx) for spec in rule.urilens):
        return False
    buffers = [c.buffer or "" for c in rule.contents] + [p.buffer for p in rule.pcres]
    if not buffers:
        return True
    directions = {side for name in buffers for side in _sides(rule, name)}
    if rule.direction is not None:
        directions &= {rule.direction}
    return any(_matches_side(rule, tx, side) for side in directions)


def _matches_side(rule: SimpleRule, tx: HttpTransaction, to_server: bool) -> bool:
    for content in rule.contents:
        assert content.buffer is not None
        if to_server not in _sides(rule, content.buffer):
            if content.negated:
                continue
            return False
        value = tx.buffer(content.buffer, to_server)
        if value is None:
            return False  # an absent buffer matches nothing, negated contents included
        buffers = value if isinstance(value, list) else [value]
        pattern = content.pattern.lower() if content.nocase else content.pattern
        found = any(pattern in (b.lower() if content.nocase else b) for b in buffers)
        if found == content.negated:
            return False
    for pcre in rule.pcres:
        if to_server not in _sides(rule, pcre.buffer):
            return False
        value = tx.buffer(pcre.buffer, to_server)
        if value is None:
            return False
        values = value if isinstance(value, list) else [value]
        if any(pcre.regex.search(v) for v in values) == pcre.negated:
            return False
    return True


def _set_args(args: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    prefix = "app-layer.protocols.http.libhtp.default-config."
    for arg in " ".join(args).split():
        if arg.startswith(prefix) and "=" in arg:
            key, value = arg[len(prefix) :].split("=", 1)
            out[key] = value
    return out


def test_config(entry: dict[str, Any]) -> HttpConfig:
    mapping: dict[str, Any] = {}
    if entry.get("suricata_yaml"):
        path = CORPUS / entry["suricata_yaml"]
        if path.exists():
            text = path.read_text(errors="replace")
            text = "\n".join(line for line in text.splitlines() if not line.startswith("%"))
            try:
                doc = yaml.safe_load(text) or {}
                libhtp = doc.get("app-layer", {}).get("protocols", {}).get("http", {})
                mapping.update(libhtp.get("libhtp", {}).get("default-config", {}) or {})
            except (yaml.YAMLError, AttributeError):
                pass
    mapping.update(_set_args(entry.get("args") or []))
    return HttpConfig.from_mapping(mapping)[0]


def load_index() -> list[dict[str, Any]]:
    path = CORPUS / "index.json"
    return list(json.loads(path.read_text())["tests"]) if path.exists() else []


def supported_rules(entry: dict[str, Any]) -> list[SimpleRule]:
    """The test's rules this matcher understands and the test counts alerts of."""
    rules: list[SimpleRule] = []
    for rules_file in entry["rules"]:
        for line in (CORPUS / rules_file).read_text(errors="replace").splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                rule = parse_simple_rule(line)
            except (ValueError, IndexError):
                rule = None
            if rule is not None:
                rules.append(rule)
    expected = {int(k) for k in entry["expected_alerts_by_sid"]}
    return [r for r in rules if r.sid in expected]


def evaluate(entry: dict[str, Any], rules: list[SimpleRule]) -> dict[int, tuple[int, int]]:
    """sid -> (expected, got) for the given supported rules of one test."""
    expected = {int(k): v for k, v in entry["expected_alerts_by_sid"].items()}
    config = test_config(entry)
    txs: list[HttpTransaction] = []
    for pcap in entry["pcaps"]:
        for parser in parse_pcap(CORPUS / pcap["path"], config):
            txs.extend(parser.transactions)
    return {
        r.sid: (expected[r.sid], sum(1 for tx in txs if rule_matches(r, tx))) for r in rules
    }
