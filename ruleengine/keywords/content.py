"""content, uricontent and the content modifiers (nocase, depth, offset, distance, within,
startswith, endswith, rawbytes, fast_pattern). ``src/detect-content.c`` and friends."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ruleengine.keywords._values import parse_int, parse_int_or_var, split_args
from ruleengine.keywords.registry import ArgKind, KeywordSpec, Quotes, Stage, modifier_flag
from ruleengine.rules.errors import KeywordError
from ruleengine.rules.model import ContentMatch

if TYPE_CHECKING:
    from ruleengine.rules.builder import RuleBuilder

_ESCAPABLE = frozenset('";\\:')
_HEX = frozenset("0123456789abcdefABCDEF")


def parse_content_value(value: str) -> tuple[bytes, bool]:
    """``[!]"text|hex|text"`` -> (bytes, negated). Suricata's rules: only ``\\" \\; \\\\ \\:``
    may be escaped, a bare ``"`` is an error, hex bytes sit between pipes, pairs of
    digits (spaces allowed), an odd number of pipes or a half byte is an error."""
    pos = 0
    negated = False
    if value.startswith("!"):
        negated = True
        pos = 1
        while pos < len(value) and value[pos] in " \t":
            pos += 1
    end = len(value)
    if pos < end and value[pos] == '"':
        if end - pos < 2 or value[end - 1] != '"':
            raise KeywordError(
                "content is missing its closing double quote",
                code="unterminated-quote",
                value_range=(pos, end),
            )
        pos += 1
        end -= 1
    body = value[pos:end]
    if not body:
        raise KeywordError("content is empty", code="empty-content", value_range=(0, len(value)))
    if "|" not in body and "\\" not in body and '"' not in body:
        return body.encode("utf-8", "surrogateescape"), negated
    return _decode(body, pos), negated


def _decode(body: str, base: int) -> bytes:
    out = bytearray()
    i, n = 0, len(body)
    while i < n:
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1] if i + 1 < n else ""
            if nxt not in _ESCAPABLE or not nxt:
                raise KeywordError(
                    "'\\' has to be escaped: only \\\" \\; \\\\ \\: are allowed in content",
                    code="bad-escape",
                    value_range=(base + i, base + i + (2 if nxt else 1)),
                    hint="write '\\\\' for a backslash or use |5C|",
                )
            out += nxt.encode()
            i += 2
        elif ch == '"':
            raise KeywordError(
                "unescaped double quote in content",
                code="unescaped-quote",
                value_range=(base + i, base + i + 1),
                hint='write \\" or |22|',
            )
        elif ch == "|":
            close = body.find("|", i + 1)
            if close < 0:
                raise KeywordError(
                    "odd number of '|' in content: hex block is not closed",
                    code="bad-hex",
                    value_range=(base + i, base + n),
                )
            out += _hex_block(body, i + 1, close, base)
            i = close + 1
        else:
            out += ch.encode("utf-8", "surrogateescape")
            i += 1
    return bytes(out)


def _hex_block(body: str, start: int, end: int, base: int) -> bytes:
    out = bytearray()
    half: str | None = None
    half_at = start
    for j in range(start, end):
        ch = body[j]
        if ch in " \t":
            continue
        if ch not in _HEX:
            raise KeywordError(
                f"invalid hex character {ch!r} in content",
                code="bad-hex",
                value_range=(base + j, base + j + 1),
            )
        if half is None:
            half, half_at = ch, j
        else:
            out.append(int(half + ch, 16))
            half = None
    if half is not None:
        raise KeywordError(
            "incomplete hex byte in content (odd number of hex digits)",
            code="bad-hex",
            value_range=(base + half_at, base + half_at + 1),
        )
    return bytes(out)


_PARSED: dict[str, tuple[bytes, bool]] = {}


def _new_content(b: RuleBuilder, value: str | None) -> ContentMatch:
    assert value is not None
    parsed = _PARSED.get(value)
    if parsed is None:
        parsed = parse_content_value(value)
        if len(_PARSED) < 65536:  # the same values recur a lot ("POST", "|0d 0a|", ...)
            _PARSED[value] = parsed
    pattern, negated = parsed
    return ContentMatch(pattern=pattern, negated=negated, span=b.option_span)


def setup_content(b: RuleBuilder, value: str | None) -> None:
    b.add_item(_new_content(b, value))


def setup_uricontent(b: RuleBuilder, value: str | None) -> None:
    content = _new_content(b, value)
    buf = b.buffer_list("http.uri")
    buf.items.append(content)
    b.last_content, b.last_content_buffer = content, buf
    b.last_match_buffer = buf


# --- modifiers ---------------------------------------------------------------------


def _is_absolute(c: ContentMatch) -> bool:
    return c.offset is not None or c.depth is not None or c.startswith


def _mix_error(keyword: str, kind: str, other: str) -> KeywordError:
    return KeywordError(
        f"'{keyword}' ({kind}) cannot be combined with {other} on the same content",
        code="mixed-relative-absolute",
        hint="use offset/depth (absolute) or distance/within (relative), not both",
    )


def _set_position(b: RuleBuilder, keyword: str, value: str | None) -> None:
    assert value is not None
    content, _ = b.content_for_modifier(keyword)
    if getattr(content, keyword) is not None:
        raise KeywordError(
            f"'{keyword}' is set twice for the same content", code="duplicate-modifier"
        )
    relative = keyword in ("distance", "within")
    if relative and _is_absolute(content):
        raise _mix_error(keyword, "relative", "offset/depth/startswith (absolute)")
    if not relative and content.relative:
        raise _mix_error(keyword, "absolute", "distance/within (relative)")
    lo = None if keyword == "distance" else 0
    amount = parse_int_or_var(value, keyword, b.variables, lo=lo)
    if isinstance(amount, int) and keyword in ("depth", "within"):
        if amount == 0:
            raise KeywordError(
                f"'{keyword}' of 0 is invalid", code="out-of-range", value_range=(0, len(value))
            )
        if amount < len(content.pattern):
            raise KeywordError(
                f"{keyword} ({amount}) is smaller than the content length ({len(content.pattern)})",
                code=f"{keyword}-too-small",
                value_range=(0, len(value)),
            )
    setattr(content, keyword, amount)
    if relative and content.negated and id(content) in b.fast_pattern_spans:
        raise _fp_negated_relative()


def _fp_negated_relative() -> KeywordError:
    return KeywordError(
        "fast_pattern cannot be used on a negated content with relative modifiers",
        code="fast-pattern-negated-relative",
    )


def setup_nocase(b: RuleBuilder, value: str | None) -> None:
    content, _ = b.content_for_modifier("nocase")
    if content.nocase:
        raise KeywordError("'nocase' is set twice for the same content", code="duplicate-modifier")
    content.nocase = True
    b.nocase_spans[id(content)] = b.match


def setup_rawbytes(b: RuleBuilder, value: str | None) -> None:
    content, _ = b.content_for_modifier("rawbytes")
    content.rawbytes = True


def setup_startswith(b: RuleBuilder, value: str | None) -> None:
    content, _ = b.content_for_modifier("startswith")
    if content.relative or content.offset is not None or content.depth is not None:
        raise KeywordError(
            "'startswith' cannot be combined with offset/depth/distance/within",
            code="mixed-relative-absolute",
        )
    content.startswith = True


def setup_endswith(b: RuleBuilder, value: str | None) -> None:
    content, _ = b.content_for_modifier("endswith")
    content.endswith = True


def setup_fast_pattern(b: RuleBuilder, value: str | None) -> None:
    content, buf = b.content_for_modifier("fast_pattern")
    if b.explicit_fast_pattern is not None:
        first = b.explicit_fast_pattern[2]
        raise KeywordError(
            "fast_pattern is used more than once in this rule",
            code="duplicate-fast-pattern",
            hint=f"the first one is at column {first.col}; a rule has one fast pattern",
        )
    if content.negated and content.relative:
        raise _fp_negated_relative()
    if value is not None and value != "only":
        args = split_args(value)
        if len(args) != 2:
            raise KeywordError(
                f"fast_pattern: invalid value '{value}' (expected 'only' or '<offset>,<length>')",
                code="invalid-keyword-value",
                value_range=(0, len(value)),
            )
        off = parse_int(args[0][0], "fast_pattern offset", start=args[0][1], lo=0, hi=65535)
        length = parse_int(args[1][0], "fast_pattern length", start=args[1][1], lo=1, hi=65535)
        if off + length > len(content.pattern):
            raise KeywordError(
                f"fast_pattern chop {off},{length} is outside the pattern "
                f"(length {len(content.pattern)})",
                code="fast-pattern-chop",
                value_range=(0, len(value)),
            )
        content.fast_pattern_chop = (off, length)
    content.fast_pattern = True
    content.fast_pattern_only = value == "only"
    b.explicit_fast_pattern = (buf.buffer, content, b.option_span)
    b.fast_pattern_spans[id(content)] = b.match


def _position_spec(name: str) -> KeywordSpec:
    def setup(b: RuleBuilder, value: str | None) -> None:
        _set_position(b, name, value)

    return KeywordSpec(name, setup, stage=Stage.MODIFIER, quotes=Quotes.FORBIDDEN)


SPECS: tuple[KeywordSpec, ...] = (
    KeywordSpec("content", setup_content, negatable=True, doc="match bytes in the active buffer"),
    KeywordSpec("uricontent", setup_uricontent, negatable=True, doc="content in http.uri"),
    modifier_flag("nocase", setup_nocase),
    modifier_flag("rawbytes", setup_rawbytes),
    modifier_flag("startswith", setup_startswith),
    modifier_flag("endswith", setup_endswith),
    KeywordSpec(
        "fast_pattern",
        setup_fast_pattern,
        arg=ArgKind.OPTIONAL,
        stage=Stage.MODIFIER,
        quotes=Quotes.FORBIDDEN,
    ),
    _position_spec("depth"),
    _position_spec("offset"),
    _position_spec("distance"),
    _position_spec("within"),
)
