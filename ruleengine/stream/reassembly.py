"""Stream reassembly: the per-direction segment store and in-order delivery.

* Data is stored as sorted non-overlapping byte ranges with the *first data wins*
  overlap policy (``ruleengine.decode.segments``). Overlaps are counted
  (``tcp.overlap``); differing overlaps raise ``stream.reassembly_overlap_different_data``.
* Retransmissions of data already delivered are dropped (``stream.pkt_retransmission``),
  never delivered twice.
* Out-of-order segments are buffered until the hole is filled, bounded per direction by
  ``StreamConfig.max_buffered`` bytes / ``max_segments`` ranges, and all buffered bytes
  of all sessions by ``StreamConfig.memcap`` (``stream.reassembly.memcap``): at the cap,
  in-order data is handed out early and out-of-order data dropped
  (``tcp.segment_memcap_drop``).
* ``reassembly_depth`` (``stream.reassembly.depth``, 0 = unlimited) caps the bytes
  delivered per direction; beyond it data is neither stored nor delivered and
  ``depth_reached_*`` is reported once (``stream.reassembly_depth_reached``).
* Holes the peer ACKed (or that remain at a flush) are skipped and reported as gaps
  (``tcp.reassembly_gap``, ``stream.reassembly_seq_gap``).

When data is handed out is the state machine's decision (``ruleengine.stream.tcp``);
this module only stores and delivers.
"""

from __future__ import annotations

import weakref
from bisect import bisect_left

from ruleengine.decode.segments import contiguous_end, insert_first_wins
from ruleengine.flow.table import Flow
from ruleengine.flow.tcp_session import HalfStream, TcpSession
from ruleengine.stream.config import StreamConfig
from ruleengine.stream.update import MAX_AHEAD, StreamUpdate


