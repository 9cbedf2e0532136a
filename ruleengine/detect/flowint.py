"""``flowint`` (``src/detect-flowint.c``): unsigned 32-bit integers per flow.

Checks (``== != < <= > >= isset notset``) are match conditions; ``= + -`` change the
variable after the whole rule matched. A missing target variable counts as 0; a
comparison on a missing variable fails; ``+`` on a missing variable starts it at the
added value, ``-`` on a missing one does nothing. A flow keeps at most
``max_vars`` variables (later new names are ignored).
"""

from __future__ import annotations

from collections.abc import Sequence

from ruleengine.rules.model import Flowint

MAX_VARS = 256
_U32 = 0xFFFFFFFF


def _target(fi: Flowint, store: dict[str, int]) -> int:
    t = fi.target
    if isinstance(t, str):
        return store.get(t, 0)
    return t or 0


def check(fi: Flowint, store: dict[str, int] | None) -> bool:
    current = store.get(fi.name) if store is not None else None
    if fi.op == "isset":
        return current is not None
    if fi.op in ("notset", "isnotset"):
        return current is None
    if current is None or store is None:
        return False
    target = _target(fi, store)
    op = fi.op
    if op == "==":
        return current == target
    if op == "!=":
        return current != target
    if op == "<":
        return current < target
    if op == "<=":
        return current <= target
    if op == ">":
        return current > target
    if op == ">=":
        return current >= target
    return False


def checks_pass(checks: Sequence[Flowint], store: dict[str, int] | None) -> bool:
    return all(check(fi, store) for fi in checks)


def apply(actions: Sequence[Flowint], store: dict[str, int], max_vars: int = MAX_VARS) -> None:
    for fi in actions:
        target = _target(fi, store)
        if fi.name not in store and len(store) >= max_vars:
            continue
        current = store.get(fi.name)
        if fi.op == "=":
            store[fi.name] = target & _U32
        elif fi.op == "+":
            store[fi.name] = ((current or 0) + target) & _U32
        elif fi.op == "-" and current is not None:
            store[fi.name] = (current - target) & _U32
