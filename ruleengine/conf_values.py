"""Suricata's value syntax (``conf.c``: ConfValIsTrue/ConfValIsFalse, ParseSizeString...):
booleans, on/off switches, sizes, integers. Part of the contract layer because both sides
read YAML values: the engine's stages through :mod:`ruleengine.config.values`, which
re-exports these, and the capture backends their own sections (``af-packet``, ``nfq``),
which may import nothing of the engine but the contract."""

from __future__ import annotations

import re
from typing import Any

_TRUE = frozenset({"1", "yes", "true", "on", "y"})
_FALSE = frozenset({"0", "no", "false", "off", "n"})

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
    "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
    "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
    "t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40,
}


def parse_bool(value: Any) -> bool | None:
    """Suricata truthiness (``ConfValIsTrue``/``ConfValIsFalse``); None when neither."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    return None


def is_true(value: Any) -> bool:
    """A switch that is on (``ConfValIsTrue``); absent or anything else is off."""
    return parse_bool(value) is True


# App-layer protocol sections have always taken these words too (http1's parser as well).
_SWITCH_WORDS = {"enable": True, "enabled": True, "disable": False, "disabled": False}


def parse_switch(value: Any) -> bool | None:
    """An on/off value of an app-layer protocol section: :func:`parse_bool` plus
    ``enable(d)`` / ``disable(d)``; None when neither."""
    if isinstance(value, str):
        word = _SWITCH_WORDS.get(value.strip().lower())
        if word is not None:
            return word
    return parse_bool(value)


def parse_size(value: Any) -> int | None:
    """``"1mb"``, ``"4kb"``, ``"100 KiB"``, ``"1.5m"``, plain numbers -> bytes (1024-based,
    as Suricata's ``ParseSizeStringU64``); None when it is not a size."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float):
        return int(value) if value >= 0 else None
    if not isinstance(value, str):
        return None
    match = _SIZE_RE.match(value)
    if match is None:
        return None
    unit = _SIZE_UNITS.get(match.group(2).lower())
    if unit is None:
        return None
    return int(float(match.group(1)) * unit)


def parse_int(value: Any) -> int | None:
    """Decimal or ``0x`` hex integers; None otherwise."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        word = value.strip()
        try:
            return int(word, 16) if word.lower().startswith(("0x", "-0x")) else int(word, 10)
        except ValueError:
            return None
    return None


def parse_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None
