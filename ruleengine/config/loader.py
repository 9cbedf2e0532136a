"""Reading suricata.yaml files the way Suricata's ``conf-yaml-loader.c`` does."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ruleengine.config.values import ConfigError

_INCLUDES = "\x00include"  # (position, file name) of the top-level ``include:`` keys
_ORDER = "\x00order"  # position of each top-level key's last definition
_MAX_INCLUDE_DEPTH = 8
# Suricata keeps "_" in the names of these sections' children; elsewhere "_" becomes "-".
_NO_MANGLE_PARENTS = frozenset({"address-groups", "port-groups"})


@dataclass(frozen=True)
class _IncludeRef:
    """A ``!include file.yaml`` value, resolved after parsing."""

    filename: str


class _Loader(yaml.SafeLoader):
    """YAML 1.1 (PyYAML's dialect) read like Suricata's ``conf-yaml-loader.c``: keys are
    strings, ``_`` in a key becomes ``-`` (with a deprecation warning), a key given twice
    keeps its last definition, top-level ``include`` keys are collected in order."""

    notes: list[str]
    parents: list[str]


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> dict[str, Any]:
    loader.flatten_mapping(node)
    result: dict[str, Any] = {}
    top_level = not loader.parents
    parent = loader.parents[-1] if loader.parents else ""
    includes: list[tuple[int, Any]] = []
    order: dict[str, int] = {}
    for position, (key_node, value_node) in enumerate(node.value):
        key_obj = loader.construct_object(key_node, deep=True)
        key = "" if key_obj is None else str(key_obj)
        line = key_node.start_mark.line + 1
        if top_level and key == "include":
            value = loader.construct_object(value_node, deep=True)
            includes.extend((position, v) for v in (value if isinstance(value, list) else [value]))
            continue
        if "_" in key and parent not in _NO_MANGLE_PARENTS:
            mangled = key.replace("_", "-")
            loader.notes.append(f"line {line}: '{key}' is deprecated, use '{mangled}'")
            key = mangled
        loader.parents.append(key)
        try:
            value = loader.construct_object(value_node, deep=True)
        finally:
            loader.parents.pop()
        if key in result:
            loader.notes.append(f"line {line}: '{key}' defined again; the new definition "
                                "replaces the earlier one")
        result[key] = value
        order[key] = position
    if top_level and includes:
        result[_INCLUDES] = includes
        result[_ORDER] = order
    return result


def _construct_include(loader: _Loader, node: yaml.Node) -> _IncludeRef:
    return _IncludeRef(str(loader.construct_scalar(node)))  # type: ignore[arg-type]


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor("!include", _construct_include)


def parse_yaml(text: str, name: str) -> tuple[Any, list[str]]:
    """Parse one YAML document. Raises ConfigError with ``name:line:col`` on a syntax error."""
    loader: _Loader | None = None
    try:
        loader = _Loader(text)  # the reader already rejects non-printable characters
        loader.notes = []
        loader.parents = []
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark is not None else name
        raise ConfigError(f"{where}: not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name}: not valid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{name}: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()
    problem = _alias_problem(data)
    if problem:
        raise ConfigError(f"{name}: {problem}")
    return data, [f"{name}: {w}" for w in loader.notes]


_MAX_NODES = 1_000_000


def _alias_problem(root: Any) -> str | None:
    """YAML aliases can make a tree that refers to itself or expands to billions of nodes
    (the "billion laughs"); both would hang anything that walks the config."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Any) -> int:
        if not isinstance(node, dict | list):
            return 1
        key = id(node)
        if key in active:
            raise _Recursive
        known = sizes.get(key)
        if known is not None:
            return known
        active.add(key)
        children = node.values() if isinstance(node, dict) else node
        total = 1
        for child in children:
            total += size(child)
            if total > _MAX_NODES:
                break
        active.discard(key)
        sizes[key] = total
        return total

    try:
        if size(root) > _MAX_NODES:
            return f"more than {_MAX_NODES:,} values once YAML aliases are expanded"
    except _Recursive:
        return "a YAML alias refers to itself (recursive structure)"
    except RecursionError:
        return "nested too deeply"
    return None


class _Recursive(Exception):
    pass


def has_suricata_header(text: str) -> bool:
    lines = [ln.strip() for ln in text.splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    return len(lines) >= 2 and lines[0].startswith("%YAML 1.1") and lines[1].startswith("---")


class IncludeResolver:
    def __init__(self, warnings: list[str]) -> None:
        self.warnings = warnings

    def load_file(self, path: Path, depth: int) -> Any:
        try:
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
        except OSError as exc:
            self.warnings.append(f"include {path}: cannot read: {exc.strerror}; ignored")
            return None
        try:
            data, dups = parse_yaml(text, str(path))
        except ConfigError as exc:
            self.warnings.append(f"include {exc}; ignored")
            return None
        self.warnings.extend(dups)
        return self.resolve(data, path.parent, depth + 1)

    def resolve(self, node: Any, base_dir: Path, depth: int) -> Any:
        if isinstance(node, _IncludeRef):
            return self._include(node.filename, base_dir, depth)
        if isinstance(node, list):
            return [self.resolve(item, base_dir, depth) for item in node]
        if not isinstance(node, dict):
            return node
        includes: list[tuple[int, Any]] = node.pop(_INCLUDES, None) or []
        order: dict[str, int] = node.pop(_ORDER, None) or {}
        for key in list(node):
            node[key] = self.resolve(node[key], base_dir, depth)
        for position, name in includes:
            included = self._include(name, base_dir, depth)
            if isinstance(included, dict):
                # Suricata reads an included file as if its keys were written where the
                # include is: they replace keys defined before it, not those defined after.
                for key, value in included.items():
                    if order.get(key, -1) < position:
                        node[key] = value
                        order[key] = position
            elif included is not None:
                self.warnings.append(f"include {name}: not a mapping; ignored")
        return node

    def _include(self, name: Any, base_dir: Path, depth: int) -> Any:
        if not isinstance(name, str) or not name:
            self.warnings.append(f"include: {name!r} is not a file name; ignored")
            return None
        if depth >= _MAX_INCLUDE_DEPTH:
            self.warnings.append(f"include {name}: includes nested more than "
                                 f"{_MAX_INCLUDE_DEPTH} deep (a loop?); ignored")
            return None
        path = Path(name)
        if not path.is_absolute():
            path = base_dir / path
        return self.load_file(path, depth)

