"""Subcommands of ``ruleengine``: each module has ``register(subparsers)`` that adds its
parser and sets ``func``. Listed explicitly (suricata-update style), by command name, and
imported only when needed: a command line that names one command loads that module alone
(``run`` does not pay for compiling ``explain``, ``hunt`` and ``bypass``)."""

from __future__ import annotations

import importlib
from types import ModuleType

# command name -> module under ruleengine.commands, in ``--help`` order
COMMAND_MODULES: dict[str, str] = {
    "lint": "lint", "run": "run", "explain": "explain", "sc": "sc", "bypass": "bypass",
    "doctor": "doctor", "hunt": "hunt",
}


def command_module(name: str) -> ModuleType:
    """The module that registers command ``name`` (a key of COMMAND_MODULES)."""
    return importlib.import_module(f"ruleengine.commands.{COMMAND_MODULES[name]}")


def modules(names: list[str] | None = None) -> list[ModuleType]:
    """The command modules for ``names`` (every command when None), in ``--help`` order."""
    wanted = COMMAND_MODULES if names is None else [n for n in COMMAND_MODULES if n in names]
    return [command_module(name) for name in wanted]
