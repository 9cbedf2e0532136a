"""``tag:<session|host>[,<count>,<packets|seconds|bytes>[,<src|dst>]]`` (``src/detect-tag.c``).

After the rule alerted, later packets of the session (or of the host, picked by the
direction: ``src`` or ``dst``, the default) are tagged until ``count`` packets, seconds or
bytes are used up. Without a count: 256 packets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ruleengine.keywords._values import parse_int, split_args
from ruleengine.keywords.registry import KeywordSpec, Quotes, Stage
from ruleengine.rules.errors import KeywordError
from ruleengine.rules.model import Tag

if TYPE_CHECKING:
    from ruleengine.rules.builder import RuleBuilder

DEFAULT_COUNT = 256  # DETECT_TAG_MAX_PKTS
METRICS = ("packets", "seconds", "bytes")


def setup_tag(b: RuleBuilder, value: str | None) -> None:
    assert value is not None
    args = split_args(value)
    kind, at = args[0]
    kind = kind.lower()
    if kind not in ("session", "host"):
        raise KeywordError(
            f"tag: unknown type '{args[0][0]}'", value_range=(at, at + len(args[0][0])),
            hint="valid: session, host",
        )
    if len(args) > 4:
        raise KeywordError("tag: too many arguments", value_range=(args[4][1], len(value)))
    count, metric, direction = DEFAULT_COUNT, "packets", "dst"
    if len(args) >= 2:
        if len(args) < 3:
            raise KeywordError(
                "tag: a count needs its metric (packets, seconds or bytes)",
                code="missing-value", value_range=(args[1][1], len(value)),
            )
        count = parse_int(args[1][0], "tag count", start=args[1][1], lo=0, hi=0xFFFFFFFF)
        metric, mat = args[2]
        metric = metric.lower()
        if metric not in METRICS:
            raise KeywordError(
                f"tag: unknown metric '{args[2][0]}'", value_range=(mat, mat + len(args[2][0])),
                hint="valid: packets, seconds, bytes",
            )
    if len(args) == 4:
        direction, dat = args[3]
        direction = direction.lower()
        if direction not in ("src", "dst"):
            raise KeywordError(
                f"tag: unknown direction '{args[3][0]}'",
                value_range=(dat, dat + len(args[3][0])), hint="valid: src, dst",
            )
        if kind == "session":
            b.warn("tag: a direction does not apply to session tags (ignored)",
                   "tag-direction-ignored", b.value_span)
    b.rule.tags.append(Tag(kind, count, metric, direction))


SPECS: tuple[KeywordSpec, ...] = (
    KeywordSpec("tag", setup_tag, quotes=Quotes.FORBIDDEN, stage=Stage.POSTMATCH),
)
