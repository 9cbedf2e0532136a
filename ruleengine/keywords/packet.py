"""Integer packet keywords (dsize, ttl, itype, icode, window, ack, seq, ip_proto) and
TCP flags, all as ``PacketCondition``s; bsize and urilen as ``BufferSize`` items.

Match: each condition is compiled to (field getter, test) once per rule, so a packet
costs one getter and one comparison per keyword (no table lookup, no type test)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ruleengine.decode.packet import IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP
from ruleengine.keywords._values import parse_int_condition
from ruleengine.keywords.registry import KeywordSpec, MatchOrder, Quotes, StepCache
from ruleengine.rules.errors import KeywordError
from ruleengine.rules.model import (
    BufferSize,
    IntCondition,
    IntOp,
    PacketCondition,
    Rule,
    TcpFlags,
)

if TYPE_CHECKING:
    from ruleengine.keywords.registry import MatchContext, MatchStep, Setup
    from ruleengine.rules.builder import RuleBuilder

_MAX = {
    "dsize": 65535,
    "ttl": 255,
    "itype": 255,
    "icode": 255,
    "ip_proto": 255,
    "window": 65535,
    "ack": 0xFFFFFFFF,
    "seq": 0xFFFFFFFF,
}
_IP_PROTOS = {
    "ip": 0,
    "icmp": 1,
    "igmp": 2,
    "tcp": 6,
    "udp": 17,
    "ipv6": 41,
    "gre": 47,
    "esp": 50,
    "ah": 51,
    "ipv6-icmp": 58,
    "icmpv6": 58,
    "sctp": 132,
}


def _packet_setup(field: str) -> Setup:
    def setup(b: RuleBuilder, value: str | None) -> None:
        assert value is not None
        text = value
        if field == "ip_proto":
            bare = value.lstrip("<>=!").strip().lower()
            if bare in _IP_PROTOS:
                text = value[: len(value) - len(value.lstrip("<>=!"))] + str(_IP_PROTOS[bare])
        cond = parse_int_condition(text, field, hi=_MAX[field])
        b.rule.packet_conditions.append(PacketCondition(field, cond, b.option_span))

    return setup


_TCP_FLAG_BITS = {
    "F": 0x01,
    "S": 0x02,
    "R": 0x04,
    "P": 0x08,
    "A": 0x10,
    "U": 0x20,
    "E": 0x40,
    "C": 0x80,
    "1": 0x80,
    "2": 0x40,
}


def setup_flags(b: RuleBuilder, value: str | None) -> None:
    assert value is not None
    flags_text, _, mask_text = value.partition(",")
    flags_text = flags_text.strip()
    modifier = ""
    for mod in "+*!":
        if flags_text.startswith(mod) or flags_text.endswith(mod):
            modifier = mod
            flags_text = flags_text.strip(mod)
    bits = 0
    for i, ch in enumerate(flags_text):
        if ch == "0":
            continue
        bit = _TCP_FLAG_BITS.get(ch.upper())
        if bit is None or ch in "12":
            raise KeywordError(
                f"flags: unknown TCP flag '{ch}'",
                code="invalid-keyword-value",
                value_range=(i, i + 1),
                hint="valid: F S R P A U C E 0 and modifiers + * !",
            )
        bits |= bit
    ignored = 0
    for ch in mask_text.strip():
        bit = _TCP_FLAG_BITS.get(ch.upper())
        if bit is None:
            raise KeywordError(
                f"flags: unknown flag '{ch}' in mask",
                code="invalid-keyword-value",
                value_range=(0, len(value)),
            )
        ignored |= bit
    cond = TcpFlags(bits, modifier, 0xFF & ~ignored)
    b.rule.packet_conditions.append(PacketCondition("tcp.flags", cond, b.option_span))


def setup_bsize(b: RuleBuilder, value: str | None) -> None:
    assert value is not None
    cond = parse_int_condition(value, "bsize")
    b.add_item(BufferSize(cond, b.option_span))


def setup_urilen(b: RuleBuilder, value: str | None) -> None:
    """``urilen:N|<N|>N|N<>M[,raw|norm]`` -> BufferSize on http.uri / http.uri.raw."""
    assert value is not None
    text, _, kind = value.partition(",")
    kind = kind.strip().lower()
    if kind not in ("", "raw", "norm"):
        raise KeywordError(
            f"urilen: expected 'raw' or 'norm' after the comma, got '{kind}'",
            code="invalid-keyword-value",
            value_range=(len(text) + 1, len(value)),
        )
    cond = parse_int_condition(text, "urilen", hi=65535)
    if cond.op in (IntOp.BITMASK_SET, IntOp.BITMASK_NOT):
        raise KeywordError("urilen: bitmask is not allowed", code="invalid-keyword-value")
    buffer = "http.uri.raw" if kind == "raw" else "http.uri"
    b.buffer_list(buffer).items.append(BufferSize(cond, b.option_span))


def setup_dsize(b: RuleBuilder, value: str | None) -> None:
    assert value is not None
    cond = parse_int_condition(value, "dsize", hi=65535)
    if any(pc.field == "dsize" for pc in b.rule.packet_conditions):
        raise KeywordError("'dsize' is used more than once in this rule", code="duplicate-keyword")
    b.rule.packet_conditions.append(PacketCondition("dsize", cond, b.option_span))


# ------------------------------------------------------------------------------ match


def tcp_flags_match(tf: TcpFlags, pflags: int) -> bool:
    """Suricata ``FlagsMatch`` (``src/detect-tcp-flags.c``)."""
    dflags = tf.flags
    if not dflags and pflags:
        return tf.modifier == "!"
    flags = pflags & tf.mask
    if tf.modifier == "*":
        return (flags & dflags) > 0
    if tf.modifier == "+":
        return (flags & dflags) == dflags
    if tf.modifier == "!":
        return (flags & dflags) != dflags
    return flags == dflags


def _tcp_only(getter: Callable[[Any], int]) -> Callable[[Any], int | None]:
    def get(pkt: Any) -> int | None:
        return getter(pkt) if pkt.proto == IPPROTO_TCP else None

    return get


def _icmp_only(getter: Callable[[Any], int]) -> Callable[[Any], int | None]:
    def get(pkt: Any) -> int | None:
        if pkt.proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
            return getter(pkt)
        return None

    return get


def _ip_only(getter: Callable[[Any], int]) -> Callable[[Any], int | None]:
    def get(pkt: Any) -> int | None:
        return getter(pkt) if pkt.ip_version else None

    return get


PACKET_FIELDS: dict[str, Callable[[Any], int | None]] = {
    "dsize": lambda p: len(p.payload),
    "ttl": _ip_only(lambda p: int(p.ttl)),
    "id": _ip_only(lambda p: int(p.ip_id)),
    "ip_proto": _ip_only(lambda p: int(p.proto)),
    "ack": _tcp_only(lambda p: int(p.ack)),
    "seq": _tcp_only(lambda p: int(p.seq)),
    "window": _tcp_only(lambda p: int(p.window)),
    "itype": _icmp_only(lambda p: int(p.icmp_type)),
    "icode": _icmp_only(lambda p: int(p.icmp_code)),
    "flags": _tcp_only(lambda p: int(p.tcp_flags)),
}
"""Packet keyword field -> value getter (None: the keyword cannot match this packet)."""
# Suricata 8's ``tcp.*`` names of the same fields
PACKET_FIELDS.update({f"tcp.{name}": PACKET_FIELDS[name]
                      for name in ("window", "ack", "seq", "flags")})

TX_FIELDS = frozenset({"urilen", "urilen.raw", "urilen_raw", "urilen.norm"})
"""Conditions evaluated on an HTTP transaction rather than on the packet."""


def packet_condition_supported(pc: PacketCondition) -> bool:
    return pc.field in PACKET_FIELDS or pc.field in TX_FIELDS


def packet_condition_matches(pc: PacketCondition, pkt: Any) -> bool:
    """One condition on one packet, uncompiled (the prefilter keyword's test)."""
    value = PACKET_FIELDS[pc.field](pkt)
    if value is None:
        return False
    cond = pc.cond
    if isinstance(cond, TcpFlags):
        return tcp_flags_match(cond, value)
    assert isinstance(cond, IntCondition)
    return cond.matches(value)


_Compiled = tuple[Callable[[Any], int | None], Callable[[int], bool]]


def _match_int(ctx: MatchContext, arg: _Compiled) -> bool:
    value = arg[0](ctx.pkt)
    return value is not None and arg[1](value)


def _match_flags(ctx: MatchContext, arg: tuple[Callable[[Any], int | None], TcpFlags]) -> bool:
    value = arg[0](ctx.pkt)
    return value is not None and tcp_flags_match(arg[1], value)


def compile_condition(pc: PacketCondition) -> MatchStep:
    """The match step of one packet condition (its field must be in PACKET_FIELDS)."""
    getter = PACKET_FIELDS[pc.field]
    cond = pc.cond
    if isinstance(cond, TcpFlags):
        return (_match_flags, (getter, cond), pc.field)
    assert isinstance(cond, IntCondition)
    return (_match_int, (getter, cond.matches), pc.field)


def match_setup(rule: Rule) -> tuple[MatchStep, ...]:
    """The packet conditions of the rule in rule order (urilen is a transaction's)."""
    if not rule.packet_conditions:
        return ()
    conds = tuple(pc for pc in rule.packet_conditions if pc.field not in TX_FIELDS)
    return _STEPS.get(tuple((pc.field, pc.cond) for pc in conds),
                      lambda: tuple(compile_condition(pc) for pc in conds))


_STEPS: StepCache[tuple[MatchStep, ...]] = StepCache()


def _packet_spec(name: str, setup: Setup, aliases: tuple[str, ...] = ()) -> KeywordSpec:
    return KeywordSpec(name, setup, aliases=aliases, quotes=Quotes.FORBIDDEN,
                       match=match_setup, match_order=MatchOrder.PACKET)


SPECS: tuple[KeywordSpec, ...] = (
    _packet_spec("dsize", setup_dsize),
    _packet_spec("ttl", _packet_setup("ttl")),
    _packet_spec("itype", _packet_setup("itype")),
    _packet_spec("icode", _packet_setup("icode")),
    _packet_spec("ip_proto", _packet_setup("ip_proto")),
    # Suricata 7+ names them tcp.window / tcp.ack / tcp.seq, the old names stay aliases
    _packet_spec("window", _packet_setup("window"), ("tcp.window",)),
    _packet_spec("ack", _packet_setup("ack"), ("tcp.ack",)),
    _packet_spec("seq", _packet_setup("seq"), ("tcp.seq",)),
    _packet_spec("flags", setup_flags, ("tcp.flags",)),
    KeywordSpec("bsize", setup_bsize, quotes=Quotes.FORBIDDEN),
    KeywordSpec("urilen", setup_urilen, quotes=Quotes.FORBIDDEN),
)
