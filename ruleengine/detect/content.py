"""The content inspection engine: one buffer against one rule's ordered item list.

A faithful port of Suricata's ``DetectEngineContentInspectionInternal``
(``src/detect-engine-content-inspection.c``): each item either fails, or succeeds and
hands over to the next item. A content (or pcre) that has a relative item depending on
it is re-tried at its next occurrence when the rest of the chain fails, so
``content:"a"; content:"b"; within:3;`` finds "a..b" even after an earlier lone "a".
Results: 1 match, 0 no match (callers may retry), -1 give up (nothing can match).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from ruleengine.detect import bytes as bytes_kw
from ruleengine.detect.asn1 import asn1_match
from ruleengine.detect.pcre import compile_pcre, pcre_search
from ruleengine.keywords.base64_decode import base64_decode_window
from ruleengine.rules.model import (
    Absent,
    Asn1Match,
    Base64Decode,
    BufferMatch,
    BufferSize,
    ByteExtract,
    ByteJump,
    ByteMath,
    ByteTest,
    ContentMatch,
    Endian,
    IntCondition,
    IntOrVar,
    IsDataAt,
    PcreMatch,
)

RECURSION_LIMIT = 3000  # Suricata's detect.inspection-recursion-limit default
_U32 = 0xFFFFFFFF

(K_CONTENT, K_PCRE, K_ISDATAAT, K_BTEST, K_BJUMP, K_BEXTRACT, K_BMATH, K_BSIZE, K_ABSENT,
 K_B64, K_ASN1) = range(11)

VAR_PREFIXES = ("flow_", "pkt_")  # pcre named captures stored as flow / packet variables


class CompileError(ValueError):
    """A rule item the engine cannot evaluate (the rule is skipped with this message)."""


class Op:
    """One compiled inspection item (a flat record; ``kind`` selects the handler)."""

    __slots__ = (
        "captures",
        "code",
        "cond",
        "data",
        "depth",
        "distance",
        "endswith",
        "item",
        "kind",
        "negated",
        "nocase",
        "offset",
        "pattern",
        "relative",
        "relative_next",
        "single",
        "var_pos",
        "within",
        "within_next",
    )

    def __init__(self, kind: int, item: Any) -> None:
        self.kind = kind
        self.item = item
        self.pattern = b""
        self.nocase = False
        self.negated = False
        self.offset: IntOrVar | None = None
        self.depth: IntOrVar | None = None
        self.distance: IntOrVar | None = None
        self.within: IntOrVar | None = None
        self.endswith = False
        self.relative = False
        self.within_next = False  # a later item needs this one re-tried (WITHIN_NEXT)
        self.relative_next = False  # any relative item depends on this one
        self.single = False
        self.var_pos = False  # offset/depth came from a byte_extract variable
        self.code: Any = None
        self.cond: IntCondition | None = None
        self.data: CompiledBuffer | None = None  # base64_decode: the base64_data program
        # pcre: (group number, "flow"|"pkt", variable name) of its flow_/pkt_ captures
        self.captures: tuple[tuple[int, str, str], ...] = ()


class CompiledBuffer:
    """The inspection program of one buffer of one rule. ``key`` names the buffer as
    seen through its transforms (``dns.query|dotprefix``; the plain name without any)."""

    __slots__ = ("absent", "captures", "key", "name", "ops", "transforms")

    def __init__(self, name: str, ops: tuple[Op, ...], absent: str | None,
                 key: str | None = None, transforms: tuple[Any, ...] = ()) -> None:
        self.name = name
        self.ops = ops
        self.absent = absent  # None, "only" (must be absent) or "or_else"
        self.key = key or name
        self.transforms = transforms
        # a pcre of the program stores flow_/pkt_ captures
        self.captures: bool = any(op.captures for op in ops) or any(
            op.data is not None and bool(op.data.captures) for op in ops
        )


def _is_relative(item: object) -> bool:
    if isinstance(item, ContentMatch):
        return item.relative
    if isinstance(item, PcreMatch | ByteTest | ByteJump | ByteExtract | ByteMath | IsDataAt):
        return bool(item.relative)
    return False


def _compile_item(item: object) -> Op:
    if isinstance(item, ContentMatch):
        op = Op(K_CONTENT, item)
        op.pattern = item.pattern.lower() if item.nocase else item.pattern
        op.nocase = item.nocase
        op.negated = item.negated
        op.offset = item.offset
        op.depth = item.depth
        if item.startswith and item.depth is None:
            op.depth = len(item.pattern)
        op.distance = item.distance
        op.within = item.within
        op.endswith = item.endswith
        op.relative = item.relative
        op.var_pos = isinstance(op.offset, str) or isinstance(op.depth, str)
        return op
    if isinstance(item, PcreMatch):
        op = Op(K_PCRE, item)
        op.code = compile_pcre(item)
        op.negated = item.negated
        op.relative = item.relative
        op.captures = _var_captures(op.code) + tuple(
            (number, scope, name)
            for number, (scope, name) in enumerate(item.capture_vars, start=1))
        return op
    if isinstance(item, Base64Decode):
        # no RELATIVE_NEXT on the content before it (DetectBase64DecodeSetup): its
        # relative flag is read by the handler only
        return Op(K_B64, item)
    if isinstance(item, Asn1Match):
        return Op(K_ASN1, item)
    if isinstance(item, IsDataAt):
        op = Op(K_ISDATAAT, item)
        op.relative = item.relative
        return op
    if isinstance(item, ByteTest | ByteJump | ByteExtract | ByteMath):
        if item.dce:
            raise CompileError("byte keyword with dce needs the DCERPC parser")
        kind = {ByteTest: K_BTEST, ByteJump: K_BJUMP, ByteExtract: K_BEXTRACT, ByteMath: K_BMATH}
        op = Op(kind[type(item)], item)
        op.relative = item.relative
        return op
    if isinstance(item, BufferSize):
        op = Op(K_BSIZE, item)
        op.cond = item.cond
        return op
    raise CompileError(f"unsupported inspection item {type(item).__name__}")


def _link_relative(ops: list[Op]) -> None:
    """Set WITHIN_NEXT / RELATIVE_NEXT on the content/pcre each relative item depends on
    (the nearest preceding content or pcre), as the Suricata keyword setups do."""
    anchor: Op | None = None
    for op in ops:
        if op.relative and anchor is not None:
            anchor.relative_next = True
            if op.kind != K_CONTENT or op.within is not None or op.negated:
                anchor.within_next = True
        if op.kind in (K_CONTENT, K_PCRE):
            anchor = op
    for op in ops:
        if op.kind == K_CONTENT:
            op.single = not (
                op.relative or op.relative_next or op.depth is not None or op.offset is not None
            )


def _var_captures(code: Any) -> tuple[tuple[int, str, str], ...]:
    """``(?P<flow_x>..)`` / ``(?P<pkt_x>..)`` groups of a compiled pcre."""
    names = getattr(getattr(code, "code", code), "groupindex", None) or {}
    out = []
    for name, num in names.items():
        for prefix in VAR_PREFIXES:
            if name.startswith(prefix) and len(name) > len(prefix):
                out.append((int(num), prefix[:-1], name[len(prefix):]))
    return tuple(sorted(out))


def compile_buffer(bm: BufferMatch, base64_data: BufferMatch | None = None) -> CompiledBuffer:
    """``base64_data``: the rule's base64_data list, inspected by its base64_decode items."""
    absent: str | None = None
    ops: list[Op] = []
    late: list[Op] = []  # asn1: a packet match, run once the rest of the list matched
    data: CompiledBuffer | None = None
    for item in bm.items:
        if isinstance(item, Absent):
            absent = "or_else" if item.or_else else "only"
            continue
        op = _compile_item(item)
        if op.kind == K_B64:
            if base64_data is None or not base64_data.items:
                raise CompileError("base64_decode without base64_data content")
            if data is None:
                data = compile_buffer(base64_data)
            op.data = data
        (late if op.kind == K_ASN1 else ops).append(op)
    _link_relative(ops)
    ops.extend(late)
    chain = tuple(bm.transforms)
    key = bm.buffer
    if chain:
        key = bm.buffer + "|" + "|".join(t.ident for t in chain)
    return CompiledBuffer(bm.buffer, tuple(ops), absent, key, chain)


