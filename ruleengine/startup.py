"""SIGINT/SIGTERM before the engine's own handlers are in place (imports, configuration,
rule loading, building the detection engine): the start-up stops there, cleanly.

Python turns SIGINT into KeyboardInterrupt; SIGTERM would end the process by its default
action. ``install()`` makes SIGTERM raise ``Terminated`` (a KeyboardInterrupt) instead, so
both unwind through ``finally`` blocks (atexit closes what was opened) and ``cli.main``
ends them with one line and no traceback. The run's own handlers replace these once its
outputs are open (a signal then flushes EVE and stats). Once the run has stopped, a further
SIGINT/SIGTERM is only noted (``ruleengine.commands.final_signals``): the final flush
always completes and the exit status stays the run's.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys


class Terminated(KeyboardInterrupt):
    """SIGTERM during start-up."""


# Set by interrupted(): ``python -m ruleengine`` then ends with os._exit. A KeyboardInterrupt
# that hit C code running Python source (PyRun_String, e.g. a Cython module's init while
# it was imported) leaves CPython's "unhandled KeyboardInterrupt" flag set, and a normal
# exit would kill the process with SIGINT (status -2) although it was handled.
was_interrupted = False


def _terminated(signum: int, frame: object) -> None:
    raise Terminated


def install() -> None:
    """SIGTERM raises Terminated (when it still has its default action)."""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminated)


def interrupted(exc: KeyboardInterrupt, command: str | None) -> int:
    """The exit code of a start-up (or run) ended by ``exc``, said in one line: ``run``
    exits 0 as after a signal mid-run (a stop was asked for and nothing is left behind),
    other commands 130 (Ctrl-C)."""
    global was_interrupted
    was_interrupted = True
    name = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
    print(f"ruleengine: stopped by {name} before the run started; nothing was inspected",
          file=sys.stderr)
    return 0 if command == "run" else 130


def exit_now(code: int) -> None:
    """End the process with ``code`` now (after an interruption: see ``was_interrupted``);
    the ``finally`` blocks have run, stdio is flushed here."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
