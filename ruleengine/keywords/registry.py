"""The keyword registry: one ``KeywordSpec`` per keyword, checked generically in one place.

Each keyword module exports ``SPECS`` (a tuple of ``KeywordSpec``); the package
``__init__`` lists the modules explicitly and builds ``REGISTRY`` from them.

A keyword owns its parse (``setup``, Suricata's Setup) and, when it tests packets or flow
state, its match (``match``, Suricata's Match of the DETECT_SM_LIST_MATCH list): a
``MatchSetup`` that turns what the setup put in the ``Rule`` into ``MatchStep``s, once,
when the engine compiles the rule. Per packet the engine only walks the rule's steps,
calling ``match(ctx, arg)``; ``ctx`` is the engine's ``MatchContext``.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from ruleengine.rules.errors import KeywordError

if TYPE_CHECKING:
    from ruleengine.rules.builder import RuleBuilder
    from ruleengine.rules.model import Rule


class ArgKind(enum.Enum):
    NONE = "none"  # bypass, nocase, ...: a value is an error
    OPTIONAL = "optional"  # fast_pattern[:only|off,len]
    REQUIRED = "required"  # content:..., sid:...


class Quotes(enum.Enum):
    FORBIDDEN = "forbidden"
    OPTIONAL = "optional"
    MANDATORY = "mandatory"


class Stage(enum.Enum):
    META = "meta"  # msg, sid, classtype, ...: describe the rule
    STICKY = "sticky"  # http.uri, file.data, pkt_data: switch the active buffer
    MATCH = "match"  # content, pcre, byte_test, flow, dsize ...: add a condition
    MODIFIER = "modifier"  # nocase, depth, http_uri ...: change the previous content
    POSTMATCH = "postmatch"  # flowbits set, bypass, noalert: act after a full match
    UNSUPPORTED = "unsupported"  # parsed structurally; the engine skips such rules


Setup = Callable[["RuleBuilder", str | None], None]
"""``setup(builder, value)``: value is the option value with surrounding whitespace
removed (quotes kept), None when absent. Raise KeywordError with ``value_range``
relative to that string."""


class MatchContext(Protocol):
    """What a keyword's match may read (Suricata hands its Match the thread context, the
    packet and the signature): the packet, its flow and direction, the flow's detection
    memory and the engine's tables. ``detect/groups.PacketCtx`` implements it."""

    pkt: Any  # the decoded packet (``ruleengine.decode.packet``)
    flow: Any  # its flow (``flowbits``, ``state``, ``alproto``, ``tcp``...) or None
    to_server: bool
    state: Any  # the flow's detection memory (``flowints``, ``flowvars``) or None
    xbits: Any  # the engine's host / IP-pair bit table (``detect/xbits.XbitsTable``)
    fcache: dict[int, bool]  # per packet: results of shared arguments, by id()
    flowint_max: int  # flowints a flow may hold

    def pktvar(self, name: str) -> bytes | None:
        """The packet variable ``name`` (a pcre ``pkt_`` capture of this packet)."""
        ...


MatchFn = Callable[[MatchContext, Any], bool]
"""``match(ctx, arg)``: does the keyword hold for this packet? ``arg`` is what the
keyword's ``MatchSetup`` compiled for the rule."""

MatchStep = tuple[MatchFn, Any, str]
"""(match, its compiled argument, the name reported when it fails: ``ruleengine explain``)."""

MatchSetup = Callable[["Rule"], tuple[MatchStep, ...]]
"""Called once per rule at compile time: the steps of the keyword for that rule (none
when the rule does not use it)."""

PostmatchFn = Callable[[MatchContext, Any], None]
PostmatchStep = tuple[PostmatchFn, Any]
PostmatchSetup = Callable[["Rule"], tuple[PostmatchStep, ...]]
"""As ``MatchSetup`` for what runs after the whole rule matched (Suricata's
DETECT_SM_LIST_POSTMATCH: flowbits/xbits/flowint set, unset, toggle...)."""


_Steps = TypeVar("_Steps")


class StepCache(Generic[_Steps]):
    """Identical keyword arguments compile to one shared steps tuple (thousands of rules
    carry the same ``flow:established,to_server``): fewer objects for the garbage
    collector to walk over the life of the engine. Bounded; the values are immutable."""

    def __init__(self, limit: int = 4096) -> None:
        self._steps: dict[Hashable, _Steps] = {}
        self.limit = limit

    def get(self, key: Hashable, make: Callable[[], _Steps]) -> _Steps:
        steps = self._steps.get(key)
        if steps is None:
            steps = make()
            if len(self._steps) < self.limit:
                self._steps[key] = steps
        return steps


class MatchOrder(enum.IntEnum):
    """Where a keyword's steps stand in a rule's match list. Suricata keeps the rule's
    option order; here the cheap packet tests come before the lookups of kept state
    (which one failed first is what ``ruleengine explain`` reports)."""

    FLOW = 0
    PACKET = 1
    FLOWBITS = 2
    XBITS = 3
    FLOWINT = 4
    STREAM_SIZE = 5
    VARIABLES = 6