class InspectState:
    """``det_ctx`` of one inspection: relative position, pcre restart point, variables,
    and the flow_/pkt_ pcre captures of the current candidate match."""

    __slots__ = ("calls", "caps", "lower", "off", "pstart", "vars")

    def __init__(self, variables: dict[str, int]) -> None:
        self.off = 0
        self.pstart = 0
        self.vars = variables
        self.lower: bytes | None = None
        self.calls = 0
        self.caps: list[tuple[str, str, bytes]] | None = None


def _val(v: IntOrVar | None, st: InspectState) -> int:
    if v is None:
        return 0
    if isinstance(v, str):
        return st.vars.get(v, 0)
    return v


def inspect(cb: CompiledBuffer, buf: bytes, variables: dict[str, int],
            captures: list[tuple[str, str, bytes]] | None = None,
            trace: InspectTrace | None = None) -> bool:
    """Run one buffer's program on ``buf`` (a present buffer). ``captures``: receives the
    (scope, name, value) pcre variable captures of the match (left alone on no match).
    ``trace``: only for the rule ``ruleengine explain`` follows; it gets the steps."""
    if trace is not None:
        return _inspect_traced(cb, buf, variables, captures, trace)
    if cb.absent == "only":
        return False
    if not cb.ops:
        return True
    st = InspectState(variables)
    if captures is not None and cb.captures:
        st.caps = []
    if _run(cb.ops, 0, buf, st) != 1:
        return False
    if st.caps and captures is not None:
        captures.extend(st.caps)
    return True


