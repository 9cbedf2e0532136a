"""The readable end-of-run summary (plain text, for stderr).

``render_summary`` takes the run's facts duck-typed, so the pipeline's ``RunReport``, the
loader's ``RuleSet`` and the detection engine's skip list can be passed as they are:

- ``report``: ``packets``, ``bytes``, ``invalid``, ``flows``, ``alerts_by_sid``,
  ``msg_by_sid``, ``dropped``, ``bypassed_flows_local``, ``bypassed_flows_capture``,
  ``duration``, ``interrupted`` (any may be missing);
- ``ruleset``: ``files``, ``loaded``, ``failed``, ``skipped`` (counts);
- ``skipped``: why rules were skipped: a mapping sid -> reason, or an iterable of
  ``(rule_or_sid, reason)`` pairs or of objects with ``sid``/``rule`` and ``reason``;
- ``counters``: the dotted stats counters (bypass, capture and IPS figures come from here).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

MAX_ALERT_ROWS = 50
MAX_SIDS_PER_REASON = 8


def _num(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def _sid_of(item: Any) -> int | None:
    if isinstance(item, int):
        return item
    sid = getattr(item, "sid", None)
    if sid is None:
        sid = getattr(getattr(item, "rule", None), "sid", None)
    return sid if isinstance(sid, int) else None


def _skip_reasons(skipped: Any) -> dict[str, list[int | None]]:
    """Group skipped rules by reason: reason -> sids."""
    groups: dict[str, list[int | None]] = {}
    if not skipped:
        return groups
    items: Iterable[Any]
    if isinstance(skipped, Mapping):
        items = skipped.items()
    elif isinstance(skipped, Iterable) and not isinstance(skipped, str | bytes):
        items = skipped
    else:
        return groups
    for item in items:
        if isinstance(item, tuple) and len(item) == 2:
            who, reason = item
        else:
            who, reason = item, getattr(item, "reason", None) or getattr(item, "message", None)
        groups.setdefault(str(reason or "unknown reason"), []).append(_sid_of(who))
    return groups


def _alert_lines(alerts: Mapping[int, int], msgs: Mapping[int, str]) -> list[str]:
    total = sum(_num(c) for c in alerts.values())
    lines = [f"Alerts: {total:,} from {len(alerts)} rule{'s' if len(alerts) != 1 else ''}"]
    if not alerts:
        return lines
    rows = sorted(alerts.items(), key=lambda kv: (-_num(kv[1]), kv[0]))
    width = max(len(str(sid)) for sid, _ in rows[:MAX_ALERT_ROWS])
    count_width = max(5, *(len(f"{_num(c):,}") for _, c in rows[:MAX_ALERT_ROWS]))
    lines.append(f"  {'sid':>{width}}  {'count':>{count_width}}  msg")
    for sid, count in rows[:MAX_ALERT_ROWS]:
        msg = msgs.get(sid, "")
        lines.append(f"  {sid:>{width}}  {_num(count):>{count_width},}  {msg}".rstrip())
    if len(rows) > MAX_ALERT_ROWS:
        lines.append(f"  ... and {len(rows) - MAX_ALERT_ROWS} more rules")
    return lines


def _rule_lines(ruleset: Any, skipped: Any) -> list[str]:
    lines: list[str] = []
    reasons = _skip_reasons(skipped)
    n_skipped = sum(len(v) for v in reasons.values())
    if ruleset is not None:
        files = _num(getattr(ruleset, "files", 0))
        loaded = _num(getattr(ruleset, "loaded", 0))
        failed = _num(getattr(ruleset, "failed", 0))
        n_skipped = max(n_skipped, _num(getattr(ruleset, "skipped", 0)))
        lines.append(f"Rules: {loaded:,} loaded, {failed:,} failed, {n_skipped:,} skipped"
                     f" ({files} file{'s' if files != 1 else ''})")
    elif reasons:
        lines.append(f"Rules: {n_skipped:,} skipped")
    for reason, sids in sorted(reasons.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        known = [s for s in sids if s is not None]
        shown = ", ".join(str(s) for s in known[:MAX_SIDS_PER_REASON])
        extra = len(known) - MAX_SIDS_PER_REASON
        more = f", +{extra} more" if extra > 0 else ""
        where = f" (sid {shown}{more})" if shown else ""
        lines.append(f"  skipped {len(sids)}: {reason}{where}")
    return lines


def _bypass_lines(report: Any, counters: Mapping[str, int]) -> list[str]:
    def c(name: str) -> int:
        return _num(counters.get(name, 0))

    local_flows = _num(getattr(report, "bypassed_flows_local", 0))
    capture_flows = _num(getattr(report, "bypassed_flows_capture", 0))
    figures = [c("flow_bypassed.local_pkts"), c("flow_bypassed.local_capture_pkts"),
               c("flow_bypassed.pkts"), c("flow_bypassed.closed"),
               c("capture.bypass.ipv4_success"), c("capture.bypass.ipv4_fail"),
               c("capture.bypass.ipv6_success"), c("capture.bypass.ipv6_fail")]
    if not (local_flows or capture_flows or any(figures)):
        return []
    lines = [f"Bypass: {local_flows:,} flows local, {capture_flows:,} flows in the kernel"]
    if local_flows or c("flow_bypassed.local_pkts"):
        lines.append(f"  local: {c('flow_bypassed.local_pkts'):,} pkts "
                     f"({_human_bytes(c('flow_bypassed.local_bytes'))}) not inspected")
    inserts = figures[4:]
    if capture_flows or any(figures[1:4]) or any(inserts):
        lines.append(
            f"  capture: {c('flow_bypassed.local_capture_pkts'):,} pkts "
            f"({_human_bytes(c('flow_bypassed.local_capture_bytes'))}) seen before the kernel "
            f"took over; {c('flow_bypassed.pkts'):,} pkts "
            f"({_human_bytes(c('flow_bypassed.bytes'))}) dropped in the kernel; "
            f"{c('flow_bypassed.closed'):,} flows closed")
        lines.append(
            f"  kernel inserts: IPv4 {c('capture.bypass.ipv4_success'):,} ok / "
            f"{c('capture.bypass.ipv4_fail'):,} failed, IPv6 "
            f"{c('capture.bypass.ipv6_success'):,} ok / {c('capture.bypass.ipv6_fail'):,} failed")
    return lines


def render_summary(*, report: Any = None, ruleset: Any = None, skipped: Any = None,
                   counters: Mapping[str, int] | None = None,
                   eve_path: str | None = None) -> str:
    """The run summary as plain text (no trailing newline)."""
    counters = counters or {}
    lines: list[str] = []
    packets = _num(getattr(report, "packets", 0)) or _num(counters.get("decoder.pkts", 0))
    nbytes = _num(getattr(report, "bytes", 0)) or _num(counters.get("decoder.bytes", 0))
    invalid = _num(getattr(report, "invalid", 0)) or _num(counters.get("decoder.invalid", 0))
    flows = _num(getattr(report, "flows", 0))
    duration = float(getattr(report, "duration", 0.0) or 0.0)
    interrupted = bool(getattr(report, "interrupted", False))

    head = "Run summary" + (" (interrupted)" if interrupted else "")
    lines.append(head)
    rate = f", {packets / duration:,.0f} pkt/s" if duration > 0 else ""
    lines.append(f"Packets: {packets:,} ({_human_bytes(nbytes)}), {invalid:,} invalid"
                 + (f" in {duration:.2f}s{rate}" if duration > 0 else ""))
    lines.append(f"Flows: {flows:,}")

    kernel_packets = _num(counters.get("capture.kernel_packets", 0))
    kernel_drops = _num(counters.get("capture.kernel_drops", 0))
    if kernel_packets or kernel_drops:
        lines.append(f"Capture: {kernel_packets:,} packets from the kernel, "
                     f"{kernel_drops:,} dropped by it")
    accepted, blocked, rejected = (_num(counters.get(f"ips.{n}", 0))
                                   for n in ("accepted", "blocked", "rejected"))
    dropped = _num(getattr(report, "dropped", 0))
    if accepted or blocked or rejected or dropped:
        lines.append(f"IPS: {accepted:,} accepted, {max(blocked, dropped):,} blocked, "
                     f"{rejected:,} rejected")
    lines.extend(_bypass_lines(report, counters))
    lines.extend(_rule_lines(ruleset, skipped))
    alerts = getattr(report, "alerts_by_sid", None) or {}
    msgs = getattr(report, "msg_by_sid", None) or {}
    lines.extend(_alert_lines(alerts, msgs))
    if eve_path:
        lines.append(f"Events: {eve_path}")
    return "\n".join(lines)
