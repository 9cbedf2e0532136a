"""Subcommands of ``ruleengine``: each module has ``register(subparsers)`` that adds its
parser and sets ``func``. Listed explicitly (suricata-update style)."""

from __future__ import annotations

from ruleengine.commands import bypass, doctor, explain, hunt, lint, run, sc

COMMANDS = (lint, run, explain, sc, bypass, doctor, hunt)
