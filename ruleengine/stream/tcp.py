"""TCP session tracking and stream reassembly (modelled on Suricata's stream engine).

Per flow, a ``TcpSession`` follows the handshake and keeps two ``HalfStream`` streams
(client→server and server→client); the session is the flow's state and lives beside it
(``ruleengine.flow.tcp_session``, which also tells how sequence numbers become stream
offsets). This module is the state machine; ``TcpTracker`` inherits the segment store
and delivery from ``ruleengine.stream.reassembly`` (overlaps, retransmissions,
out-of-order buffering, memcap, depth, gaps) and decides *when* data goes out.

Delivery to the app layer follows Suricata: in IDS mode data goes out when the other
side ACKs it (processed on the ACKing packet, before that packet's own data); in inline
mode (``stream.inline``/IPS) contiguous data goes out on arrival. When the peer ACKs
data that was never seen, the hole is skipped and reported as a gap. Contiguous data
not ACKed after ``max_unacked`` bytes (one-sided captures) is delivered anyway. RST and
the close of both sides flush everything buffered; ``TcpTracker.flush`` does it at flow
end.

Handshake: a SYN creates the session (its sender is the client); SYN/ACK with the right
ACK → ``syn_recv``; the client's ACK → established. Without ``midstream`` a session can
only start with a SYN; packets of other flows get ``accept = False`` (inspected as
packets, not as stream). With ``midstream``, a SYN/ACK or any ACK packet starts a session
(established at once for ACK packets). ``async_oneside`` accepts a handshake where the
SYN/ACK was not seen. Window tracking and TCP options (timestamps, SACK) are not modelled;
RST acceptance only checks that the sequence number is plausible.
"""

from __future__ import annotations

from ruleengine.decode.packet import TH_ACK, TH_FIN, TH_RST, TH_SYN, Packet
from ruleengine.flow.table import STATE_BYPASSED, STATE_CLOSED, STATE_ESTABLISHED, Flow
from ruleengine.flow.tcp_session import (
    S_CLOSE_WAIT,
    S_CLOSED,
    S_ESTABLISHED,
    S_FIN_WAIT,
    S_NONE,
    S_SYN_RECV,
    S_SYN_SENT,
    SEQ_MASK,
    STATE_NAMES,
    TcpSession,
)
from ruleengine.stream.config import StreamConfig
from ruleengine.stream.reassembly import Reassembler, discard
from ruleengine.stream.update import MAX_AHEAD, StreamUpdate

# Names importers of this module used before config, session and reassembly moved out.
__all__ = [
    "COUNTER_NAMES",
    "STATE_NAMES",
    "S_CLOSED",
    "S_CLOSE_WAIT",
    "S_ESTABLISHED",
    "S_FIN_WAIT",
    "S_NONE",
    "S_SYN_RECV",
    "S_SYN_SENT",
    "StreamConfig",
    "StreamUpdate",
    "TcpSession",
    "TcpTracker",
]

# Window assumed for RST validation (window scaling is not tracked): a RST must carry a
# sequence number between what the peer ACKed and this much beyond the highest data.
_RST_WINDOW = 1 << 20
# session state entered -> the flow's state and the StreamUpdate flag that reports it
_ENTERED = {S_ESTABLISHED: (STATE_ESTABLISHED, "established"), S_CLOSED: (STATE_CLOSED, "closed")}


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


