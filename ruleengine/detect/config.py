"""Detection's settings from suricata.yaml: the ``detect`` section and the top-level keys
Suricata's detect engine reads beside it (``mpm-algo``, ``spm-algo``, ``packet-alert-max``,
``action-order``). The config hands this stage the tree's top level; nothing else of it is
read here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ruleengine.config.values import parse_int, scalar_text, value_or


@dataclass(frozen=True)
class DetectSettings:
    profile: str = "medium"
    sgh_mpm_context: str = "auto"
    inspection_recursion_limit: int = 3000
    prefilter_default: str = "mpm"
    mpm_algo: str = "auto"
    spm_algo: str = "auto"
    packet_alert_max: int = 15
    action_order: tuple[str, ...] = ("pass", "drop", "reject", "alert")

    @classmethod
    def from_mapping(cls, top: Mapping[str, Any]) -> DetectSettings:
        """The settings from the tree's top level; a value of the wrong kind keeps the
        default (the config check warned about it)."""
        detect = _section(top, "detect")
        order = top.get("action-order")
        actions = tuple(str(a).lower() for a in order) if isinstance(order, list) else ()
        return cls(
            profile=_word(detect, "profile", cls.profile),
            sgh_mpm_context=_word(detect, "sgh-mpm-context", cls.sgh_mpm_context),
            inspection_recursion_limit=value_or(
                parse_int, detect.get("inspection-recursion-limit"),
                cls.inspection_recursion_limit),
            prefilter_default=_word(_section(detect, "prefilter"), "default",
                                    cls.prefilter_default),
            mpm_algo=_word(top, "mpm-algo", cls.mpm_algo),
            spm_algo=_word(top, "spm-algo", cls.spm_algo),
            packet_alert_max=value_or(parse_int, top.get("packet-alert-max"),
                                      cls.packet_alert_max),
            action_order=actions or cls.action_order,
        )


def _section(tree: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = tree.get(key)
    return value if isinstance(value, Mapping) else {}


def _word(section: Mapping[str, Any], key: str, default: str) -> str:
    """A keyword value, lower case (a YAML boolean reads as yes/no, as Suricata's text)."""
    value = section.get(key)
    if value is None or isinstance(value, dict | list):
        return default
    return scalar_text(value).lower()
