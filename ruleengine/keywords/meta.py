"""Rule metadata keywords: msg, sid, rev, gid, classtype, priority, reference, metadata,
target, noalert, app-layer-protocol, prefilter."""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING

from ruleengine.keywords._values import parse_int
from ruleengine.keywords.registry import (
    ArgKind,
    KeywordSpec,
    Quotes,
    Setup,
    Stage,
    modifier_flag,
    unquote,
)
from ruleengine.rules.classification import classification, reference_systems
from ruleengine.rules.errors import KeywordError
from ruleengine.rules.header import APP_PROTOCOLS, app_proto_of

if TYPE_CHECKING:
    from ruleengine.rules.builder import RuleBuilder

_MSG_ESCAPE_RE = re.compile(r"\\(.)", re.S)


def setup_msg(b: RuleBuilder, value: str | None) -> None:
    assert value is not None
    text, _ = unquote(value)
    if "\\" in text:
        # Suricata drops the backslash of every escape (not only \" \; \\ \:), like Snort.
        text = _MSG_ESCAPE_RE.sub(r"\1", text)
    b.rule.msg = text


def _positive(b: RuleBuilder, value: str | None, what: str) -> int:
    assert value is not None
    number = parse_int(value, what, lo=0, hi=0xFFFFFFFF)
    if number == 0:
        raise KeywordError(
            f"{what} value 0 is invalid",
            code=f"{what}-zero",
            value_range=(0, len(value)),
            hint=f"{what} must be 1 or more",
        )
    return number


def setup_sid(b: RuleBuilder, value: str | None) -> None:
    if b.sid_seen:
        raise KeywordError("'sid' is set twice in this rule", code="duplicate-keyword")
    b.rule.sid = _positive(b, value, "sid")
    b.sid_seen = True


def setup_rev(b: RuleBuilder, value: str | None) -> None:
    b.rule.rev = _positive(b, value, "rev")


def setup_gid(b: RuleBuilder, value: str | None) -> None:
    assert value is not None
    b.rule.gid = parse_int(value, "gid", lo=0, hi=0xFFFFFFFF)


def setup_classtype(b: RuleBuilder, value: str | None) -> None:
    assert value is not None
    if b.rule.classtype is not None:
        raise KeywordError("'classtype' is set twice in this rule", code="duplicate-keyword")
    b.rule.classtype = sys.intern(value.strip())
    if classification(value) is None:
        b.warn(
            f"unknown classtype '{value}' (not in classification.config)",
            "unknown-classtype",
            b.value_span,
        )


def setup_priority(b: RuleBuilder, value: str | None) -> None:
    assert value is not None
    b.rule.priority = parse_int(value, "priority", lo=1, hi=255)


def setup_reference(b: RuleBuilder, value: str | None) -> None:
    assert value is not None
    system, sep, ident = value.partition(",")
    system, ident = system.strip(), ident.strip()
    if not sep or not system or not ident:
        raise KeywordError(
            f"reference: expected '<system>,<id>', got '{value}'",
            code="invalid-keyword-value",
            value_range=(0, len(value)),
        )
    if system.lower() not in reference_systems():
        b.warn(
            f"unknown reference system '{system}' (not in reference.config)",
            "unknown-reference",
            b.value_subspan(0, len(system)),
        )
    b.rule.references.append((system, ident))


def setup_metadata(b: RuleBuilder, value: str | None) -> None:
    assert value is not None
    items = [sys.intern(part.strip()) for part in value.split(",")]
    b.rule.metadata.extend([item for item in items if item] if "" in items else items)


def setup_target(b: RuleBuilder, value: str | None) -> None:
    assert value is not None
    if value not in ("src_ip", "dest_ip"):
        raise KeywordError(
            f"target: expected src_ip or dest_ip, got '{value}'",
            code="invalid-keyword-value",
            value_range=(0, len(value)),
        )
    b.rule.target = value


def setup_noalert(b: RuleBuilder, value: str | None) -> None:
    b.rule.noalert = True


def setup_prefilter(b: RuleBuilder, value: str | None) -> None:
    b.rule.prefilter = True


def setup_app_layer_protocol(b: RuleBuilder, value: str | None) -> None:
    assert value is not None
    negated = value.startswith("!")
    name = value[1:].strip() if negated else value
    name = name.split(",")[0].strip().lower()
    if name not in APP_PROTOCOLS and name not in ("failed", "unknown"):
        raise KeywordError(
            f"app-layer-protocol: unknown protocol '{name}'",
            code="unknown-protocol",
            value_range=(0, len(value)),
        )
    proto = app_proto_of(name) or name
    header_proto = app_proto_of(b.rule.protocol)
    if not negated and header_proto is not None and header_proto != proto:
        raise KeywordError(
            f"conflicting alprotos: header says {b.rule.protocol}, app-layer-protocol says {name}",
            code="conflicting-alproto",
        )
    b.rule.app_proto = proto
    b.rule.app_proto_negated = negated


def _meta(name: str, setup: Setup, quotes: Quotes = Quotes.FORBIDDEN) -> KeywordSpec:
    """A rule's metadata (sid, msg, ...): read once at load, never matched."""
    return KeywordSpec(name, setup, stage=Stage.META, quotes=quotes)


SPECS: tuple[KeywordSpec, ...] = (
    _meta("msg", setup_msg, Quotes.MANDATORY),
    _meta("sid", setup_sid),
    _meta("rev", setup_rev),
    _meta("gid", setup_gid),
    _meta("classtype", setup_classtype),
    _meta("priority", setup_priority),
    _meta("reference", setup_reference, Quotes.OPTIONAL),
    _meta("metadata", setup_metadata, Quotes.OPTIONAL),
    _meta("target", setup_target),
    KeywordSpec("noalert", setup_noalert, arg=ArgKind.NONE, stage=Stage.POSTMATCH),
    modifier_flag("prefilter", setup_prefilter),
    KeywordSpec(
        "app-layer-protocol",
        setup_app_layer_protocol,
        negatable=True,
        quotes=Quotes.FORBIDDEN,
    ),
)
