"""``ruleengine lint [--format text|json|sarif] [--strict] [-c suricata.yaml] PATH...``"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

import ruleengine
from ruleengine.diagnostics import (
    DEFAULT_PER_KIND,
    Diagnostic,
    render_omitted,
    render_text,
    summarize,
    to_sarif,
)
from ruleengine.keywords import REGISTRY, Stage
from ruleengine.rules.loader import RuleSet, load_rule_files
from ruleengine.rules.vars import VarsError, vars_from_yaml

EXAMPLES = """examples:
  ruleengine lint local.rules
  ruleengine lint -c /etc/suricata/suricata.yaml /var/lib/suricata/rules/
  ruleengine lint --format sarif rules/ > lint.sarif
"""


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "lint",
        help="check rule files like Suricata would load them",
        description="Parse and validate Suricata rule files; report errors and warnings "
        "with their exact position.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "paths", nargs="*", metavar="PATH", help="rule files or directories of *.rules"
    )
    parser.add_argument("--format", choices=("text", "json", "sarif"), default="text")
    parser.add_argument("--strict", action="store_true", help="warnings also make the exit code 1")
    parser.add_argument(
        "-c",
        "--config",
        metavar="suricata.yaml",
        help="read address/port variables from this suricata.yaml 'vars:' section",
    )
    parser.add_argument("--no-cache", action="store_true", help="do not use the parse cache")
    parser.add_argument(
        "--max-per-kind",
        type=int,
        default=DEFAULT_PER_KIND,
        metavar="N",
        help=f"text format: print the first N diagnostics of each kind (severity and code) "
        f"and a count of the rest (default {DEFAULT_PER_KIND}; 0: all). json and sarif "
        "are always complete",
    )
    parser.add_argument(
        "--list-keywords",
        action="store_true",
        help="list the rule keywords this engine knows (like suricata --list-keywords)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    from ruleengine.commands.errors import UsageError

    out = out or sys.stdout
    err = err or sys.stderr
    if args.list_keywords:
        _list_keywords(out)
        return 0
    if not args.paths:
        raise UsageError("lint: at least one PATH is required")
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        raise UsageError(f"no such file or directory: {', '.join(missing)}")
    address_vars: dict[str, str] | None = None
    port_vars: dict[str, str] | None = None
    if args.config:
        try:
            address_vars, port_vars = vars_from_yaml(args.config)
        except VarsError as exc:
            raise UsageError(str(exc)) from None
    ruleset = load_rule_files(
        args.paths, address_vars=address_vars, port_vars=port_vars, use_cache=not args.no_cache
    )
    _engine_skips(ruleset)
    diagnostics = sorted(ruleset.diagnostics, key=lambda d: (d.file, d.line, d.column))
    if args.format == "text":
        _write_text(diagnostics, ruleset, out, getattr(args, "max_per_kind", DEFAULT_PER_KIND))
    elif args.format == "json":
        json.dump([d.to_json() for d in diagnostics], out, indent=2)
        out.write("\n")
        err.write(_summary(ruleset) + "\n")
    else:
        files = [d.file for d in diagnostics]
        json.dump(
            to_sarif(diagnostics, tool_version=ruleengine.__version__, artifacts=files),
            out,
            indent=2,
        )
        out.write("\n")
        err.write(_summary(ruleset) + "\n")
    errors = sum(1 for d in diagnostics if d.is_error)
    warnings = len(diagnostics) - errors
    if errors or (args.strict and warnings):
        return 1
    return 0


def _engine_skips(ruleset: RuleSet) -> None:
    """Rules that load but that detection would not evaluate (an unparsed app-layer
    protocol, buffers of two protocols...) are counted as skipped and get a warning, so
    "0 rules skipped" means every loaded rule runs."""
    from ruleengine.detect.engine import DetectEngine

    engine = DetectEngine(ruleset.rules, prefilter=False)
    ruleset.skipped = len(engine.skipped)
    for rule, reason in engine.skipped:
        if rule.unsupported:
            continue  # already warned per keyword
        span = rule.span
        ruleset.diagnostics.append(Diagnostic(
            span.file, span.line, span.col, span.end_col, "warning", "rule-not-evaluated",
            f"the rule loads but detection skips it: {reason}", sid=rule.sid,
            source_line=rule.raw,
        ))


def _list_keywords(out: TextIO) -> None:
    """One line per keyword, generated from the registry: name, aliases, value, stage."""
    for spec in sorted(REGISTRY.specs, key=lambda s: s.name):
        aliases = ",".join(spec.aliases) or "-"
        support = "unsupported" if spec.stage is Stage.UNSUPPORTED else "supported"
        out.write(f"{spec.name};{aliases};{spec.arg.value};{spec.stage.value};{support}\n")


def _summary(ruleset: RuleSet) -> str:
    errors = len(ruleset.errors)
    warnings = len(ruleset.diagnostics) - errors
    return f"{ruleset.summary()}; {errors} error(s), {warnings} warning(s)"


def _write_text(diagnostics: list[Diagnostic], ruleset: RuleSet, out: TextIO,
                per_kind: int) -> None:
    shown, omitted = summarize(diagnostics, per_kind)
    for d in shown:
        out.write(render_text(d) + "\n")
    for line in render_omitted(omitted, per_kind, how_to_see="--max-per-kind 0 prints all"):
        out.write(line + "\n")
    out.write(_summary(ruleset) + "\n")
