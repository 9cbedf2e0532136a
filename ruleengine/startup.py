"""SIGINT/SIGTERM before the engine's own handlers are in place (imports, configuration,
rule loading, building the detection engine): the start-up stops there, cleanly.

Python turns SIGINT into KeyboardInterrupt; SIGTERM would end the process by its default
action. ``install()`` makes SIGTERM raise ``Terminated`` (a KeyboardInterrupt) instead, so
both unwind through ``finally`` blocks (atexit closes what was opened) and ``cli.main``
ends them with one line and no traceback. The run's own handlers replace these once its
outputs are open (a signal then flushes EVE and stats). Once the run has stopped, a further
SIGINT/SIGTERM is only noted (``defer_stop_signals``): the final flush (flows, EVE, stats,
BPF programs and firewall rules out) always completes and the exit status stays the run's.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Mapping
from typing import Any


class Terminated(KeyboardInterrupt):
    """SIGTERM during start-up."""


# Set by interrupted(): ``python -m ruleengine`` then ends with os._exit. A KeyboardInterrupt
# that hit C code running Python source (PyRun_String, e.g. a Cython module's init while
# it was imported) leaves CPython's "unhandled KeyboardInterrupt" flag set, and a normal
# exit would kill the process with SIGINT (status -2) although it was handled.
was_interrupted = False


def _terminated(signum: int, frame: object) -> None:
    raise Terminated


# Set by ``python -m ruleengine``: once deferred, SIGINT/SIGTERM stay deferred until the
# process exits (atexit closes BPF programs too); in-process callers get theirs back.
defer_until_exit = False
_late: list[str] = []  # SIGINT/SIGTERM received while deferred, by name
_saved: dict[signal.Signals, Any] | None = None  # the handlers before the first deferral


def _noted(signum: int, frame: object) -> None:
    _late.append(signal.Signals(signum).name)  # only a note: the flush goes on


def defer_stop_signals() -> None:
    """The run has stopped: from now on SIGINT/SIGTERM are only noted (said by
    ``end_deferral``), so a second signal cannot cut the final flush."""
    global _saved
    if _saved is None:
        _saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _noted)


def deferring() -> bool:
    return _saved is not None


def restore_later(handlers: Mapping[signal.Signals, Any]) -> None:
    """While deferred: the handlers ``end_deferral`` gives back (an inner stage that
    installed its own and now wants the earlier ones restored)."""
    if _saved is not None:
        _saved.update((sig, h) for sig, h in handlers.items() if sig in _saved)


def end_deferral() -> None:
    """After the final flush: say what was deferred; give the handlers back (not for
    ``python -m ruleengine``, which exits now)."""
    global _saved
    if _late:
        names = sorted(set(_late))
        print(f"notice: {len(_late)} {'/'.join(names)} received during the final flush: "
              "deferred until it completed (EVE, stats, BPF programs and firewall rules "
              "are done)", file=sys.stderr)
        _late.clear()
    if _saved is None:
        return
    if defer_until_exit:
        # Ignored, not noted: at interpreter shutdown CPython resets the handlers it set
        # to the default action (a signal then would end the process with -15), but
        # keeps SIG_IGN; atexit still has BPF programs to close.
        for sig in _saved:
            signal.signal(sig, signal.SIG_IGN)
        return
    for sig, handler in _saved.items():
        signal.signal(sig, handler)
    _saved = None


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
