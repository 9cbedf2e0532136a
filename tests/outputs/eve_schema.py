"""Helpers to read Suricata's EVE schema from the shared corpus (never copied into the repo)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest

from tests.shared import SHARED

SCHEMA_PATH = SHARED / "corpus" / "eve-schema" / "schema.json"
VERIFY_DIR = SHARED / "corpus" / "suricata-verify"


@cache
def load_schema() -> dict[str, Any]:
    if not SCHEMA_PATH.is_file():
        pytest.skip(f"EVE schema not found at {SCHEMA_PATH}")
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return schema


@cache
def validator() -> Any:
    import jsonschema

    schema = load_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate_line(line: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(line)
    errors = sorted(validator().iter_errors(event), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors) + "\n" + line
    return event


def stats_counter_names(schema: dict[str, Any]) -> set[str]:
    """Every integer leaf under ``properties.stats`` (following ``$ref``), dotted."""
    defs = schema.get("$defs", {})
    names: set[str] = set()

    def walk(node: dict[str, Any], prefix: str) -> None:
        ref = node.get("$ref")
        if ref:
            node = defs[ref.rsplit("/", 1)[-1]]
        if node.get("type") == "object" and "properties" in node:
            for key, child in node["properties"].items():
                walk(child, f"{prefix}.{key}" if prefix else key)
        elif node.get("type") == "integer":
            names.add(prefix)

    walk(schema["properties"]["stats"], "")
    return names
