"""The app-layer registry: every protocol package under ``ruleengine/applayer/`` that
exports ``PROTOCOL`` (an :class:`~ruleengine.applayer.base.AppLayerSpec`).

Protocols are discovered, not listed: adding ``applayer/<proto>/`` is the whole change.
Rule parsing reads the buffers and keywords, detection the getters and matchers, the
pipeline the probes and parser factories, outputs the loggers, all from here.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

from ruleengine.applayer.base import (
    AppLayerSpec,
    AppParser,
    BufferDirection,
    BufferSpec,
    TxKeyword,
)
from ruleengine.applayer.files import FilePolicy

_SKIP_MODULES = frozenset({"base", "registry", "detect_proto", "probing"})


@cache
def protocols() -> tuple[AppLayerSpec, ...]:
    """Every registered protocol, HTTP first (probing order; ties broken by name)."""
    import ruleengine.applayer as package

    found: list[AppLayerSpec] = []
    for info in pkgutil.iter_modules(package.__path__):
        if not info.ispkg or info.name in _SKIP_MODULES or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        spec = getattr(module, "PROTOCOL", None)
        if isinstance(spec, AppLayerSpec):
            found.append(spec)
    found.sort(key=lambda s: (s.name != "http", s.name))
    return tuple(found)


@cache
def by_name() -> dict[str, AppLayerSpec]:
    """Protocol name and every alias -> spec."""
    table: dict[str, AppLayerSpec] = {}
    for spec in protocols():
        for name in (spec.name, *spec.aliases):
            if name in table:
                raise ValueError(f"app-layer protocol {name!r} registered twice")
            table[name] = spec
    return table


def canonical(name: str) -> str | None:
    """``ssl`` -> ``tls``, ``http1`` -> ``http``; None when no such protocol is registered."""
    spec = by_name().get(name.lower())
    return None if spec is None else spec.name


@cache
def buffers() -> dict[str, BufferSpec]:
    """Canonical buffer name -> spec (with ``alproto`` set), over every protocol.

    A buffer several protocols register (``file.data``: HTTP bodies, SMTP attachments, as
    Suricata registers it per protocol) is one entry with ``alproto`` empty: the rule's
    protocol decides, and each protocol's transaction answers for its own. The first
    registration (HTTP) gives its keyword aliases and pcre letter; the direction widens
    to both when the protocols differ."""
    table: dict[str, BufferSpec] = {}
    for proto in protocols():
        for spec in proto.buffers:
            known = table.get(spec.name)
            if known is None:
                table[spec.name] = replace(spec, alproto=proto.name)
                continue
            direction = known.direction if known.direction is spec.direction \
                else BufferDirection.BOTH
            table[spec.name] = replace(known, alproto="", direction=direction)
    return table


@cache
def buffer_protocols(name: str) -> frozenset[str]:
    """The protocols registering buffer ``name``."""
    return frozenset(proto.name for proto in protocols()
                     for spec in proto.buffers if spec.name == name)


@dataclass(frozen=True)
class RegisteredKeyword:
    alproto: str
    keyword: TxKeyword


@cache
def tx_keywords() -> dict[str, RegisteredKeyword]:
    """Keyword name and aliases -> the protocol keyword."""
    table: dict[str, RegisteredKeyword] = {}
    for proto in protocols():
        for kw in proto.keywords:
            for name in (kw.name, *kw.aliases):
                if name in table:
                    raise ValueError(f"keyword {name!r} registered by two protocols")
                table[name] = RegisteredKeyword(proto.name, kw)
    return table


@dataclass(frozen=True)
class AppLayerSettings:
    """The ``app-layer.protocols`` section, parsed by each protocol: per protocol its
    settings object and whether it is enabled (``enabled: no`` / ``detection-only``)."""

    configs: Mapping[str, Any]
    enabled: frozenset[str]
    detection_only: frozenset[str] = frozenset()
    # how files are tracked (hashes from outputs.eve-log files: force-hash)
    files: FilePolicy = field(default_factory=FilePolicy)

    def config(self, name: str) -> Any:
        return self.configs.get(name)

    def with_config(self, name: str, config: Any) -> AppLayerSettings:
        return replace(self, configs={**self.configs, name: config})

    def for_rules(self, keywords: frozenset[str]) -> AppLayerSettings:
        """The settings adapted to the loaded rule set (each protocol's ``for_rules``)."""
        configs = dict(self.configs)
        for spec in protocols():
            if spec.for_rules is not None and spec.name in configs:
                configs[spec.name] = spec.for_rules(configs[spec.name], keywords)
        files = self.files
        if not files.magic and keywords & {"filemagic", "file.magic"}:
            files = replace(files, magic=True)  # rules type files: keep their heads
        return replace(self, configs=configs, files=files)


def _enabled_value(raw: Any) -> str:
    text = str(raw).strip().lower() if raw is not None else "yes"
    if text in ("no", "false", "off", "0"):
        return "no"
    if text == "detection-only":
        return "detection-only"
    return "yes"


def load_settings(section: Mapping[str, Any]) -> tuple[AppLayerSettings, list[str]]:
    """Parse ``app-layer.protocols``: each protocol gets its own subtree (Suricata nests
    DNS's enable under ``tcp:``/``udp:``; both enable the protocol)."""
    configs: dict[str, Any] = {}
    enabled: set[str] = set()
    detection_only: set[str] = set()
    warnings: list[str] = []
    for proto in protocols():
        subtree: Mapping[str, Any] = {}
        for name in (proto.name, *proto.aliases):
            value = section.get(name)
            if isinstance(value, Mapping):
                subtree = {**value, **subtree}
        state = _enabled_value(subtree.get("enabled", "yes"))
        if state == "yes":
            enabled.add(proto.name)
        elif state == "detection-only":
            enabled.add(proto.name)
            detection_only.add(proto.name)
        if proto.parse_config is not None:
            config, problems = proto.parse_config(subtree)
            configs[proto.name] = config
            warnings.extend(f"app-layer.protocols.{proto.name}: {p}" for p in problems)
    return AppLayerSettings(configs, frozenset(enabled), frozenset(detection_only)), warnings


def default_settings() -> AppLayerSettings:
    return load_settings({})[0]


def make_parser(name: str, settings: AppLayerSettings, ipproto: int) -> AppParser | None:
    spec = by_name().get(name)
    if spec is None or spec.make_parser is None:
        return None
    parser = spec.make_parser(settings.config(spec.name), ipproto)
    if hasattr(parser, "file_policy"):  # a protocol that carries files
        parser.file_policy = settings.files
    return parser


def encryption_handling(name: str, settings: AppLayerSettings) -> str:
    """``default`` | ``bypass`` | ``full`` for an encrypting protocol."""
    config = settings.config(name)
    return str(getattr(config, "encryption_handling", "default") or "default")


def names() -> Iterable[str]:
    return (spec.name for spec in protocols())
