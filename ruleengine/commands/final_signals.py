"""SIGINT/SIGTERM once the run has stopped: only noted, so the final flush (flows, EVE,
stats, BPF programs and firewall rules out) always completes and the exit status stays the
run's (``ruleengine.startup`` covers the signals before the run's own handlers)."""

from __future__ import annotations

import signal
import sys
from collections.abc import Mapping
from typing import Any

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
