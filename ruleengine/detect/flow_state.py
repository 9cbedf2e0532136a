"""What detection remembers per flow (``flow.detect``): which rule fired on which
transaction side, cached buffers and prefilter scans, flowints, flowvars, session tags,
the resolved rule groups of each direction; and the raw stream window of tx rules."""

from __future__ import annotations

from typing import Any

from ruleengine.detect.conditions import FlowLike
from ruleengine.detect.tag import TagEntry
from ruleengine.keywords.packet import packet_condition_matches
from ruleengine.rules.model import PacketCondition

_MAX_TX_STATE = 64  # per flow: transactions remembered for "fired once" and MPM caches
TX_DONE = -1  # marker in a (tx, direction) "fired" set: inspection finished


class FlowState:
    """Per-flow detection state kept in ``flow.detect``."""

    __slots__ = (
        "alerted", "buffers", "data_seen", "fired", "flowints", "flowvars", "generation",
        "iponly_done", "mpm_cache", "pass_cut", "pd_done", "raw", "sgh", "tags",
    )  # fmt: skip

    def __init__(self, generation: int = 0) -> None:
        # the DetectEngine generation whose rule indices ``fired``/``pd_done``/``mpm_cache``
        # use (a rule reload renumbers the rules: Suricata's flow de_ctx_version)
        self.generation = generation
        # (tx_id, side) -> (progress of that side, fetched buffers): getters run once per
        # progress step
        self.buffers: dict[
            tuple[int, bool], tuple[int | None, dict[tuple[str, bool], bytes | list[bytes] | None]]
        ] = {}
        self.alerted: tuple[object, int] | None = None  # (packet, alerts logged for it)
        # directions that carried data: Suricata knows a flow's app-layer protocol per
        # direction (alproto_ts / alproto_tc), once that direction's data was parsed
        self.data_seen: set[bool] = set()
        # (rule index, direction) of protocol-detection-only rules that matched: once
        # per direction, as Suricata inspects them once the direction's protocol is known
        self.pd_done: set[tuple[int, bool]] = set()
        # recent raw stream bytes per direction (index: to_server), for the payload part
        # of app-layer rules (Suricata's stream inspect engine of tx rules)
        self.raw: tuple[bytearray, bytearray] = (bytearray(), bytearray())
        self.fired: dict[tuple[int, bool], set[int]] = {}
        self.mpm_cache: dict[tuple[int, bool, str], tuple[object, set[int]]] = {}
        self.iponly_done: set[bool] = set()
        # per (direction, payloadless): the packet group's always-candidates resolved for
        # this flow's tuple, keyed by what they were resolved for (tuple, group version)
        self.sgh: dict[tuple[bool, bool], Resolved] = {}
        self.pass_cut: tuple[object, int] | None = None
        self.flowints: dict[str, int] = {}  # flowint (unsigned 32-bit)
        self.flowvars: dict[str, bytes] = {}  # pcre flow_ captures
        self.tags: list[TagEntry] = []  # session tags

    def release(self, tx_id: int, side: bool) -> None:
        """Drop the cached buffers and scans of a finished (transaction, side)."""
        self.buffers.pop((tx_id, side), None)
        for key in [k for k in self.mpm_cache if k[0] == tx_id and k[1] == side]:
            del self.mpm_cache[key]

    def forget_old(self, tx_id: int) -> None:
        if len(self.fired) <= 2 * _MAX_TX_STATE:
            return
        floor = tx_id - _MAX_TX_STATE
        self.fired = {k: v for k, v in self.fired.items() if k[0] >= floor}
        self.mpm_cache = {k: v for k, v in self.mpm_cache.items() if k[0] >= floor}
        self.buffers = {k: v for k, v in self.buffers.items() if k[0] >= floor}


def flow_state(flow: FlowLike | None, generation: int = 0) -> FlowState | None:
    if flow is None:
        return None
    st = flow.detect
    if not isinstance(st, FlowState):
        st = FlowState(generation)
        flow.detect = st
    return st


RAW_STREAM_WINDOW = 16384


def append_raw(window: bytearray, data: bytes) -> None:
    if data:
        window += data
        if len(window) > RAW_STREAM_WINDOW:
            del window[: len(window) - RAW_STREAM_WINDOW]


def printable(value: bytes) -> str:
    """Suricata's PrintStringsToBuffer: printable ASCII as is, other bytes as '.'."""
    return "".join(chr(c) if 0x20 <= c < 0x7F else "." for c in value)


_TRAFFIC_PREFIXES = (("traffic/id/", "id"), ("traffic/label/", "label"))


def split_traffic_bits(bits: list[str], out: dict[str, Any]) -> None:
    """Flowbits named ``traffic/id/<x>`` / ``traffic/label/<x>`` are logged as
    ``traffic: {id: [x], label: [x]}`` (Suricata's TRAFFIC_ID/LABEL_PREFIX); others as
    ``flowbits``."""
    plain: list[str] = []
    traffic: dict[str, list[str]] = {}
    for bit in bits:
        for prefix, key in _TRAFFIC_PREFIXES:
            if bit.startswith(prefix):
                traffic.setdefault(key, []).append(bit[len(prefix):])
                break
        else:
            plain.append(bit)
    if plain:
        out["flowbits"] = plain
    if traffic:
        out["traffic"] = traffic


class Resolved:
    """A packet group resolved for one flow direction (see :meth:`Group.resolve`):
    ``plain`` rules always met, ``keyed`` (prefilter keyword, rules) met when the
    packet satisfies the keyword; ``known``: every position, their headers fit."""

    __slots__ = ("group", "key", "keyed", "known", "plain")

    def __init__(self, group: object, key: tuple[object, ...], plain: list[int],
                 keyed: tuple[tuple[PacketCondition, list[int]], ...]) -> None:
        self.group = group  # the group itself, not its id(): ids of freed objects recur
        self.key = key
        self.plain = plain
        self.keyed = keyed
        self.known = set(plain).union(*(positions for _, positions in keyed))

    def for_packet(self, pkt: Any) -> list[int]:
        """The always-candidates of this packet, in rule order."""
        if not self.keyed:
            return self.plain
        passed = [pos for pc, positions in self.keyed
                  if packet_condition_matches(pc, pkt) for pos in positions]
        if not passed:
            return self.plain
        return sorted([*self.plain, *passed])


# Prefilter keywords, most selective first (Suricata's packet-header prefilter engines:
