"""Engine counters under Suricata's dotted names (``decoder.pkts``, ``flow_bypassed.local_pkts``).

One ``Stats`` per worker; the parent merges worker snapshots with ``merge``. Counters are
plain ints in a dict: ``incr`` is one dict operation, cheap enough for the per-packet path.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO

from ruleengine.outputs.sinks import reopen_requests

# Counters every stats event carries even before anything incremented them, so a consumer
# sees explicit zeros (Suricata registers these at start-up).
BASE_COUNTERS: tuple[str, ...] = (
    "capture.kernel_packets",
    "capture.kernel_drops",
    "decoder.pkts",
    "decoder.bytes",
    "decoder.invalid",
    "decoder.ipv4",
    "decoder.ipv6",
    "decoder.tcp",
    "decoder.udp",
    "flow.active",
    "detect.alert",
    "detect.alert_queue_overflow",
    "flow_bypassed.local_pkts",
    "flow_bypassed.local_bytes",
    "flow_bypassed.local_capture_pkts",
    "flow_bypassed.local_capture_bytes",
    "flow_bypassed.pkts",
    "flow_bypassed.bytes",
    "flow_bypassed.closed",
)

# Bypass insert results of the capture backend (Suricata reports these per interface through
# the unix socket ``iface-bypassed-stat``: ipv4_success, ipv4_fail, ipv6_success, ipv6_fail).
# They are not part of Suricata's EVE stats schema, so EVE leaves them out; stats.log and the
# run summary show them.
BYPASS_INSERT_COUNTERS: tuple[str, ...] = (
    "capture.bypass.ipv4_success",
    "capture.bypass.ipv4_fail",
    "capture.bypass.ipv6_success",
    "capture.bypass.ipv6_fail",
    "capture.bypass.fast_path_pkts",
)

# Inline (IPS) verdict counters.
IPS_COUNTERS: tuple[str, ...] = ("ips.accepted", "ips.blocked", "ips.rejected")


class Stats:
    """Counters by dotted Suricata name."""

    __slots__ = ("_counters",)

    def __init__(self, names: Iterable[str] = BASE_COUNTERS) -> None:
        self._counters: dict[str, int] = dict.fromkeys(names, 0)

    def incr(self, name: str, n: int = 1) -> None:
        counters = self._counters
        counters[name] = counters.get(name, 0) + n

    def set(self, name: str, value: int) -> None:
        """Set a gauge (or a counter owned by another stage) to ``value``."""
        self._counters[name] = int(value)

    def get(self, name: str) -> int:
        return self._counters.get(name, 0)

    def register(self, names: Iterable[str]) -> None:
        """Make counters appear (as 0) in every snapshot, e.g. the IPS ones in inline mode."""
        for name in names:
            self._counters.setdefault(name, 0)

    def merge(self, mapping: Mapping[str, int]) -> None:
        """Add another worker's counters to these. Non-integer values are ignored."""
        counters = self._counters
        for name, value in mapping.items():
            if isinstance(value, int) and not isinstance(value, bool):
                counters[name] = counters.get(name, 0) + value

    def snapshot(self) -> dict[str, int]:
        return dict(self._counters)

    def nested(self, only: frozenset[str] | None = None) -> dict[str, Any]:
        """The counters as Suricata's EVE ``stats`` object: ``{"decoder": {"pkts": 3}}``.

        ``only`` keeps just the named counters (EVE's schema is strict). A name that is both a
        counter and a group (``flow.end`` next to ``flow.end.state.new``) keeps the group.
        """
        return nest(self._counters, only)

    def __len__(self) -> int:
        return len(self._counters)


def nest(counters: Mapping[str, int], only: frozenset[str] | None = None) -> dict[str, Any]:
    """Turn dotted names into nested dicts (see ``Stats.nested``)."""
    root: dict[str, Any] = {}
    # Longer names first, so a group is created before a same-named leaf would claim the key.
    for name in sorted(counters, key=lambda n: -n.count(".")):
        if only is not None and name not in only:
            continue
        parts = name.split(".")
        node = root
        ok = True
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                ok = False
                break
            node = child
        if ok and not isinstance(node.get(parts[-1]), dict):
            node[parts[-1]] = counters[name]
    return _sorted(root)


def _sorted(tree: dict[str, Any]) -> dict[str, Any]:
    return {k: _sorted(v) if isinstance(v, dict) else v for k, v in sorted(tree.items())}


def format_stats_log(counters: Mapping[str, int], *, ts: float, uptime: float,
                     null_values: bool = False, totals: bool = True,
                     threads: Mapping[str, Mapping[str, int]] | None = None) -> str:
    """One block of Suricata's ``stats.log`` (``log-stats.c``): every counter, including
    those EVE's schema has no place for, such as the bypass insert results. ``totals``:
    the summed counters (TM name ``Total``); ``threads``: each thread's own counters under
    its name (``W#01-eth0``); zero values only with ``null_values``. The date is local
    time, month and day unpadded, as Suricata prints it."""
    up = max(0, int(uptime))
    days, rest = divmod(up, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    try:
        tm = time.localtime(ts)
        date = (f"{tm.tm_mon}/{tm.tm_mday}/{tm.tm_year:04d} -- "
                f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}")
    except (OverflowError, OSError, ValueError):
        date = "?"
    rule = "-" * 84
    lines = [
        rule,
        f"Date: {date} (uptime: {days}d, {hours:02d}h {minutes:02d}m {seconds:02d}s)",
        rule,
        f"{'Counter':<45} | {'TM Name':<25} | Value",
        rule,
    ]
    tables: list[tuple[str, Mapping[str, int]]] = [("Total", counters)] if totals else []
    tables.extend((name, table) for name, table in (threads or {}).items())
    for tm_name, table in tables:
        for name in sorted(table):
            value = table[name]
            if value or null_values:
                lines.append(f"{name:<45} | {tm_name:<25} | {value}")
    return "\n".join(lines) + "\n"


class StatsLogWriter:
    """Appends ``format_stats_log`` blocks to ``stats.log`` (Suricata's ``stats`` output).

    Opening raises ``OSError`` (the caller reports it); write errors afterwards are counted
    in ``write_errors`` instead of raised.
    """

    def __init__(self, path: str | Path, *, append: bool = True,
                 null_values: bool = False, totals: bool = True,
                 threads: bool = False) -> None:
        self.path = Path(path)
        self.null_values = null_values
        self.totals = totals
        self.threads = threads
        self.write_errors = 0
        self._file: TextIO | None = open(  # noqa: SIM115 (kept open across stats intervals)
            self.path, "a" if append else "w", encoding="utf-8")
        self._reopens_seen = reopen_requests()

    def _reopen(self) -> None:
        """SIGHUP (logrotate): open the path again in append mode (errors keep the old)."""
        self._reopens_seen = reopen_requests()
        try:
            fresh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed by close())
        except OSError:
            self.write_errors += 1
            return
        if self._file is not None:
            self._file.close()
        self._file = fresh

    def write(self, counters: Mapping[str, int], *, ts: float, uptime: float,
              threads: Mapping[str, Mapping[str, int]] | None = None) -> None:
        """``threads``: per-thread counters, written when the output has ``threads: yes``."""
        if self._file is None:
            return
        if self._reopens_seen != reopen_requests():
            self._reopen()
        try:
            self._file.write(format_stats_log(
                counters, ts=ts, uptime=uptime, null_values=self.null_values,
                totals=self.totals, threads=threads if self.threads else None))
            self._file.flush()
        except (OSError, ValueError):
            self.write_errors += 1

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                self.write_errors += 1
            self._file = None
