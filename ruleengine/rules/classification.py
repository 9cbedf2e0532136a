"""Suricata's classification.config and reference.config (shipped as package data)."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_CLASS_RE = re.compile(r"^\s*config\s+classification\s*:\s*([^,]+),([^,]+),\s*(\d+)\s*$")
_REF_RE = re.compile(r"^\s*config\s+reference\s*:\s*(\S+)\s+(\S+)\s*$")


def _data(name: str) -> str:
    return resources.files("ruleengine.data").joinpath(name).read_text(encoding="utf-8")


def parse_classification_config(text: str) -> dict[str, tuple[str, int]]:
    table: dict[str, tuple[str, int]] = {}
    for line in text.splitlines():
        m = _CLASS_RE.match(line)
        if m:
            table[m.group(1).strip().lower()] = (m.group(2).strip(), int(m.group(3)))
    return table


@cache
def classifications() -> dict[str, tuple[str, int]]:
    """classtype -> (description, priority), from the default classification.config."""
    return parse_classification_config(_data("classification.config"))


def classification(classtype: str | None) -> tuple[str, int] | None:
    """(description, priority) of a classtype, or None when unknown (or None). The EVE
    writer uses the description as ``alert.category`` and the priority as ``alert.severity``."""
    if not classtype:
        return None
    return classifications().get(classtype.lower())


@cache
def reference_systems() -> dict[str, str]:
    """reference system -> URL prefix, from the default reference.config."""
    table: dict[str, str] = {}
    for line in _data("reference.config").splitlines():
        m = _REF_RE.match(line)
        if m:
            table[m.group(1).lower()] = m.group(2)
    return table
