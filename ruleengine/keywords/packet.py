"""Integer packet keywords (dsize, ttl, itype, icode, window, ack, seq, ip_proto) and
TCP flags, all as ``PacketCondition``s; bsize and urilen as ``BufferSize`` items."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ruleengine.keywords._values import parse_int_condition
from ruleengine.keywords.registry import KeywordSpec, Quotes, Setup
from ruleengine.rules.errors import KeywordError
from ruleengine.rules.model import (
    BufferSize,
    IntOp,
    PacketCondition,
    TcpFlags,
)

if TYPE_CHECKING:
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


SPECS: tuple[KeywordSpec, ...] = (
    KeywordSpec("dsize", setup_dsize, quotes=Quotes.FORBIDDEN),
    KeywordSpec("ttl", _packet_setup("ttl"), quotes=Quotes.FORBIDDEN),
    KeywordSpec("itype", _packet_setup("itype"), quotes=Quotes.FORBIDDEN),
    KeywordSpec("icode", _packet_setup("icode"), quotes=Quotes.FORBIDDEN),
    KeywordSpec("ip_proto", _packet_setup("ip_proto"), quotes=Quotes.FORBIDDEN),
    # Suricata 7+ names them tcp.window / tcp.ack / tcp.seq, the old names stay aliases
    KeywordSpec("window", _packet_setup("window"), aliases=("tcp.window",),
                quotes=Quotes.FORBIDDEN),
    KeywordSpec("ack", _packet_setup("ack"), aliases=("tcp.ack",), quotes=Quotes.FORBIDDEN),
    KeywordSpec("seq", _packet_setup("seq"), aliases=("tcp.seq",), quotes=Quotes.FORBIDDEN),
    KeywordSpec("flags", setup_flags, aliases=("tcp.flags",), quotes=Quotes.FORBIDDEN),
    KeywordSpec("bsize", setup_bsize, quotes=Quotes.FORBIDDEN),
    KeywordSpec("urilen", setup_urilen, quotes=Quotes.FORBIDDEN),
)
