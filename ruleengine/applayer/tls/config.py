"""Settings of the TLS parser (``app-layer.protocols.tls`` in suricata.yaml).

``encryption-handling`` follows ``RegisterSSLParsers`` in Suricata's ``src/app-layer-ssl.c``:
``encryption-handling`` wins when present; otherwise ``no-reassemble: yes`` means ``bypass``.
The pre-5.0 spelling ``encrypt-handling`` is read (with a warning) only when
``encryption-handling`` is absent, before ``no-reassemble``. Suricata 8's ``track-only`` is the
new name of ``default``. An unknown value falls back to ``default`` as Suricata does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ruleengine.applayer.protocol_config import (
    AutoSwitchView,
    EncryptionHandling,
    read_auto_switch,
    read_common_keys,
    read_encryption_handling,
    read_sizes,
)
from ruleengine.config.values import parse_switch

# Largest handshake message reassembled across records (Suricata grows its hs_buffer for the
# announced message length; this engine refuses more than this and skips the message).
DEFAULT_MAX_HANDSHAKE_MESSAGE = 64 * 1024
DEFAULT_MAX_CERTS = 64
DEFAULT_MAX_ALPNS = 32
DEFAULT_MAX_EVENTS = 64

_KNOWN_KEYS = frozenset(
    {
        "enabled",
        "detection-ports",
        "encryption-handling",
        "encrypt-handling",
        "no-reassemble",
        "ja3-fingerprints",
        "ja4-fingerprints",
        "max-handshake-message",
        "max-certs",
        "max-alpns",
        "max-events",
    }
)


@dataclass(frozen=True)
class TlsSettings:
    """Parsed ``app-layer.protocols.tls`` subtree."""

    enabled: str = "yes"  # "yes" | "no" | "detection-only"
    detection_ports: Mapping[str, str] = field(default_factory=dict)  # {"dp": "443", ...}
    encryption_handling: EncryptionHandling = "default"
    # None = "auto" (Suricata: off unless a rule needs it); True / False = explicit.
    ja3_fingerprints: bool | None = None
    ja4_fingerprints: bool | None = None
    max_handshake_message: int = DEFAULT_MAX_HANDSHAKE_MESSAGE
    max_certs: int = DEFAULT_MAX_CERTS
    max_alpns: int = DEFAULT_MAX_ALPNS
    max_events: int = DEFAULT_MAX_EVENTS

    # JA3/JA3S and JA4 computed (for rules), and written to EVE (``auto`` without a ja3
    # rule leaves them out in Suricata)
    ja3_enabled = AutoSwitchView("ja3_fingerprints", logged=False)
    ja4_enabled = AutoSwitchView("ja4_fingerprints", logged=False)
    ja3_logged = AutoSwitchView("ja3_fingerprints", logged=True)
    ja4_logged = AutoSwitchView("ja4_fingerprints", logged=True)


def _encryption_handling(subtree: Mapping[str, Any], warnings: list[str]) -> EncryptionHandling:
    """``encryption-handling``, else the old ``encrypt-handling``, else ``no-reassemble``."""
    for key in ("encryption-handling", "encrypt-handling"):
        raw = subtree.get(key)
        if raw is None:
            continue
        if key == "encrypt-handling":
            warnings.append(f"{key}: old spelling (Suricata 5+ reads encryption-handling)")
        return read_encryption_handling(key, raw, warnings) or "default"
    if "no-reassemble" in subtree:
        flag = parse_switch(subtree["no-reassemble"])
        if flag is None:
            warnings.append(f"no-reassemble: invalid value {subtree['no-reassemble']!r}")
        elif flag:
            return "bypass"
    return "default"


def parse_config(subtree: Mapping[str, Any] | None) -> tuple[TlsSettings, list[str]]:
    """``app-layer.protocols.tls`` -> (settings, warnings). Never raises."""
    if not isinstance(subtree, Mapping):
        return TlsSettings(), []
    values, warnings = read_common_keys(subtree, _KNOWN_KEYS)

    ports = subtree.get("detection-ports")
    if isinstance(ports, Mapping):
        values["detection_ports"] = {str(k): str(v) for k, v in ports.items()}
    elif ports is not None:
        warnings.append("detection-ports: expected a mapping (dp/sp)")

    values["encryption_handling"] = _encryption_handling(subtree, warnings)

    values["ja3_fingerprints"] = read_auto_switch(
        "ja3-fingerprints", subtree.get("ja3-fingerprints"), warnings)
    values["ja4_fingerprints"] = read_auto_switch(
        "ja4-fingerprints", subtree.get("ja4-fingerprints"), warnings)

    read_sizes(subtree, ("max-handshake-message", "max-certs", "max-alpns", "max-events"),
               values, warnings)
    return TlsSettings(**values), warnings


def for_rules(config: Any, keywords: frozenset[str]) -> Any:
    """``ja3-fingerprints`` / ``ja4-fingerprints: auto`` become on when a loaded rule uses
    a ja3 / ja4 keyword (Suricata enables them from the keyword's setup), and are then
    logged as well (EVE tls extended/custom ja3, ja3s, ja4)."""
    if not isinstance(config, TlsSettings):
        return config
    ja3 = config.ja3_fingerprints
    if ja3 is None and any(k.startswith("ja3") for k in keywords):
        ja3 = True
    ja4 = config.ja4_fingerprints
    if ja4 is None and any(k.startswith("ja4") for k in keywords):
        ja4 = True
    if (ja3, ja4) == (config.ja3_fingerprints, config.ja4_fingerprints):
        return config
    return replace(config, ja3_fingerprints=ja3, ja4_fingerprints=ja4)
