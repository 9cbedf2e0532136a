"""TCP session tracking and stream reassembly (modelled on Suricata's stream engine).

Per flow, a ``TcpSession`` follows the handshake and keeps two ``_Half`` streams
(client→server and server→client). Sequence numbers are turned into 64-bit stream
offsets (offset 0 = ISN + 1) by signed 32-bit distance from the current contiguous
end, so wraparound needs no special case.

Reassembly:

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
* Delivery to the app layer follows Suricata: in IDS mode data goes out when the other
  side ACKs it (processed on the ACKing packet, before that packet's own data); in
  inline mode (``stream.inline``/IPS) contiguous data goes out on arrival. When the peer
  ACKs data that was never seen, the hole is skipped and reported as a gap
  (``tcp.reassembly_gap``, ``stream.reassembly_seq_gap``). Contiguous data not ACKed
  after ``max_unacked`` bytes (one-sided captures) is delivered anyway. RST and the
  close of both sides flush everything buffered; ``TcpTracker.flush`` does it at flow end.
* ``reassembly_depth`` (``stream.reassembly.depth``, 0 = unlimited) caps the bytes
  delivered per direction; beyond it data is neither stored nor delivered and
  ``depth_reached_*`` is reported once (``stream.reassembly_depth_reached``).

Handshake: a SYN creates the session (its sender is the client); SYN/ACK with the right
ACK → ``syn_recv``; the client's ACK → established. Without ``midstream`` a session can
only start with a SYN; packets of other flows get ``accept = False`` (inspected as
packets, not as stream). With ``midstream``, a SYN/ACK or any ACK packet starts a session
(established at once for ACK packets). ``async_oneside`` accepts a handshake where the
SYN/ACK was not seen. Window tracking and TCP options (timestamps, SACK) are not modelled;
RST acceptance only checks that the sequence number is plausible.
"""

from __future__ import annotations

import weakref
from bisect import bisect_left
from dataclasses import dataclass

from ruleengine.decode.packet import TH_ACK, TH_FIN, TH_RST, TH_SYN, Packet
from ruleengine.decode.segments import contiguous_end, insert_first_wins
from ruleengine.flow.table import STATE_BYPASSED, STATE_CLOSED, STATE_ESTABLISHED, Flow

_M32 = 0xFFFFFFFF
_HALF32 = 0x80000000
_WRAP = 0x100000000

# Offsets further than this from the current contiguous end are out of window.
_MAX_AHEAD = 1 << 26
# Window assumed for RST validation (window scaling is not tracked): a RST must carry a
# sequence number between what the peer ACKed and this much beyond the highest data.
_RST_WINDOW = 1 << 20

# Session states (Suricata names, collapsed where this tracker does not distinguish).
S_NONE = 0
S_SYN_SENT = 1
S_SYN_RECV = 2
S_ESTABLISHED = 3
S_FIN_WAIT = 4  # client sent FIN
S_CLOSE_WAIT = 5  # server sent FIN
S_CLOSED = 6
STATE_NAMES = (
    "none",
    "syn_sent",
    "syn_recv",
    "established",
    "fin_wait1",
    "close_wait",
    "closed",
)

@dataclass(frozen=True)
class StreamConfig:
    """The ``stream`` section of suricata.yaml that the tracker honours (read by
    ``Config.stream_config``)."""

    midstream: bool = False
    inline: bool = False
    reassembly_depth: int = 1 << 20  # 0 = unlimited
    async_oneside: bool = False
    bypass: bool = False
    max_buffered: int = 4 << 20  # out-of-order bytes kept per direction
    max_segments: int = 4096  # out-of-order ranges kept per direction
    max_unacked: int = 1 << 20  # contiguous bytes waiting for an ACK before forced delivery
    memcap: int = 256 << 20  # all buffered stream bytes (stream.reassembly.memcap)


def _invalid(upd: StreamUpdate, event: str) -> None:
    """The packet breaks the session's rules: ``event``, not part of the stream, invalid."""
    upd.events.append(event)
    upd.accept = False
    upd.invalid = True


