"""Per-flow TCP state: the session and its two half streams (``flow.tcp`` holds it).

The flow owns this state; the stream tracker (``ruleengine.stream``) drives it. It lives
here, below the tracker, so a flow can name its session's type without importing the
tracker that imports the flow.

Sequence numbers become 64-bit stream offsets (offset 0 = ISN + 1) by signed 32-bit
distance from the current contiguous end (``HalfStream.offset``), so wraparound needs no
special case.
"""

from __future__ import annotations

SEQ_MASK = 0xFFFFFFFF
_HALF32 = 0x80000000
_WRAP = 0x100000000

# Session states (Suricata names, collapsed where this tracker does not distinguish).
S_NONE = 0
S_SYN_SENT = 1
S_SYN_RECV = 2
S_ESTABLISHED = 3
S_FIN_WAIT = 4  # the server sent FIN first (Suricata's fin_wait1)
S_CLOSE_WAIT = 5  # the client sent FIN first (Suricata's close_wait)
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


class HalfStream:
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
        self.gap = False  # a hole was skipped in this direction (EVE tcp.ts_gap/tc_gap)

    def set_base(self, seq: int) -> None:
        self.base = seq & SEQ_MASK
        self.base_set = True

    def offset(self, seq: int) -> int:
        ref = self.ctg_end
        d = (seq - self.base - ref) & SEQ_MASK
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
        "async_last",
        "async_win",
        "client",
        "midstream",
        "oneside",
        "oneside_toserver",
        "server",
        "state",
    )

    def __init__(self) -> None:
        self.state = S_NONE
        self.client = HalfStream()
        self.server = HalfStream()
        self.midstream = False
        self.oneside = False  # async-oneside: the peer's ACKs are never seen
        self.oneside_toserver = True  # the direction that is visible when ``oneside``
        # SYN/ACK never seen (async-oneside): the client's window as its first ACK gave it
        # (unscaled) and the stream offset of its latest data packet: Suricata checks a
        # client FIN against last_ack + window (StreamTcpHandleFin); -1: not such a session
        self.async_win = -1
        self.async_last = 0

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

    @property
    def ts_gap(self) -> bool:
        return self.client.gap

    @property
    def tc_gap(self) -> bool:
        return self.server.gap
