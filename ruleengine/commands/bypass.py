"""``ruleengine bypass report|list``: see what bypass does.

    ruleengine bypass report EVE.json [EVE2.json ...] [--label NAME ...]
                             [--plot out.png|out.svg] [--format text|json]
    ruleengine bypass list [--pid PID] [--state-dir DIR] [--format text|json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ruleengine.commands.bypass_report import ReportError, build_report, render_text

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bypass", help="what bypass saved (report, plot) and which flows are bypassed now",
        description="Bypass tools: a report of what bypass saved, from EVE flow and stats "
        "events, and the flows bypassed in the kernel right now.")
    sub = parser.add_subparsers(dest="bypass_command", metavar="SUBCOMMAND")
    report = sub.add_parser(
        "report", help="packets and bytes bypass kept from user space, per reason, sid, "
        "flow size and over time",
        description="Read EVE logs (flow events, stats events) and report what bypass saved. "
        "Several files (e.g. runs with different stream depths) are compared side by side.")
    report.add_argument("eve", nargs="+", metavar="EVE.json")
    report.add_argument("--label", action="append", default=[],
                        help="name of each input in the plot (default: the file names)")
    report.add_argument("--plot", metavar="OUT", help="write a plot (.png or .svg; matplotlib)")
    report.add_argument("--format", choices=("text", "json"), default="text")
    report.set_defaults(func=report_command)
    from ruleengine.commands import bypass_list

    bypass_list.register(sub)
    parser.set_defaults(func=lambda args: _need_subcommand(parser))


def _need_subcommand(parser: argparse.ArgumentParser) -> int:
    parser.print_usage(sys.stderr)
    print("ruleengine bypass: error: choose a subcommand: report or list", file=sys.stderr)
    return EXIT_USAGE


def report_command(args: argparse.Namespace) -> int:
    if args.label and len(args.label) != len(args.eve):
        print(f"error: {len(args.label)} --label for {len(args.eve)} inputs", file=sys.stderr)
        return EXIT_USAGE
    reports = []
    for name in args.eve:
        try:
            reports.append(build_report(Path(name)))
        except ReportError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_FAILURE
    labels = args.label or [Path(name).parent.name or Path(name).name for name in args.eve]
    if len(set(labels)) != len(labels):
        labels = list(args.eve)
    if args.format == "json":
        doc: Any = [r.as_dict() for r in reports]
        json.dump(doc[0] if len(doc) == 1 else doc, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write("\n".join(render_text(r) for r in reports))
    sys.stdout.flush()
    if args.plot:
        from ruleengine.commands.bypass_plot import PlotError, plot

        try:
            plot(reports, labels, Path(args.plot))
        except PlotError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_FAILURE
        print(f"plot written to {args.plot}", file=sys.stderr)
    return EXIT_OK
