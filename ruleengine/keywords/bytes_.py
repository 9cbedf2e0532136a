"""isdataat, byte_test, byte_jump, byte_extract, byte_math (``src/detect-byte*.c``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ruleengine.keywords._values import parse_int, parse_int_or_var, split_args
from ruleengine.keywords.registry import KeywordSpec, Quotes
from ruleengine.rules.errors import KeywordError
from ruleengine.rules.model import (
    ByteExtract,
    ByteJump,
    ByteMath,
    ByteOptions,
    ByteTest,
    Endian,
    IsDataAt,
)

if TYPE_CHECKING:
    from ruleengine.rules.builder import RuleBuilder

_BASES = {"hex": 16, "dec": 10, "oct": 8}
_TEST_OPS = ("<=", ">=", "<", ">", "=", "&", "^")
_MATH_OPS = ("+", "-", "*", "/", "<<", ">>")


def _bad(what: str, arg: str, at: int) -> KeywordError:
    return KeywordError(
        f"{what}: unexpected argument '{arg}'",
        code="invalid-keyword-value",
        value_range=(at, at + max(len(arg), 1)),
    )


def _args(value: str | None, n: int, what: str, usage: str) -> list[tuple[str, int]]:
    """The keyword's arguments (text, position), of which the first ``n`` must be there."""
    assert value is not None
    args = split_args(value)
    if len(args) < n or any(not a for a, _ in args[:n]):
        raise KeywordError(
            f"{what}: expected {usage}",
            code="invalid-keyword-value",
            value_range=(0, len(value)),
        )
    return args


class _Common:
    """Options shared by the byte_* keywords."""

    def __init__(self) -> None:
        self.relative = False
        self.endian = Endian.BIG
        self.string_base: int | None = None
        self.dce = False
        self.bitmask: int | None = None
        self.string = False

    def take(self, word: str, args: list[tuple[str, int]], i: int, what: str) -> int:
        """Consume the option at args[i]; returns how many args were used (0 = not ours)."""
        low = word.lower()
        parts = low.split()
        if low == "relative":
            self.relative = True
        elif low in ("big", "little"):
            self.endian = Endian(low)
        elif parts[:1] == ["endian"] and len(parts) == 2 and parts[1] in ("big", "little"):
            self.endian = Endian(parts[1])
        elif low == "string":
            self.string = True
            self.string_base = self.string_base or 10
        elif parts[:1] == ["string"] and len(parts) == 2 and parts[1] in _BASES:
            self.string, self.string_base = True, _BASES[parts[1]]
        elif low in _BASES:
            self.string_base = _BASES[low]
        elif low == "dce":
            self.dce = True
        elif parts[:1] == ["bitmask"] and len(parts) == 2:
            self.bitmask = parse_int(parts[1], f"{what} bitmask", start=args[i][1], lo=0)
        else:
            return 0
        return 1

    def others(self, args: list[tuple[str, int]], start: int,
               what: str) -> Iterator[tuple[str, list[str], int]]:
        """The options from ``args[start]`` on that are not shared ones: (option, its
        words, position)."""
        for i in range(start, len(args)):
            word, at = args[i]
            if not self.take(word, args, i, what):
                yield word, word.split(), at

    @property
    def base(self) -> int | None:
        """Base of a string number; None for a binary one."""
        return self.string_base if self.string else None

    def fill(self, item: ByteOptions) -> None:
        """The shared options onto the keyword's rule item."""
        item.relative, item.endian, item.dce, item.bitmask = (
            self.relative, self.endian, self.dce, self.bitmask)
        item.string_base = self.base


def setup_isdataat(b: RuleBuilder, value: str | None) -> None:
    assert value is not None
    args = split_args(value)
    first, at = args[0]
    negated = first.startswith("!")
    if negated:
        first, at = first[1:].strip(), at + 1
    offset = parse_int_or_var(first, "isdataat", b.variables, start=at, lo=0)
    relative = rawbytes = False
    for word, pos in args[1:]:
        if word == "relative":
            relative = True
        elif word == "rawbytes":
            rawbytes = True
        else:
            raise _bad("isdataat", word, pos)
    b.add_item(IsDataAt(offset, negated, relative, rawbytes, b.option_span))


def setup_byte_test(b: RuleBuilder, value: str | None) -> None:
    args = _args(value, 4, "byte_test", "<bytes>,[!]<op>,<value>,<offset>[,options]")
    nbytes = parse_int(args[0][0], "byte_test bytes", start=args[0][1], lo=0, hi=23)
    op, op_at = args[1]
    negated = op.startswith("!")
    op = op[1:].strip() if negated else op
    if op == "!=":
        negated, op = True, "="
    if op not in _TEST_OPS:
        raise KeywordError(
            f"byte_test: invalid operator '{args[1][0]}'",
            code="invalid-keyword-value",
            value_range=(op_at, op_at + len(args[1][0])),
            hint="valid: < > = <= >= & ^ and !",
        )
    test_value = parse_int_or_var(args[2][0], "byte_test value", b.variables, start=args[2][1])
    offset = parse_int_or_var(args[3][0], "byte_test offset", b.variables, start=args[3][1])
    common = _Common()
    for word, _, at in common.others(args, 4, "byte_test"):
        raise _bad("byte_test", word, at)
    if not common.string and nbytes > 8:
        raise KeywordError(
            f"byte_test: {nbytes} bytes is too many for a binary value (max 8)",
            code="out-of-range",
            value_range=(args[0][1], args[0][1] + len(args[0][0])),
        )
    item = ByteTest(nbytes, op, test_value, offset, negated, span=b.option_span)
    common.fill(item)
    b.add_item(item)


