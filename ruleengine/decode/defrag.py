"""IPv4 and IPv6 fragment reassembly.

Trackers are keyed by ``(version, src, dst, id, proto, vlan)`` and live at most
``timeout`` seconds of capture time after their first fragment (Suricata's
``defrag.timeout``, default 60). Memory is bounded by a tracker count and a byte
memcap; when either is exceeded the oldest tracker is dropped and
``defrag.max_trackers_reached`` / ``defrag.tracker_hard_reuse`` counted (Suricata's
stats names).

Overlapping fragments keep the data that arrived first (see ``segments``); an overlap
is reported as ``ipv4.frag_overlap`` / ``ipv6.frag_overlap``. A datagram that would
exceed 65535 bytes is dropped with ``ipv4.frag_pkt_too_large`` /
``ipv6.frag_pkt_too_large``.
"""

from __future__ import annotations

import struct

from ruleengine.decode.segments import contiguous_end, insert_first_wins

_MAX_DATAGRAM = 65535
_SWEEP_INTERVAL = 1.0

_U16 = struct.Struct("!H")


def ipv4_header_checksum(header: bytes | bytearray) -> int:
    """One's-complement checksum of an IPv4 header whose checksum field is zero."""
    total = int.from_bytes(header, "big") % 0xFFFF
    return (~total) & 0xFFFF if total else 0xFFFF


class _Tracker:
    __slots__ = (
        "datas",
        "events",
        "first_ts",
        "header",
        "nbytes",
        "nh",
        "nh_off",
        "starts",
        "total",
    )

    def __init__(self, ts: float) -> None:
        self.first_ts = ts
        self.header: bytes | None = None  # header of the offset-0 fragment
        self.nh_off = 0  # v6: offset in header of the next-header byte to patch
        self.nh = 0  # v6: protocol after the fragment header (from offset 0)
        self.total = -1  # payload length, known once the last fragment arrived
        self.starts: list[int] = []
        self.datas: list[bytes] = []
        self.nbytes = 0
        self.events: list[str] = []  # anomalies seen on earlier fragments


