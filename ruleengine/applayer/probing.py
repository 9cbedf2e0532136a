"""Per-flow protocol detection over every registered protocol, both directions.

As Suricata's AppLayerProtoDetect: each direction's first bytes are offered to the probing
parsers of the enabled protocols for the flow's IP protocol (independent of the port; a
protocol whose default port matches is tried first, which only matters when two would
claim the same bytes). A direction that no protocol can claim fails; detection fails for
the flow when both directions failed. With ``midstream`` a message of the opposite
direction is accepted too and ``reversed`` is set (the flow was picked up with its sides
swapped; Suricata's ``reverse_flow``).
"""

from __future__ import annotations

from typing import Literal

from ruleengine.applayer.base import AppLayerSpec
from ruleengine.applayer.registry import protocols

_MAX_PROBE_DEPTH = 65535  # bytes kept per direction while undecided (a UDP datagram)


def candidates(ipproto: int, ports: tuple[int, int], enabled: frozenset[str] | None,
               ) -> tuple[AppLayerSpec, ...]:
    """The protocols to probe for a flow, port-hinted ones first."""
    specs = [s for s in protocols() if (s.probe is not None or ipproto in s.probes)
             and ipproto in s.ipprotos
             and (enabled is None or s.name in enabled)]
    hinted = [s for s in specs if set(ports) & set(s.default_ports.get(ipproto, ()))]
    return tuple(hinted + [s for s in specs if s not in hinted])


def probe_direction(data: bytes, to_server: bool, *, ipproto: int, ports: tuple[int, int],
                    enabled: frozenset[str] | None) -> str | None:
    """The protocol the first bytes of one direction positively show, if any: the other
    direction of a flow whose protocol is already known is checked this way, as Suricata
    runs protocol detection on each direction (a mismatch is its
    ``APPLAYER_MISMATCH_PROTOCOL_BOTH_DIRECTIONS``)."""
    for spec in candidates(ipproto, ports, enabled):
        probe = spec.probes.get(ipproto, spec.probe)
        if probe is not None and probe(data[: max(spec.probe_depth, 1)], to_server) == "match":
            return spec.name
    return None


class AppProtoProbe:
    """``probe(data, to_server)`` returns the protocol name (stays so), None (undecided)
    or False (failed for good)."""

    __slots__ = ("_failed", "_ipproto", "_seen", "_specs", "midstream", "result", "reversed")

    def __init__(self, *, midstream: bool = False, ipproto: int = 6,
                 ports: tuple[int, int] = (0, 0), enabled: frozenset[str] | None = None,
                 ) -> None:
        self.midstream = midstream
        self.result: str | Literal[False] | None = None
        self.reversed = False
        self._ipproto = ipproto
        self._specs = candidates(ipproto, ports, enabled)
        self._seen = {True: b"", False: b""}
        self._failed = {True: False, False: False}
        if not self._specs:
            self.result = False

    def probe(self, data: bytes, to_server: bool) -> str | Literal[False] | None:
        if self.result is not None or self._failed[to_server] or not data:
            return self.result
        # a UDP datagram stands alone; a TCP direction is a stream, so pieces accumulate
        before = self._seen[to_server] if self._ipproto != 17 else b""
        seen = (before + bytes(data))[:_MAX_PROBE_DEPTH]
        self._seen[to_server] = seen
        name, swapped, undecided = self._ask(seen, to_server)
        if name is not None:
            self.result, self.reversed = name, swapped
        elif not undecided:
            self._failed[to_server] = True
            if self._failed[not to_server]:
                self.result = False
        return self.result

    def buffered(self, to_server: bool) -> bytes:
        """What a TCP direction showed while undecided (the parser gets it once the
        protocol is known); a UDP datagram stands alone, so nothing is held."""
        return self._seen[to_server] if self._ipproto != 17 else b""

    def _ask(self, seen: bytes, to_server: bool) -> tuple[str | None, bool, bool]:
        """(protocol, reversed, still undecided)."""
        undecided = False
        directions = (to_server, not to_server) if self.midstream else (to_server,)
        for direction in directions:
            for spec in self._specs:
                probe = spec.probes.get(self._ipproto, spec.probe)
                assert probe is not None
                answer = probe(seen[: max(spec.probe_depth, 1)], direction)
                if answer == "match":
                    return spec.name, direction != to_server, False
                if answer == "undecided" and len(seen) < spec.probe_depth:
                    undecided = True
        return None, False, undecided
