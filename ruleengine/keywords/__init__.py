"""Rule keywords: one module per keyword or family, listed explicitly here.

``REGISTRY`` maps every keyword name and alias to its ``KeywordSpec``. Adding a
keyword = a module exporting ``SPECS`` + one line in ``_MODULES``.
"""

from __future__ import annotations

from ruleengine.keywords import (
    applayer,
    buffers,
    bypass,
    bytes_,
    content,
    flow,
    flowbits,
    http,
    meta,
    packet,
    pcre,
    threshold,
    unsupported,
)
from ruleengine.keywords.registry import ArgKind, KeywordSpec, Quotes, Registry, Stage

_MODULES = (
    meta,
    content,
    pcre,
    http,
    buffers,
    flow,
    flowbits,
    packet,
    bytes_,
    threshold,
    bypass,
    applayer,
    unsupported,
)

REGISTRY = Registry()
for _module in _MODULES:
    REGISTRY.register_all(_module.SPECS)

__all__ = ["REGISTRY", "ArgKind", "KeywordSpec", "Quotes", "Registry", "Stage"]
