"""``ruleengine`` command line: a command line that names a command imports that command's
module alone; anything else (``--help``, an unknown command) gets every command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ruleengine import cli
from ruleengine.commands import COMMAND_MODULES

ROOT = Path(__file__).resolve().parents[1]


def _loaded(argv: list[str]) -> set[str]:
    """The command modules a fresh interpreter imports to build the parser for ``argv``."""
    code = ("import sys; from ruleengine import cli; cli.build_parser(sys.argv[1:]); "
            "print(' '.join(m for m in sys.modules if m.startswith('ruleengine.commands.')))")
    out = subprocess.run([sys.executable, "-c", code, *argv], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    return set(out.split())


def test_named_command() -> None:
    assert cli._named_command(["run", "-r", "x"]) == "run"
    assert cli._named_command(["--build-info"]) is None
    assert cli._named_command(["-v", "explain"]) == "explain"
    assert cli._named_command(["nosuch", "run"]) is None
    assert cli._named_command(["--", "run"]) is None


def test_run_does_not_import_the_other_commands() -> None:
    loaded = _loaded(["run", "-r", "x.pcap"])
    assert "ruleengine.commands.run" in loaded
    for name in ("explain", "explain_findings", "hunt", "sc", "lint", "doctor", "bypass"):
        assert f"ruleengine.commands.{name}" not in loaded


@pytest.mark.parametrize("argv", [[], ["--help"], ["nosuch"]])
def test_every_command_without_a_named_one(argv: list[str]) -> None:
    loaded = _loaded(argv)
    assert {f"ruleengine.commands.{m}" for m in COMMAND_MODULES.values()} <= loaded


def test_help_and_unknown_command_list_every_command(capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMAND_MODULES:
        assert name in out
    assert cli.main(["nosuch"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'nosuch'" in err and "explain" in err and "hunt" in err


def test_each_command_parses_alone() -> None:
    args = cli.build_parser(["explain", "-r", "a.pcap", "-S", "r.rules", "--sid", "1"]
                            ).parse_args(["explain", "-r", "a.pcap", "-S", "r.rules",
                                          "--sid", "1"])
    assert args.command == "explain" and callable(args.func)
