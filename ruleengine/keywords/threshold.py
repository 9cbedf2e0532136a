"""threshold:type ..,track ..,count N,seconds M and detection_filter:track ..,count N,seconds M."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ruleengine.keywords._values import parse_int, split_args
from ruleengine.keywords.registry import KeywordSpec, Quotes, Setup, Stage
from ruleengine.rules.errors import KeywordError
from ruleengine.rules.model import Threshold

if TYPE_CHECKING:
    from ruleengine.rules.builder import RuleBuilder

_TYPES = ("limit", "threshold", "both", "backoff")
_TRACKS = ("by_src", "by_dst", "by_rule", "by_both", "by_flow")


def _parse(value: str, what: str, *, with_type: bool) -> Threshold:
    fields: dict[str, tuple[str, int]] = {}
    for word, at in split_args(value):
        key, _, rest = word.partition(" ")
        rest = rest.strip()
        allowed = (
            ("type", "track", "count", "seconds", "multiplier")
            if with_type
            else ("track", "count", "seconds", "unique_on")
        )
        if key not in allowed or not rest:
            raise KeywordError(
                f"{what}: unexpected '{word}'",
                code="invalid-keyword-value",
                value_range=(at, at + max(len(word), 1)),
                hint=f"expected: {', '.join(allowed)} each followed by a value",
            )
        if key in fields:
            raise KeywordError(
                f"{what}: '{key}' given twice",
                code="invalid-keyword-value",
                value_range=(at, at + len(word)),
            )
        fields[key] = (rest, at + len(key) + 1)
    kind = fields.get("type", ("detection_filter", 0))[0] if with_type else "detection_filter"
    required = ["track", "count"] + (["type"] if with_type else ["seconds"])
    if with_type and kind == "backoff":
        required.append("multiplier")
    elif with_type:
        required.append("seconds")
    missing = [k for k in required if k not in fields]
    if missing:
        raise KeywordError(
            f"{what}: missing {', '.join(missing)}",
            code="invalid-keyword-value",
            value_range=(0, len(value)),
        )
    if kind not in _TYPES and with_type:
        at = fields["type"][1]
        raise KeywordError(
            f"{what}: unknown type '{kind}'",
            code="invalid-keyword-value",
            value_range=(at, at + len(kind)),
            hint="valid: " + ", ".join(_TYPES),
        )
    track, at = fields["track"]
    if track not in _TRACKS:
        raise KeywordError(
            f"{what}: unknown track '{track}'",
            code="invalid-keyword-value",
            value_range=(at, at + len(track)),
            hint="valid: " + ", ".join(_TRACKS),
        )
    count = parse_int(fields["count"][0], f"{what} count", start=fields["count"][1], lo=1)
    seconds = (
        parse_int(fields["seconds"][0], f"{what} seconds", start=fields["seconds"][1], lo=1)
        if "seconds" in fields
        else 0
    )
    multiplier = (
        parse_int(
            fields["multiplier"][0], f"{what} multiplier", start=fields["multiplier"][1], lo=1
        )
        if "multiplier" in fields
        else 0
    )
    return Threshold(kind, track, count, seconds, multiplier)


def _setup(with_type: bool) -> Setup:
    what = "threshold" if with_type else "detection_filter"

    def setup(b: RuleBuilder, value: str | None) -> None:
        assert value is not None
        current = b.rule.threshold if with_type else b.rule.detection_filter
        if current is not None:
            raise KeywordError(f"'{what}' is used more than once", code="duplicate-keyword")
        parsed = _parse(value, what, with_type=with_type)
        if with_type:
            b.rule.threshold = parsed
        else:
            b.rule.detection_filter = parsed

    return setup


SPECS: tuple[KeywordSpec, ...] = (
    KeywordSpec("threshold", _setup(True), quotes=Quotes.FORBIDDEN, stage=Stage.POSTMATCH),
    KeywordSpec("detection_filter", _setup(False), quotes=Quotes.FORBIDDEN, stage=Stage.POSTMATCH),
)