def inspect_any(cb: CompiledBuffer, bufs: Sequence[bytes], variables: dict[str, int],
                captures: list[tuple[str, str, bytes]] | None = None,
                trace: InspectTrace | None = None) -> bool:
    """Multi-buffer (one buffer per header): the rule part matches if any one does."""
    return any(inspect(cb, b, variables, captures, trace) for b in bufs)


class ProgramSteps:
    """How far one traced run of a buffer program got. ``tried[i]``: the positions
    (relative offset at entry) item ``i`` was tried from, in order; an item was matched
    each time the next one was tried (its match ended at that entry's position). On a
    match, the last entry of each item lies on the matching path."""

    __slots__ = ("calls", "end", "tried", "tries")

    KEPT = 32  # positions kept per item (``tries`` counts them all)

    def __init__(self, count: int) -> None:
        self.tried: list[list[int]] = [[] for _ in range(count)]
        self.tries = [0] * count
        self.end = 0  # relative offset when the program stopped (a match's end)
        self.calls = 0  # interpreter steps (RECURSION_LIMIT stops at its value)

    def entered(self, i: int, off: int) -> None:
        self.tries[i] += 1
        kept = self.tried[i]
        if len(kept) >= self.KEPT:
            del kept[1]  # keep the first and the latest positions
        kept.append(off)


class InspectTrace(Protocol):
    """Receives each traced inspection (``ruleengine.detect.trace.RuleTrace``)."""

    def inspected(self, cb: CompiledBuffer, buf: bytes, matched: bool,
                  steps: ProgramSteps) -> None: ...


def _inspect_traced(cb: CompiledBuffer, buf: bytes, variables: dict[str, int],
                    captures: list[tuple[str, str, bytes]] | None,
                    trace: InspectTrace) -> bool:
    """``inspect`` with every step recorded. The interpreter recurses through this
    module's ``_run``, so for the length of one traced inspection ``_run`` is a recorder
    around the real one: the matching is the engine's own, and untraced inspections pay
    nothing. (Detection runs single-threaded in each process.)"""
    global _run
    steps = ProgramSteps(len(cb.ops))
    real = _run
    last: list[InspectState] = []

    def recording(ops: tuple[Op, ...], i: int, buf: bytes, st: InspectState) -> int:
        if ops is cb.ops:  # not the base64_data program of a base64_decode item
            steps.entered(i, st.off)
            if not last:
                last.append(st)
        return real(ops, i, buf, st)

    _run = recording
    try:
        matched = inspect(cb, buf, variables, captures)
    finally:
        _run = real
    if last:
        steps.end, steps.calls = last[0].off, last[0].calls
    trace.inspected(cb, buf, matched, steps)
    return matched


