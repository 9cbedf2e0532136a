"""``app-layer.protocols.dns`` settings (Suricata's ``suricata.yaml`` layout)::

    dns:
      enabled: yes            # (the registry reads this one)
      tcp:
        enabled: yes
        detection-ports: {dp: 53}
      udp:
        enabled: yes
        detection-ports: {dp: 53}

Suricata 8 has no request-flood / state-memcap / global-memcap for DNS any more (they went
with the C parser in 4.x); the keys are accepted and ignored with a warning. Engine caps
(not Suricata keys; Suricata keeps every transaction and record): ``max-tx`` open
transactions per flow, ``max-records`` stored per message section, ``max-message`` (a TCP
length prefix may not exceed 65535 anyway) and ``match-responses`` (pair a response with
the open request of the same DNS id instead of Suricata's one transaction per message).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ruleengine.applayer.dns.wire import DEFAULT_MAX_RECORDS
from ruleengine.config.values import parse_int, parse_switch

_OBSOLETE = ("request-flood", "state-memcap", "global-memcap")


def _bool(value: Any, default: bool) -> bool | None:
    """A switch; ``detection-only`` keeps the parser on (the registry reads what it means)."""
    if value is None:
        return default
    if str(value).strip().lower() == "detection-only":
        return True
    return parse_switch(value)


def _ports(value: Any) -> tuple[int, ...] | None:
    """``detection-ports: {dp: 53}`` or ``dp: "[53, 5353]"`` / ``"53:55"``."""
    if isinstance(value, Mapping):
        value = value.get("dp", value.get("sp"))
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) if 0 <= value <= 65535 else None
    if isinstance(value, list | tuple):
        items = [str(v) for v in value]
    else:
        items = str(value).strip().strip("[]").split(",")
    ports: list[int] = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        try:
            if ":" in item:
                lo, hi = (int(p) for p in item.split(":", 1))
                if not 0 <= lo <= hi <= 65535 or hi - lo > 1024:
                    return None
                ports.extend(range(lo, hi + 1))
            else:
                port = int(item)
                if not 0 <= port <= 65535:
                    return None
                ports.append(port)
        except ValueError:
            return None
    return tuple(ports) or None


@dataclass(frozen=True)
class DnsConfig:
    enabled: bool = True
    tcp_enabled: bool = True
    udp_enabled: bool = True
    tcp_ports: tuple[int, ...] = (53,)
    udp_ports: tuple[int, ...] = (53,)
    max_tx: int = 4096
    max_records: int = DEFAULT_MAX_RECORDS
    match_responses: bool = False
    unknown: tuple[str, ...] = field(default=())


def _int(subtree: Mapping[str, Any], key: str, default: int, lo: int, hi: int,
         warnings: list[str]) -> int:
    raw = subtree.get(key)
    if raw is None:
        return default
    value = None if isinstance(raw, bool) else parse_int(raw)  # "yes" is no count
    if value is None:
        warnings.append(f"{key}: {raw!r} is not a number, using {default}")
        return default
    if not lo <= value <= hi:
        warnings.append(f"{key}: {value} out of range [{lo}, {hi}], using {default}")
        return default
    return value


def parse_config(subtree: Mapping[str, Any] | None) -> tuple[DnsConfig, list[str]]:
    warnings: list[str] = []
    subtree = subtree if isinstance(subtree, Mapping) else {}
    enabled = _bool(subtree.get("enabled"), True)
    if enabled is None:
        warnings.append(f"enabled: {subtree.get('enabled')!r} is not a boolean")
        enabled = True
    sides: dict[str, tuple[bool, tuple[int, ...]]] = {}
    for name in ("tcp", "udp"):
        section = subtree.get(name)
        on = True
        ports: tuple[int, ...] = (53,)
        if isinstance(section, Mapping):
            flag = _bool(section.get("enabled"), True)
            if flag is None:
                warnings.append(f"{name}.enabled: {section.get('enabled')!r} is not a boolean")
            else:
                on = flag
            if "detection-ports" in section:
                parsed = _ports(section.get("detection-ports"))
                if parsed is None:
                    warnings.append(f"{name}.detection-ports: "
                                    f"{section.get('detection-ports')!r} is not a port list")
                else:
                    ports = parsed
        elif section is not None:
            warnings.append(f"{name}: expected a mapping")
        sides[name] = (on, ports)
    for key in _OBSOLETE:
        if key in subtree:
            warnings.append(f"{key}: no longer used by Suricata's DNS parser, ignored")
    match = _bool(subtree.get("match-responses"), False)
    if match is None:
        warnings.append("match-responses: not a boolean")
        match = False
    known = {"enabled", "tcp", "udp", "max-tx", "max-records", "match-responses",
             "detection-ports", *_OBSOLETE}
    unknown = tuple(str(k) for k in subtree if k not in known)
    warnings.extend(f"{key}: unknown DNS setting" for key in unknown)
    config = DnsConfig(
        enabled=enabled,
        tcp_enabled=sides["tcp"][0], udp_enabled=sides["udp"][0],
        tcp_ports=sides["tcp"][1], udp_ports=sides["udp"][1],
        max_tx=_int(subtree, "max-tx", 4096, 1, 1 << 20, warnings),
        max_records=_int(subtree, "max-records", DEFAULT_MAX_RECORDS, 1, 65535, warnings),
        match_responses=match,
        unknown=unknown,
    )
    return config, warnings