@dataclass(frozen=True)
class KeywordSpec:
    name: str
    setup: Setup
    aliases: tuple[str, ...] = ()
    arg: ArgKind = ArgKind.REQUIRED
    quotes: Quotes = Quotes.OPTIONAL
    negatable: bool = False
    stage: Stage = Stage.MATCH
    doc: str = ""
    match: MatchSetup | None = None  # packet / flow-state test (see the module doc)
    match_order: MatchOrder = MatchOrder.PACKET
    postmatch: PostmatchSetup | None = None  # what runs once the rule matched



def modifier_flag(name: str, setup: Setup) -> KeywordSpec:
    """A modifier written without a value (``nocase;``, ``rawbytes;``, ``prefilter;``)."""
    return KeywordSpec(name, setup, arg=ArgKind.NONE, stage=Stage.MODIFIER)


class Registry:
    def __init__(self) -> None:
        self._by_name: dict[str, KeywordSpec] = {}
        self.specs: list[KeywordSpec] = []

    def register(self, spec: KeywordSpec) -> None:
        for name in (spec.name, *spec.aliases):
            if name in self._by_name:
                raise ValueError(f"keyword {name!r} registered twice")
            self._by_name[name] = spec
        self.specs.append(spec)

    def register_all(self, specs: Iterable[KeywordSpec]) -> None:
        for spec in specs:
            self.register(spec)

    def get(self, name: str) -> KeywordSpec | None:
        return self._by_name.get(name)

    def match_setups(self) -> tuple[MatchSetup, ...]:
        """Every keyword's match setup in ``MatchOrder`` (registration order within one),
        each once (a family's keywords may share one setup)."""
        ordered = sorted((s for s in self.specs if s.match is not None),
                         key=lambda s: s.match_order)
        return tuple(dict.fromkeys(s.match for s in ordered if s.match is not None))

    def postmatch_setups(self) -> tuple[PostmatchSetup, ...]:
        """Every keyword's postmatch setup, in registration order, each once."""
        return tuple(dict.fromkeys(s.postmatch for s in self.specs if s.postmatch is not None))

    @property
    def lookup(self) -> Callable[[str], KeywordSpec | None]:
        """``get`` as the bound ``dict.get`` (the parser calls it once per option)."""
        return self._by_name.get

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def suggest(self, name: str) -> str | None:
        """A did-you-mean hint for an unknown keyword."""
        close = difflib.get_close_matches(name.lower(), self._by_name, n=2, cutoff=0.7)
        if not close:
            return None
        quoted = " or ".join(f"'{c}'" for c in close)
        return f"did you mean {quoted}?"


def check_value(spec: KeywordSpec, value: str | None) -> None:
    """The generic checks every keyword gets (Suricata's SIGMATCH_NOOPT,
    SIGMATCH_QUOTES_MANDATORY, ...), so setups never re-check arity or quoting."""
    arg = spec.arg
    if value is None or value == "":
        if arg is ArgKind.REQUIRED:
            raise KeywordError(
                f"'{spec.name}' needs a value",
                code="missing-value",
                hint=f"write '{spec.name}:<value>;'",
            )
        if value is None:
            return
    if arg is ArgKind.NONE:
        raise KeywordError(
            f"'{spec.name}' does not take a value",
            code="unexpected-value",
            hint=f"write '{spec.name};'",
        )
    if not value:
        return
    quotes = spec.quotes
    first = value[0]
    base = 0  # offset of ``value`` in the option value as written (after a "!")
    if first == "!":
        body = value[1:].lstrip()
        if not spec.negatable and quotes is not Quotes.FORBIDDEN and body.startswith('"'):
            raise KeywordError(
                f"'{spec.name}' cannot be negated", code="invalid-negation", value_range=(0, 1)
            )
        if spec.negatable:
            first = body[:1]
            base = len(value) - len(body)
            value = body
    if first == '"':
        if value[-1] != '"' or len(value) < 2:
            _check_text_after_quote(spec, value, base)
        if quotes is Quotes.FORBIDDEN:
            raise KeywordError(
                f"quotes on '{spec.name}' keyword that doesn't support them",
                code="unexpected-quotes",
                value_range=(0, len(value)),
            )
        if quotes is Quotes.MANDATORY and (len(value) < 2 or value[-1] != '"'):
            raise _missing_quotes(spec, value)
    elif quotes is Quotes.MANDATORY:
        raise _missing_quotes(spec, value)


def _check_text_after_quote(spec: KeywordSpec, value: str, base: int) -> None:
    """``msg:"x" sid:1;``: the closing quote is followed by more text, almost always a
    forgotten ';' (Suricata: "bad option value formatting (possible missing semicolon)")."""
    i = 1
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            i += 2
            continue
        if ch == '"':
            rest = value[i + 1 :]
            if rest.strip():
                start = i + 1 + len(rest) - len(rest.lstrip())
                raise KeywordError(
                    f"unexpected text after the closing quote of '{spec.name}' "
                    "(possible missing semicolon)",
                    code="missing-semicolon",
                    value_range=(base + start, base + len(value)),
                    hint="end each option with ';'",
                )
            return
        i += 1


def _missing_quotes(spec: KeywordSpec, value: str) -> KeywordError:
    return KeywordError(
        f"'{spec.name}' value must be enclosed in double quotes",
        code="missing-quotes",
        value_range=(0, len(value)),
    )


def unquote(value: str) -> tuple[str, int]:
    """Strip one pair of surrounding double quotes; returns (text, offset of text in value)."""
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1], 1
    return value, 0
