"""Positioned diagnostics for rule files and their renderings (text, JSON, SARIF 2.1.0)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

ERROR = "error"
WARNING = "warning"

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"


@dataclass(frozen=True)
class Diagnostic:
    """One finding. ``line``/``column`` are 1-based, ``end_column`` exclusive.

    ``source_line`` is the (continuation-joined) rule text the columns refer to."""

    file: str
    line: int
    column: int
    end_column: int
    severity: str  # "error" | "warning"
    code: str
    message: str
    sid: int | None = None
    source_line: str = ""
    hint: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "end_column": self.end_column,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "sid": self.sid,
            "hint": self.hint,
        }


def _printable(line: str) -> str:
    # Control characters would corrupt the terminal and shift the caret.
    return "".join(ch if ch == "\t" or ch.isprintable() else "?" for ch in line)


def render_text(d: Diagnostic) -> str:
    """``file:line:col: severity: message [CODE]``, the source line, a caret under the span
    (``^~~~``) and ``help: ...`` when there is a hint."""
    out = [f"{d.file}:{d.line}:{d.column}: {d.severity}: {d.message} [{d.code}]"]
    if d.source_line:
        src = _printable(d.source_line.rstrip("\r\n"))
        out.append("  " + src)
        start = max(d.column - 1, 0)
        width = max(d.end_column - d.column, 1)
        # Keep tabs so the caret lines up under tab-indented text.
        pad = "".join("\t" if ch == "\t" else " " for ch in src[:start])
        pad += " " * max(start - len(src), 0)
        out.append("  " + pad + "^" + "~" * (width - 1))
    if d.hint:
        out.append(f"  help: {d.hint}")
    return "\n".join(out)


def _sarif_result(d: Diagnostic) -> dict[str, Any]:
    message = d.message if not d.hint else f"{d.message} (help: {d.hint})"
    result: dict[str, Any] = {
        "ruleId": d.code,
        "level": "error" if d.is_error else "warning",
        "message": {"text": message},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": d.file},
                    "region": {
                        "startLine": max(d.line, 1),
                        "startColumn": max(d.column, 1),
                        "endColumn": max(d.end_column, d.column + 1, 2),
                    },
                }
            }
        ],
    }
    if d.sid is not None:
        result["properties"] = {"sid": d.sid}
    return result


def to_sarif(
    diagnostics: Sequence[Diagnostic], *, tool_version: str, artifacts: Iterable[str] = ()
) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run of ``ruleengine lint``."""
    codes = sorted({d.code for d in diagnostics})
    files = sorted({*artifacts, *(d.file for d in diagnostics)})
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "ruleengine",
                        "version": tool_version,
                        "informationUri": "https://suricata.io/",
                        "rules": [
                            {"id": code, "shortDescription": {"text": code.replace("-", " ")}}
                            for code in codes
                        ],
                    }
                },
                "artifacts": [{"location": {"uri": f}} for f in files],
                "results": [_sarif_result(d) for d in diagnostics],
            }
        ],
    }


# Text renderings print the first few diagnostics of each kind and a count for the rest:
# 100,000 rules sharing one sid would otherwise print 400,000 lines (4 per diagnostic), and
# the one different problem among them would be lost. JSON and SARIF stay complete.
DEFAULT_PER_KIND = 10


def summarize(
    diagnostics: Iterable[Diagnostic], per_kind: int = DEFAULT_PER_KIND
) -> tuple[list[Diagnostic], dict[tuple[str, str], int]]:
    """Split ``diagnostics`` into the ones to print (the first ``per_kind`` of each
    severity and code, in order; ``per_kind <= 0``: all) and how many of each kind were
    left out."""
    shown: list[Diagnostic] = []
    seen: dict[tuple[str, str], int] = {}
    omitted: dict[tuple[str, str], int] = {}
    for d in diagnostics:
        kind = (d.severity, d.code)
        seen[kind] = seen.get(kind, 0) + 1
        if per_kind <= 0 or seen[kind] <= per_kind:
            shown.append(d)
        else:
            omitted[kind] = omitted.get(kind, 0) + 1
    return shown, omitted


def render_omitted(omitted: dict[tuple[str, str], int], per_kind: int, *,
                   how_to_see: str = "") -> list[str]:
    """One line per kind left out, most frequent first:
    ``... and 99,989 more error(s) [duplicate-sid] (first 10 shown)``."""
    lines = []
    for (severity, code), count in sorted(omitted.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"... and {count:,} more {severity}(s) [{code}] (first {per_kind} shown"
                     f"{'; ' + how_to_see if how_to_see else ''})")
    return lines
