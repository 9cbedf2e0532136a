"""``flowbits``: match-time checks (isset/isnotset, ``|`` = any of, ``&`` = all of) and
post-match commands (set/unset/toggle), run only after the whole rule matched
(``src/detect-flowbits.c``). ``noalert`` is handled by the engine."""

from __future__ import annotations

from collections.abc import Sequence

from ruleengine.rules.model import Flowbit, FlowbitCmd


def checks_pass(checks: Sequence[Flowbit], bits: set[str] | None) -> bool:
    current: set[str] = bits if bits is not None else set()
    for fb in checks:
        if fb.cmd is FlowbitCmd.ISSET:
            present = [name in current for name in fb.names]
            ok = any(present) if fb.any_of else all(present)
        else:  # ISNOTSET
            absent = [name not in current for name in fb.names]
            ok = any(absent) if fb.any_of else all(absent)
        if not ok:
            return False
    return True


def apply_actions(actions: Sequence[Flowbit], bits: set[str]) -> None:
    for fb in actions:
        if fb.cmd is FlowbitCmd.SET:
            bits.update(fb.names)
        elif fb.cmd is FlowbitCmd.UNSET:
            bits.difference_update(fb.names)
        elif fb.cmd is FlowbitCmd.TOGGLE:
            for name in fb.names:
                if name in bits:
                    bits.discard(name)
                else:
                    bits.add(name)


def order_class(flowbits: Sequence[Flowbit]) -> int:
    """Suricata's flowbits ordering value (``src/detect-engine-sigorder.c``)."""
    sets = any(fb.cmd in (FlowbitCmd.SET, FlowbitCmd.UNSET, FlowbitCmd.TOGGLE) for fb in flowbits)
    return sigorder_class(sets=sets, reads=any(fb.is_check for fb in flowbits))


def sigorder_class(*, sets: bool, reads: bool) -> int:
    """Rules that only set bits come first (4), then set+read (3), read-only (2), none (1);
    flowbits and xbits alike."""
    if sets and reads:
        return 3
    if sets:
        return 4
    if reads:
        return 2
    return 1
