"""``asn1:<option>[, <option>...]`` (``src/detect-asn1.c``, ``rust/src/asn1``): BER checks
on the packet payload. Options: ``bitstring_overflow``, ``double_overflow``,
``oversize_length <n>``, ``absolute_offset <n>``, ``relative_offset <n>`` (may be negative;
relative to the end of the previous content match)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ruleengine.keywords._values import parse_int, split_args
from ruleengine.keywords.registry import KeywordSpec, Quotes, Stage
from ruleengine.rules.errors import KeywordError
from ruleengine.rules.model import PAYLOAD, Asn1Match

if TYPE_CHECKING:
    from ruleengine.rules.builder import RuleBuilder

MAX_FRAMES = 30  # asn1-max-frames default


def setup_asn1(b: RuleBuilder, value: str | None) -> None:
    assert value is not None
    m = Asn1Match(max_frames=MAX_FRAMES, span=b.option_span)
    any_check = False
    for part, at in split_args(value):
        key, _, arg = part.partition(" ")
        key = key.lower()
        arg = arg.strip()
        arg_at = at + len(part) - len(arg)
        if key in ("bitstring_overflow", "double_overflow"):
            if arg:
                raise KeywordError(f"asn1: '{key}' takes no value",
                                   value_range=(arg_at, arg_at + len(arg)))
            setattr(m, key, True)
            any_check = True
        elif key == "oversize_length":
            m.oversize_length = parse_int(arg, "asn1 oversize_length", start=arg_at,
                                          lo=0, hi=0xFFFFFFFF)
            any_check = True
        elif key == "absolute_offset":
            m.absolute_offset = parse_int(arg, "asn1 absolute_offset", start=arg_at,
                                          lo=0, hi=0xFFFF)
        elif key == "relative_offset":
            m.relative_offset = parse_int(arg, "asn1 relative_offset", start=arg_at,
                                          lo=-0xFFFF, hi=0xFFFF)
        else:
            raise KeywordError(
                f"asn1: unknown option '{part}'", value_range=(at, at + len(part)),
                hint="valid: bitstring_overflow, double_overflow, oversize_length <n>, "
                "absolute_offset <n>, relative_offset <n>",
            )
    if m.absolute_offset is not None and m.relative_offset is not None:
        raise KeywordError("asn1: absolute_offset and relative_offset exclude each other",
                           value_range=(0, len(value)))
    if not any_check:
        b.warn("asn1 without bitstring_overflow, double_overflow or oversize_length only "
               "matches objects nested deeper than the frame limit", "asn1-no-check",
               b.value_span)
    # a packet keyword (Suricata's MATCH list): always on the payload, whatever the
    # sticky buffer; detection runs it after the payload's other items
    b.buffer_list(PAYLOAD).items.append(m)


SPECS: tuple[KeywordSpec, ...] = (
    KeywordSpec("asn1", setup_asn1, quotes=Quotes.FORBIDDEN, stage=Stage.MATCH),
)
