"""byte_test, byte_jump, byte_extract and byte_math with Suricata's arithmetic
(``src/detect-bytetest.c``, ``detect-bytejump.c``, ``detect-byte-extract.c``,
``detect-bytemath.c``, ``util-byte.c``).

Each function takes the buffer, the current relative position (``det_ctx->buffer_offset``)
and already-resolved integer arguments, and returns None for "no match" or the result.
"""

from __future__ import annotations

from ruleengine.rules.model import Endian

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


def _locate(buf_len: int, cur: int, offset: int, relative: bool) -> tuple[int, int] | None:
    """Start position and remaining length, or None when there is no relative base."""
    if relative:
        pos = cur + offset
        remaining = buf_len - cur - offset
        if remaining <= 0:
            return None
        return pos, remaining
    return offset, buf_len - offset


def _read_number(
    buf: bytes, cur: int, offset: int, relative: bool, nbytes: int, endian: Endian,
    base: int | None,
) -> tuple[int, int, int] | None:
    """(value, position, bytes used) of the number the keyword points at, or None when it
    is not fully inside the buffer (or not a number, for string forms)."""
    if not buf:
        return None
    loc = _locate(len(buf), cur, offset, relative)
    if loc is None:
        return None
    pos, remaining = loc
    if pos < 0 or nbytes > remaining:
        return None
    val, used = extract(buf, pos, nbytes, endian, base)
    if used <= 0:
        return None
    return val, pos, used


def byte_test(
    buf: bytes,
    cur: int,
    *,
    nbytes: int,
    offset: int,
    value: int,
    operator: str,
    negated: bool,
    relative: bool,
    endian: Endian,
    base: int | None,
    bitmask: int | None,
) -> bool:
    read = _read_number(buf, cur, offset, relative, nbytes, endian, base)
    if read is None:
        return False
    val = read[0]
    val = _apply_bitmask(val, bitmask)
    if operator == "=":
        hit = val == value
    elif operator == "<":
        hit = val < value
    elif operator == ">":
        hit = val > value
    elif operator == "<=":
        hit = val <= value
    elif operator == ">=":
        hit = val >= value
    elif operator == "&":
        hit = (val & value) != 0
    elif operator == "^":
        hit = (val ^ value) != 0
    else:
        return False
    return hit != negated


def byte_jump(
    buf: bytes,
    cur: int,
    *,
    nbytes: int,
    offset: int,
    relative: bool,
    multiplier: int,
    endian: Endian,
    base: int | None,
    align: bool,
    from_beginning: bool,
    from_end: bool,
    post_offset: int,
) -> int | None:
    """New buffer position after the jump, or None."""
    buf_len = len(buf)
    if buf_len == 0:
        return None
    pos = offset + (cur if relative else 0)
    remaining = buf_len - pos
    if relative and remaining <= 0:
        return None
    if pos < 0 or nbytes > remaining:
        return None
    val, used = extract(buf, pos, nbytes, endian, base)
    if used <= 0:
        return None
    val = (val * multiplier) & U64
    if align and val % 4:
        val += 4 - val % 4
    val = (val + post_offset) & U64
    sval = val - (1 << 64) if val >> 63 else val  # (int64_t)val
    if from_beginning:
        target = sval
    elif from_end:
        target = buf_len + sval
    else:
        target = pos + sval + used
    if target < 0:
        target = 0
    elif target >= buf_len:
        return None
    return target


def byte_extract(
    buf: bytes,
    cur: int,
    *,
    nbytes: int,
    offset: int,
    relative: bool,
    multiplier: int,
    endian: Endian,
    base: int | None,
    align: int,
    bitmask: int | None,
) -> tuple[int, int] | None:
    """(value, new position) or None."""
    read = _read_number(buf, cur, offset, relative, nbytes, endian, base)
    if read is None:
        return None
    val, pos, used = read
    val = _apply_bitmask(val, bitmask)
    val = (val * multiplier) & U64
    if align and val % align:
        val += align - val % align
    return val & U64, pos + used


def byte_math(
    buf: bytes,
    cur: int,
    *,
    nbytes: int,
    offset: int,
    relative: bool,
    oper: str,
    rvalue: int,
    endian: Endian,
    base: int | None,
    bitmask: int | None,
) -> tuple[int, int] | None:
    """(result, new position) or None."""
    read = _read_number(buf, cur, offset, relative, nbytes, endian, base)
    if read is None:
        return None
    val, pos, used = read
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
    val = _apply_bitmask(val & U64, bitmask)
    return val, pos + used
