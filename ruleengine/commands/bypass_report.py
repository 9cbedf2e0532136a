"""What bypass saved, read back from EVE: ``ruleengine bypass report EVE.json``.

The flow events carry everything: totals (``flow.pkts_*``/``bytes_*``, bypassed traffic
included), the bypassed part (``flow.bypassed{}``), how (``flow.bypass``: ``capture`` =
never delivered to user space, ``local`` = delivered but not inspected) and, from this
engine, why and when (flowvars ``bypass_reason`` and ``bypass_accounting``: bypass time,
packets inspected before it, packets leaked to user space after a capture bypass). Stats
events add the capture's own counters over time. Suricata's EVE works too (no reason: the
flows are counted as ``unknown``).

Over time, a flow's packets are spread evenly over the part of its life they belong to
(inspected: start to bypass; bypassed and leaked: bypass to end): flow records hold totals,
not per-packet times, so the rates are estimates at the resolution of the flows' lifetimes.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

# flow size buckets by wire bytes: (upper bound exclusive, label)
SIZE_BUCKETS: tuple[tuple[float, str], ...] = (
    (10_000, "< 10 KB"), (100_000, "10-100 KB"), (1_000_000, "100 KB-1 MB"),
    (10_000_000, "1-10 MB"), (100_000_000, "10-100 MB"), (math.inf, ">= 100 MB"),
)
MAX_BUCKETS = 120  # time series resolution: at most this many intervals


class ReportError(Exception):
    """An input that cannot be reported on (missing, unreadable, no flow events)."""


def parse_ts(text: object) -> float | None:
    """EVE's ``2026-11-25T15:42:02.123456+0000`` as epoch seconds (None when malformed)."""
    if not isinstance(text, str):
        return None
    for pattern in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.strptime(text, pattern).timestamp()
        except ValueError:
            continue
    return None


@dataclass
class FlowRecord:
    start: float
    end: float
    wire_pkts: int
    wire_bytes: int
    bypass: str | None  # None, "capture" or "local"
    reason: str = "unknown"
    sid: int | None = None
    bypass_time: float | None = None
    bypassed_pkts: int = 0
    bypassed_bytes: int = 0
    inspected_pkts: int | None = None
    leaked_pkts: int = 0
    leaked_bytes: int = 0
    reconciled: bool | None = None
    end_reason: str = ""

    @property
    def user_pkts(self) -> int:
        """Packets that reached user space (everything but what the capture bypassed)."""
        if self.bypass == "capture":
            return self.wire_pkts - self.bypassed_pkts
        return self.wire_pkts


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def flow_record(event: dict[str, Any]) -> FlowRecord | None:
    """One EVE flow event as a record (None when it has no usable times)."""
    body = event.get("flow")
    if not isinstance(body, dict):
        return None
    start, end = parse_ts(body.get("start")), parse_ts(body.get("end"))
    if start is None or end is None:
        return None
    rec = FlowRecord(start=start, end=max(start, end),
                     wire_pkts=_int(body.get("pkts_toserver")) + _int(body.get("pkts_toclient")),
                     wire_bytes=_int(body.get("bytes_toserver")) + _int(body.get("bytes_toclient")),
                     bypass=body.get("bypass") if body.get("bypass") in ("capture", "local")
                     else None, end_reason=str(body.get("reason") or ""))
    if rec.bypass is None:
        return rec
    raw = body.get("bypassed")
    bypassed: dict[str, Any] = raw if isinstance(raw, dict) else {}
    rec.bypassed_pkts = _int(bypassed.get("pkts_toserver")) + _int(bypassed.get("pkts_toclient"))
    rec.bypassed_bytes = (_int(bypassed.get("bytes_toserver"))
                          + _int(bypassed.get("bytes_toclient")))
    for var in (event.get("metadata") or {}).get("flowvars") or []:
        if not isinstance(var, dict):
            continue
        if isinstance(var.get("bypass_reason"), str):
            kind, _, rest = var["bypass_reason"].partition(":")
            rec.reason = kind or "unknown"
            rec.sid = int(rest) if kind == "rule" and rest.isdigit() else None
        acct = var.get("bypass_accounting")
        if isinstance(acct, dict):
            rec.bypass_time = parse_ts(acct.get("time"))
            rec.inspected_pkts = _int(acct.get("inspected_pkts"))
            rec.leaked_pkts = _int(acct.get("leaked_pkts"))
            rec.leaked_bytes = _int(acct.get("leaked_bytes"))
            if isinstance(acct.get("reconciled"), bool):
                rec.reconciled = acct["reconciled"]
    return rec


