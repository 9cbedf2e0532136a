"""byte_test, byte_jump, byte_extract and byte_math with Suricata's arithmetic
(``src/detect-bytetest.c``, ``detect-bytejump.c``, ``detect-byte-extract.c``,
``detect-bytemath.c``, ``util-byte.c``).

Each function takes the buffer, the current relative position (``det_ctx->buffer_offset``),
the keyword's rule item and those of its arguments that may name a variable, resolved to
integers; it returns None (False) for "no match", else the result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ruleengine.rules.model import ByteExtract, ByteJump, ByteMath, ByteTest, Endian

U64 = (1 << 64) - 1
_SPACE = b" \t\n\v\f\r"
_DIGITS = {8: b"01234567", 10: b"0123456789", 16: b"0123456789abcdefABCDEF"}


def strtoull(data: bytes, base: int) -> tuple[int, int]:
    """C ``strtoull`` on ``data`` (cut at NUL): (value, bytes consumed). Consumed is 0
    when there is no number; value is -1 on overflow (ERANGE)."""
    nul = data.find(b"\0")
    if nul >= 0:
        data = data[:nul]
    i, n = 0, len(data)
    while i < n and data[i] in _SPACE:
        i += 1
    neg = False
    if i < n and data[i] in b"+-":
        neg = data[i] == 0x2D
        i += 1
    hex_prefix = base == 16 and i + 2 < n and data[i] == 0x30 and data[i + 1] in b"xX"
    if hex_prefix and data[i + 2] in _DIGITS[16]:
        i += 2
    digits = _DIGITS.get(base, _DIGITS[10])
    start = i
    while i < n and data[i] in digits:
        i += 1
    if i == start:
        return 0, 0
    value = int(data[start:i], base)
    if value > U64:
        return -1, i
    if neg:
        value = (-value) & U64
    return value, i


def extract(buf: bytes, pos: int, nbytes: int, endian: Endian, base: int | None) -> tuple[int, int]:
    """ByteExtractUint64 / ByteExtractStringUint64 at ``pos`` (bounds already checked):
    (value, bytes consumed); consumed <= 0 means failure."""
    raw = buf[pos : pos + nbytes]
    if base is None:
        if len(raw) != nbytes or nbytes > 8:
            return 0, 0
        if endian is Endian.LITTLE:
            return int.from_bytes(raw, "little"), nbytes
        return int.from_bytes(raw, "big"), nbytes
    if nbytes > 23:
        return 0, -1
    value, used = strtoull(raw, base)
    if value < 0:
        return 0, -1
    return value, used


def _apply_bitmask(val: int, bitmask: int | None) -> int:
    if not bitmask:
        return val
    val &= bitmask
    shift = (bitmask & -bitmask).bit_length() - 1
    if val and shift:
        val >>= shift
    return val


class _NumberAt(Protocol):
    """Where a byte_* keyword's number stands and how it is written (the fields all the
    keywords' rule items share)."""

    nbytes: int
    relative: bool
    endian: Endian
    string_base: int | None


def _read_number(buf: bytes, cur: int, offset: int,
                 at: _NumberAt) -> tuple[int, int, int] | None:
    """(value, position, bytes used) of the number the keyword points at, or None when it
    is not fully inside the buffer (or not a number, for string forms)."""
    if not buf:
        return None
    pos = offset + (cur if at.relative else 0)
    remaining = len(buf) - pos
    if at.relative and remaining <= 0:  # no relative base left
        return None
    if pos < 0 or at.nbytes > remaining:
        return None
    val, used = extract(buf, pos, at.nbytes, at.endian, at.string_base)
    if used <= 0:
        return None
    return val, pos, used


_TESTS: dict[str, Callable[[int, int], bool]] = {
    "=": lambda a, b: a == b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
    "&": lambda a, b: (a & b) != 0,
    "^": lambda a, b: (a ^ b) != 0,
}


def byte_test(buf: bytes, cur: int, t: ByteTest, offset: int, value: int) -> bool:
    """``t`` with its offset and value resolved (they may name byte_extract variables)."""
    read = _read_number(buf, cur, offset, t)
    test = _TESTS.get(t.operator)
    if read is None or test is None:
        return False
    return test(_apply_bitmask(read[0], t.bitmask), value) != t.negated


def byte_jump(buf: bytes, cur: int, j: ByteJump, offset: int) -> int | None:
    """New buffer position after the jump, or None."""
    read = _read_number(buf, cur, offset, j)
    if read is None:
        return None
    val, pos, used = read
    val = (val * j.multiplier) & U64
    if j.align and val % 4:
        val += 4 - val % 4
    val = (val + j.post_offset) & U64
    sval = val - (1 << 64) if val >> 63 else val  # (int64_t)val
    if j.from_beginning:
        target = sval
    elif j.from_end:
        target = len(buf) + sval
    else:
        target = pos + sval + used
    if target < 0:
        target = 0
    elif target >= len(buf):
        return None
    return target


def byte_extract(buf: bytes, cur: int, e: ByteExtract) -> tuple[int, int] | None:
    """(value, new position) or None."""
    read = _read_number(buf, cur, e.offset, e)
    if read is None:
        return None
    val, pos, used = read
    val = _apply_bitmask(val, e.bitmask)
    val = (val * e.multiplier) & U64
    if e.align and val % e.align:
        val += e.align - val % e.align
    return val & U64, pos + used


def byte_math(buf: bytes, cur: int, m: ByteMath, rvalue: int) -> tuple[int, int] | None:
    """(result, new position) or None; ``rvalue`` resolved (it may name a variable)."""
    read = _read_number(buf, cur, m.offset, m)
    if read is None:
        return None
    val, pos, used = read
    oper = m.oper
    if oper == "+":
        val += rvalue
    elif oper == "-":
        val -= rvalue
    elif oper == "/":
        if rvalue == 0:
            return None
        val //= rvalue
    elif oper == "*":
        val *= rvalue
    elif oper == "<<":
        val = val << rvalue if rvalue < 64 else 0
    elif oper == ">>":
        val = val >> rvalue if rvalue < 64 else 0
    elif oper == "&":
        val &= rvalue
    elif oper == "|":
        val |= rvalue
    elif oper == "^":
        val ^= rvalue
    else:
        return None
    val = _apply_bitmask(val & U64, m.bitmask)
    return val, pos + used