def _next(ops: tuple[Op, ...], i: int, buf: bytes, st: InspectState) -> int:
    if i + 1 == len(ops):
        return 1
    return _run(ops, i + 1, buf, st)


def _run(ops: tuple[Op, ...], i: int, buf: bytes, st: InspectState) -> int:
    st.calls += 1
    if st.calls >= RECURSION_LIMIT:
        return -1
    op = ops[i]
    kind = op.kind
    if kind == K_CONTENT:
        return _content(ops, i, op, buf, st)
    if kind == K_PCRE:
        return _pcre(ops, i, op, buf, st)
    if kind == K_ISDATAAT:
        return _isdataat(ops, i, op, buf, st)
    if kind == K_B64:
        return _base64(op, buf, st)
    if kind == K_ASN1:
        # evaluated once, where the rest of the payload matched (Suricata's MATCH list
        # after the payload engine, with its buffer_offset): a failure is final
        if asn1_match(op.item, buf, st.off):
            return _next(ops, i, buf, st)
        return -1
    if kind == K_BSIZE:
        assert op.cond is not None
        # the size does not depend on the position: a failure is final
        return _next(ops, i, buf, st) if op.cond.matches(len(buf)) else -1
    if _bytes_op(op, buf, st):
        return _next(ops, i, buf, st)
    return 0


def _content(ops: tuple[Op, ...], i: int, op: Op, buf: bytes, st: InspectState) -> int:
    blen = len(buf)
    pat = op.pattern
    plen = len(pat)
    if op.nocase:
        if st.lower is None:
            st.lower = buf.lower()
        hay = st.lower
    else:
        hay = buf
    prev_offset = 0
    prev_buffer_offset = st.off
    while True:
        depth = blen
        if op.relative:
            offset = prev_buffer_offset
            distance = 0
            if op.distance is not None:
                distance = _val(op.distance, st)
                if distance < 0 and -distance > offset:
                    offset = 0
                else:
                    offset += distance
            if op.within is not None:
                limit = prev_buffer_offset + _val(op.within, st) + distance
                if depth > limit:  # signed compare, then stored as uint32
                    depth = limit & _U32
        else:
            offset = _val(op.offset, st)
            if op.depth is not None and _val(op.depth, st) != 0:
                depth = _val(op.depth, st) + (0 if op.var_pos else offset)
            prev_buffer_offset = 0
        if op.var_pos and not op.relative:
            depth += offset
        if prev_offset != 0:
            offset = prev_offset
        offset &= _U32  # Suricata's offsets are uint32: a negative one wraps past the end
        depth &= _U32
        if depth > blen:
            depth = blen
        if offset > depth or depth == 0:
            return _next(ops, i, buf, st) if op.negated else 0
        sbuf_len = depth - offset
        if (op.endswith and depth < blen) or plen > sbuf_len:
            found = -1
        else:
            found = hay.find(pat, offset, depth)
        if found < 0:
            if op.negated:
                return _next(ops, i, buf, st)
            return 0 if op.relative else -1
        match_offset = found + plen
        if op.negated:
            if op.endswith and sbuf_len != match_offset:
                return _next(ops, i, buf, st)
            return -1 if op.single else 0
        st.off = match_offset
        if not op.endswith or match_offset == blen:
            if i + 1 == len(ops):
                return 1
            r = _run(ops, i + 1, buf, st)
            if r != 0:
                return r
            if not op.within_next:
                return -1
        prev_offset = match_offset - (plen - 1)


def _base64(op: Op, buf: bytes, st: InspectState) -> int:
    """``base64_decode`` + the terminal ``base64_data`` list: 1 when the decoded bytes
    match it, else 0 (``goto no_match``)."""
    item: Base64Decode = op.item
    decoded = base64_decode_window(
        buf, st.off, nbytes=item.bytes, offset=item.offset, relative=item.relative
    )
    if not decoded or op.data is None:
        return 0
    if not op.data.ops:
        return 1
    sub = InspectState(st.vars)
    sub.caps = [] if st.caps is not None else None
    sub.calls = st.calls
    r = _run(op.data.ops, 0, decoded, sub)
    st.calls = sub.calls
    if r != 1:
        return 0
    if sub.caps and st.caps is not None:
        st.caps.extend(sub.caps)
    return 1


