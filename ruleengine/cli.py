"""``ruleengine`` command line: argparse with one module per subcommand.

Exit codes: 0 ok, 1 findings (e.g. lint errors), 2 usage errors, 70 internal error
(never a traceback).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import ruleengine
from ruleengine.commands import COMMANDS
from ruleengine.commands.errors import UsageError

EXIT_USAGE = 2
EXIT_INTERNAL = 70


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ruleengine",
        description="A Suricata-compatible signature engine with kernel flow bypass.",
    )
    parser.add_argument(
        "--version", action="version", version=f"ruleengine {ruleengine.__version__}"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        code: int = args.func(args)
        return code
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except UsageError as exc:
        print(f"ruleengine: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
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
