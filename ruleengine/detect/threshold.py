"""``threshold`` and ``detection_filter`` counters (``src/detect-engine-threshold.c``,
``ThresholdHandlePacket``). One entry per (rule, kind, track key).

:meth:`ThresholdTable.check` returns 1 (alert), 2 (matched but silent: actions still
apply) or 0 (suppressed: no alert, no action).
"""

from __future__ import annotations

from collections import OrderedDict

from ruleengine.rules.model import Threshold

MAX_ENTRIES = 65536  # oldest entries are evicted beyond this (memory bound)


class _Entry:
    __slots__ = ("count", "next_value", "tv1")

    def __init__(self, tv1: float, next_value: int) -> None:
        self.tv1 = tv1
        self.count = 1
        self.next_value = next_value


TrackKey = tuple[object, ...]


def track_key(td: Threshold, src: bytes, dst: bytes, flow: object | None) -> TrackKey | None:
    """The counter key for the ``track`` option; None when it cannot apply (no flow)."""
    if td.track == "by_src":
        return (src,)
    if td.track == "by_dst":
        return (dst,)
    if td.track == "by_both":
        return (src, dst) if src <= dst else (dst, src)
    if td.track == "by_flow":
        return None if flow is None else (id(flow),)
    return ()


class ThresholdTable:
    def __init__(self) -> None:
        self._entries: OrderedDict[tuple[object, ...], _Entry] = OrderedDict()

    def check(self, rule_id: int, td: Threshold, key: TrackKey, ts: float) -> int:
        full_key = (rule_id, td.kind, *key)
        entry = self._entries.get(full_key)
        if entry is None:
            result = _first(td)
            entry = _Entry(ts, td.count)
            if td.kind == "backoff" and td.count == 1:
                entry.next_value *= max(td.multiplier, 1)
            self._entries[full_key] = entry
            if len(self._entries) > MAX_ENTRIES:
                self._entries.popitem(last=False)
            return result
        return _update(td, entry, ts)

    def remapped(self, rule_ids: dict[int, int]) -> ThresholdTable:
        """The table for a reloaded rule set: ``rule_ids`` maps an old rule id to the new
        id of the same rule (gid, sid, rev); entries of rules that are gone are dropped,
        as Suricata keys its threshold entries by sid, gid and rev."""
        out = ThresholdTable()
        for key, entry in self._entries.items():
            new_id = rule_ids.get(int(key[0]))  # type: ignore[call-overload]
            if new_id is not None:
                out._entries[(new_id, *key[1:])] = entry
        return out

    def __len__(self) -> int:
        return len(self._entries)


def _first(td: Threshold) -> int:
    if td.kind in ("limit",):
        return 1
    if td.kind in ("threshold", "both", "backoff"):
        return 1 if td.count == 1 else (2 if td.kind == "backoff" else 0)
    if td.kind == "detection_filter":
        return 1 if td.count == 0 else 0
    return 1


def _update(td: Threshold, e: _Entry, ts: float) -> int:
    within = (ts - e.tv1) < td.seconds
    kind = td.kind
    if kind == "backoff":
        e.count += 1
        if e.count == e.next_value:
            e.next_value *= max(td.multiplier, 1)
            return 1
        return 2
    if not within:
        e.tv1 = ts
        e.count = 1
        if kind == "limit":
            return 1
        if kind in ("both", "threshold"):
            return 1 if td.count == 1 else 0
        return 0  # detection_filter
    e.count += 1
    if kind == "limit":
        return 1 if e.count <= td.count else 2
    if kind == "threshold":
        if e.count >= td.count:
            e.count = 0
            return 1
        return 0
    if kind == "both":
        if e.count == td.count:
            return 1
        return 2 if e.count > td.count else 0
    return 1 if e.count > td.count else 0  # detection_filter
