"""The safety nets around detection and the app-layer parsers: what they may swallow.

A sensor must survive what the network sends, so the nets stay in place in production: an
exception there is counted (an engine event), the packet or flow goes on without that
inspection, and no traceback reaches the user. But a net that swallows everything turns a
bug into a silent miss. So an exception is sorted:

* ``HOSTILE_ERRORS``: what malformed data can reach even in correct code (a number out of
  range for ``int``/``struct``, a regex engine limit, recursion or memory exhaustion).
  Always swallowed and counted.
* anything else (``TypeError``, ``AttributeError``, ``KeyError``, ``AssertionError``...) is
  a bug. Swallowed and counted in production; with ``RULEENGINE_STRICT=1`` (the test suite
  sets it, see tests/conftest.py) it is raised, so bugs fail tests instead of hiding.

This module imports nothing of the engine: every layer may use it.
"""

from __future__ import annotations

import os
import struct

HOSTILE_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,  # includes UnicodeError and most regex engine errors
    OverflowError,
    struct.error,
    RecursionError,
    MemoryError,
)


def strict() -> bool:
    """Are bugs to be raised rather than counted (``RULEENGINE_STRICT=1``)?"""
    return os.environ.get("RULEENGINE_STRICT", "") not in ("", "0", "no")


def reraise_bug(exc: BaseException) -> None:
    """Called by a safety net with what it caught: re-raise it when it is a bug and the
    run is strict; otherwise return so the net counts it."""
    if not isinstance(exc, HOSTILE_ERRORS) and strict():
        raise exc
