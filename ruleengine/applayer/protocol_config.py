"""Readers of the keys that several ``app-layer.protocols.<proto>`` sections share, so each
key is read, and warned about, one way in every protocol.

They fill ``values`` (keyword arguments of the protocol's settings dataclass) and append to
``warnings``; a bad value leaves the key out of ``values``, so the dataclass default stays.
None of them raises.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from ruleengine.config.values import parse_size, parse_switch

EncryptionHandling = Literal["default", "bypass", "full"]

_HANDLING: dict[str, EncryptionHandling] = {
    "default": "default", "track-only": "default", "bypass": "bypass", "full": "full",
}


def read_common_keys(subtree: Mapping[str, Any],
                     known: frozenset[str]) -> tuple[dict[str, Any], list[str]]:
    """The start of every section: (values, warnings) with the unknown keys warned about
    and ``enabled`` read."""
    values: dict[str, Any] = {}
    warnings = [f"{key}: unknown key, ignored" for key in subtree if str(key) not in known]
    read_enabled(subtree, values, warnings)
    return values, warnings


def read_enabled(subtree: Mapping[str, Any], values: dict[str, Any],
                 warnings: list[str]) -> None:
    """``enabled``: a switch or ``detection-only`` -> ``values["enabled"]`` as
    ``"yes"`` / ``"no"`` / ``"detection-only"``."""
    if "enabled" not in subtree:
        return
    raw = subtree["enabled"]
    if str(raw).strip().lower() == "detection-only":
        values["enabled"] = "detection-only"
        return
    flag = parse_switch(raw)
    if flag is None:
        warnings.append(f"enabled: invalid value {raw!r}; using yes")
    else:
        values["enabled"] = "yes" if flag else "no"


def read_auto_switch(key: str, raw: Any, warnings: list[str]) -> bool | None:
    """``auto`` (or absent) -> None, else the switch (``hassh``, ``ja3-fingerprints``);
    an invalid value warns and reads as ``auto``."""
    if raw is None or str(raw).strip().lower() == "auto":
        return None
    value = parse_switch(raw)
    if value is None:
        warnings.append(f"{key}: invalid value {raw!r} (expected auto/yes/no); using auto")
    return value


class AutoSwitchView:
    """What an auto switch (:func:`read_auto_switch`: None = auto, True / False as written)
    means, as a read-only attribute of the settings class: with ``logged=False`` whether
    the value is computed (for rules: unless switched off), with ``logged=True`` whether
    it is logged (only when switched on; ``auto`` leaves that to a rule that needs it,
    which the protocol's ``for_rules`` turns on)."""

    def __init__(self, switch: str, *, logged: bool) -> None:
        self._switch = switch
        self._logged = logged

    def __get__(self, obj: object, owner: type | None = None) -> bool:
        value = getattr(obj, self._switch)
        return value is True if self._logged else value is not False


def read_encryption_handling(key: str, raw: Any,
                             warnings: list[str]) -> EncryptionHandling | None:
    """``encryption-handling`` (Suricata 8's ``track-only`` is the old ``default``); None
    (with a warning) for an unknown value, which Suricata reads as ``track-only``."""
    handling = _HANDLING.get(str(raw).strip().lower())
    if handling is None:
        warnings.append(f"{key}: invalid value {raw!r} (expected track-only/bypass/full); "
                        "using track-only")
    return handling


def read_sizes(subtree: Mapping[str, Any], keys: Iterable[str],
               values: dict[str, Any], warnings: list[str], *,
               zero_ok: frozenset[str] = frozenset()) -> None:
    """Size keys (``4kb``, ``1mb``, plain numbers) -> ``values[attr]`` for each key of
    ``keys``, ``attr`` being the key spelt as a field (``max-tx`` -> ``max_tx``); 0 only
    for the keys in ``zero_ok``."""
    for key in keys:
        attr = key.replace("-", "_")
        raw = subtree.get(key)
        if raw is None:
            continue
        size = parse_size(raw)
        if size is None or (size == 0 and key not in zero_ok):
            warnings.append(f"{key}: invalid value {raw!r}; using the default")
        else:
            values[attr] = size
