"""Settings of the FTP parser (``app-layer.protocols.ftp`` in suricata.yaml)::

    ftp:
      enabled: yes
      memcap: 64mb            # Suricata: global FTP memory cap (0/absent: unlimited)
      max-tx: 1024            # open transactions per flow
      max-line-length: 4kb    # longer command / reply lines are truncated (with an event)

As ``FTPParseMemcap`` / ``SCFTPGetConfigValues`` (Suricata 7/8): sizes take a unit suffix. The
memcap is a global budget in Suricata; this engine's per-flow state is bounded by the other
caps, so ``memcap`` is read and validated but bounds nothing more. Engine cap (not a Suricata
key): ``max-reply-lines`` reply lines kept per transaction (Suricata keeps all of them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_MAX_TX = 1024
DEFAULT_MAX_LINE_LENGTH = 4096
DEFAULT_MAX_REPLY_LINES = 1024
DEFAULT_MAX_EVENTS = 64

_TRUE = {"1", "yes", "true", "on", "enable", "enabled"}
_FALSE = {"0", "no", "false", "off", "disable", "disabled"}
_KNOWN_KEYS = frozenset({"enabled", "detection-ports", "memcap", "max-tx", "max-line-length",
                         "max-reply-lines", "max-events"})


@dataclass(frozen=True)
class FtpSettings:
    """Parsed ``app-layer.protocols.ftp`` subtree."""

    enabled: str = "yes"  # "yes" | "no" | "detection-only"
    memcap: int = 0  # 0: unlimited (Suricata's default)
    max_tx: int = DEFAULT_MAX_TX
    max_line_length: int = DEFAULT_MAX_LINE_LENGTH
    max_reply_lines: int = DEFAULT_MAX_REPLY_LINES
    max_events: int = DEFAULT_MAX_EVENTS
    # FTP is not an encrypting protocol here (AUTH TLS stops the parser; see parser.py)
    encryption_handling: str = "default"


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


def _size(raw: Any, allow_zero: bool = False) -> int | None:
    """Suricata's ParseSizeString: a number with an optional kb/mb/gb unit."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        value = raw
    else:
        m = _SIZE_RE.match(str(raw))
        if not m:
            return None
        value = int(m.group(1)) * _UNITS[(m.group(2) or "").lower()]
    if value < 0 or (value == 0 and not allow_zero):
        return None
    return value


def parse_config(subtree: Mapping[str, Any] | None) -> tuple[FtpSettings, list[str]]:
    """``app-layer.protocols.ftp`` -> (settings, warnings). Never raises."""
    warnings: list[str] = []
    if not isinstance(subtree, Mapping):
        return FtpSettings(), warnings
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
    for key, attr, zero in (("memcap", "memcap", True), ("max-tx", "max_tx", False),
                            ("max-line-length", "max_line_length", False),
                            ("max-reply-lines", "max_reply_lines", False),
                            ("max-events", "max_events", False)):
        if key in subtree and subtree[key] is not None:
            size = _size(subtree[key], allow_zero=zero)
            if size is None:
                warnings.append(f"{key}: invalid value {subtree[key]!r}; using the default")
            else:
                values[attr] = size
    return FtpSettings(**values), warnings
