"""``base64_decode[:bytes <n>][, offset <n>][, relative]`` and ``base64_data``
(``src/detect-base64-decode.c``, ``src/detect-base64-data.c``).

``base64_decode`` decodes part of the buffer it sits in (RFC 4648, at most ``bytes`` input
bytes, 65535 when not given); ``base64_data`` starts the list inspected on the decoded
bytes. That list is terminal: when it matches, the rule's buffer matched.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ruleengine.keywords._values import match_syntax, parse_int
from ruleengine.keywords.registry import ArgKind, KeywordSpec, Quotes, Stage
from ruleengine.rules.builder import StickyState
from ruleengine.rules.errors import KeywordError
from ruleengine.rules.model import BASE64_DATA, Base64Decode, BufferMatch

if TYPE_CHECKING:
    from ruleengine.rules.builder import RuleBuilder

_RE = re.compile(
    r"\s*(?:bytes\s+(?P<bytes>\S+?)\s*(?:,|\Z))?\s*(?:offset\s+(?P<offset>\S+?)\s*(?:,|\Z))?"
    r"\s*(?P<rel>relative)?\s*\Z"
)


def setup_base64_decode(b: RuleBuilder, value: str | None) -> None:
    item = Base64Decode(span=b.option_span)
    if value:
        m = match_syntax(_RE, value, "base64_decode",
                         "write base64_decode[:bytes <n>][, offset <n>][, relative]")
        if m.group("bytes") is not None:
            item.bytes = parse_int(m.group("bytes"), "base64_decode bytes",
                                   start=m.start("bytes"), lo=1, hi=0xFFFFFFFF)
        if m.group("offset") is not None:
            item.offset = parse_int(m.group("offset"), "base64_decode offset",
                                    start=m.start("offset"), lo=0, hi=0xFFFFFFFF)
        item.relative = m.group("rel") is not None
    if b.sticky is not None and b.sticky.name == BASE64_DATA:
        raise KeywordError("base64_decode cannot inspect base64_data",
                           code="base64-decode-in-base64-data")
    b.add_item(item)


def setup_base64_data(b: RuleBuilder, value: str | None) -> None:
    lists = [b.rule.base64_data, *b.rule.buffers]
    if not any(isinstance(it, Base64Decode) for bm in lists if bm is not None
               for it in bm.items):
        raise KeywordError(
            "'base64_data' keyword seen without a preceding base64_decode",
            code="base64-data-without-decode",
            hint="write base64_decode before base64_data",
        )
    b.check_sticky_used()
    buf = b.rule.base64_data
    if buf is None:
        buf = b.rule.base64_data = BufferMatch(BASE64_DATA)
    # a sticky list of its own, kept out of Rule.buffers (never a prefilter buffer)
    b.sticky = StickyState(BASE64_DATA, b.match, len(buf.items), True, buf)


SPECS: tuple[KeywordSpec, ...] = (
    KeywordSpec("base64_decode", setup_base64_decode, arg=ArgKind.OPTIONAL,
                quotes=Quotes.FORBIDDEN, stage=Stage.MATCH),
    KeywordSpec("base64_data", setup_base64_data, arg=ArgKind.NONE, stage=Stage.STICKY),
)