class Reassembler:
    """Segment store and delivery shared by all sessions of one tracker."""

    def __init__(self, config: StreamConfig, counters: dict[str, int]) -> None:
        self.config = config
        self.counters = counters
        self._depth = config.reassembly_depth
        # Bytes buffered across all sessions. Sessions of flows that ended without a
        # flush() are garbage-collected; ``_reclaim`` recounts from the live ones.
        self.memuse = 0
        self._sessions: weakref.WeakSet[TcpSession] = weakref.WeakSet()

    def _insert(
        self, half: HalfStream, off: int, data: bytes, to_server: bool, upd: StreamUpdate
    ) -> None:
        c = self.counters
        end = off + len(data)
        if end <= half.app_off:
            c["tcp.pkt_retransmission"] += 1
            upd.events.append("stream.pkt_retransmission")
            return
        if off < half.app_off:
            data = data[half.app_off - off :]
            off = half.app_off
        if off > half.ctg_end + MAX_AHEAD:
            c["tcp.out_of_window"] += 1
            upd.events.append("stream.est_packet_out_of_window")
            upd.invalid = True
            return
        depth = self._depth
        if depth:
            if off >= depth:  # beyond depth: never stored (reported when delivery gets there)
                return
            if end > depth:
                data = data[: depth - off]
                end = depth
        if off > half.ctg_end and (
            half.buffered + len(data) > self.config.max_buffered
            or len(half.starts) >= self.config.max_segments
        ):
            c["tcp.segment_memcap_drop"] += 1
            return
        if self.memuse + len(data) > self.config.memcap and not self._make_room(
            half, off, len(data), to_server, upd
        ):
            c["tcp.segment_memcap_drop"] += 1
            return
        res = insert_first_wins(half.starts, half.datas, off, data)
        half.buffered += res.added
        self.memuse += res.added
        if res.overlap:
            c["tcp.overlap"] += 1
            if res.different:
                c["tcp.overlap_diff_data"] += 1
                upd.events.append("stream.reassembly_overlap_different_data")
            elif not res.added:
                c["tcp.pkt_retransmission"] += 1
                upd.events.append("stream.pkt_retransmission")
        if end > half.max_end:
            half.max_end = end
        if off <= half.ctg_end < end:
            half.ctg_end = contiguous_end(half.starts, half.datas, half.ctg_end)

    def _make_room(
        self, half: HalfStream, off: int, size: int, to_server: bool, upd: StreamUpdate
    ) -> bool:
        """Memcap reached: recount, then hand out this side's contiguous data early."""
        self._reclaim()
        if self.memuse + size <= self.config.memcap:
            return True
        if off <= half.ctg_end and half.ctg_end > half.app_off:
            self.counters["tcp.forced_flush"] += 1
            self._deliver(half, half.ctg_end, to_server, upd)
        return self.memuse + size <= self.config.memcap

    def _reclaim(self) -> None:
        self.memuse = sum(s.client.buffered + s.server.buffered for s in self._sessions)

    def release(self, flow: Flow) -> None:
        """Drop a session's buffers without delivering them (e.g. a bypassed flow)."""
        ssn = flow.tcp
        if ssn is not None:
            self.memuse -= discard(ssn.client) + discard(ssn.server)

    def _depth_reached(self, half: HalfStream, to_server: bool, upd: StreamUpdate) -> None:
        if half.depth_hit:
            return
        half.depth_hit = True
        self.counters["tcp.stream_depth_reached"] += 1
        upd.events.append("stream.reassembly_depth_reached")
        if to_server:
            upd.depth_reached_toserver = True
        else:
            upd.depth_reached_toclient = True

    def _deliver_acked(self, half: HalfStream, to_server: bool, upd: StreamUpdate) -> None:
        """IDS mode: hand out what the peer ACKed, skipping holes it ACKed too."""
        limit = half.ack_off
        if half.fin_off >= 0:
            limit = min(limit, half.fin_off)
            slack = 0
        else:
            slack = 1  # an unseen FIN takes one sequence number
        if limit > half.ctg_end + slack:
            self._deliver(half, limit, to_server, upd, skip_gaps=True)
        else:
            self._deliver(half, min(limit, half.ctg_end), to_server, upd)

    def _flush_half(self, half: HalfStream, to_server: bool, upd: StreamUpdate) -> None:
        end = half.max_end
        if half.starts:
            end = max(end, half.starts[-1] + len(half.datas[-1]))
        self._deliver(half, end, to_server, upd, skip_gaps=True)

    def _deliver(
        self,
        half: HalfStream,
        limit: int,
        to_server: bool,
        upd: StreamUpdate,
        *,
        skip_gaps: bool = False,
    ) -> None:
        while True:
            end = min(half.ctg_end, limit)
            if end > half.app_off:
                self._emit(half, end, to_server, upd)
            if not skip_gaps or limit <= half.ctg_end or half.depth_hit:
                return
            # the peer ACKed bytes we never saw: skip the hole
            nxt = half.starts[0] if half.starts else limit
            gap_to = min(nxt, limit)
            if gap_to <= half.ctg_end:
                return
            self.counters["tcp.reassembly_gap"] += 1
            upd.events.append("stream.reassembly_seq_gap")
            upd.gaps.append(len(upd.data))
            half.gap = True
            if to_server:
                upd.gap_toserver = True
            else:
                upd.gap_toclient = True
            depth = self._depth
            if depth and gap_to >= depth:
                half.app_off = half.ctg_end = depth
                self._depth_reached(half, to_server, upd)
                return
            half.app_off = gap_to
            half.ctg_end = contiguous_end(half.starts, half.datas, gap_to)
            if gap_to >= limit and half.ctg_end <= half.app_off:
                return

    def _emit(self, half: HalfStream, end: int, to_server: bool, upd: StreamUpdate) -> None:
        """Move ``[app_off, end)`` out of the buffer into ``upd.data``."""
        depth = self._depth
        if depth and end >= depth:
            end = depth
            self._depth_reached(half, to_server, upd)
        start = half.app_off
        if end <= start:
            return
        starts = half.starts
        datas = half.datas
        k = bisect_left(starts, end)  # ranges [0, k) start before end
        chunks = datas[:k]
        last_start = starts[k - 1] if k else start
        last = chunks[-1] if chunks else b""
        if k and last_start + len(last) > end:  # split the last range at end
            keep = end - last_start
            chunks[-1] = last[:keep]
            starts[k - 1] = end
            datas[k - 1] = last[keep:]
            k -= 1
        del starts[:k]
        del datas[:k]
        out = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        half.buffered -= len(out)
        self.memuse -= len(out)
        half.app_off = end
        if half.ctg_end < end:
            half.ctg_end = end
        upd.data.append((to_server, out))


def discard(half: HalfStream) -> int:
    """Forget everything buffered in ``half``; return the bytes freed."""
    freed = half.buffered
    half.starts.clear()
    half.datas.clear()
    half.buffered = 0
    half.ctg_end = half.app_off
    half.max_end = half.app_off
    return freed
