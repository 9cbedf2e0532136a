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

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ruleengine.applayer.protocol_config import read_common_keys, read_sizes

DEFAULT_MAX_TX = 1024
DEFAULT_MAX_LINE_LENGTH = 4096
DEFAULT_MAX_REPLY_LINES = 1024
DEFAULT_MAX_EVENTS = 64

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


def parse_config(subtree: Mapping[str, Any] | None) -> tuple[FtpSettings, list[str]]:
    """``app-layer.protocols.ftp`` -> (settings, warnings). Never raises."""
    if not isinstance(subtree, Mapping):
        return FtpSettings(), []
    values, warnings = read_common_keys(subtree, _KNOWN_KEYS)
    read_sizes(subtree, ("memcap", "max-tx", "max-line-length", "max-reply-lines", "max-events"),
               values, warnings, zero_ok=frozenset({"memcap"}))
    return FtpSettings(**values), warnings