class Defragmenter:
    """Holds fragments until a datagram is complete; returns the rebuilt IP datagram."""

    def __init__(
        self,
        counters: dict[str, int],
        *,
        timeout: float = 60.0,
        max_trackers: int = 4096,
        memcap: int = 32 * 1024 * 1024,
    ) -> None:
        self.counters = counters
        self.timeout = timeout
        self.max_trackers = max_trackers
        self.memcap = memcap
        self.trackers: dict[tuple[object, ...], _Tracker] = {}
        self.memuse = 0
        self._next_sweep = 0.0
        # events raised by earlier fragments of the datagram just reassembled
        self.held_events: list[str] = []
        for name in (
            "defrag.ipv4.fragments",
            "defrag.ipv4.reassembled",
            "defrag.ipv6.fragments",
            "defrag.ipv6.reassembled",
            "defrag.max_trackers_reached",
            "defrag.tracker_hard_reuse",
            "defrag.ipv4.timeouts",
            "defrag.ipv6.timeouts",
        ):
            counters.setdefault(name, 0)

    def __len__(self) -> int:
        return len(self.trackers)

    def add_v4(
        self,
        ts: float,
        key: tuple[object, ...],
        header: bytes,
        foff: int,
        more: bool,
        data: bytes,
        events: list[str],
    ) -> bytes | None:
        """Add one IPv4 fragment; return the whole datagram (header + payload) when done."""
        self.counters["defrag.ipv4.fragments"] += 1
        tr = self._tracker(ts, key)
        if foff == 0 and tr.header is None:
            tr.header = header
        if not self._insert(tr, key, foff, more, data, events, "ipv4", _MAX_DATAGRAM - len(header)):
            return None
        hdr = tr.header
        assert hdr is not None
        payload = self._assemble(tr, key)
        rebuilt = bytearray(hdr)
        rebuilt[2:4] = _U16.pack(len(hdr) + len(payload))
        rebuilt[6:8] = b"\x00\x00"  # no MF, offset 0
        rebuilt[10:12] = b"\x00\x00"
        rebuilt[10:12] = _U16.pack(ipv4_header_checksum(rebuilt))
        self.counters["defrag.ipv4.reassembled"] += 1
        return bytes(rebuilt) + payload

    def add_v6(
        self,
        ts: float,
        key: tuple[object, ...],
        unfragmentable: bytes,
        nh_off: int,
        nh: int,
        foff: int,
        more: bool,
        data: bytes,
        events: list[str],
    ) -> bytes | None:
        """Add one IPv6 fragment.

        ``unfragmentable`` is the fixed header plus extension headers before the
        fragment header; ``nh_off`` the offset in it of the next-header byte that
        names the fragment header; ``nh`` the fragment header's next header.
        Returns the rebuilt datagram (without a fragment header) when complete.
        """
        self.counters["defrag.ipv6.fragments"] += 1
        if more and len(data) % 8:
            events.append("ipv6.frag_invalid_length")
        tr = self._tracker(ts, key)
        if foff == 0 and tr.header is None:
            tr.header = unfragmentable
            tr.nh_off = nh_off
            tr.nh = nh
        limit = _MAX_DATAGRAM - (len(unfragmentable) - 40)
        if not self._insert(tr, key, foff, more, data, events, "ipv6", limit):
            return None
        hdr = tr.header
        assert hdr is not None
        payload = self._assemble(tr, key)
        rebuilt = bytearray(hdr)
        rebuilt[tr.nh_off] = tr.nh
        rebuilt[4:6] = _U16.pack(len(hdr) - 40 + len(payload))
        self.counters["defrag.ipv6.reassembled"] += 1
        return bytes(rebuilt) + payload

    # -- internals ---------------------------------------------------------------------

    def _tracker(self, ts: float, key: tuple[object, ...]) -> _Tracker:
        if ts >= self._next_sweep:
            self._sweep(ts)
        tr = self.trackers.get(key)
        if tr is not None and ts - tr.first_ts > self.timeout:
            self._drop(key)
            self.counters[f"defrag.ipv{key[0]}.timeouts"] += 1
            tr = None
        if tr is None:
            if len(self.trackers) >= self.max_trackers:
                self.counters["defrag.max_trackers_reached"] += 1
                self._drop(next(iter(self.trackers)))
            tr = _Tracker(ts)
            self.trackers[key] = tr
        return tr

    def _insert(
        self,
        tr: _Tracker,
        key: tuple[object, ...],
        foff: int,
        more: bool,
        data: bytes,
        events: list[str],
        family: str,
        limit: int,
    ) -> bool:
        """Store a fragment; True when the datagram is complete."""
        end = foff + len(data)
        if end > limit:
            events.append(f"{family}.frag_pkt_too_large")
            self._drop(key)
            return False
        if not more and tr.total < 0:
            tr.total = end
        if tr.total >= 0 and end > tr.total:
            data = data[: max(0, tr.total - foff)]
        if data:
            while self.memuse + len(data) > self.memcap and self.trackers:
                oldest = next(iter(self.trackers))
                if oldest == key:
                    break
                self.counters["defrag.tracker_hard_reuse"] += 1
                self._drop(oldest)
            res = insert_first_wins(tr.starts, tr.datas, foff, data)
            if res.overlap:
                events.append(f"{family}.frag_overlap")
                tr.events.append(f"{family}.frag_overlap")
            tr.nbytes += res.added
            self.memuse += res.added
        return (
            tr.total >= 0
            and tr.header is not None
            and tr.nbytes >= tr.total
            and contiguous_end(tr.starts, tr.datas, 0) >= tr.total
        )

    def _assemble(self, tr: _Tracker, key: tuple[object, ...]) -> bytes:
        payload = b"".join(tr.datas)[: tr.total]
        self.held_events = tr.events
        self._drop(key)
        return payload

    def _drop(self, key: tuple[object, ...]) -> None:
        tr = self.trackers.pop(key, None)
        if tr is not None:
            self.memuse -= tr.nbytes

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + _SWEEP_INTERVAL
        limit = now - self.timeout
        stale = [k for k, t in self.trackers.items() if t.first_ts < limit]
        for k in stale:
            self._drop(k)
            self.counters[f"defrag.ipv{k[0]}.timeouts"] += 1
