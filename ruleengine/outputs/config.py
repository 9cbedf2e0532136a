"""The ``outputs`` list of suricata.yaml as the outputs read it: ``eve-log``, ``stats``,
``fast``. The config hands this stage its subtree (``config.get_list("outputs")``); each
output takes the first entry of its kind (Suricata may have several; we write one file).
Beside it the top-level ``stats`` section (the interval of the stats events)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ruleengine.config.values import is_true, parse_bool, parse_int, scalar_text, value_or


@dataclass(frozen=True)
class EveSettings:
    enabled: bool = True
    filename: str = "eve.json"
    filetype: str = "regular"
    append: bool = True
    types: frozenset[str] | None = None  # None: no eve-log section (write every type)
    type_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    community_id: bool = False
    pcap_file: bool = False
    # transport options, as written (validated by ruleengine.outputs.sinks.sink_spec)
    prefix: str = ""
    identity: str | None = None  # syslog
    facility: str | None = None  # syslog
    level: str | None = None  # syslog
    redis: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StatsLogSettings:
    """The ``stats`` output (``stats.log``)."""

    enabled: bool = False
    filename: str = "stats.log"
    append: bool = True
    null_values: bool = False
    totals: bool = True  # the summed counters ("Total")
    threads: bool = False  # each worker's own counters


@dataclass(frozen=True)
class FastLogSettings:
    """The ``fast`` output (``fast.log``). Off unless the section says ``enabled: yes``, as
    Suricata's output setup skips an output without a true ``enabled``."""

    enabled: bool = False
    filename: str = "fast.log"
    append: bool = True


def stats_interval(section: Mapping[str, Any]) -> int:
    """Seconds between stats events (the ``stats`` section's ``interval``; 8, Suricata's
    default, when absent or not a positive number)."""
    interval = value_or(parse_int, section.get("interval"), 8)
    return interval if interval > 0 else 8


def _first(outputs: Sequence[Any], kind: str, *, mapping_only: bool) -> Any:
    """The body of the first ``- <kind>: ...`` entry that has one (a mapping, with
    ``mapping_only``), None when there is none."""
    for item in outputs if isinstance(outputs, list) else ():
        body = item.get(kind) if isinstance(item, dict) else None
        if body is not None and (isinstance(body, dict) or not mapping_only):
            return body
    return None


def _not_off(body: Mapping[str, Any], key: str) -> bool:
    """A switch that is on unless written off (``enabled``, ``append`` default to yes)."""
    return parse_bool(body.get(key, True)) is not False


def _optional_text(value: Any) -> str | None:
    return None if value is None else scalar_text(value)


def _eve_types(listed: Any) -> tuple[frozenset[str] | None, dict[str, Mapping[str, Any]]]:
    """The enabled ``types`` and their options. A ``types`` that is not a list was warned
    about as ignored: every type (None)."""
    if not isinstance(listed, list):
        return None, {}
    types: set[str] = set()
    options: dict[str, Mapping[str, Any]] = {}
    for entry in listed:
        if isinstance(entry, str):
            types.add(entry)
        elif isinstance(entry, dict) and entry:
            name, opts = next(iter(entry.items()))
            opts = opts if isinstance(opts, dict) else {}
            if parse_bool(opts.get("enabled", True)) is False:
                continue
            types.add(str(name))
            options[str(name)] = opts
    return frozenset(types), options


def eve_settings(outputs: Sequence[Any]) -> EveSettings:
    """The first ``eve-log`` output. No ``types`` list: every type (Suricata would log
    none; an eve-log without types is more likely a short config than a wish for
    silence)."""
    body = _first(outputs, "eve-log", mapping_only=False)
    if body is None:
        return EveSettings()
    body = body if isinstance(body, dict) else {}
    types, options = _eve_types(body.get("types"))
    redis = body.get("redis")
    return EveSettings(
        enabled=_not_off(body, "enabled"),
        filename=scalar_text(body.get("filename") or "eve.json"),
        filetype=scalar_text(body.get("filetype") or "regular"),
        append=_not_off(body, "append"),
        types=types,
        type_options=options,
        community_id=is_true(body.get("community-id")),
        pcap_file=is_true(body.get("pcap-file")),
        prefix=scalar_text(body.get("prefix")),
        identity=_optional_text(body.get("identity")),
        facility=_optional_text(body.get("facility")),
        level=_optional_text(body.get("level")),
        redis=dict(redis) if isinstance(redis, dict) else {},
    )


def stats_log_settings(outputs: Sequence[Any]) -> StatsLogSettings:
    """The first ``stats`` output (``outputs: - stats: {enabled, filename, ...}``)."""
    body = _first(outputs, "stats", mapping_only=True)
    if body is None:
        return StatsLogSettings()
    return StatsLogSettings(
        enabled=_not_off(body, "enabled"),
        filename=scalar_text(body.get("filename") or "stats.log"),
        append=_not_off(body, "append"),
        null_values=is_true(body.get("null-values")),
        # both off: Suricata refuses the output; here the totals stay on
        totals=_not_off(body, "totals") or not is_true(body.get("threads")),
        threads=is_true(body.get("threads")),
    )


def fast_log_settings(outputs: Sequence[Any]) -> FastLogSettings:
    """The first ``fast`` output (``outputs: - fast: {enabled, filename, append}``);
    ``append`` defaults to yes, as Suricata's log files do."""
    body = _first(outputs, "fast", mapping_only=True)
    if body is None:
        return FastLogSettings()
    return FastLogSettings(
        enabled=is_true(body.get("enabled")),
        filename=scalar_text(body.get("filename") or "fast.log"),
        append=_not_off(body, "append"),
    )
