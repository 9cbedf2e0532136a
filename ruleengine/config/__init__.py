"""Suricata-compatible configuration: ``suricata.yaml`` plus ``--set key=value`` overrides.

``Config.load(path, overrides)`` reads a YAML 1.1 file the way Suricata's
``conf-yaml-loader.c`` does (``%YAML 1.1`` / ``---`` header; top-level ``include:`` keys and
``!include`` values resolved relative to the file; ``_`` in key names read as ``-``; a key
defined again replaces the earlier definition), applies ``--set`` overrides (dotted names,
list items by index: ``outputs.1.eve-log.enabled``) and returns the config with a list of
warnings. Keys Suricata's own suricata.yaml does not know
(catalogue: ``data/suricata-default.yaml`` + ``data/suricata-known-keys.yaml``) and values of
the wrong kind are warned about, never fatal.

Without a file, the values are those of Suricata's shipped suricata.yaml. With a file, only
that file counts, as in Suricata: a key it leaves out takes Suricata's built-in default, which
is what the ``default`` of every getter and each stage's parser supply.

Only two things raise ``ConfigError``: a file given explicitly that cannot be read, and one
that is not YAML at all (the message has the file, line and column).
"""

from ruleengine.config.catalogue import EVE_TYPES, KeyCatalogue, known_keys
from ruleengine.config.core import Config
from ruleengine.config.values import (
    EXCEPTION_POLICIES,
    ConfigError,
    parse_bool,
    parse_float,
    parse_int,
    parse_size,
)

__all__ = [
    "EVE_TYPES",
    "EXCEPTION_POLICIES",
    "Config",
    "ConfigError",
    "KeyCatalogue",
    "known_keys",
    "parse_bool",
    "parse_float",
    "parse_int",
    "parse_size",
]