class TcpTracker(Reassembler):
    """Feeds TCP packets through session state and reassembly."""

    def __init__(self, config: StreamConfig | None = None) -> None:
        super().__init__(
            config if config is not None else StreamConfig(),
            dict.fromkeys(COUNTER_NAMES, 0),
        )

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
            self._flush_half(ssn.client, True, upd)
            self._flush_half(ssn.server, False, upd)
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
        if flags & TH_RST and state in (S_SYN_SENT, S_SYN_RECV):
            self._reset(flow, ssn, to_server, upd)  # any RST ends a handshake
            return
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
        self._enter(flow, ssn, upd, S_ESTABLISHED)
        self._established(flow, ssn, pkt, to_server, upd)

    def _enter(self, flow: Flow, ssn: TcpSession, upd: StreamUpdate, state: int) -> None:
        """The session enters ``state``; its flow follows and the update reports it."""
        ssn.state = state
        flow.state, reported = _ENTERED[state]
        setattr(upd, reported, True)

    def _syn_sent(
        self, flow: Flow, ssn: TcpSession, pkt: Packet, to_server: bool, upd: StreamUpdate
    ) -> None:
        flags = pkt.tcp_flags
        if to_server:
            if flags & TH_SYN:  # SYN retransmission (maybe a new ISN: follow it)
                ssn.client.set_base(pkt.seq + 1)
                return
            if self.config.async_oneside and flags & TH_ACK:
                # SYN/ACK never seen (asymmetric routing): trust the client's ACK
                ssn.server.set_base(pkt.ack)
                ssn.oneside = True
                ssn.async_win = pkt.window
                ssn.async_last = ssn.client.offset(pkt.seq)
                self._enter(flow, ssn, upd, S_ESTABLISHED)
                self._established(flow, ssn, pkt, to_server, upd)
                return
            upd.accept = False
            return
        if flags & TH_SYN and flags & TH_ACK:
            client = ssn.client
            ack_off = client.offset(pkt.ack)
            tfo = client.max_end
            if ack_off != 0 and not (tfo and ack_off == tfo):
                upd.events.append("stream.3whs_synack_with_wrong_ack")
                upd.accept = False
                upd.invalid = True
                return
            self.counters["tcp.synack"] += 1
            ssn.server.set_base(pkt.seq + 1)
            ssn.state = S_SYN_RECV
            if tfo and ack_off == 0:  # the server did not take the SYN's data
                upd.events.append("stream.3whs_synack_tfo_data_ignored")
                self.memuse -= discard(client)
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
        if flags & TH_SYN:
            if to_server and not flags & TH_ACK:
                if (pkt.seq + 1) & SEQ_MASK != ssn.client.base:
                    upd.events.append("stream.3whs_syn_resend_diff_seq_on_syn_recv")
            elif not to_server and flags & TH_ACK:
                if (pkt.seq + 1) & SEQ_MASK != ssn.server.base:
                    upd.events.append("stream.3whs_synack_resend_with_diff_seq")
            else:
                upd.events.append("stream.3whs_synack_in_wrong_direction")
                upd.accept = False
                upd.invalid = True
            return
        if not flags & TH_ACK:
            upd.accept = False
            return
        if to_server:
            if pkt.ack & SEQ_MASK != ssn.server.base:
                upd.events.append("stream.3whs_wrong_seq_wrong_ack")
                upd.accept = False
                upd.invalid = True
                return
        elif pkt.ack & SEQ_MASK != ssn.client.base:
            # server talks before we saw the client's ACK; only trust it if it ACKs
            # exactly the client's ISN + 1
            upd.events.append("stream.3whs_ack_in_wrong_dir")
            upd.accept = False
            upd.invalid = True
            return
        self._enter(flow, ssn, upd, S_ESTABLISHED)
        self._established(flow, ssn, pkt, to_server, upd)

    def _closed(
        self, flow: Flow, ssn: TcpSession, pkt: Packet, to_server: bool, upd: StreamUpdate
    ) -> None:
        flags = pkt.tcp_flags
        if to_server and flags & TH_SYN and not flags & TH_ACK:
            if (pkt.seq + 1) & SEQ_MASK != ssn.client.base:
                # port reuse: a new connection on the same tuple
                self.counters["tcp.ssn_reuse"] += 1
                flow.tcp = None
                flow.state = "new"
                self._no_session(flow, pkt, to_server, upd)
            return
        # late ACKs/FINs of the closed session: fine as packets, nothing to reassemble

    def _reset(self, flow: Flow, ssn: TcpSession, to_server: bool, upd: StreamUpdate) -> None:
        self.counters["tcp.rst"] += 1
        self._flush_half(ssn.client, True, upd)
        self._flush_half(ssn.server, False, upd)
        self._enter(flow, ssn, upd, S_CLOSED)

    def _established(
        self, flow: Flow, ssn: TcpSession, pkt: Packet, to_server: bool, upd: StreamUpdate
    ) -> None:
        flags = pkt.tcp_flags
        sender = ssn.client if to_server else ssn.server
        peer = ssn.server if to_server else ssn.client
        if flags & TH_SYN:
            if to_server and not flags & TH_ACK:
                same = (pkt.seq + 1) & SEQ_MASK == sender.base
                upd.events.append(
                    "stream.est_syn_resend" if same else "stream.est_syn_resend_diff_seq"
                )
            elif not to_server and flags & TH_ACK:
                same = (pkt.seq + 1) & SEQ_MASK == sender.base
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
                upd.events.append("stream.suspected_rst_inject")
                upd.accept = False
                upd.invalid = True
                return
            self._reset(flow, ssn, to_server, upd)
            return
        cfg = self.config
        if ssn.oneside and to_server != ssn.oneside_toserver:
            ssn.oneside = False  # the other side shows up after all: back to ACK-driven
            ssn.async_win = -1  # its packets carry the windows from now on
        # 1. what this packet ACKs of the other direction (IDS mode delivery)
        if flags & TH_ACK and peer.base_set:
            ack_off = peer.offset(pkt.ack)
            if ack_off > peer.max_end + MAX_AHEAD:
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
            if to_server and ssn.async_win >= 0:
                ssn.async_last = max(ssn.async_last, seg_off)
            self._insert(sender, seg_off, payload, to_server, upd)
            if cfg.inline or ssn.oneside:
                self._deliver(sender, sender.ctg_end, to_server, upd)
            elif sender.ctg_end - sender.app_off > cfg.max_unacked:
                self.counters["tcp.forced_flush"] += 1
                self._deliver(sender, sender.ctg_end, to_server, upd)
        # 3. FIN: this side is done sending
        if flags & TH_FIN and to_server and ssn.async_win >= 0 \
                and seg_off > ssn.async_last + ssn.async_win:
            upd.events.append("stream.fin_out_of_window")  # Suricata ignores this FIN
        elif flags & TH_FIN:
            if sender.fin_off < 0:
                self.counters["tcp.fin"] += 1
                sender.fin_off = seg_off + len(payload)
            if peer.fin_off >= 0:
                self._flush_half(ssn.client, True, upd)
                self._flush_half(ssn.server, False, upd)
                self._enter(flow, ssn, upd, S_CLOSED)
            else:
                ssn.state = S_CLOSE_WAIT if to_server else S_FIN_WAIT  # as Suricata names them
