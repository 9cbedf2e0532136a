"""The buffer registry: one entry per inspectable buffer, over every app-layer protocol.

Each protocol package (``ruleengine/applayer/<proto>/``) declares its buffers (name, keyword
aliases, legacy content modifier, pcre letter, direction, getter); this module is the view
rule parsing and detection read. A new sticky buffer is one entry in its protocol's list.

``getter`` takes a transaction of the buffer's protocol and returns the buffer bytes or None
when absent. ``multi`` buffers (one buffer per header, per DNS query...) return a list of
bytes instead. ``getter`` reads the side named by ``direction``; for ``BOTH`` buffers it is
the request (to-server) side and ``getter_toclient`` the response side. Use
:func:`getter_for` to pick by direction.
"""

from __future__ import annotations

from ruleengine.applayer import registry
from ruleengine.applayer.base import BufferDirection, BufferSpec, Getter

__all__ = [
    "BUFFERS", "LEGACY_MODIFIERS", "PCRE_LETTERS", "STICKY_KEYWORDS", "BufferDirection",
    "BufferSpec", "Getter", "getter_for",
]

_SPECS: tuple[BufferSpec, ...] = tuple(registry.buffers().values())

BUFFERS: dict[str, BufferSpec] = {spec.name: spec for spec in _SPECS}
"""Canonical name -> spec."""

STICKY_KEYWORDS: dict[str, str] = {
    alias: spec.name for spec in _SPECS for alias in (spec.name, *spec.aliases)
}
"""Every sticky-buffer keyword (dotted name or underscore alias) -> canonical name."""

LEGACY_MODIFIERS: dict[str, str] = {
    spec.legacy_modifier: spec.name for spec in _SPECS if spec.legacy_modifier
}
"""Legacy content modifier (``http_uri``...) -> canonical buffer name.
Note: ``http_uri`` etc. are both a legacy modifier (after a content) and a sticky
alias (before it); the rule parser tells them apart by position."""

PCRE_LETTERS: dict[str, str] = {spec.pcre_letter: spec.name for spec in _SPECS if spec.pcre_letter}
"""pcre buffer flag letter -> canonical buffer name."""


def getter_for(name: str, to_server: bool) -> Getter | None:
    """The getter of buffer ``name`` for one direction (None if it has no such side)."""
    spec = BUFFERS[name]
    if spec.direction is BufferDirection.BOTH:
        return spec.getter if to_server else spec.getter_toclient
    if (spec.direction is BufferDirection.TO_SERVER) != to_server:
        return None
    return spec.getter