class StreamUpdate:
    """What one packet did to the stream.

    ``data``: newly deliverable in-order app data as ``(to_server, bytes)`` chunks, in
    the order the app layer must see them. ``gaps``: indexes into ``data`` before which
    a hole was skipped in that chunk's direction (``len(data)`` when the gap comes after
    the last chunk); ``gap_toserver``/``gap_toclient`` summarise them.
    ``accept``: False when the packet is not part of a tracked stream (inspect it as a
    packet only). ``invalid``: the stream engine judged the packet invalid (wrong ACK in
    the handshake, out-of-window data, implausible RST, SYN on an established session):
    with ``stream.drop-invalid`` (Suricata's default) an IPS drops it.
    ``midstream_rejected``: the packet would start a session mid-stream but
    ``stream.midstream`` is off (Suricata's midstream exception policy applies).
    ``closed_toserver``/``closed_toclient``: that direction ended (FIN delivered, RST or
    flow end) and everything before it has been delivered: the app layer may see EOF.
    ``established``/``closed``: the session became established/closed on this packet.
    """

    __slots__ = (
        "accept",
        "closed",
        "closed_toclient",
        "closed_toserver",
        "data",
        "depth_reached_toclient",
        "depth_reached_toserver",
        "established",
        "events",
        "gap_toclient",
        "gap_toserver",
        "gaps",
        "invalid",
        "midstream_rejected",
    )

    def __init__(self) -> None:
        self.accept = True
        self.invalid = False
        self.midstream_rejected = False
        self.data: list[tuple[bool, bytes]] = []
        self.gaps: list[int] = []
        self.gap_toserver = False
        self.gap_toclient = False
        self.depth_reached_toserver = False
        self.depth_reached_toclient = False
        self.events: list[str] = []
        self.established = False
        self.closed = False
        self.closed_toserver = False
        self.closed_toclient = False

    def __repr__(self) -> str:
        return (
            f"StreamUpdate(accept={self.accept}, data={self.data!r}, gaps={self.gaps}, "
            f"events={self.events}, established={self.established}, closed={self.closed})"
        )


class _Half:
    """One direction's byte stream."""

    __slots__ = (
        "ack_off",
        "app_off",
        "base",
        "base_set",
        "buffered",
        "ctg_end",
        "datas",
        "depth_hit",
        "eof",
        "fin_off",
        "flags",
        "gap",
        "max_end",
        "starts",
    )

    def __init__(self) -> None:
        self.base = 0  # sequence number of stream offset 0
        self.base_set = False
        self.starts: list[int] = []  # buffered ranges, all >= app_off
        self.datas: list[bytes] = []
        self.buffered = 0
        self.app_off = 0  # delivered up to here
        self.ctg_end = 0  # received contiguously up to here
        self.max_end = 0  # highest offset seen
        self.ack_off = -1  # highest offset the peer ACKed (-1: none)
        self.fin_off = -1
        self.depth_hit = False
        self.eof = False  # EOF reported to the app layer
        self.flags = 0  # OR of TCP flags sent in this direction
        self.gap = False  # a hole was skipped in this direction (Suricata EVE tcp.ts_gap/tc_gap)

    def set_base(self, seq: int) -> None:
        self.base = seq & _M32
        self.base_set = True

    def offset(self, seq: int) -> int:
        ref = self.ctg_end
        d = (seq - self.base - ref) & _M32
        if d >= _HALF32:
            d -= _WRAP
        return ref + d

    @property
    def delivered(self) -> int:
        """Bytes handed to the app layer so far (stream offset of the next byte)."""
        return self.app_off


class TcpSession:
    """TCP state of one flow; ``flow.tcp`` holds it."""

    __slots__ = (
        "__weakref__",
        "client",
        "midstream",
        "oneside",
        "oneside_toserver",
        "server",
        "state",
    )

    def __init__(self) -> None:
        self.state = S_NONE
        self.client = _Half()
        self.server = _Half()
        self.midstream = False
        self.oneside = False  # async-oneside: the peer's ACKs are never seen
        self.oneside_toserver = True  # the direction that is visible when ``oneside``

    def reverse(self) -> None:
        """Swap the client and server halves (``Flow.reverse`` calls this)."""
        self.client, self.server = self.server, self.client
        self.oneside_toserver = not self.oneside_toserver

    @property
    def state_name(self) -> str:
        return STATE_NAMES[self.state]

    @property
    def tcp_flags_ts(self) -> int:
        return self.client.flags

    @property
    def tcp_flags_tc(self) -> int:
        return self.server.flags

    @property
    def tcp_flags(self) -> int:
        return self.client.flags | self.server.flags

