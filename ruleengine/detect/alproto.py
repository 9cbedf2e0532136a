"""The ``app-layer-protocol`` test of a rule (and of a header protocol such as ``alert
http``) against a flow's detected protocols, per direction (Suricata's alproto_ts /
alproto_tc) once that direction's data was parsed."""

from __future__ import annotations

from ruleengine.applayer import registry
from ruleengine.detect.conditions import FlowLike
from ruleengine.detect.flow_state import flow_state

AlprotoConds = tuple[tuple[str, bool, str], ...]
"""(protocol name, negated, mode) of every app-layer-protocol condition of a rule."""


def canonical_alproto(name: str | None) -> str | None:
    """A rule's or flow's protocol name in registry terms (``ssl`` -> ``tls``); names the
    registry does not know are kept as they are (``failed``, unparsed protocols)."""
    if name is None:
        return None
    return registry.canonical(name) or name


def alproto_known_ok(conds: AlprotoConds, flow: FlowLike | None, to_server: bool) -> bool:
    """Packet-level app-layer-protocol test: the protocol of this direction must be
    known (its data seen) and satisfy every condition."""
    state = flow_state(flow)
    if state is None:
        return False
    if to_server not in state.data_seen and any(m != "header" for _, _, m in conds):
        return False
    return alproto_ok(conds, flow, to_server)


def _same_alproto(a: str, b: str) -> bool:
    return a == b or canonical_alproto(a) == canonical_alproto(b)


def _known(alproto: str | None) -> str | None:
    return None if alproto in (None, "failed", "unknown") else alproto


def _direction_alproto(flow: FlowLike | None, to_server: bool) -> str | None:
    """The protocol of one direction: the flow's own per-direction one (None while that
    direction's data was not parsed yet), or the flow's protocol for flows that keep one."""
    if flow is None:
        return None
    final = _known(flow.alproto)
    name = "alproto_ts" if to_server else "alproto_tc"
    if not hasattr(flow, name):
        return final
    return _known(getattr(flow, name)) if final is not None else None


def alproto_ok(conds: AlprotoConds, flow: FlowLike | None, to_server: bool) -> bool:
    if not conds:
        return True
    if flow is None:
        return False
    final = _known(flow.alproto)
    if final is None:
        return False
    # per-direction protocols (Suricata's alproto_ts / alproto_tc)
    ts = _direction_alproto(flow, True)
    tc = _direction_alproto(flow, False)
    for want, negated, mode in conds:
        if mode == "either":
            hit = _same_alproto(ts or "", want) or _same_alproto(tc or "", want)
        else:
            have = {"to_server": ts, "to_client": tc,
                    "direction": ts if to_server else tc}.get(mode, final)
            if have is None:
                return False  # that direction's protocol is not known (yet)
            hit = _same_alproto(have, want)
        if hit == negated:
            return False
    return True

