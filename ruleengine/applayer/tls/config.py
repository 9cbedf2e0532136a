"""Settings of the TLS parser (``app-layer.protocols.tls`` in suricata.yaml).

``encryption-handling`` follows ``RegisterSSLParsers`` in Suricata's ``src/app-layer-ssl.c``:
``encryption-handling`` wins when present; otherwise ``no-reassemble: yes`` means ``bypass``.
The pre-5.0 spelling ``encrypt-handling`` is read (with a warning) only when
``encryption-handling`` is absent, before ``no-reassemble``. Suricata 8's ``track-only`` is the
new name of ``default``. An unknown value falls back to ``default`` as Suricata does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

EncryptionHandling = Literal["default", "bypass", "full"]

# Largest handshake message reassembled across records (Suricata grows its hs_buffer for the
# announced message length; this engine refuses more than this and skips the message).
DEFAULT_MAX_HANDSHAKE_MESSAGE = 64 * 1024
DEFAULT_MAX_CERTS = 64
DEFAULT_MAX_ALPNS = 32
DEFAULT_MAX_EVENTS = 64

_TRUE = {"1", "yes", "true", "on", "enable", "enabled"}
_FALSE = {"0", "no", "false", "off", "disable", "disabled"}

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

    @property
    def ja3_enabled(self) -> bool:
        """JA3/JA3S computed (for rules): unless explicitly disabled."""
        return self.ja3_fingerprints is not False

    @property
    def ja4_enabled(self) -> bool:
        return self.ja4_fingerprints is not False

    @property
    def ja3_logged(self) -> bool:
        """JA3/JA3S written to EVE: only when explicitly enabled (``auto`` without a ja3 rule
        leaves it off in Suricata)."""
        return self.ja3_fingerprints is True

    @property
    def ja4_logged(self) -> bool:
        return self.ja4_fingerprints is True


def _bool(raw: Any) -> bool | None:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


_SIZE_RE = re.compile(r"^\s*(\d+)\s*(kb|mb|gb|kib|mib|gib|k|m|g|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1 << 20, "mb": 1 << 20,
          "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30}


def _size(raw: Any) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw if raw > 0 else None
    m = _SIZE_RE.match(str(raw))
    if not m:
        return None
    value = int(m.group(1)) * _UNITS[(m.group(2) or "").lower()]
    return value if value > 0 else None


def _handling(raw: Any) -> EncryptionHandling | None:
    text = str(raw).strip().lower()
    if text in ("default", "track-only"):
        return "default"
    if text == "bypass":
        return "bypass"
    if text == "full":
        return "full"
    return None


def _fingerprints(key: str, raw: Any, warnings: list[str]) -> bool | None:
    if raw is None or str(raw).strip().lower() == "auto":
        return None
    value = _bool(raw)
    if value is None:
        warnings.append(f"{key}: invalid value {raw!r} (expected auto/yes/no); using auto")
    return value


def parse_config(subtree: Mapping[str, Any] | None) -> tuple[TlsSettings, list[str]]:
    """``app-layer.protocols.tls`` -> (settings, warnings). Never raises."""
    warnings: list[str] = []
    if not isinstance(subtree, Mapping):
        return TlsSettings(), warnings
    values: dict[str, Any] = {}

    for key in subtree:
        if str(key) not in _KNOWN_KEYS:
            warnings.append(f"{key}: unknown key, ignored")

    if "enabled" in subtree:
        raw = subtree["enabled"]
        if str(raw).strip().lower() == "detection-only":
            values["enabled"] = "detection-only"
        else:
            flag = _bool(raw)
            if flag is None:
                warnings.append(f"enabled: invalid value {raw!r}; using yes")
            else:
                values["enabled"] = "yes" if flag else "no"

    ports = subtree.get("detection-ports")
    if isinstance(ports, Mapping):
        values["detection_ports"] = {str(k): str(v) for k, v in ports.items()}
    elif ports is not None:
        warnings.append("detection-ports: expected a mapping (dp/sp)")

    handling: EncryptionHandling = "default"
    if subtree.get("encryption-handling") is not None:
        raw = subtree["encryption-handling"]
        parsed = _handling(raw)
        if parsed is None:
            warnings.append(f"encryption-handling: invalid value {raw!r}; using default")
        else:
            handling = parsed
    elif subtree.get("encrypt-handling") is not None:
        raw = subtree["encrypt-handling"]
        parsed = _handling(raw)
        warnings.append("encrypt-handling: old spelling (Suricata 5+ reads encryption-handling)")
        if parsed is None:
            warnings.append(f"encrypt-handling: invalid value {raw!r}; using default")
        else:
            handling = parsed
    elif "no-reassemble" in subtree:
        flag = _bool(subtree["no-reassemble"])
        if flag is None:
            warnings.append(f"no-reassemble: invalid value {subtree['no-reassemble']!r}")
        elif flag:
            handling = "bypass"
    values["encryption_handling"] = handling

    values["ja3_fingerprints"] = _fingerprints(
        "ja3-fingerprints", subtree.get("ja3-fingerprints"), warnings)
    values["ja4_fingerprints"] = _fingerprints(
        "ja4-fingerprints", subtree.get("ja4-fingerprints"), warnings)

    for key, attr in (("max-handshake-message", "max_handshake_message"),
                      ("max-certs", "max_certs"), ("max-alpns", "max_alpns"),
                      ("max-events", "max_events")):
        if key in subtree:
            size = _size(subtree[key])
            if size is None:
                warnings.append(f"{key}: invalid value {subtree[key]!r}; using the default")
            else:
                values[attr] = size
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