COUNTER_NAMES = (
    "tcp.sessions",
    "tcp.syn",
    "tcp.synack",
    "tcp.rst",
    "tcp.fin",
    "tcp.midstream_pickups",
    "tcp.invalid_checksum",
    "tcp.no_flow",
    "tcp.pkt_retransmission",
    "tcp.overlap",
    "tcp.overlap_diff_data",
    "tcp.reassembly_gap",
    "tcp.segment_memcap_drop",
    "tcp.stream_depth_reached",
    "tcp.forced_flush",
    "tcp.ssn_reuse",
    "tcp.out_of_window",
    "tcp.keepalive",
)


class TcpTracker:
    """Feeds TCP packets through session state and reassembly."""

    def __init__(self, config: StreamConfig | None = None) -> None:
        self.config = config if config is not None else StreamConfig()
        self.counters: dict[str, int] = dict.fromkeys(COUNTER_NAMES, 0)
        self._depth = self.config.reassembly_depth
        # Bytes buffered across all sessions. Sessions of flows that ended without a
        # flush() are garbage-collected; ``_reclaim`` recounts from the live ones.
        self.memuse = 0
        self._sessions: weakref.WeakSet[TcpSession] = weakref.WeakSet()

    # -- public -----------------------------------------------------------------------

    def process(self, flow: Flow, pkt: Packet, to_server: bool) -> StreamUpdate:
        """Track one TCP packet of ``flow``; never raises on hostile input."""
        upd = StreamUpdate()
        if pkt.invalid or flow.state == STATE_BYPASSED:
            upd.accept = False
            return upd
        if not pkt.checksum_ok:
            self.counters["tcp.invalid_checksum"] += 1
            upd.accept = False
            return upd
        try:
            self._process(flow, pkt, to_server, upd)
            ssn = flow.tcp
            if ssn is not None and ssn.state >= S_ESTABLISHED:
                self._check_eof(ssn, upd)
        except Exception:  # defensive: a tracker bug must not end the run
            upd.events.append("stream.internal_error")
            upd.accept = False
        return upd

    def snapshot(self) -> dict[str, int]:
        """Counters plus the gauges of Suricata's ``tcp`` stats section."""
        out = dict(self.counters)
        out["tcp.reassembly_memuse"] = self.memuse
        out["tcp.active_sessions"] = len(self._sessions)
        return out

    def flush(self, flow: Flow) -> StreamUpdate:
        """Deliver everything still buffered (flow end): to-server first, gaps skipped."""
        upd = StreamUpdate()
        ssn = flow.tcp
        if ssn is None:
            return upd
        try:
            self._flush_both(ssn, upd)
            self._check_eof(ssn, upd, final=True)
        except Exception:
            upd.events.append("stream.internal_error")
        return upd

    def _check_eof(self, ssn: TcpSession, upd: StreamUpdate, *, final: bool = False) -> None:
        """Report EOF per direction once its FIN (or the close) is delivered."""
        closed = ssn.state == S_CLOSED or final
        client = ssn.client
        if not client.eof and (closed or 0 <= client.fin_off <= client.app_off):
            client.eof = True
            upd.closed_toserver = True
        server = ssn.server
        if not server.eof and (closed or 0 <= server.fin_off <= server.app_off):
            server.eof = True
            upd.closed_toclient = True

    # -- state machine ----------------------------------------------------------------

    def _process(self, flow: Flow, pkt: Packet, to_server: bool, upd: StreamUpdate) -> None:
        ssn = flow.tcp
        flags = pkt.tcp_flags
        if ssn is None or ssn.state == S_NONE:
            self._no_session(flow, pkt, to_server, upd)
            return
        sender = ssn.client if to_server else ssn.server
        sender.flags |= flags
        state = ssn.state
        if state == S_SYN_SENT:
            self._syn_sent(flow, ssn, pkt, to_server, upd)
        elif state == S_SYN_RECV:
            self._syn_recv(flow, ssn, pkt, to_server, upd)
        elif state == S_CLOSED:
            self._closed(flow, ssn, pkt, to_server, upd)
        else:
            self._established(flow, ssn, pkt, to_server, upd)

    def _new_session(self, flow: Flow) -> TcpSession:
        ssn = TcpSession()
        self._sessions.add(ssn)
        flow.tcp = ssn
        self.counters["tcp.sessions"] += 1
        return ssn

    def _no_session(self, flow: Flow, pkt: Packet, to_server: bool, upd: StreamUpdate) -> None:
        flags = pkt.tcp_flags
        cfg = self.config
        if flags & TH_RST:
            upd.events.append("stream.rst_but_no_session")
            upd.accept = False
            return
        if flags & TH_SYN and not flags & TH_ACK:
            ssn = self._new_session(flow)
            self.counters["tcp.syn"] += 1
            client = ssn.client if to_server else ssn.server
            client.set_base(pkt.seq + 1)
            client.flags |= flags
            ssn.state = S_SYN_SENT
            if not to_server:  # FlowTable.lookup normally swapped already; other tables
                flow.reverse()  # also swaps the session halves
            if pkt.payload:  # TCP Fast Open: data on the SYN, kept until the SYN/ACK says
                self._insert(client, 0, pkt.payload, True, upd)
            return
        if not cfg.midstream:
            if flags & TH_FIN:
                upd.events.append("stream.fin_but_no_session")
            upd.accept = False
            upd.midstream_rejected = True
            return
        ssn = self._new_session(flow)
        ssn.midstream = True
        self.counters["tcp.midstream_pickups"] += 1
        sender = ssn.client if to_server else ssn.server
        peer = ssn.server if to_server else ssn.client
        sender.flags |= flags
        if flags & TH_SYN:  # SYN/ACK: the sender is the server
            self.counters["tcp.synack"] += 1
            sender.set_base(pkt.seq + 1)
            peer.set_base(pkt.ack)
            ssn.state = S_SYN_RECV
            return
        sender.set_base(pkt.seq)
        if flags & TH_ACK:
            peer.set_base(pkt.ack)
        if cfg.async_oneside:  # Suricata flags midstream pick-ups ASYNC with async-oneside
            ssn.oneside = True
            ssn.oneside_toserver = to_server
        self._establish(flow, ssn, pkt, to_server, upd)

    def _establish(
        self, flow: Flow, ssn: TcpSession, pkt: Packet, to_server: bool, upd: StreamUpdate
    ) -> None:
        """The session becomes established on ``pkt``, which is then handled as such."""
        ssn.state = S_ESTABLISHED
        flow.state = STATE_ESTABLISHED
        upd.established = True
        self._established(flow, ssn, pkt, to_server, upd)

    def _syn_sent(
        self, flow: Flow, ssn: TcpSession, pkt: Packet, to_server: bool, upd: StreamUpdate
    ) -> None:
        flags = pkt.tcp_flags
        if flags & TH_RST:
            self._reset(flow, ssn, to_server, upd)
            return
        if to_server:
            if flags & TH_SYN:  # SYN retransmission (maybe a new ISN: follow it)
                ssn.client.set_base(pkt.seq + 1)
                return
            if self.config.async_oneside and flags & TH_ACK:
                # SYN/ACK never seen (asymmetric routing): trust the client's ACK
                ssn.server.set_base(pkt.ack)
                ssn.oneside = True
                self._establish(flow, ssn, pkt, to_server, upd)
                return
            upd.accept = False
            return
        if flags & TH_SYN and flags & TH_ACK:
            client = ssn.client
            ack_off = client.offset(pkt.ack)
            tfo = client.max_end
            if ack_off != 0 and not (tfo and ack_off == tfo):
                _invalid(upd, "stream.3whs_synack_with_wrong_ack")
                return
            self.counters["tcp.synack"] += 1
            ssn.server.set_base(pkt.seq + 1)
            ssn.state = S_SYN_RECV
            if tfo and ack_off == 0:  # the server did not take the SYN's data
                upd.events.append("stream.3whs_synack_tfo_data_ignored")
                self.memuse -= _discard(client)
            elif tfo:
                client.ack_off = ack_off
                self._deliver_acked(client, True, upd)
            return
        if flags & TH_SYN:
            upd.events.append("stream.3whs_syn_toclient_on_syn_recv")
        upd.accept = False

    def _syn_recv(
        self, flow: Flow, ssn: TcpSession, pkt: Packet, to_server: bool, upd: StreamUpdate
    ) -> None:
        flags = pkt.tcp_flags
        if flags & TH_RST:
            self._reset(flow, ssn, to_server, upd)
            return
        if flags & TH_SYN:
            if to_server and not flags & TH_ACK:
                if (pkt.seq + 1) & _M32 != ssn.client.base:
                    upd.events.append("stream.3whs_syn_resend_diff_seq_on_syn_recv")
            elif not to_server and flags & TH_ACK:
                if (pkt.seq + 1) & _M32 != ssn.server.base:
                    upd.events.append("stream.3whs_synack_resend_with_diff_seq")
            else:
                _invalid(upd, "stream.3whs_synack_in_wrong_direction")
            return
        if not flags & TH_ACK:
            upd.accept = False
            return
        if to_server:
            if pkt.ack & _M32 != ssn.server.base:
                _invalid(upd, "stream.3whs_wrong_seq_wrong_ack")
                return
        elif pkt.ack & _M32 != ssn.client.base:
            # server talks before we saw the client's ACK; only trust it if it ACKs
            # exactly the client's ISN + 1
            _invalid(upd, "stream.3whs_ack_in_wrong_dir")
            return
        self._establish(flow, ssn, pkt, to_server, upd)

    def _closed(
        self, flow: Flow, ssn: TcpSession, pkt: Packet, to_server: bool, upd: StreamUpdate
    ) -> None:
        flags = pkt.tcp_flags
        if to_server and flags & TH_SYN and not flags & TH_ACK:
            if (pkt.seq + 1) & _M32 != ssn.client.base:
                # port reuse: a new connection on the same tuple
                self.counters["tcp.ssn_reuse"] += 1
                flow.tcp = None
                flow.state = "new"
                self._no_session(flow, pkt, to_server, upd)
            return
        # late ACKs/FINs of the closed session: fine as packets, nothing to reassemble

    def _reset(self, flow: Flow, ssn: TcpSession, to_server: bool, upd: StreamUpdate) -> None:
        self.counters["tcp.rst"] += 1
        self._close(flow, ssn, upd)

    def _close(self, flow: Flow, ssn: TcpSession, upd: StreamUpdate) -> None:
        """Both sides end (RST, or the second FIN): what they still hold is delivered."""
        self._flush_both(ssn, upd)
        ssn.state = S_CLOSED
        flow.state = STATE_CLOSED
        upd.closed = True

    def _established(
        self, flow: Flow, ssn: TcpSession, pkt: Packet, to_server: bool, upd: StreamUpdate
    ) -> None:
        flags = pkt.tcp_flags
        sender = ssn.client if to_server else ssn.server
        peer = ssn.server if to_server else ssn.client
        if flags & TH_SYN:
            if to_server and not flags & TH_ACK:
                same = (pkt.seq + 1) & _M32 == sender.base
                upd.events.append(
                    "stream.est_syn_resend" if same else "stream.est_syn_resend_diff_seq"
                )
            elif not to_server and flags & TH_ACK:
                same = (pkt.seq + 1) & _M32 == sender.base
                upd.events.append(
                    "stream.est_synack_resend" if same else "stream.est_synack_resend_with_diff_seq"
                )
            else:
                upd.events.append(
                    "stream.est_syn_toclient" if not to_server else "stream.est_synack_toserver"
                )
            upd.accept = False
            upd.invalid = True
            return
        if not sender.base_set:  # midstream: first packet of this side
            sender.set_base(pkt.seq)
        if flags & TH_RST:
            off = sender.offset(pkt.seq)
            low = min(sender.app_off, sender.ack_off if sender.ack_off >= 0 else sender.app_off)
            high = max(sender.max_end, sender.ack_off) + _RST_WINDOW
            if off < low - 1 or off > high:
                _invalid(upd, "stream.suspected_rst_inject")
                return
            self._reset(flow, ssn, to_server, upd)
            return
        cfg = self.config
        if ssn.oneside and to_server != ssn.oneside_toserver:
            ssn.oneside = False  # the other side shows up after all: back to ACK-driven
        # 1. what this packet ACKs of the other direction (IDS mode delivery)
        if flags & TH_ACK and peer.base_set:
            ack_off = peer.offset(pkt.ack)
            if ack_off > peer.max_end + _MAX_AHEAD:
                upd.events.append("stream.pkt_invalid_ack")
                upd.invalid = True
            elif ack_off > peer.ack_off:
                peer.ack_off = ack_off
                self._deliver_acked(peer, not to_server, upd)
        # 2. this packet's own data
        payload = pkt.payload
        seg_off = sender.offset(pkt.seq)
        if payload and len(payload) == 1 and seg_off == sender.max_end - 1 and not flags & TH_FIN:
            # keep-alive probe (one old byte at next_seq - 1): not data, not a retransmission
            self.counters["tcp.keepalive"] += 1
        elif payload:
            self._insert(sender, seg_off, payload, to_server, upd)
            if cfg.inline or ssn.oneside:
                self._deliver(sender, sender.ctg_end, to_server, upd)
            elif sender.ctg_end - sender.app_off > cfg.max_unacked:
                self.counters["tcp.forced_flush"] += 1
                self._deliver(sender, sender.ctg_end, to_server, upd)
        # 3. FIN: this side is done sending
        if flags & TH_FIN:
            if sender.fin_off < 0:
                self.counters["tcp.fin"] += 1
                sender.fin_off = seg_off + len(payload)
            if peer.fin_off >= 0:
                self._close(flow, ssn, upd)
            else:
                ssn.state = S_FIN_WAIT if to_server else S_CLOSE_WAIT

    # -- reassembly -------------------------------------------------------------------

    def _insert(
        self, half: _Half, off: int, data: bytes, to_server: bool, upd: StreamUpdate
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
        if off > half.ctg_end + _MAX_AHEAD:
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
        self, half: _Half, off: int, size: int, to_server: bool, upd: StreamUpdate
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
            self.memuse -= _discard(ssn.client) + _discard(ssn.server)

    def _depth_reached(self, half: _Half, to_server: bool, upd: StreamUpdate) -> None:
        if half.depth_hit:
            return
        half.depth_hit = True
        self.counters["tcp.stream_depth_reached"] += 1
        upd.events.append("stream.reassembly_depth_reached")
        if to_server:
            upd.depth_reached_toserver = True
        else:
            upd.depth_reached_toclient = True

    def _deliver_acked(self, half: _Half, to_server: bool, upd: StreamUpdate) -> None:
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

    def _flush_both(self, ssn: TcpSession, upd: StreamUpdate) -> None:
        """Deliver what both sides hold, to-server first."""
        self._flush_half(ssn.client, True, upd)
        self._flush_half(ssn.server, False, upd)

    def _flush_half(self, half: _Half, to_server: bool, upd: StreamUpdate) -> None:
        end = half.max_end
        if half.starts:
            end = max(end, half.starts[-1] + len(half.datas[-1]))
        self._deliver(half, end, to_server, upd, skip_gaps=True)

    def _deliver(
        self,
        half: _Half,
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

    def _emit(self, half: _Half, end: int, to_server: bool, upd: StreamUpdate) -> None:
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


def _discard(half: _Half) -> int:
    """Forget everything buffered in ``half``; return the bytes freed."""
    freed = half.buffered
    half.starts.clear()
    half.datas.clear()
    half.buffered = 0
    half.ctg_end = half.app_off
    half.max_end = half.app_off
    return freed
