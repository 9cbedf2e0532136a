"""Errors a subcommand raises for the CLI to report (here, not in cli.py: the CLI imports
the commands, so the commands must not import the CLI)."""

from __future__ import annotations


class UsageError(Exception):
    """A bad command line or unusable input file; exits 2 with the message."""
