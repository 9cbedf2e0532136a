"""util-byte.c emulation: strtoull and numeric extraction."""

from __future__ import annotations

import pytest

from ruleengine.detect.bytes import byte_jump, extract, strtoull
from ruleengine.rules.model import Endian


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
    assert (
        byte_jump(
            b"2 abcdef",
            0,
            nbytes=3,
            offset=0,
            relative=False,
            multiplier=1,
            endian=Endian.BIG,
            base=10,
            align=False,
            from_beginning=False,
            from_end=False,
            post_offset=0,
        )
        == 3
    )


def test_byte_jump_from_end_and_clamp() -> None:
    kw = dict(
        nbytes=1,
        offset=0,
        relative=False,
        multiplier=1,
        endian=Endian.BIG,
        base=None,
        align=False,
        from_beginning=False,
        post_offset=0,
    )
    assert byte_jump(b"\x00abcd", 0, from_end=True, **kw) is None  # lands on the end
    neg = dict(kw, post_offset=-100)
    assert byte_jump(b"\x01abcd", 0, from_end=False, **neg) == 0  # before start -> start
