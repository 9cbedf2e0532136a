"""Settings of the SSH parser (``app-layer.protocols.ssh`` in suricata.yaml)::

    ssh:
      enabled: yes
      hassh: yes                   # auto (default) | yes | no
      encryption-handling: bypass  # track-only (= default) | bypass | full

As ``RegisterSSHParsers`` (Suricata 8, ``src/app-layer-ssh.c``): ``hassh: yes`` turns the
fingerprints on (and with them the ``hassh`` object in EVE and the later log point, once both
sides sent NEWKEYS); ``no`` turns them off for good, even for rules; ``auto`` leaves them to
the rules: a loaded rule using an ``ssh.hassh*`` buffer turns them on, logging included, as
Suricata's keyword setup does (:func:`for_rules`). Without such a rule they are still
computed (a cheap md5 per side) but neither logged nor delaying the log point.
``encryption-handling`` is read only under that name (SSH never had the TLS spellings
``encrypt-handling`` / ``no-reassemble``); an unknown value is ``track-only``, as Suricata.

Engine caps (not Suricata keys): ``max-banner-length`` bytes kept of the protocol and software
versions of a banner (Suricata keeps a complete line whatever its length, and the first
buffered chunk of a line without end), ``max-events`` per transaction.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

EncryptionHandling = Literal["default", "bypass", "full"]

BANNER_MAX_LEN = 256  # Suricata's SSH_MAX_BANNER_LEN: long_banner from this length on
MAX_REASSEMBLED_RECORD = 65535  # SSH_MAX_REASSEMBLED_RECORD_LEN: a longer KEXINIT is skipped
DEFAULT_MAX_BANNER_LENGTH = 8192
DEFAULT_MAX_EVENTS = 64

_TRUE = {"1", "yes", "true", "on", "enable", "enabled"}
_FALSE = {"0", "no", "false", "off", "disable", "disabled"}
_KNOWN_KEYS = frozenset({"enabled", "detection-ports", "hassh", "encryption-handling",
                         "max-banner-length", "max-events"})


@dataclass(frozen=True)
class SshSettings:
    """Parsed ``app-layer.protocols.ssh`` subtree."""

    enabled: str = "yes"  # "yes" | "no" | "detection-only"
    # None = auto (off for EVE; on for rules), True / False = explicit
    hassh: bool | None = None
    encryption_handling: EncryptionHandling = "default"
    max_banner_length: int = DEFAULT_MAX_BANNER_LENGTH
    max_events: int = DEFAULT_MAX_EVENTS

    @property
    def hassh_computed(self) -> bool:
        """KEXINIT parsed and fingerprinted (for rules): unless explicitly disabled."""
        return self.hassh is not False

    @property
    def hassh_logged(self) -> bool:
        """``hassh`` in EVE and logging at NEWKEYS: only when explicitly enabled."""
        return self.hassh is True


def _bool(raw: Any) -> bool | None:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


_SIZE_RE = re.compile(r"^\s*(\d+)\s*(kb|kib|k|b)?\s*$", re.IGNORECASE)


def _size(raw: Any) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw if raw > 0 else None
    m = _SIZE_RE.match(str(raw))
    if not m:
        return None
    value = int(m.group(1)) * (1 if (m.group(2) or "b").lower() == "b" else 1024)
    return value if value > 0 else None


def _handling(raw: Any) -> EncryptionHandling | None:
    text = str(raw).strip().lower()
    if text in ("track-only", "default"):
        return "default"
    if text == "bypass":
        return "bypass"
    if text == "full":
        return "full"
    return None


def parse_config(subtree: Mapping[str, Any] | None) -> tuple[SshSettings, list[str]]:
    """``app-layer.protocols.ssh`` -> (settings, warnings). Never raises."""
    warnings: list[str] = []
    if not isinstance(subtree, Mapping):
        return SshSettings(), warnings
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

    raw_hassh = subtree.get("hassh")
    if raw_hassh is not None and str(raw_hassh).strip().lower() != "auto":
        flag = _bool(raw_hassh)
        if flag is None:
            warnings.append(f"hassh: invalid value {raw_hassh!r} (expected auto/yes/no); "
                            "using auto")
        else:
            values["hassh"] = flag

    raw_handling = subtree.get("encryption-handling")
    if raw_handling is not None:
        handling = _handling(raw_handling)
        if handling is None:
            warnings.append(f"encryption-handling: invalid value {raw_handling!r} "
                            "(expected track-only/bypass/full); using track-only")
        else:
            values["encryption_handling"] = handling

    for key, attr in (("max-banner-length", "max_banner_length"), ("max-events", "max_events")):
        if key in subtree:
            size = _size(subtree[key])
            if size is None:
                warnings.append(f"{key}: invalid value {subtree[key]!r}; using the default")
            else:
                values[attr] = size
    return SshSettings(**values), warnings


HASSH_KEYWORDS = frozenset({"ssh.hassh", "ssh.hassh.string", "ssh.hassh.server",
                            "ssh.hassh.server.string", "ssh-hassh", "ssh-hassh-string",
                            "ssh-hassh-server", "ssh-hassh-server-string"})


def for_rules(config: Any, keywords: frozenset[str]) -> Any:
    """``hassh: auto`` becomes on when a loaded rule uses a hassh buffer
    (``DetectSshHasshSetup`` calls ``SCSshEnableHassh``); ``no`` stays off."""
    if isinstance(config, SshSettings) and config.hassh is None and keywords & HASSH_KEYWORDS:
        return replace(config, hassh=True)
    return config
