"""Hostile rule values and data never raise out of the inspection engine."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ruleengine.detect.content import compile_buffer, inspect
from ruleengine.rules.model import (
    BufferMatch,
    BufferSize,
    ByteExtract,
    ByteJump,
    ByteMath,
    ByteTest,
    ContentMatch,
    Endian,
    IntCondition,
    IntOp,
    IsDataAt,
    PcreMatch,
)

small = st.integers(min_value=-70000, max_value=70000)
var_or_int = st.one_of(small, st.sampled_from(["v", "w", "missing"]))
endian = st.sampled_from([Endian.BIG, Endian.LITTLE])
base = st.sampled_from([None, 8, 10, 16])

content = st.builds(
    ContentMatch,
    pattern=st.binary(min_size=1, max_size=4),
    negated=st.booleans(),
    nocase=st.booleans(),
    offset=st.one_of(st.none(), var_or_int),
    depth=st.one_of(st.none(), var_or_int),
    distance=st.one_of(st.none(), var_or_int),
    within=st.one_of(st.none(), var_or_int),
    startswith=st.booleans(),
    endswith=st.booleans(),
)
items = st.one_of(
    content,
    st.builds(PcreMatch, regex=st.sampled_from(["a", "^b", "(a|b)+c", "x*"]),
              flags=st.sampled_from(["", "i", "smi", "G", "A"]), negated=st.booleans(),
              relative=st.booleans()),
    st.builds(ByteTest, nbytes=st.integers(0, 30),
              operator=st.sampled_from(["<", "=", "&", "^", "?"]),
              value=var_or_int, offset=var_or_int, negated=st.booleans(), relative=st.booleans(),
              endian=endian, string_base=base, bitmask=st.one_of(st.none(), st.integers(0, 2**32))),
    st.builds(ByteJump, nbytes=st.integers(0, 30), offset=var_or_int, relative=st.booleans(),
              multiplier=st.integers(0, 10**6), endian=endian, string_base=base,
              align=st.booleans(), from_beginning=st.booleans(), from_end=st.booleans(),
              post_offset=small),
    st.builds(ByteExtract, nbytes=st.integers(0, 30), offset=small,
              name=st.sampled_from(["v", "w"]),
              relative=st.booleans(), multiplier=st.integers(0, 10**6), endian=endian,
              string_base=base, align=st.integers(0, 4)),
    st.builds(ByteMath, nbytes=st.integers(0, 30), offset=small,
              oper=st.sampled_from(["+", "-", "*", "/", "<<", ">>", "?"]), rvalue=var_or_int,
              result=st.sampled_from(["v", "w"]), relative=st.booleans(), endian=endian,
              string_base=base),
    st.builds(IsDataAt, offset=var_or_int, negated=st.booleans(), relative=st.booleans()),
    st.builds(BufferSize, cond=st.builds(IntCondition, op=st.sampled_from(list(IntOp)),
                                          lo=small, hi=small)),
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(items, min_size=1, max_size=6), st.binary(max_size=64))
def test_random_items_never_raise(item_list: list[object], data: bytes) -> None:
    bm = BufferMatch("payload", list(item_list))  # type: ignore[arg-type]
    assert inspect(compile_buffer(bm), data, {}) in (True, False)
