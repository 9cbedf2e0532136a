"""The engine's state and what every inspection path shares: per-flow state lookup (and
its renumbering after a rule reload), the stateful checks of a rule's match list, the
post-match commands (flowbits, xbits, flowint, pcre variables) and the internal-error net.

``EngineState`` is the base of the packet and transaction inspectors
(``packet_inspect.py``, ``tx_inspect.py``) that ``DetectEngine`` combines."""

from __future__ import annotations

from typing import Any, NamedTuple

from ruleengine.detect.conditions import FlowLike
from ruleengine.detect.context import PacketCtx
from ruleengine.detect.crule import CRule
from ruleengine.detect.flow_state import FlowState, flow_state
from ruleengine.detect.groups import Group
from ruleengine.detect.xbits import XbitsTable
from ruleengine.safety import reraise_bug


class RawMatch(NamedTuple):
    cr: CRule
    tx_id: int | None
    to_server: bool
    stream: bool


class EngineState:
    """Engine-wide state (xbits, caps, reload generation, the packet's pktvars) and the
    checks and actions every inspection path uses. Set up by ``DetectEngine.__init__``."""

    xbits: XbitsTable
    flowint_max: int
    flowvar_max: int
    generation: int
    errors: int
    getter_errors: int
    last_error: str | None
    _renumbered: tuple[int, dict[int, int]]
    _pktvars: tuple[object, dict[str, bytes]] | None
    _prefilter: bool
    _keep_raw_stream: bool
    _pkt_groups: dict[int, Group]
    _tx_groups: dict[tuple[str, bool], Group]
    _chains: dict[str, tuple[str, tuple[Any, ...]]]

    def _state(self, flow: FlowLike | None) -> FlowState | None:
        # flow_state's lookup inline (2-3 calls per packet): it only builds the state
        if flow is None:
            return None
        st = flow.detect
        if not isinstance(st, FlowState):
            st = flow_state(flow, self.generation)
            assert st is not None
        if st.generation != self.generation:
            self._renumber(st)
        return st

    def _renumber(self, st: FlowState) -> None:
        """A flow inspected by an earlier rule set: its per-rule memory follows the rules
        into this set's numbering (rules that are gone are forgotten); a flow older than
        the previous set starts over. Caches of prefilter results are dropped."""
        previous, renumber = self._renumbered
        if st.generation == previous:
            st.fired = {k: {renumber[i] for i in v if i in renumber}
                        for k, v in st.fired.items()}
            st.pd_done = {(renumber[i], d) for i, d in st.pd_done if i in renumber}
        else:
            st.fired = {}
            st.pd_done = set()
        st.mpm_cache = {}
        st.sgh = {}  # positions of the previous set's groups
        st.pass_cut = None
        st.generation = self.generation


    def _postmatch(self, cr: CRule, ctx: PacketCtx,
                   captures: list[tuple[str, str, bytes]] | None) -> None:
        """The rule matched: its keywords' post-match steps (flowbits, xbits and flowint
        commands) and pcre variable captures take effect now (later rules of this packet
        see them)."""
        for action, arg in cr.postmatches:
            action(ctx, arg)
        if captures:
            pkt, state = ctx.pkt, ctx.state
            for scope, name, value in captures:
                if scope == "flow":
                    if state is not None and (
                        name in state.flowvars or len(state.flowvars) < self.flowvar_max
                    ):
                        state.flowvars[name] = value
                    continue
                pv = self._pktvars
                if pv is None or pv[0] is not pkt:
                    pv = self._pktvars = (pkt, {})
                if name in pv[1] or len(pv[1]) < self.flowvar_max:
                    pv[1][name] = value

    def _hostile_input(self, exc: BaseException) -> None:
        """A buffer getter or protocol keyword failed on what the traffic sent (one of
        ``safety.HOSTILE_ERRORS``): an engine event (``detect.getter_errors``); the
        buffer counts as absent, the other rules go on. Bugs are not caught here."""
        self.getter_errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"

    def _internal_error(self, exc: Exception) -> None:
        """Counted (``errors``) and remembered for diagnostics; the packet gets no match.
        A bug (not what hostile data can cause) is raised in strict runs (tests)."""
        reraise_bug(exc)
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
