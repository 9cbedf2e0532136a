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

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ruleengine.applayer.protocol_config import (
    AutoSwitchView,
    read_auto_switch,
    read_common_keys,
    read_encryption_handling,
    read_sizes,
)

if TYPE_CHECKING:
    from ruleengine.applayer.protocol_config import EncryptionHandling

BANNER_MAX_LEN = 256  # Suricata's SSH_MAX_BANNER_LEN: long_banner from this length on
MAX_REASSEMBLED_RECORD = 65535  # SSH_MAX_REASSEMBLED_RECORD_LEN: a longer KEXINIT is skipped
DEFAULT_MAX_BANNER_LENGTH = 8192
DEFAULT_MAX_EVENTS = 64

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

    # KEXINIT parsed and fingerprinted (for rules); ``hassh`` in EVE and logging at NEWKEYS
    hassh_computed = AutoSwitchView("hassh", logged=False)
    hassh_logged = AutoSwitchView("hassh", logged=True)


def parse_config(subtree: Mapping[str, Any] | None) -> tuple[SshSettings, list[str]]:
    """``app-layer.protocols.ssh`` -> (settings, warnings). Never raises."""
    if not isinstance(subtree, Mapping):
        return SshSettings(), []
    values, warnings = read_common_keys(subtree, _KNOWN_KEYS)
    values["hassh"] = read_auto_switch("hassh", subtree.get("hassh"), warnings)

    # SSH never had TLS's older spellings of this key
    raw_handling = subtree.get("encryption-handling")
    if raw_handling is not None:
        handling = read_encryption_handling("encryption-handling", raw_handling, warnings)
        values["encryption_handling"] = handling or "default"

    read_sizes(subtree, ("max-banner-length", "max-events"), values, warnings)
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
