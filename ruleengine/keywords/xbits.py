"""``xbits:<set|unset|toggle|isset|isnotset>,<name>,track <ip_src|ip_dst|ip_pair>
[,expire <seconds>]`` and ``xbits:noalert`` (``src/detect-xbits.c``).

Bits live per host (``ip_src`` / ``ip_dst``) or per unordered IP pair (``ip_pair``);
checks are match conditions, set/unset/toggle run after the whole rule matched.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ruleengine.keywords._values import parse_int, split_args
from ruleengine.keywords.registry import KeywordSpec, MatchContext, MatchOrder
from ruleengine.keywords.state_steps import CheckActionSteps
from ruleengine.rules.errors import KeywordError
from ruleengine.rules.model import Xbit, XbitCmd

if TYPE_CHECKING:
    from ruleengine.rules.builder import RuleBuilder

DEFAULT_EXPIRE = 30  # DETECT_XBITS_EXPIRE_DEFAULT
TRACKS = ("ip_src", "ip_dst", "ip_pair")
_NAME_RE = re.compile(r"[A-Za-z0-9_.\-]+\Z")


def setup_xbits(b: RuleBuilder, value: str | None) -> None:
    assert value is not None
    args = split_args(value)
    cmd_text, cmd_at = args[0]
    if cmd_text.lower() == "noalert":
        if len(args) > 1:
            raise KeywordError(
                "xbits:noalert takes no other argument",
                value_range=(args[1][1], len(value)),
            )
        b.rule.noalert = True
        return
    try:
        cmd = XbitCmd(cmd_text.lower())
    except ValueError:
        raise KeywordError(
            f"xbits: unknown command '{cmd_text}'",
            value_range=(cmd_at, cmd_at + len(cmd_text)),
            hint="valid: set, unset, toggle, isset, isnotset, noalert",
        ) from None
    if len(args) < 2 or not args[1][0]:
        raise KeywordError(
            f"xbits:{cmd.value} needs a bit name", code="missing-value",
            value_range=(0, len(value)),
        )
    name, name_at = args[1]
    if not _NAME_RE.match(name):
        raise KeywordError(
            f"xbits: invalid name '{name}'", value_range=(name_at, name_at + len(name))
        )
    track: str | None = None
    expire = DEFAULT_EXPIRE
    for part, at in args[2:]:
        key, _, arg = part.partition(" ")
        arg = arg.strip()
        if key == "track":
            if arg not in TRACKS:
                raise KeywordError(
                    f"xbits: track must be ip_src, ip_dst or ip_pair, got '{arg}'",
                    value_range=(at, at + len(part)),
                )
            track = arg
        elif key == "expire":
            expire = parse_int(arg, "xbits expire", start=at + len(part) - len(arg),
                               lo=1, hi=0xFFFFFFFF)
        else:
            raise KeywordError(
                f"xbits: unknown option '{part}'", value_range=(at, at + len(part)),
                hint="valid: track <ip_src|ip_dst|ip_pair>, expire <seconds>",
            )
    if track is None:
        raise KeywordError(
            f"xbits:{cmd.value},{name} needs 'track ip_src', 'track ip_dst' or 'track ip_pair'",
            code="missing-value",
            value_range=(0, len(value)),
        )
    b.rule.xbits.append(Xbit(cmd, name, track, expire))


# ------------------------------------------------------------------------------ match
# The bits are the engine's (``ctx.xbits``, ``detect/xbits.XbitsTable``: bounded, expiring).


def _match(ctx: MatchContext, checks: tuple[Xbit, ...]) -> bool:
    pkt = ctx.pkt
    return bool(ctx.xbits.checks_pass(checks, pkt.src, pkt.dst, float(pkt.ts)))


def _postmatch(ctx: MatchContext, actions: tuple[Xbit, ...]) -> None:
    pkt = ctx.pkt
    ctx.xbits.apply(actions, pkt.src, pkt.dst, float(pkt.ts))


_STEPS: CheckActionSteps[Xbit] = CheckActionSteps(
    "xbits", "xbits", _match, _postmatch)
match_setup, postmatch_setup = _STEPS.match_setup, _STEPS.postmatch_setup
SPECS: tuple[KeywordSpec, ...] = (_STEPS.spec(setup_xbits, MatchOrder.XBITS),)
