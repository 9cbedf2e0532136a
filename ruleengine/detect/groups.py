"""Rule groups and their prefilter: the rules of one packet group (IP protocol) or tx
direction with their MPM tables and IP-only address table, the always-candidates resolved
for a flow direction (Suricata's signature group head), and the per-packet context."""

from __future__ import annotations

from collections.abc import Sequence

from ruleengine.detect.conditions import (
    CompiledHeader,
)
from ruleengine.detect.context import PacketCtx
from ruleengine.detect.crule import CRule
from ruleengine.detect.flow_state import Resolved
from ruleengine.detect.iponly import IpOnlyTable, bits
from ruleengine.detect.ordering import prefilter_content
from ruleengine.detect.prefilter import Mpm
from ruleengine.rules.model import PacketCondition

GROUP_KEYS = (6, 17, 1, 58, -1)  # -1: any other IP protocol


class Group:
    """Rules of one packet group or tx direction, with their prefilter tables."""

    def __init__(self, rules: Sequence[CRule], mpm_backend: str, use_mpm: bool) -> None:
        self.rules = sorted(rules, key=lambda cr: cr.idx)  # the engine's firing order
        self.always: list[int] = []
        self.iponly: list[int] = []  # always candidates, once per flow direction
        self.by_pid: dict[str, dict[int, list[int]]] = {}
        self.mpms: dict[str, Mpm] = {}
        self.version = 0  # bumped when the prefilter tables change (explain's trace)
        for pos, cr in enumerate(self.rules):
            if cr.iponly:
                self.iponly.append(pos)
                continue
            chosen = self._mpm_for(cr) if use_mpm else None
            if chosen is None:
                self.always.append(pos)
                continue
            bufname, pattern, nocase = chosen
            mpm = self.mpms.get(bufname)
            if mpm is None:
                mpm = self.mpms[bufname] = Mpm(mpm_backend)
            pid = mpm.add(pattern, nocase)
            self.by_pid.setdefault(bufname, {}).setdefault(pid, []).append(pos)
        for mpm in self.mpms.values():
            mpm.build()
        # IP-only rules by address table (the prefilter's); without it every one is tried
        self.iponly_table: IpOnlyTable | None = None
        self.iponly_by_bit: list[list[int]] = []  # header bit -> rule positions
        self.iponly_traced: list[int] = []  # explain: tried whatever the addresses
        if use_mpm and self.iponly:
            self._build_iponly()

    def _build_iponly(self) -> None:
        bit_of: dict[int, int] = {}
        headers: list[CompiledHeader] = []
        for pos in self.iponly:
            header = self.rules[pos].header
            bit = bit_of.get(header.hid)
            if bit is None:
                bit = bit_of[header.hid] = len(headers)
                headers.append(header)
                self.iponly_by_bit.append([])
            self.iponly_by_bit[bit].append(pos)
        self.iponly_table = IpOnlyTable(headers)

    def iponly_candidates(self, ctx: PacketCtx) -> list[int]:
        """Positions of the IP-only rules whose addresses may fit the packet (all of
        them without the table); their headers are still tested in full."""
        table = self.iponly_table
        if table is None:
            return self.iponly
        out = list(self.iponly_traced)
        for bit in bits(table.lookup(ctx.ver, ctx.src, ctx.dst)):
            out.extend(self.iponly_by_bit[bit])
        return out

    def _mpm_for(self, cr: CRule) -> tuple[str, bytes, bool] | None:
        chosen = prefilter_content(cr)
        if chosen is None:
            return None
        return chosen[0], chosen[1].mpm_pattern, chosen[1].nocase

    def skip_prefilter(self, traced: CRule) -> None:
        """``traced`` becomes an always-candidate, so every packet or transaction reaches
        its inspection (its fast pattern is a necessary condition: no result changes)."""
        pos = next((p for p, cr in enumerate(self.rules) if cr is traced), None)
        if pos is not None and pos in self.iponly and pos not in self.iponly_traced:
            self.iponly_traced.append(pos)
        if pos is None or pos in self.always or pos in self.iponly:
            return
        for table in self.by_pid.values():
            for positions in table.values():
                if pos in positions:
                    positions.remove(pos)
        self.always = sorted([*self.always, pos])
        self.version += 1

    def resolve(self, ctx: PacketCtx, to_server: bool, payloadless: bool,
                key: tuple[object, ...] = ()) -> Resolved:
        """The always-candidates whose header fits this packet's tuple and whose ``flow``
        direction fits ``to_server`` (Suricata's signature group head of the packet:
        protocol, addresses, ports, direction). A traced rule stays in, so explain still
        sees its checks fail. ``payloadless``: only the rules that can match a packet
        without payload or stream data (pure ACKs, SYNs, FINs). Rules with a prefilter
        keyword (flags, dsize, itype...) are kept by keyword, so a packet tests each
        distinct keyword once instead of each rule."""
        plain: list[int] = []
        keyed: dict[tuple[object, ...], tuple[PacketCondition, list[int]]] = {}
        for pos in self.always:
            cr = self.rules[pos]
            if cr.trace is None:
                if payloadless and cr.needs_data:
                    continue
                fc = cr.flow
                if fc is not None and (fc.to_client if to_server else fc.to_server):
                    continue  # flow:to_client on a packet to the server, and back
                if not header_ok(cr.header, ctx, False):
                    continue
                pc = cr.pf_cond
                if pc is not None:
                    entry = keyed.setdefault((pc.field, pc.cond), (pc, []))
                    entry[1].append(pos)
                    continue
            plain.append(pos)
        return Resolved(self, key, plain, tuple(keyed.values()))

    def candidates(self, hits_by_buf: dict[str, set[int]], iponly: Sequence[int] = (),
                   base: list[int] | None = None) -> list[int]:
        """Positions (rule order) of the rules to inspect. ``iponly``: the IP-only rules
        to try (see :meth:`iponly_candidates`). ``base``: the always-candidates to start
        from (default: all of them; the packet path passes the ones resolved for the
        flow, see :meth:`resolve`)."""
        always = self.always if base is None else base
        extra: list[int] = list(iponly)
        for bufname, hits in hits_by_buf.items():
            table = self.by_pid.get(bufname)
            if table is None or not hits:
                continue
            for pid in hits:
                positions = table.get(pid)
                if positions:
                    extra.extend(positions)
        if not extra:
            return always
        return sorted({*always, *extra})


def header_ok(header: CompiledHeader, ctx: PacketCtx, reverse: bool) -> bool:
    key = ~header.hid if reverse else header.hid
    ok = ctx.hcache.get(key)
    if ok is None:
        if reverse:
            ok = header.matches(ctx.proto, ctx.ver, ctx.dst, ctx.dport, ctx.src, ctx.sport)
        else:
            ok = header.matches(ctx.proto, ctx.ver, ctx.src, ctx.sport, ctx.dst, ctx.dport)
        ctx.hcache[key] = ok
    return ok


def in_proto_group(cr: CRule, key: int) -> bool:
    protos = cr.header.protos
    if not protos:
        return True
    return key in protos
