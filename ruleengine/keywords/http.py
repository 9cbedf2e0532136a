"""HTTP/1 sticky buffers and legacy content modifiers, generated from ``ruleengine.buffers``.

Sticky (``http.uri; content:"/a";``) switches the active buffer. A legacy modifier
(``content:"/a"; http_uri;``) moves the preceding payload content into the buffer's
list, exactly as Suricata's ``DetectEngineContentModifierBufferSetup`` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ruleengine.buffers import BUFFERS, LEGACY_MODIFIERS, BufferSpec
from ruleengine.keywords.registry import ArgKind, KeywordSpec, Setup, Stage
from ruleengine.rules.errors import KeywordError
from ruleengine.rules.model import PAYLOAD

if TYPE_CHECKING:
    from ruleengine.rules.builder import RuleBuilder


def _sticky_setup(buffer: str) -> Setup:
    def setup(b: RuleBuilder, value: str | None) -> None:
        b.set_sticky(buffer)

    return setup


def _modifier_setup(keyword: str, buffer: str) -> Setup:
    def setup(b: RuleBuilder, value: str | None) -> None:
        if b.sticky is not None:
            raise KeywordError(
                f"'{keyword}' keyword seen with a sticky buffer still set",
                code="modifier-after-sticky",
                hint=f"reset the sticky buffer with pkt_data before '{keyword}', "
                f"or write '{buffer}; content:...;'",
            )
        content, current = b.content_for_modifier(keyword)
        if id(content) in b.moved or current.buffer != PAYLOAD:
            raise KeywordError(
                f"'{keyword}': the content is already in buffer '{current.buffer}'",
                code="conflicting-modifier",
            )
        # Identity removal: two equal contents may sit in the same list.
        for i, item in enumerate(current.items):
            if item is content:
                del current.items[i]
                break
        target = b.buffer_list(buffer)
        target.items.append(content)
        b.last_content_buffer = target
        b.last_match_buffer = target
        b.moved.add(id(content))

    return setup


def _specs() -> tuple[KeywordSpec, ...]:
    specs: list[KeywordSpec] = []
    spec: BufferSpec
    for spec in BUFFERS.values():
        aliases = tuple(a for a in spec.aliases if a not in LEGACY_MODIFIERS)
        specs.append(
            KeywordSpec(
                spec.name,
                _sticky_setup(spec.name),
                aliases=aliases,
                arg=ArgKind.NONE,
                stage=Stage.STICKY,
                doc=f"sticky buffer {spec.name}",
            )
        )
        if spec.legacy_modifier:
            specs.append(
                KeywordSpec(
                    spec.legacy_modifier,
                    _modifier_setup(spec.legacy_modifier, spec.name),
                    arg=ArgKind.NONE,
                    stage=Stage.MODIFIER,
                    doc=f"legacy modifier: previous content in {spec.name}",
                )
            )
    return tuple(specs)


SPECS: tuple[KeywordSpec, ...] = _specs()
