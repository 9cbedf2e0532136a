"""``asn1`` (``rust/src/asn1``): a small, bounded, lenient BER/DER walker and the
checks ``oversize_length``, ``bitstring_overflow`` and ``double_overflow``.

The payload is decoded from an absolute offset, or from the previous match plus a
relative offset; objects follow each other until the data ends or one does not parse
(what parsed so far is checked). Constructed objects are walked recursively up to
``max_frames`` levels and objects; nothing here raises on any input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ruleengine.rules.model import Asn1Match

MAX_OBJECTS = 4096  # total objects decoded per inspection (bounds work on hostile input)


@dataclass(slots=True)
class BerObject:
    cls: int  # 0 universal, 1 application, 2 context, 3 private
    constructed: bool
    tag: int
    length: int  # the header's length (indefinite: the content's)
    content: bytes
    children: list[BerObject] = field(default_factory=list)


class _Budget:
    __slots__ = ("left",)

    def __init__(self) -> None:
        self.left = MAX_OBJECTS


def _header(data: bytes, pos: int) -> tuple[int, bool, int, int | None, int] | None:
    """(class, constructed, tag, length or None for indefinite, content start)."""
    n = len(data)
    if pos >= n:
        return None
    b0 = data[pos]
    pos += 1
    cls = b0 >> 6
    constructed = bool(b0 & 0x20)
    tag = b0 & 0x1F
    if tag == 0x1F:  # high tag number form
        tag = 0
        for _ in range(5):
            if pos >= n:
                return None
            b = data[pos]
            pos += 1
            tag = (tag << 7) | (b & 0x7F)
            if not b & 0x80:
                break
        else:
            return None
    if pos >= n:
        return None
    lb = data[pos]
    pos += 1
    if lb < 0x80:
        return cls, constructed, tag, lb, pos
    if lb == 0x80:
        return (cls, constructed, tag, None, pos) if constructed else None
    nlen = lb & 0x7F
    if nlen > 8 or pos + nlen > n:
        return None
    length = int.from_bytes(data[pos : pos + nlen], "big")
    return cls, constructed, tag, length, pos + nlen


def _parse(data: bytes, pos: int, depth: int, budget: _Budget) -> tuple[BerObject, int] | None:
    if depth <= 0 or budget.left <= 0:
        return None
    budget.left -= 1
    hdr = _header(data, pos)
    if hdr is None:
        return None
    cls, constructed, tag, length, start = hdr
    if length is None:  # indefinite: children until end-of-contents (00 00)
        obj = BerObject(cls, constructed, tag, 0, b"")
        p = start
        while True:
            if p + 2 <= len(data) and data[p] == 0 and data[p + 1] == 0:
                obj.content = data[start:p]
                obj.length = p - start
                return obj, p + 2
            child = _parse(data, p, depth - 1, budget)
            if child is None:
                return None
            obj.children.append(child[0])
            p = child[1]
    end = start + length
    if end > len(data):
        return None  # incomplete
    obj = BerObject(cls, constructed, tag, length, data[start:end])
    if constructed:
        p = start
        while p < end:
            child = _parse(data[:end], p, depth - 1, budget)
            if child is None:
                return None
            obj.children.append(child[0])
            p = child[1]
    return obj, end


def decode(data: bytes, max_frames: int = 30) -> list[BerObject]:
    """Top-level objects of ``data`` (at most ``max_frames``; stops at the first one that
    does not parse)."""
    out: list[BerObject] = []
    pos = 0
    budget = _Budget()
    while pos < len(data):
        if len(out) >= max_frames:
            return []  # MaxFrames: a decode error in Suricata, nothing is checked
        res = _parse(data, pos, max(1, max_frames), budget)
        if res is None:
            break
        out.append(res[0])
        pos = res[1]
    return out


def _check(obj: BerObject, m: Asn1Match) -> bool:
    if m.oversize_length is not None and (
        obj.length > m.oversize_length or len(obj.content) > m.oversize_length
    ):
        return True
    if (
        m.bitstring_overflow and obj.cls == 0 and obj.tag == 3 and not obj.constructed
        and obj.length > 0 and obj.content and obj.content[0] > obj.length * 8
    ):
        return True
    if m.double_overflow and obj.cls == 0 and obj.tag == 9 and not obj.constructed:
        data = obj.content
        if obj.length > 0 and data and data[0] & 0xC0 == 0 and (
            obj.length > 256 or len(data) > 256
        ):
            return True
    return False


def _walk(obj: BerObject, m: Asn1Match, depth: int) -> bool:
    if depth <= 0:
        return False
    if _check(obj, m):
        return True
    return any(_walk(c, m, depth - 1) for c in obj.children)


def asn1_match(m: Asn1Match, buf: bytes, prev_end: int) -> bool:
    """Does any decoded object satisfy one of the checks? ``prev_end``: end of the
    previous match in ``buf`` (for ``relative_offset``)."""
    if not buf:
        return False
    if m.absolute_offset is not None:
        offset = m.absolute_offset
    elif m.relative_offset is not None:
        offset = prev_end + m.relative_offset
        if offset < 0 or offset > 0xFFFF:
            return False
    else:
        offset = 0
    if offset >= len(buf):
        return False
    objs = decode(buf[offset:], m.max_frames)
    return any(_walk(o, m, m.max_frames) for o in objs)