@dataclass
class Group:
    """Totals of a set of flows (one reason, one sid, one size bucket)."""

    flows: int = 0
    bypassed_flows: int = 0
    wire_pkts: int = 0
    wire_bytes: int = 0
    bypassed_pkts: int = 0
    bypassed_bytes: int = 0
    not_delivered_pkts: int = 0  # capture bypass: never reached user space
    not_delivered_bytes: int = 0
    leaked_pkts: int = 0
    leaked_bytes: int = 0

    def add(self, rec: FlowRecord) -> None:
        self.flows += 1
        self.wire_pkts += rec.wire_pkts
        self.wire_bytes += rec.wire_bytes
        if rec.bypass is None:
            return
        self.bypassed_flows += 1
        self.bypassed_pkts += rec.bypassed_pkts
        self.bypassed_bytes += rec.bypassed_bytes
        if rec.bypass == "capture":
            self.not_delivered_pkts += rec.bypassed_pkts
            self.not_delivered_bytes += rec.bypassed_bytes
        self.leaked_pkts += rec.leaked_pkts
        self.leaked_bytes += rec.leaked_bytes

    def as_dict(self) -> dict[str, Any]:
        d = dict(vars(self))
        d["bypassed_share_bytes"] = _share(self.bypassed_bytes, self.wire_bytes)
        return d


def _share(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


@dataclass
class Series:
    """Rates per interval, seconds from the first packet."""

    start: float
    step: float
    times: list[float]
    wire_pps: list[float]
    user_pps: list[float]
    bypassed_pps: list[float]
    closed_bypassed_flows: list[int]
    # measured from stats events (live runs): packets the capture delivered per second
    measured_times: list[float] = field(default_factory=list)
    measured_capture_pps: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: ([round(x, 3) for x in v] if isinstance(v, list) else v)
                for k, v in vars(self).items()}


@dataclass
class Report:
    source: str
    lines: int = 0
    bad_lines: int = 0
    total: Group = field(default_factory=Group)
    by_reason: dict[str, Group] = field(default_factory=dict)
    by_sid: dict[int, Group] = field(default_factory=dict)
    by_size: dict[str, Group] = field(default_factory=dict)
    by_mode: dict[str, Group] = field(default_factory=dict)
    signatures: dict[int, str] = field(default_factory=dict)
    reconciled: dict[str, int] = field(default_factory=dict)  # ok / mismatch / unknown
    reconciled_by_end: dict[str, dict[str, int]] = field(default_factory=dict)
    inspected_pkts: int = 0
    stats: dict[str, int] = field(default_factory=dict)  # the last stats event, flattened
    series: Series | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "lines": self.lines, "bad_lines": self.bad_lines,
            "total": self.total.as_dict(), "inspected_pkts": self.inspected_pkts,
            "by_mode": {k: g.as_dict() for k, g in self.by_mode.items()},
            "by_reason": {k: g.as_dict() for k, g in sorted(self.by_reason.items())},
            "by_sid": {str(k): {**g.as_dict(), "signature": self.signatures.get(k, "")}
                       for k, g in sorted(self.by_sid.items())},
            "by_size": {label: self.by_size[label].as_dict()
                        for _, label in SIZE_BUCKETS if label in self.by_size},
            "accounting": {"flows": self.reconciled, "by_end_reason": self.reconciled_by_end},
            "stats": {k: v for k, v in sorted(self.stats.items())
                      if k.startswith(("capture.", "flow_bypassed.", "decoder.pkts"))},
            "series": self.series.as_dict() if self.series else None,
        }


def _events(path: Path, report: Report) -> Iterator[dict[str, Any]]:
    try:
        handle = path.open("r", encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ReportError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        for line in handle:
            if not line.strip():
                continue
            report.lines += 1
            try:
                event = json.loads(line)
            except ValueError:
                report.bad_lines += 1
                continue
            if isinstance(event, dict):
                yield event
            else:
                report.bad_lines += 1


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, int]:
    out: dict[str, int] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        elif isinstance(value, int) and not isinstance(value, bool):
            out[name] = value
    return out


def _size_label(nbytes: int) -> str:
    return next(label for bound, label in SIZE_BUCKETS if nbytes < bound)


