"""Rule-language errors.

    RuleError            a rule cannot load; carries the exact span, a code and a hint
    +-- RuleSyntaxError  header / option-list syntax (grammar level)
    +-- KeywordError     raised by a keyword's setup; its span may be relative to the value

The loader turns every RuleError into a positioned ``Diagnostic``.
"""

from __future__ import annotations

from ruleengine.rules.model import Span


class RuleError(Exception):
    """A rule that cannot be loaded. ``span`` is absolute (file, line, columns)."""

    def __init__(
        self,
        message: str,
        span: Span | None = None,
        *,
        code: str = "invalid-rule",
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.span = span
        self.code = code
        self.hint = hint


class RuleSyntaxError(RuleError):
    """The header or the option list does not follow the grammar."""


class KeywordError(RuleError):
    """Raised by a keyword's ``setup``.

    ``value_range`` (start, end) is relative to the option's value as written (before any
    stripping); None means the whole option. The loader resolves it to an absolute span.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "invalid-keyword-value",
        hint: str | None = None,
        value_range: tuple[int, int] | None = None,
        span: Span | None = None,
    ) -> None:
        super().__init__(message, span, code=code, hint=hint)
        self.value_range = value_range
