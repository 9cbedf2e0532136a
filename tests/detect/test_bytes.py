"""util-byte.c emulation: strtoull and numeric extraction."""

from __future__ import annotations

import pytest

from ruleengine.detect.bytes import byte_extract, byte_jump, byte_math, byte_test, extract, strtoull
from ruleengine.rules.model import ByteExtract, ByteJump, ByteMath, ByteTest, Endian


@pytest.mark.parametrize(
    ("data", "base", "expected"),
    [
        (b"123", 10, (123, 3)),
        (b"  42x", 10, (42, 4)),
        (b"+7", 10, (7, 2)),
        (b"-1", 10, ((1 << 64) - 1, 2)),
        (b"0x1F", 16, (31, 4)),
        (b"0xZ", 16, (0, 1)),
        (b"1f", 16, (31, 2)),
        (b"078", 8, (7, 2)),
        (b"abc", 10, (0, 0)),
        (b"1\x002", 10, (1, 1)),
        (b"99999999999999999999999", 10, (-1, 23)),
    ],
)
def test_strtoull(data: bytes, base: int, expected: tuple[int, int]) -> None:
    assert strtoull(data, base) == expected


def test_extract_numeric_and_string() -> None:
    assert extract(b"\x01\x02", 0, 2, Endian.BIG, None) == (0x0102, 2)
    assert extract(b"\x01\x02", 0, 2, Endian.LITTLE, None) == (0x0201, 2)
    assert extract(b"\x01", 0, 2, Endian.BIG, None)[1] <= 0
    assert extract(b"12ab", 0, 4, Endian.BIG, 10) == (12, 2)


def test_byte_jump_string_uses_consumed_length() -> None:
    # Suricata jumps from ptr + value + bytes actually parsed by strtoull
    jump = ByteJump(nbytes=3, offset=0, string_base=10)
    assert byte_jump(b"2 abcdef", 0, jump, 0) == 3


def test_byte_jump_from_end_and_clamp() -> None:
    assert byte_jump(b"\x00abcd", 0, ByteJump(1, 0, from_end=True), 0) is None  # on the end
    back = ByteJump(1, 0, post_offset=-100)
    assert byte_jump(b"\x01abcd", 0, back, 0) == 0  # before start -> start


def test_relative_read_needs_bytes_left() -> None:
    jump = ByteJump(1, 0, relative=True)
    assert byte_jump(b"\x01ab", 3, jump, 0) is None  # nothing after the cursor
    assert byte_jump(b"\x01\x00ab", 1, jump, 0) == 2


@pytest.mark.parametrize(("operator", "negated", "expected"), [
    ("=", False, True), ("=", True, False), ("<", False, False), (">=", False, True),
    ("&", False, True), ("^", False, False), ("??", False, False),
])
def test_byte_test_operators(operator: str, negated: bool, expected: bool) -> None:
    test = ByteTest(1, operator, 5, 0, negated=negated)
    assert byte_test(b"\x05", 0, test, 0, 5) is expected


def test_byte_extract_and_math_advance_past_the_number() -> None:
    assert byte_extract(b"\x00\x07z", 0, ByteExtract(1, 1, "v", multiplier=2)) == (14, 2)
    assert byte_math(b"\x09", 0, ByteMath(1, 0, "/", 3, "r"), 3) == (3, 1)
    assert byte_math(b"\x09", 0, ByteMath(1, 0, "/", 0, "r"), 0) is None