def _pcre_once(op: Op, buf: bytes, st: InspectState) -> bool:
    if op.relative:
        base = st.off
        subject = buf[base:] if base else buf
    else:
        base = 0
        subject = buf
    start = st.pstart - base if st.pstart else 0
    if start < 0 or start > len(subject):
        return False
    if op.captures and st.caps is not None and not op.negated:
        return _pcre_capture(op, subject, start, base, st)
    span = pcre_search(op.code, subject, start)
    if span is None:
        return op.negated
    if op.negated:
        return False
    st.off = base + span[1]
    st.pstart = base + span[0] + 1
    return True


MAX_CAPTURE = 65535  # bytes of one captured variable kept


def _pcre_capture(op: Op, subject: bytes, start: int, base: int, st: InspectState) -> bool:
    """A pcre with flow_/pkt_ named groups: remember their values for the rule's match."""
    try:
        m = op.code.search(subject, start)
    except Exception:
        return False
    if m is None:
        return False
    span = m.span()
    st.off = base + span[1]
    st.pstart = base + span[0] + 1
    assert st.caps is not None
    for num, scope, name in op.captures:
        try:
            value = m.group(num)
        except Exception:
            value = None
        if value is not None:
            st.caps.append((scope, name, bytes(value[:MAX_CAPTURE])))
    return True


def _pcre(ops: tuple[Op, ...], i: int, op: Op, buf: bytes, st: InspectState) -> int:
    prev_buffer_offset = st.off
    st.pstart = 0
    while True:
        if not _pcre_once(op, buf, st):
            return 0
        if not op.relative_next:
            return _next(ops, i, buf, st)
        prev_start = st.pstart
        r = _next(ops, i, buf, st)
        if r != 0:
            return r
        if prev_start == 0:  # negated pcre: no other occurrence to try
            return 0
        st.off = prev_buffer_offset
        st.pstart = prev_start


def _isdataat(ops: tuple[Op, ...], i: int, op: Op, buf: bytes, st: InspectState) -> int:
    item: IsDataAt = op.item
    is_var = isinstance(item.offset, str)
    dataat = _val(item.offset, st)
    if is_var and dataat >= 100000000:
        return 0 if not item.negated else _next(ops, i, buf, st)
    miss = 0 if is_var else -1  # a fixed offset that fails cannot match later either
    if item.relative:
        if st.off + dataat > len(buf):
            return _next(ops, i, buf, st) if item.negated else miss
        return 0 if item.negated else _next(ops, i, buf, st)
    if dataat < len(buf):
        return miss if item.negated else _next(ops, i, buf, st)
    return _next(ops, i, buf, st) if item.negated else miss


def _bytes_op(op: Op, buf: bytes, st: InspectState) -> bool:
    item = op.item
    if op.kind == K_BTEST:
        t: ByteTest = item
        return bytes_kw.byte_test(buf, st.off, t, _val(t.offset, st), _val(t.value, st))
    if op.kind == K_BJUMP:
        j: ByteJump = item
        pos = bytes_kw.byte_jump(buf, st.off, j, _val(j.offset, st))
        if pos is None:
            return False
        st.off = pos
        return True
    if op.kind == K_BEXTRACT:
        e: ByteExtract = item
        res = bytes_kw.byte_extract(buf, st.off, e)
        if res is None:
            return False
        st.vars[e.name], st.off = res
        return True
    m: ByteMath = item
    res = bytes_kw.byte_math(buf, st.off, m, _val(m.rvalue, st))
    if res is None:
        return False
    st.vars[m.result], st.off = res
    return True


__all__ = [
    "CompileError",
    "CompiledBuffer",
    "Endian",
    "InspectTrace",
    "ProgramSteps",
    "compile_buffer",
    "inspect",
    "inspect_any",
]
