"""Sorted, non-overlapping byte ranges with a "first data wins" overlap policy.

Shared by IP defragmentation and TCP reassembly. Ranges are kept as two parallel
lists (``starts`` and ``datas``) so lookups are a ``bisect`` away and no per-range
object is allocated beyond the data itself.

Overlap policy: bytes already stored are never replaced. A new range is cut into
the pieces that fill holes; the overlapping part is compared with what is stored so
the caller can raise an "overlap with different data" anomaly. This is the
"first"/BSD-like policy (Suricata's default ``bsd`` policy favours the original data
for the overlaps an evasion would use).
"""

from __future__ import annotations

from bisect import bisect_right
from typing import NamedTuple


class InsertResult(NamedTuple):
    added: int  # bytes newly stored
    overlap: int  # bytes already present (not stored again)
    different: bool  # some overlapping byte differed from the stored data


def insert_first_wins(
    starts: list[int], datas: list[bytes], start: int, data: bytes
) -> InsertResult:
    """Store ``data`` at ``start`` keeping existing bytes; return what happened."""
    end = start + len(data)
    if end <= start:
        return InsertResult(0, 0, False)
    i = bisect_right(starts, start) - 1
    if i < 0 or starts[i] + len(datas[i]) <= start:
        i += 1
    n = len(starts)
    if i >= n or starts[i] >= end:  # no overlap at all: the common case
        starts.insert(i, start)
        datas.insert(i, data)
        return InsertResult(len(data), 0, False)
    cur = start
    new_starts: list[int] = []
    new_datas: list[bytes] = []
    overlap = 0
    different = False
    j = i
    while j < n and starts[j] < end:
        s = starts[j]
        stored = datas[j]
        e = s + len(stored)
        if s > cur:
            new_starts.append(cur)
            new_datas.append(data[cur - start : s - start])
        lo = max(s, cur)
        hi = min(e, end)
        if hi > lo:
            overlap += hi - lo
            if not different and stored[lo - s : hi - s] != data[lo - start : hi - start]:
                different = True
        cur = max(cur, e)
        j += 1
    if cur < end:
        new_starts.append(cur)
        new_datas.append(data[cur - start :])
    added = 0
    for s, d in zip(new_starts, new_datas, strict=True):
        k = bisect_right(starts, s)
        starts.insert(k, s)
        datas.insert(k, d)
        added += len(d)
    return InsertResult(added, overlap, different)


def contiguous_end(starts: list[int], datas: list[bytes], begin: int) -> int:
    """End of the run of ranges that starts exactly at ``begin`` (``begin`` if none)."""
    cur = begin
    k = bisect_right(starts, cur) - 1
    if k < 0:
        k = 0
    n = len(starts)
    while k < n:
        s = starts[k]
        if s > cur:
            break
        e = s + len(datas[k])
        if e > cur:
            cur = e
        k += 1
    return cur
