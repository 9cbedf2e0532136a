"""The compile shared by the keywords that keep named state (flowbits, xbits, flowint):
a rule's items split into checks (match steps, run while the rule is tested) and actions
(post-match steps, run only after the whole rule matched: Suricata's
DETECT_SM_LIST_POSTMATCH). Identical item tuples share one steps tuple (``StepCache``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from ruleengine.keywords.registry import (
    KeywordSpec,
    MatchOrder,
    MatchStep,
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
    """``match_setup`` / ``postmatch_setup`` of one such keyword: ``items`` reads the
    rule's parsed items, ``match(ctx, checks)`` tests the checks, ``postmatch(ctx,
    actions)`` applies the actions; ``is_action`` picks the actions (by default every
    item that is not a check)."""

    def __init__(
        self,
        name: str,
        items: Callable[[Rule], Sequence[_I]],
        match: Callable[[MatchContext, tuple[_I, ...]], bool],
        postmatch: Callable[[MatchContext, tuple[_I, ...]], None],
        is_action: Callable[[_I], bool] | None = None,
    ) -> None:
        self.name = name
        self._items = items
        self._match: Any = match
        self._postmatch: Any = postmatch
        self._is_action = is_action or (lambda item: not item.is_check)
        self._steps: StepCache[tuple[MatchStep, ...]] = StepCache()
        self._post_steps: StepCache[tuple[PostmatchStep, ...]] = StepCache()

    def match_setup(self, rule: Rule) -> tuple[MatchStep, ...]:
        items = self._items(rule)
        if not items:
            return ()
        checks = tuple(i for i in items if i.is_check)
        if not checks:
            return ()
        return self._steps.get(checks, lambda: ((self._match, checks, self.name),))

    def postmatch_setup(self, rule: Rule) -> tuple[PostmatchStep, ...]:
        items = self._items(rule)
        if not items:
            return ()
        is_action = self._is_action
        actions = tuple(i for i in items if is_action(i))
        if not actions:
            return ()
        return self._post_steps.get(actions, lambda: ((self._postmatch, actions),))

    def spec(self, setup: Setup, order: MatchOrder) -> KeywordSpec:
        """The keyword's registry entry: one unquoted argument, parsed after the rule's
        other options (Stage.POSTMATCH), matched and applied through these steps."""
        return KeywordSpec(self.name, setup, quotes=Quotes.FORBIDDEN, stage=Stage.POSTMATCH,
                           match=self.match_setup, match_order=order,
                           postmatch=self.postmatch_setup)