def build_report(path: Path) -> Report:
    """Read one EVE file. Raises ReportError when it cannot be read or has no flow event."""
    report = Report(source=str(path))
    records: list[FlowRecord] = []
    stats_points: list[tuple[float, dict[str, int]]] = []
    for event in _events(path, report):
        kind = event.get("event_type")
        if kind == "flow":
            rec = flow_record(event)
            if rec is None:
                report.bad_lines += 1
            else:
                records.append(rec)
        elif kind == "alert":
            alert = event.get("alert") or {}
            sid = alert.get("signature_id")
            if isinstance(sid, int) and isinstance(alert.get("signature"), str):
                report.signatures.setdefault(sid, alert["signature"])
        elif kind == "stats" and isinstance(event.get("stats"), dict):
            ts = parse_ts(event.get("timestamp"))
            flat = _flatten(event["stats"])
            report.stats = flat
            if ts is not None:
                stats_points.append((ts, flat))
    if not records:
        raise ReportError(f"{path}: no flow events (is the eve-log 'flow' type enabled?)")
    for rec in records:
        _add(report, rec)
    report.series = _series(records, stats_points)
    return report


def _add(report: Report, rec: FlowRecord) -> None:
    report.total.add(rec)
    report.by_size.setdefault(_size_label(rec.wire_bytes), Group()).add(rec)
    if rec.bypass is None:
        report.inspected_pkts += rec.wire_pkts
        return
    report.by_mode.setdefault(rec.bypass, Group()).add(rec)
    report.by_reason.setdefault(rec.reason, Group()).add(rec)
    if rec.sid is not None:
        report.by_sid.setdefault(rec.sid, Group()).add(rec)
    report.inspected_pkts += (rec.inspected_pkts if rec.inspected_pkts is not None
                              else rec.wire_pkts - rec.bypassed_pkts - rec.leaked_pkts)
    verdict = "unknown" if rec.reconciled is None else ("ok" if rec.reconciled else "mismatch")
    report.reconciled[verdict] = report.reconciled.get(verdict, 0) + 1
    per_end = report.reconciled_by_end.setdefault(rec.end_reason or "unknown", {})
    per_end[verdict] = per_end.get(verdict, 0) + 1


def _spread(values: list[float], t0: float, step: float, a: float, b: float,
            amount: float) -> None:
    """Add ``amount`` spread evenly over [a, b] to the buckets of ``values``."""
    if amount <= 0:
        return
    n = len(values)
    if b - a <= step * 1e-6:
        values[min(n - 1, max(0, int((a - t0) / step)))] += amount
        return
    first = max(0, int((a - t0) / step))
    last = min(n - 1, int((b - t0) / step))
    for i in range(first, last + 1):
        lo, hi = max(a, t0 + i * step), min(b, t0 + (i + 1) * step)
        if hi > lo:
            values[i] += amount * (hi - lo) / (b - a)


def _series(records: list[FlowRecord],
            stats_points: list[tuple[float, dict[str, int]]]) -> Series:
    t0 = min(r.start for r in records)
    t1 = max(r.end for r in records)
    span = max(t1 - t0, 1.0)
    step = max(1.0, math.ceil(span / MAX_BUCKETS))
    n = max(1, math.ceil(span / step) + 1)
    wire, user, bypassed = [0.0] * n, [0.0] * n, [0.0] * n
    closed = [0] * n
    for rec in records:
        if rec.bypass is None:
            _spread(wire, t0, step, rec.start, rec.end, rec.wire_pkts)
            _spread(user, t0, step, rec.start, rec.end, rec.wire_pkts)
            continue
        at = rec.bypass_time if rec.bypass_time is not None else rec.start
        at = min(max(at, rec.start), rec.end)
        inspected = (rec.inspected_pkts if rec.inspected_pkts is not None
                     else rec.wire_pkts - rec.bypassed_pkts - rec.leaked_pkts)
        after_user = rec.leaked_pkts + (rec.bypassed_pkts if rec.bypass == "local" else 0)
        for target in (wire, user):
            _spread(target, t0, step, rec.start, at, inspected)
            _spread(target, t0, step, at, rec.end, after_user)
        _spread(wire, t0, step, at, rec.end, rec.bypassed_pkts if rec.bypass == "capture" else 0)
        _spread(bypassed, t0, step, at, rec.end, rec.bypassed_pkts)
        closed[min(n - 1, int((rec.end - t0) / step))] += 1
    series = Series(start=t0, step=step, times=[i * step for i in range(n)],
                    wire_pps=[v / step for v in wire], user_pps=[v / step for v in user],
                    bypassed_pps=[v / step for v in bypassed], closed_bypassed_flows=closed)
    _measured(series, stats_points)
    return series


def _measured(series: Series, points: list[tuple[float, dict[str, int]]]) -> None:
    """Capture rate between consecutive stats events (live runs write one per interval)."""
    points = sorted(points, key=lambda p: p[0])
    for (ta, a), (tb, b) in itertools.pairwise(points):
        if tb <= ta:
            continue
        key = "capture.kernel_packets" if b.get("capture.kernel_packets") else "decoder.pkts"
        delta = b.get(key, 0) - a.get(key, 0)
        if delta < 0:
            continue
        series.measured_times.append((tb + ta) / 2 - series.start)
        series.measured_capture_pps.append(delta / (tb - ta))


