"""The compile shared by the keywords that keep named state (flowbits, xbits, flowint):
a rule's items split into checks (match steps, run while the rule is tested) and actions
(post-match steps, run only after the whole rule matched: Suricata's
DETECT_SM_LIST_POSTMATCH). Identical item tuples share one steps tuple (``StepCache``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from ruleengine.keywords.registry import (
    KeywordSpec,
    MatchOrder,
    MatchSetup,
    MatchStep,
    PostmatchSetup,
    PostmatchStep,
    Quotes,
    Setup,
    Stage,
    StepCache,
)

if TYPE_CHECKING:
    from ruleengine.keywords.registry import MatchContext
    from ruleengine.rules.model import Rule


class _Item(Protocol):
    @property
    def is_check(self) -> bool: ...


_I = TypeVar("_I", bound=_Item)


class CheckActionSteps(Generic[_I]):
    """``match_setup`` / ``postmatch_setup`` of one such keyword: ``field`` names the
    rule's parsed items, ``match(ctx, checks)`` tests the checks, ``postmatch(ctx,
    actions)`` applies the actions; ``is_action`` picks the actions (by default every
    item that is not a check)."""

    def __init__(
        self,
        name: str,
        field: str,  # the Rule attribute holding the parsed items
        match: Callable[[MatchContext, tuple[_I, ...]], bool],
        postmatch: Callable[[MatchContext, tuple[_I, ...]], None],
        is_action: Callable[[_I], bool] | None = None,
    ) -> None:
        self.name = name
        # closures, not methods: called for every loaded rule, most of which have no items
        self.match_setup: MatchSetup = _match_setup(name, attrgetter(field), match)
        self.postmatch_setup: PostmatchSetup = _postmatch_setup(
            attrgetter(field), postmatch, is_action or _not_check)

    def spec(self, setup: Setup, order: MatchOrder) -> KeywordSpec:
        """The keyword's registry entry: one unquoted argument, parsed after the rule's
        other options (Stage.POSTMATCH), matched and applied through these steps."""
        return KeywordSpec(self.name, setup, quotes=Quotes.FORBIDDEN, stage=Stage.POSTMATCH,
                           match=self.match_setup, match_order=order,
                           postmatch=self.postmatch_setup)


def _not_check(item: _Item) -> bool:
    return not item.is_check


def _match_setup(name: str, items: Callable[[Rule], Sequence[_I]],
                 match: Callable[[MatchContext, tuple[_I, ...]], bool]) -> MatchSetup:
    cache: StepCache[tuple[MatchStep, ...]] = StepCache()

    def match_setup(rule: Rule) -> tuple[MatchStep, ...]:
        found = items(rule)
        if not found:
            return ()
        checks = tuple(i for i in found if i.is_check)
        if not checks:
            return ()
        return cache.get(checks, lambda: ((match, checks, name),))

    return match_setup


def _postmatch_setup(items: Callable[[Rule], Sequence[_I]],
                     postmatch: Callable[[MatchContext, tuple[_I, ...]], None],
                     is_action: Callable[[_I], bool]) -> PostmatchSetup:
    cache: StepCache[tuple[PostmatchStep, ...]] = StepCache()

    def postmatch_setup(rule: Rule) -> tuple[PostmatchStep, ...]:
        found = items(rule)
        if not found:
            return ()
        actions = tuple(i for i in found if is_action(i))
        if not actions:
            return ()
        return cache.get(actions, lambda: ((postmatch, actions),))

    return postmatch_setup
