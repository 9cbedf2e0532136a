"""``xbits`` (``src/detect-xbits.c``, host-bit.c, ippair-bit.c): named bits kept per
host (``track ip_src`` / ``ip_dst``) or per IP pair (``track ip_pair``, unordered),
each with an expiry time. Checks run at match time; set/unset/toggle after the whole
rule matched. The table is owned by the DetectEngine and bounded (``max_entries``
hosts + pairs; expired bits go first, then the least recently touched entry).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from ruleengine.keywords.flowbits import sigorder_class
from ruleengine.rules.model import Xbit, XbitCmd

DEFAULT_MAX_ENTRIES = 65536

Key = bytes | tuple[bytes, bytes]


def _key(xb: Xbit, src: bytes, dst: bytes) -> Key:
    if xb.track == "ip_pair":
        return (src, dst) if src <= dst else (dst, src)
    return src if xb.track == "ip_src" else dst


class XbitsTable:
    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.max_entries = max(1, max_entries)
        # key -> {bit name: expiry timestamp}; ordered by last use (LRU at the front)
        self._bits: OrderedDict[Key, dict[str, float]] = OrderedDict()
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._bits)

    def isset(self, xb: Xbit, src: bytes, dst: bytes, ts: float) -> bool:
        entry = self._bits.get(_key(xb, src, dst))
        if entry is None:
            return False
        expire = entry.get(xb.name)
        if expire is None:
            return False
        if expire <= ts:  # set while expire > now (HostBitIsset); expired: removed
            del entry[xb.name]
            return False
        return True

    def checks_pass(self, checks: Sequence[Xbit], src: bytes, dst: bytes, ts: float) -> bool:
        for xb in checks:
            present = self.isset(xb, src, dst, ts)
            if present != (xb.cmd is XbitCmd.ISSET):
                return False
        return True

    def apply(self, actions: Sequence[Xbit], src: bytes, dst: bytes, ts: float) -> None:
        for xb in actions:
            key = _key(xb, src, dst)
            if xb.cmd is XbitCmd.UNSET:
                entry = self._bits.get(key)
                if entry is not None:
                    entry.pop(xb.name, None)
                continue
            entry = self._entry(key, ts)
            if xb.cmd is XbitCmd.SET:
                entry[xb.name] = ts + xb.expire
            elif xb.cmd is XbitCmd.TOGGLE:
                if entry.get(xb.name, -1.0) > ts:
                    del entry[xb.name]
                else:
                    entry[xb.name] = ts + xb.expire

    def _entry(self, key: Key, ts: float) -> dict[str, float]:
        entry = self._bits.get(key)
        if entry is not None:
            self._bits.move_to_end(key)
            return entry
        if len(self._bits) >= self.max_entries:
            self._make_room(ts)
        entry = self._bits[key] = {}
        return entry

    def _make_room(self, ts: float) -> None:
        # drop entries whose bits all expired, scanning from the least recently used
        for k in list(self._bits)[: max(16, len(self._bits) // 8)]:
            bits = self._bits[k]
            for name in [n for n, exp in bits.items() if exp <= ts]:
                del bits[name]
            if not bits:
                del self._bits[k]
        while len(self._bits) >= self.max_entries:
            self._bits.popitem(last=False)
            self.evicted += 1


def order_class(xbits: Sequence[Xbit]) -> int:
    """Ordered like flowbits: setters first."""
    return sigorder_class(sets=any(not xb.is_check for xb in xbits),
                          reads=any(xb.is_check for xb in xbits))
