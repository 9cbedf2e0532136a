"""Rule keywords: one module per keyword or family, listed explicitly here.

``REGISTRY`` maps every keyword name and alias to its ``KeywordSpec``. Adding a
keyword = a module exporting ``SPECS`` + one line in ``_MODULES``.
"""

from __future__ import annotations

from ruleengine.keywords import (
    applayer,
    asn1,
    base64,
    buffers,
    bypass,
    bytes_,
    content,
    files,
    flow,
    flowbits,
    flowint,
    http,
    meta,
    packet,
    pcre,
    stream_size,
    tag,
    threshold,
    transforms,
    unsupported,
    vars,
    xbits,
)
from ruleengine.keywords.registry import ArgKind, KeywordSpec, Quotes, Registry, Stage

_MODULES = (
    meta,
    content,
    pcre,
    http,
    buffers,
    files,
    flow,
    flowbits,
    packet,
    bytes_,
    threshold,
    bypass,
    applayer,
    transforms,
    xbits,
    flowint,
    vars,
    stream_size,
    base64,
    tag,
    asn1,
    unsupported,
)

REGISTRY = Registry()
for _module in _MODULES:
    REGISTRY.register_all(_module.SPECS)

__all__ = ["REGISTRY", "ArgKind", "KeywordSpec", "Quotes", "Registry", "Stage"]
