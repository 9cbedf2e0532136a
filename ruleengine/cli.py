"""``ruleengine`` command line: argparse with one module per subcommand.

Exit codes: 0 ok, 1 findings (e.g. lint errors), 2 usage errors, 70 internal error
(never a traceback).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import ruleengine
from ruleengine import startup
from ruleengine.commands import COMMAND_MODULES, info, modules
from ruleengine.commands.errors import UsageError

EXIT_USAGE = 2
EXIT_INTERNAL = 70


def _named_command(argv: Sequence[str] | None) -> str | None:
    """The subcommand a command line names: its first word that is not an option, when
    that is a command (else None: every command is registered, for ``--help`` and for
    argparse's "invalid choice" message with the full list)."""
    words = sys.argv[1:] if argv is None else argv
    for word in words:
        if word == "--":
            return None
        if not word.startswith("-"):
            return word if word in COMMAND_MODULES else None
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv``: with only the named command's subparser when ``argv``
    names one (the other command modules are not imported), else with every command."""
    named = _named_command(argv)
    parser = argparse.ArgumentParser(
        prog="ruleengine",
        description="A Suricata-compatible signature engine with kernel flow bypass.",
    )
    parser.add_argument(
        "--version", action="version", version=f"ruleengine {ruleengine.__version__}"
    )
    info.add_arguments(parser)
    # not required: `ruleengine --build-info` needs none; main() asks for one otherwise
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in modules(None if named is None else [named]):
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    startup.install()  # SIGTERM while loading rules: a clean stop, not the default action
    args: argparse.Namespace | None = None
    try:
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        requested = info.run_requested(args)
        if requested is not None:
            return requested
        if args.command is None:
            parser.error("the following arguments are required: COMMAND")
        code: int = args.func(args)
        return code
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except UsageError as exc:
        print(f"ruleengine: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:  # SIGINT, or SIGTERM before the run's own handlers
        # before parse_args (the command's module was loading): the command line's
        return startup.interrupted(exc, getattr(args, "command", None) or _named_command(argv))
    except BrokenPipeError:
        return 0
    except Exception as exc:  # the promise: no traceback reaches a user
        print(
            f"ruleengine: internal error: {type(exc).__name__}: {exc} "
            "(please report this with the command line and input)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
