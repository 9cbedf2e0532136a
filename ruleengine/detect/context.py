"""The per-packet context: values of the packet computed once (addresses as integers,
header and flow results shared by the rules), and what a keyword's match reads
(``keywords.registry.MatchContext``: the packet, its flow and direction, the flow's
detection memory, the engine's xbits table and packet variables)."""

from __future__ import annotations

from typing import Any, Protocol

from ruleengine.detect.conditions import addr_int


class EngineTables(Protocol):
    """What the context reads of the engine (``state.EngineState``)."""

    xbits: Any
    flowint_max: int
    _pktvars: tuple[object, dict[str, bytes]] | None


class PacketCtx:
    """Per-packet values computed once; ``flow``, ``to_server`` and ``state`` are set by
    each inspection path before it walks a rule's match list."""

    __slots__ = ("_engine", "dport", "dst", "fcache", "flow", "flowint_max", "hcache", "pkt",
                 "proto", "sport", "src", "state", "to_server", "ver", "xbits")

    def __init__(self, pkt: Any, engine: EngineTables) -> None:
        self.pkt = pkt
        self._engine = engine
        self.xbits = engine.xbits
        self.flowint_max = engine.flowint_max
        self.flow: Any = None
        self.to_server = True
        self.state: Any = None
        self.fcache: dict[int, bool] = {}  # id(FlowCondition) -> result (keywords.flow)
        self.hcache: dict[int, bool] = {}  # header id (~id: reversed) -> result
        self.proto = pkt.proto
        self.ver = pkt.ip_version
        self.src = addr_int(pkt.src)
        self.dst = addr_int(pkt.dst)
        self.sport = pkt.sport
        self.dport = pkt.dport

    def pktvar(self, name: str) -> bytes | None:
        """A pcre ``pkt_`` capture of this packet (set by an earlier rule's match)."""
        pv = self._engine._pktvars
        return pv[1].get(name) if pv is not None and pv[0] is self.pkt else None
