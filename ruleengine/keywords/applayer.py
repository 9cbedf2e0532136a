"""Protocol keywords from the app-layer registry (``tls.version``, ``ssl_state``,
``dns.opcode``, ``ssh.protoversion``, ``ftpbounce``...) and ``app-layer-event``.

Each protocol package describes its keywords as :class:`~ruleengine.applayer.base.TxKeyword`
(a parse and a match function); this module turns them into rule keywords whose setup
records a :class:`~ruleengine.rules.model.TxCondition` that detection evaluates on the
protocol's transactions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ruleengine.applayer import registry
from ruleengine.applayer.base import BufferDirection, TxKeyword
from ruleengine.keywords.registry import ArgKind, KeywordSpec, Quotes, Setup, unquote
from ruleengine.rules.errors import KeywordError
from ruleengine.rules.header import APP_PROTOCOLS
from ruleengine.rules.model import TxCondition

if TYPE_CHECKING:
    from ruleengine.rules.builder import RuleBuilder

APP_LAYER_EVENT = "app-layer-event"
"""Pseudo keyword name of the ``app-layer-event`` condition (arg: event name)."""

# Suricata's generic app-layer events (app-layer-events.c), not owned by one protocol
GENERIC_EVENTS = frozenset({
    "applayer_mismatch_protocol_both_directions", "applayer_wrong_direction_first_data",
    "applayer_detect_protocol_only_one_direction", "applayer_proto_detection_skipped",
    "applayer_no_tls_after_starttls", "applayer_unexpected_protocol",
})


def _setup(alproto: str, kw: TxKeyword) -> Setup:
    def setup(b: RuleBuilder, value: str | None) -> None:
        text = None if value is None else unquote(value)[0].strip()
        try:
            arg = kw.parse(text)
        except ValueError as exc:
            raise KeywordError(
                f"{kw.name}: {exc}", code="invalid-keyword-value",
                value_range=(0, len(value or "")),
            ) from None
        b.note_app_keyword(alproto)
        b.rule.tx_conditions.append(
            TxCondition(alproto, kw.name, arg, kw.direction.value, b.option_span)
        )

    return setup


def setup_app_layer_event(b: RuleBuilder, value: str | None) -> None:
    text = unquote(value or "")[0].strip()
    negated = text.startswith("!")
    name = text.lstrip("!").strip()
    proto, dot, event = name.partition(".")
    if not dot:
        if name in GENERIC_EVENTS:
            b.rule.tx_conditions.append(
                TxCondition("", APP_LAYER_EVENT, (name, negated), "both", b.option_span))
            return
        raise KeywordError(
            f"app-layer-event: '{name}' must be written <protocol>.<event>",
            code="invalid-keyword-value", value_range=(0, len(value or "")),
        )
    spec = registry.by_name().get(proto.lower())
    if spec is None and proto.lower() in APP_PROTOCOLS:
        # a protocol Suricata has and this engine does not parse: the rule loads, skipped
        name = f"app-layer-event:{proto.lower()}"
        if name not in b.rule.unsupported:
            b.rule.unsupported.append(name)
        b.warn(f"app-layer protocol '{proto}' is not parsed by this engine: the rule loads "
               "but is skipped", "unsupported-keyword", b.option_span)
        return
    if spec is None:
        raise KeywordError(
            f"app-layer-event: unknown protocol '{proto}'",
            code="invalid-keyword-value", value_range=(0, len(proto)),
        )
    if spec.events and event not in spec.events:
        raise KeywordError(
            f"app-layer-event: '{event}' is not an event of {spec.name}",
            code="invalid-keyword-value", value_range=(len(proto) + 1, len(name)),
        )
    b.note_app_keyword(spec.name)
    b.rule.tx_conditions.append(
        TxCondition(spec.name, APP_LAYER_EVENT, (event, negated), "both", b.option_span))


def _specs() -> tuple[KeywordSpec, ...]:
    specs = [KeywordSpec(APP_LAYER_EVENT, setup_app_layer_event, negatable=True,
                         doc="match an app-layer anomaly event (<proto>.<event>)")]
    for name, entry in registry.tx_keywords().items():
        kw = entry.keyword
        if name != kw.name:
            continue
        specs.append(KeywordSpec(
            kw.name, _setup(entry.alproto, kw), aliases=kw.aliases,
            arg=ArgKind.REQUIRED if kw.value_required else ArgKind.OPTIONAL,
            quotes=Quotes.OPTIONAL, negatable=kw.negatable,
            doc=kw.doc or f"{entry.alproto} keyword",
        ))
    return tuple(specs)


SPECS: tuple[KeywordSpec, ...] = _specs()

__all__ = ["APP_LAYER_EVENT", "SPECS", "BufferDirection"]