# --- text ----------------------------------------------------------------------------


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:5.1f}%" if whole else "    -"


def _table(title: str, rows: Iterable[tuple[str, Group]], total: Group,
           extra: dict[str, str] | None = None) -> list[str]:
    del total  # same signature for every table; the shares are per row
    out = [title,
           f"  {'':<22} {'flows':>7} {'bypassed':>8} {'wire bytes':>11} "
           f"{'bypassed pkts':>13} {'bypassed bytes':>14} {'of wire':>7} "
           f"{'not delivered':>13} {'leaked pkts':>11}"]
    for name, g in rows:
        label = name if extra is None or not extra.get(name) else f"{name} {extra[name]}"
        out.append(f"  {label[:22]:<22} {g.flows:>7} {g.bypassed_flows:>8} "
                   f"{human_bytes(g.wire_bytes):>11} {g.bypassed_pkts:>13} "
                   f"{human_bytes(g.bypassed_bytes):>14} {_pct(g.bypassed_bytes, g.wire_bytes):>7} "
                   f"{g.not_delivered_pkts:>13} {g.leaked_pkts:>11}")
    if len(out) == 2:
        out.append("  (none)")
    return out


def render_text(report: Report) -> str:
    t = report.total
    span = report.series.times[-1] + report.series.step if report.series else 0.0
    lines = [
        f"bypass report: {report.source}",
        f"  {t.flows} flows over {span:.0f} s, {t.bypassed_flows} bypassed "
        f"({report.by_mode.get('capture', Group()).flows} in the capture, "
        f"{report.by_mode.get('local', Group()).flows} locally)",
        "",
        f"  {'':<34} {'packets':>12} {'bytes':>12} {'of wire':>8}",
        f"  {'wire (all flows)':<34} {t.wire_pkts:>12} {human_bytes(t.wire_bytes):>12}",
        f"  {'inspected':<34} {report.inspected_pkts:>12} {'':>12} "
        f"{_pct(report.inspected_pkts, t.wire_pkts):>8}",
        f"  {'bypassed':<34} {t.bypassed_pkts:>12} {human_bytes(t.bypassed_bytes):>12} "
        f"{_pct(t.bypassed_bytes, t.wire_bytes):>8}",
        f"  {'  not delivered to user space':<34} {t.not_delivered_pkts:>12} "
        f"{human_bytes(t.not_delivered_bytes):>12} {_pct(t.not_delivered_bytes, t.wire_bytes):>8}",
        f"  {'  delivered, not inspected (local)':<34} "
        f"{t.bypassed_pkts - t.not_delivered_pkts:>12} "
        f"{human_bytes(t.bypassed_bytes - t.not_delivered_bytes):>12}",
        f"  {'leaked (user space after bypass)':<34} {t.leaked_pkts:>12} "
        f"{human_bytes(t.leaked_bytes):>12}",
        "",
        "  accounting (wire = inspected + leaked + bypassed): "
        + ", ".join(f"{n} {k}" for k, n in sorted(report.reconciled.items()))
        + ("" if not report.reconciled_by_end else "  [by flow end: " + "; ".join(
            f"{end}: " + ", ".join(f"{n} {k}" for k, n in sorted(v.items()))
            for end, v in sorted(report.reconciled_by_end.items())) + "]"),
        "",
    ]
    lines += _table("by reason", sorted(report.by_reason.items()), t)
    lines.append("")
    lines += _table("by rule (sid)", [(str(k), g) for k, g in sorted(report.by_sid.items())], t,
                    extra={str(k): f'"{v}"' for k, v in report.signatures.items()})
    lines.append("")
    lines += _table("by flow size (wire bytes)",
                    [(label, report.by_size[label]) for _, label in SIZE_BUCKETS
                     if label in report.by_size], t)
    stats = report.stats
    if stats:
        lines += ["", "last stats event: " + ", ".join(
            f"{k}={stats[k]}" for k in ("capture.kernel_packets", "capture.kernel_drops",
                                        "decoder.pkts", "flow_bypassed.pkts",
                                        "flow_bypassed.bytes", "flow_bypassed.closed",
                                        "flow_bypassed.local_capture_pkts")
            if k in stats)]
    if report.bad_lines:
        lines += ["", f"note: {report.bad_lines} of {report.lines} lines skipped (not JSON "
                      "or a flow event without times)"]
    return "\n".join(lines) + "\n"
