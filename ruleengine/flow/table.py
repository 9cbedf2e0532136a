"""Flow table: symmetric 5-tuple (+ VLAN) key, per-state timeouts, bounded size.

VLAN ids are part of the key unless ``use_vlan`` is off (``vlan.use-for-tracking: no``);
``flow.vlan`` always records the first packet's tags.

A flow's direction is fixed by its first packet: its sender is the client and
packets from it are ``to_server``. Exceptions for TCP: when the first packet is a
SYN/ACK its *receiver* is the client (as in Suricata's midstream handling), and a SYN
from the "server" side of a flow that has no TCP session yet (a stray packet came
first) makes the SYN sender the client.

Timeouts follow Suricata's ``flow-timeouts`` (state-dependent: ``new`` until both
sides were seen or the TCP handshake completed, ``established``, ``closed`` for TCP
after FIN/RST, ``bypassed`` once bypassed). ``expire(now)`` scans the table at most
once per ``expire_interval`` seconds of capture time, and on tables larger than 100k
flows once per ``len/100k`` seconds (like Suricata's flow manager, a flow may outlive
its timeout by up to that interval).

``flow.memcap`` bounds the table as Suricata's flow memcap does: the table holds at most
``memcap // FLOW_COST_BYTES`` flows, an honest estimate of what one tracked flow costs here
(measured with bench/flow_memcap.py). A new flow beyond it takes the place of the oldest
(Suricata's FlowGetUsedFlow when the memcap is reached), counted in ``flow.memcap``.

When ``max_flows`` is reached the oldest flow is evicted (``end_reason`` "forced"), and
a SYN with a new ISN on a closed TCP flow replaces it (``end_reason`` "tcp_reuse");
such flows are handed out by the next ``expire``/``flush`` call, so none is lost for
logging.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from ruleengine.capture import BypassCounters
from ruleengine.decode.packet import IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, Packet

if TYPE_CHECKING:
    from ruleengine.flow.tcp_session import TcpSession

BYPASS_NONE = 0
BYPASS_LOCAL = 1
BYPASS_CAPTURE = 2

STATE_NEW = "new"
STATE_ESTABLISHED = "established"
STATE_CLOSED = "closed"
STATE_BYPASSED = "bypassed"

_TH_SYN_ACK = 0x12
_TH_SYN = 0x02
_TH_SYN_ACK_RST = 0x16
_SCAN_RATE = 100_000  # flows per second of capture time the expiry scan may look at
# Bytes one tracked TCP flow costs in this engine (flow, TCP session, detection and pipeline
# state), measured through `ruleengine run` with no cap (tests/test_memcap_scale.py's
# traffic, 50,000 flows): 6.3 KB with a SYN only, 7.2 KB with a first HTTP request. The
# margin is for the allocator's fragmentation under eviction churn. flow.memcap divides by
# it, so the table's memory stays within the configured memcap.
FLOW_COST_BYTES = 9216

# (lower addr, its port, higher addr, its port, proto, vlan ids, tunnel depth)
FlowKey = tuple[bytes, int, bytes, int, int, tuple[int, ...], int]

_rng = random.Random(os.urandom(16))
# forked workers (pcap and AF_PACKET runs) must not draw the same flow ids
os.register_at_fork(after_in_child=lambda: _rng.seed(os.urandom(16)))


def new_flow_id() -> int:
    """A random positive 51-bit id (Suricata's flow_id fits a JSON-safe integer)."""
    while True:
        fid = _rng.getrandbits(51)
        if fid:
            return fid


@dataclass(frozen=True)
class ProtoTimeouts:
    new: float
    established: float
    closed: float
    bypassed: float


_DEFAULTS: dict[str, ProtoTimeouts] = {
    "default": ProtoTimeouts(new=30, established=300, closed=0, bypassed=100),
    "tcp": ProtoTimeouts(new=60, established=600, closed=60, bypassed=100),
    "udp": ProtoTimeouts(new=30, established=300, closed=0, bypassed=100),
    "icmp": ProtoTimeouts(new=30, established=300, closed=0, bypassed=100),
}


@dataclass(frozen=True)
class FlowTimeouts:
    """Suricata's ``flow-timeouts`` section (seconds), with its defaults."""

    default: ProtoTimeouts = _DEFAULTS["default"]
    tcp: ProtoTimeouts = _DEFAULTS["tcp"]
    udp: ProtoTimeouts = _DEFAULTS["udp"]
    icmp: ProtoTimeouts = _DEFAULTS["icmp"]

    @classmethod
    def from_mapping(cls, section: Mapping[str, object] | None) -> FlowTimeouts:
        """Build from the YAML ``flow-timeouts`` mapping; unknown or bad values are
        ignored (the default is kept), as Suricata does for unset keys.

        As Suricata's FlowInitFlowProto (flow.c): each protocol starts from its own
        built-in values and only its own section overrides them; ``default`` is the
        section of the other IP protocols (SCTP, GRE...), not a base tcp/udp/icmp inherit.

        Keys: ``default|tcp|udp|icmp`` → ``new``, ``established``, ``closed``,
        ``bypassed`` (``emergency-*`` keys are accepted and ignored).
        """
        if not isinstance(section, Mapping):
            return cls()
        result: dict[str, ProtoTimeouts] = {}
        for proto, base in _DEFAULTS.items():
            sub = section.get(proto)
            values = {f.name: getattr(base, f.name) for f in fields(ProtoTimeouts)}
            if isinstance(sub, Mapping):
                for name in values:
                    raw = sub.get(name)
                    seconds = _seconds(raw)
                    if seconds is not None:
                        values[name] = seconds
            result[proto] = ProtoTimeouts(**values)
        return cls(**result)

    def for_proto(self, proto: int) -> ProtoTimeouts:
        if proto == IPPROTO_TCP:
            return self.tcp
        if proto == IPPROTO_UDP:
            return self.udp
        if proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
            return self.icmp
        return self.default


def _seconds(raw: object) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        return float(raw) if raw >= 0 else None
    if isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            return None
        return value if value >= 0 else None
    return None


def _one_packet(to_server: bool, nbytes: int) -> BypassCounters:
    if to_server:
        return BypassCounters(pkts_toserver=1, bytes_toserver=nbytes, pkts_toclient=0,
                              bytes_toclient=0)
    return BypassCounters(pkts_toserver=0, bytes_toserver=0, pkts_toclient=1,
                          bytes_toclient=nbytes)


class Flow:
    """One bidirectional conversation. ``src``/``sport`` are the client's."""

    __slots__ = (
        "alproto",
        "alproto_tc",
        "alproto_ts",
        "app",
        "bypass",
        "bypass_reason",
        "bypass_ts",
        "bypassed_bytes_toclient",
        "bypassed_bytes_toserver",
        "bypassed_pkts_toclient",
        "bypassed_pkts_toserver",
        "bytes_toclient",
        "bytes_toserver",
        "detect",
        "dport",
        "dst",
        "end_reason",
        "flow_id",
        "flowbits",
        "inspected_bytes",
        "inspected_pkts",
        "ip_version",
        "key",
        "last_ts",
        "leaked_bytes",
        "leaked_pkts",
        "max_ttl_toclient",
        "max_ttl_toserver",
        "min_ttl_toclient",
        "min_ttl_toserver",
        "pkts_toclient",
        "pkts_toserver",
        "proto",
        "sport",
        "src",
        "start_ts",
        "state",
        "tcp",
        "timeouts",
        "user",
        "vlan",
    )

    def __init__(
        self,
        key: FlowKey,
        ip_version: int,
        proto: int,
        src: bytes,
        dst: bytes,
        sport: int,
        dport: int,
        vlan: tuple[int, ...],
        ts: float,
        timeouts: ProtoTimeouts,
    ) -> None:
        self.flow_id = new_flow_id()
        self.key = key
        self.ip_version = ip_version
        self.proto = proto
        self.src = src
        self.dst = dst
        self.sport = sport
        self.dport = dport
        self.vlan = vlan
        self.start_ts = ts
        self.last_ts = ts
        self.pkts_toserver = 0
        self.pkts_toclient = 0
        self.bytes_toserver = 0
        self.bytes_toclient = 0
        # TTL / hop limit range per direction (EVE netflow min_ttl / max_ttl); 0: none seen
        self.min_ttl_toserver = self.max_ttl_toserver = 0
        self.min_ttl_toclient = self.max_ttl_toclient = 0
        self.state = STATE_NEW
        self.tcp: TcpSession | None = None
        self.alproto: str | None = None
        # the protocol each direction's own data showed (Suricata's alproto_ts/_tc);
        # None until that direction was looked at, then usually equal to ``alproto``
        self.alproto_ts: str | None = None
        self.alproto_tc: str | None = None
        # the app-layer parser and the pipeline's record (typed Any: this layer cannot
        # import their types; Any rather than object spares the pipeline a typing.cast
        # call per packet on each)
        self.app: Any = None
        self.flowbits: set[str] = set()
        self.detect: object | None = None
        self.bypass = BYPASS_NONE
        self.bypass_ts = 0.0
        self.bypass_reason: str | None = None  # rule:<sid>, stream-depth, encryption, ...
        self.bypassed_pkts_toserver = 0
        self.bypassed_pkts_toclient = 0
        self.bypassed_bytes_toserver = 0
        self.bypassed_bytes_toclient = 0
        # accounting of a bypassed flow: what it had when the bypass was set (all of it was
        # inspected) and what still reached user space after a capture bypass (leakage)
        self.inspected_pkts = 0
        self.inspected_bytes = 0
        self.leaked_pkts = 0
        self.leaked_bytes = 0
        self.end_reason = ""
        self.timeouts = timeouts
        self.user: Any = None  # free slot for other stages (the pipeline's record)

    def timeout(self) -> float:
        """Seconds of inactivity after which this flow expires (depends on state)."""
        t = self.timeouts
        state = self.state
        if state == STATE_ESTABLISHED:
            return t.established
        if state == STATE_NEW:
            return t.new
        if state == STATE_CLOSED:
            return t.closed
        return t.bypassed

    def set_bypassed(self, mode: int, ts: float) -> None:
        """Mark the flow bypassed (``BYPASS_LOCAL`` or ``BYPASS_CAPTURE``)."""
        self.bypass = mode
        self.bypass_ts = ts
        self.state = STATE_BYPASSED

    def mark_inspected(self) -> None:
        """The bypass is set now: every packet counted so far was inspected."""
        self.inspected_pkts = self.pkts_toserver + self.pkts_toclient
        self.inspected_bytes = self.bytes_toserver + self.bytes_toclient

    def count_leaked(self, nbytes: int) -> None:
        """A packet of a capture-bypassed flow reached user space anyway."""
        self.leaked_pkts += 1
        self.leaked_bytes += nbytes

    def count(self, to_server: bool, nbytes: int, ttl: int = 0) -> None:
        """Account one packet of the flow in its direction (``ttl``: its TTL / hop
        limit, for the per-direction range)."""
        if to_server:
            if not self.pkts_toserver or ttl < self.min_ttl_toserver:
                self.min_ttl_toserver = ttl
            if ttl > self.max_ttl_toserver:
                self.max_ttl_toserver = ttl
            self.pkts_toserver += 1
            self.bytes_toserver += nbytes
        else:
            if not self.pkts_toclient or ttl < self.min_ttl_toclient:
                self.min_ttl_toclient = ttl
            if ttl > self.max_ttl_toclient:
                self.max_ttl_toclient = ttl
            self.pkts_toclient += 1
            self.bytes_toclient += nbytes

    def count_bypassed(self, to_server: bool, nbytes: int) -> None:
        """Account a packet seen after the bypass (local bypass: the engine skips it; the
        flow table counted it already)."""
        self._add_bypassed(_one_packet(to_server, nbytes))

    def add_capture_bypassed(self, counts: BypassCounters) -> None:
        """Packets the capture bypassed (never seen here): they count for the flow and as
        bypassed."""
        self._add_bypassed(counts)
        self.pkts_toserver += counts.pkts_toserver
        self.pkts_toclient += counts.pkts_toclient
        self.bytes_toserver += counts.bytes_toserver
        self.bytes_toclient += counts.bytes_toclient

    def add_leaked(self, counts: BypassCounters) -> None:
        """Packets of a capture-bypassed flow that reached user space but not this table (a
        capture's fast path kept them from the engine by their flow key): they count for
        the flow and as leaked, not as bypassed."""
        self.pkts_toserver += counts.pkts_toserver
        self.pkts_toclient += counts.pkts_toclient
        self.bytes_toserver += counts.bytes_toserver
        self.bytes_toclient += counts.bytes_toclient
        self.leaked_pkts += counts.pkts_toserver + counts.pkts_toclient
        self.leaked_bytes += counts.bytes_toserver + counts.bytes_toclient

    def _add_bypassed(self, counts: BypassCounters) -> None:
        self.bypassed_pkts_toserver += counts.pkts_toserver
        self.bypassed_pkts_toclient += counts.pkts_toclient
        self.bypassed_bytes_toserver += counts.bytes_toserver
        self.bypassed_bytes_toclient += counts.bytes_toclient

    def reverse(self) -> None:
        """Swap client and server: addresses, ports, per-direction counters and the TCP
        session's halves. For Suricata's app-layer "reverse flow" on a midstream pick-up
        (e.g. the first data seen was an HTTP response); later ``lookup`` results follow."""
        self.src, self.dst = self.dst, self.src
        self.sport, self.dport = self.dport, self.sport
        self.alproto_ts, self.alproto_tc = self.alproto_tc, self.alproto_ts
        self.pkts_toserver, self.pkts_toclient = self.pkts_toclient, self.pkts_toserver
        self.min_ttl_toserver, self.min_ttl_toclient = self.min_ttl_toclient, \
            self.min_ttl_toserver
        self.max_ttl_toserver, self.max_ttl_toclient = self.max_ttl_toclient, \
            self.max_ttl_toserver
        self.bytes_toserver, self.bytes_toclient = self.bytes_toclient, self.bytes_toserver
        b = (self.bypassed_pkts_toserver, self.bypassed_bytes_toserver)
        self.bypassed_pkts_toserver = self.bypassed_pkts_toclient
        self.bypassed_bytes_toserver = self.bypassed_bytes_toclient
        self.bypassed_pkts_toclient, self.bypassed_bytes_toclient = b
        if self.tcp is not None:
            self.tcp.reverse()

    def tuple_toserver(self) -> tuple[bytes, bytes, int, int, int]:
        return (self.src, self.dst, self.sport, self.dport, self.proto)

    def __repr__(self) -> str:
        return (
            f"Flow(id={self.flow_id}, proto={self.proto}, {self.src.hex()}:{self.sport} -> "
            f"{self.dst.hex()}:{self.dport}, state={self.state}, "
            f"pkts={self.pkts_toserver}/{self.pkts_toclient})"
        )


class FlowTable:
    """Maps packets to flows; creates flows on first sight; expires idle ones."""

    def __init__(
        self,
        timeouts: FlowTimeouts | None = None,
        *,
        max_flows: int = 1_000_000,
        expire_interval: float = 1.0,
        use_vlan: bool = True,
        memcap: int = 0,
        use_recursion: bool = True,
    ) -> None:
        self.timeouts = timeouts if timeouts is not None else FlowTimeouts()
        if memcap > 0:  # flow.memcap (0: only max_flows bounds the table)
            max_flows = min(max_flows, memcap // FLOW_COST_BYTES)
        self.max_flows = max(1, max_flows)
        self.memcap = memcap
        self.expire_interval = expire_interval
        self.use_vlan = use_vlan  # suricata.yaml vlan.use-for-tracking
        # decoder.recursion-level.use-for-tracking: a tunnelled flow and the same tuple
        # outside (or at another depth) are different flows, as Suricata's flow hash
        # and FlowCompare include p->recursion_level
        self.use_recursion = use_recursion
        self.flows: dict[FlowKey, Flow] = {}
        # flows pushed out (max_flows / flow.memcap) or replaced (TCP reuse), waiting to
        # be ended by the caller: take_evicted() or the next expire()/flush()
        self.evicted: list[Flow] = []
        self._next_scan = float("-inf")
        self.counters: dict[str, int] = {
            "flow.total": 0,
            "flow.tcp": 0,
            "flow.udp": 0,
            "flow.icmpv4": 0,
            "flow.icmpv6": 0,
            "flow.end.forced": 0,
            "flow.tcp_reuse": 0,
            "flow.timeouts": 0,
            "flow.memcap": 0,  # new flows that found the table full (an old one made room)
            "flow.emerg_mode_entered": 0,
        }

    def __len__(self) -> int:
        return len(self.flows)

    def lookup(self, pkt: Packet) -> tuple[Flow, bool]:
        """Return ``(flow, to_server)`` for a decoded IP packet, creating the flow."""
        src = pkt.src
        dst = pkt.dst
        sport = pkt.sport
        dport = pkt.dport
        vlan = pkt.vlan if self.use_vlan else ()
        tunnel = pkt.tunnel
        depth = 0 if tunnel is None or not self.use_recursion else tunnel[6]
        if (src, sport) <= (dst, dport):
            key: FlowKey = (src, sport, dst, dport, pkt.proto, vlan, depth)
        else:
            key = (dst, dport, src, sport, pkt.proto, vlan, depth)
        if pkt.icmp_emb is not None:
            quoted = self._quoted_flow(pkt, pkt.icmp_emb, depth)
            if quoted is not None:
                return quoted
        flow = self.flows.get(key)
        if flow is None:
            flow = self._create(key, pkt)
        elif flow.state == STATE_CLOSED and pkt.tcp_flags & _TH_SYN_ACK_RST == _TH_SYN:
            flow = self._maybe_reuse(flow, key, pkt)
        to_server = src == flow.src and sport == flow.sport
        if src == dst and sport == dport:
            to_server = True  # a flow to itself: no way to tell, call it client→server
        elif (
            not to_server
            and flow.tcp is None
            and pkt.proto == IPPROTO_TCP
            and pkt.tcp_flags & _TH_SYN_ACK == _TH_SYN
        ):
            # a SYN from the side a stray first packet made the "server": the SYN
            # sender is the client (no TCP session exists yet to contradict it)
            flow.reverse()
            to_server = True
        flow.count(to_server, pkt.length, pkt.ttl)
        if not to_server and flow.state == STATE_NEW and flow.proto != IPPROTO_TCP:
            flow.state = STATE_ESTABLISHED  # UDP/ICMP/other: reply seen
        flow.last_ts = pkt.ts
        return flow, to_server

    def _maybe_reuse(self, flow: Flow, key: FlowKey, pkt: Packet) -> Flow:
        """A SYN with a new ISN on a closed TCP flow starts a new flow (Suricata's TCP
        session reuse); the old one ends with reason ``tcp_reuse``."""
        ssn = flow.tcp
        if pkt.proto != IPPROTO_TCP or ssn is None:
            return flow
        client = ssn.client if pkt.src == flow.src else ssn.server
        if client.base_set and (pkt.seq + 1) & 0xFFFFFFFF == client.base:
            return flow  # a retransmitted SYN of the old connection
        del self.flows[key]
        flow.end_reason = "tcp_reuse"
        self.counters["flow.tcp_reuse"] += 1
        self.evicted.append(flow)
        return self._create(key, pkt)

    def _quoted_flow(
        self, pkt: Packet, emb: tuple[bytes, bytes, int, int, int], depth: int
    ) -> tuple[Flow, bool] | None:
        """An ICMP destination-unreachable belongs to the flow of the packet it quotes
        (Suricata's ``ICMPV4_DEST_UNREACH_IS_VALID`` lookup); direction by address."""
        src, dst, sport, dport, proto = emb
        vlan = pkt.vlan if self.use_vlan else ()
        if (src, sport) <= (dst, dport):
            key: FlowKey = (src, sport, dst, dport, proto, vlan, depth)
        else:
            key = (dst, dport, src, sport, proto, vlan, depth)
        flow = self.flows.get(key)
        if flow is None:
            return None
        to_server = pkt.src == flow.src
        if to_server:
            flow.pkts_toserver += 1
            flow.bytes_toserver += pkt.length
        else:
            flow.pkts_toclient += 1
            flow.bytes_toclient += pkt.length
        flow.last_ts = pkt.ts
        return flow, to_server

    def _create(self, key: FlowKey, pkt: Packet) -> Flow:
        if len(self.flows) >= self.max_flows:
            self._evict_oldest()
        proto = pkt.proto
        src, dst, sport, dport = pkt.src, pkt.dst, pkt.sport, pkt.dport
        if proto == IPPROTO_TCP and pkt.tcp_flags & _TH_SYN_ACK == _TH_SYN_ACK:
            src, dst, sport, dport = dst, src, dport, sport  # SYN/ACK: receiver is client
        flow = Flow(
            key,
            pkt.ip_version,
            proto,
            src,
            dst,
            sport,
            dport,
            pkt.vlan,
            pkt.ts,
            self.timeouts.for_proto(proto),
        )
        self.flows[key] = flow
        c = self.counters
        c["flow.total"] += 1
        if proto == IPPROTO_TCP:
            c["flow.tcp"] += 1
        elif proto == IPPROTO_UDP:
            c["flow.udp"] += 1
        elif proto == IPPROTO_ICMP:
            c["flow.icmpv4"] += 1
        elif proto == IPPROTO_ICMPV6:
            c["flow.icmpv6"] += 1
        return flow

    def _evict_oldest(self) -> None:
        c = self.counters
        if c["flow.memcap"] == 0:
            c["flow.emerg_mode_entered"] += 1
        c["flow.memcap"] += 1
        oldest_key = next(iter(self.flows))
        flow = self.flows.pop(oldest_key)
        flow.end_reason = "forced"
        self.counters["flow.end.forced"] += 1
        self.evicted.append(flow)

    def remove(self, flow: Flow) -> None:
        """Drop a flow from the table (e.g. TCP port reuse); the caller logs it."""
        if self.flows.get(flow.key) is flow:
            del self.flows[flow.key]

    def take_evicted(self) -> list[Flow]:
        out = self.evicted
        self.evicted = []
        return out

    def expire(self, now: float, *, force: bool = False) -> list[Flow]:
        """Remove and return flows idle longer than their timeout (plus evicted ones)."""
        out = self.evicted
        self.evicted = []
        if not force and now < self._next_scan:
            return out
        # a full scan costs ~0.2 µs per flow: on big tables scan less often (at most
        # one scan per 100k flows per second of capture time, i.e. ~2% overhead)
        self._next_scan = now + max(self.expire_interval, len(self.flows) / _SCAN_RATE)
        expired = [f for f in self.flows.values() if now - f.last_ts > f.timeout()]
        flows = self.flows
        for f in expired:
            del flows[f.key]
            f.end_reason = "timeout"
        self.counters["flow.timeouts"] += len(expired)
        out.extend(expired)
        return out

    def flush(self) -> list[Flow]:
        """Remove and return every flow (end of run), oldest first."""
        out = self.evicted
        self.evicted = []
        for f in self.flows.values():
            f.end_reason = "shutdown"
        out.extend(self.flows.values())
        self.flows = {}
        return out