def setup_byte_jump(b: RuleBuilder, value: str | None) -> None:
    args = _args(value, 2, "byte_jump", "<bytes>,<offset>[,options]")
    nbytes = parse_int(args[0][0], "byte_jump bytes", start=args[0][1], lo=0, hi=23)
    offset = parse_int_or_var(args[1][0], "byte_jump offset", b.variables, start=args[1][1])
    common = _Common()
    item = ByteJump(nbytes, offset, span=b.option_span)
    for word, parts, at in common.others(args, 2, "byte_jump"):
        if word == "align":
            item.align = True
        elif word == "from_beginning":
            item.from_beginning = True
        elif word == "from_end":
            item.from_end = True
        elif parts[:1] == ["multiplier"] and len(parts) == 2:
            item.multiplier = parse_int(parts[1], "byte_jump multiplier", start=at, lo=1)
        elif parts[:1] == ["post_offset"] and len(parts) == 2:
            item.post_offset = parse_int(parts[1], "byte_jump post_offset", start=at)
        else:
            raise _bad("byte_jump", word, at)
    common.fill(item)
    b.add_item(item)


def setup_byte_extract(b: RuleBuilder, value: str | None) -> None:
    args = _args(value, 3, "byte_extract", "<bytes>,<offset>,<name>[,options]")
    nbytes = parse_int(args[0][0], "byte_extract bytes", start=args[0][1], lo=1, hi=23)
    offset = parse_int(args[1][0], "byte_extract offset", start=args[1][1])
    name = args[2][0]
    if not name.replace("_", "").replace("-", "").isalnum() or name[0].isdigit():
        raise _bad("byte_extract", name, args[2][1])
    common = _Common()
    item = ByteExtract(nbytes, offset, name, span=b.option_span)
    for word, parts, at in common.others(args, 3, "byte_extract"):
        if parts[:1] == ["multiplier"] and len(parts) == 2:
            item.multiplier = parse_int(parts[1], "byte_extract multiplier", start=at, lo=1)
        elif parts[:1] == ["align"] and len(parts) == 2:
            item.align = parse_int(parts[1], "byte_extract align", start=at, lo=0, hi=4)
        else:
            raise _bad("byte_extract", word, at)
    common.fill(item)
    b.variables.add(name)
    b.add_item(item)


def setup_byte_math(b: RuleBuilder, value: str | None) -> None:
    assert value is not None
    fields: dict[str, tuple[str, int]] = {}
    common = _Common()
    args = split_args(value)
    for i, (word, at) in enumerate(args):
        key, _, rest = word.partition(" ")
        if key in ("bytes", "offset", "oper", "rvalue", "result") and rest.strip():
            fields[key] = (rest.strip(), at + len(key) + 1)
        elif not common.take(word, args, i, "byte_math"):
            raise _bad("byte_math", word, at)
    missing = [k for k in ("bytes", "offset", "oper", "rvalue", "result") if k not in fields]
    if missing:
        raise KeywordError(
            f"byte_math: missing {', '.join(missing)}",
            code="invalid-keyword-value",
            value_range=(0, len(value)),
        )
    oper = fields["oper"][0]
    if oper not in _MATH_OPS:
        raise KeywordError(
            f"byte_math: invalid oper '{oper}'",
            code="invalid-keyword-value",
            value_range=(fields["oper"][1], fields["oper"][1] + len(oper)),
        )
    item = ByteMath(
        parse_int(fields["bytes"][0], "byte_math bytes", start=fields["bytes"][1], lo=1, hi=10),
        parse_int(fields["offset"][0], "byte_math offset", start=fields["offset"][1]),
        oper,
        parse_int_or_var(
            fields["rvalue"][0], "byte_math rvalue", b.variables, start=fields["rvalue"][1]
        ),
        fields["result"][0],
        span=b.option_span,
    )
    common.fill(item)
    b.variables.add(item.result)
    b.add_item(item)


SPECS: tuple[KeywordSpec, ...] = (
    KeywordSpec("isdataat", setup_isdataat, quotes=Quotes.FORBIDDEN),
    KeywordSpec("byte_test", setup_byte_test, quotes=Quotes.FORBIDDEN),
    KeywordSpec("byte_jump", setup_byte_jump, quotes=Quotes.FORBIDDEN),
    KeywordSpec("byte_extract", setup_byte_extract, quotes=Quotes.FORBIDDEN),
    KeywordSpec("byte_math", setup_byte_math, quotes=Quotes.FORBIDDEN),
)
