"""Errors and Suricata's value syntax: booleans, sizes, integers (their one implementation
is :mod:`ruleengine.conf_values`, shared with the capture backends), exception policies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ruleengine.conf_values import (
    is_true,
    parse_bool,
    parse_float,
    parse_int,
    parse_size,
    parse_switch,
)

__all__ = ["EXCEPTION_POLICIES", "ConfigError", "exception_policy", "is_true", "parse_bool",
           "parse_float", "parse_int", "parse_size", "parse_switch", "policy_word",
           "scalar_text", "value_or"]

_T = TypeVar("_T")


class ConfigError(Exception):
    """The configuration file cannot be used at all (missing, unreadable, not YAML)."""


def value_or(parse: Callable[[Any], _T | None], value: Any, default: _T) -> _T:
    """``parse(value)``, or ``default`` when ``value`` is absent or not of that kind."""
    parsed = parse(value)
    return default if parsed is None else parsed


# Suricata's exception policy words (``src/util-exception-policy.c``).
EXCEPTION_POLICIES = ("auto", "ignore", "pass-flow", "pass-packet", "drop-flow", "drop-packet",
                      "bypass", "reject", "reject-both", "not-set")


def policy_word(value: Any) -> str:
    """A policy key's value in lower case; "" when absent or not a scalar."""
    if value is None or isinstance(value, dict | list):
        return ""
    return scalar_text(value).lower()


def exception_policy(value: Any, master: Any, *, ips: bool, packet_level: bool = False) -> str:
    """One ``*-policy`` key as Suricata's ExceptionPolicyParse resolves it (each stage
    reads its own key): the key, else the master ``exception-policy`` (its value as
    written, None when absent); ``auto`` means drop-flow (drop-packet for packet-level
    policies) in IPS mode and ignore otherwise; drop/reject act only in IPS mode."""
    main = policy_word(master) or "auto"
    word = policy_word(value) or main
    if word not in EXCEPTION_POLICIES or word == "not-set":
        word = main if main in EXCEPTION_POLICIES else "auto"
    if word == "auto":
        word = ("drop-packet" if packet_level else "drop-flow") if ips else "ignore"
    if not ips and word.startswith(("drop", "reject")):
        word = "ignore"
    return word


def scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value)

