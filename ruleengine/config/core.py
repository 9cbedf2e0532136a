"""The ``Config`` object: loading, ``--set`` overrides, checks and getters. Each stage parses
the subtree it is handed (``get_section`` / ``get_list``): ``stream/config.py``,
``flow/table.py`` (``FlowTimeouts``), ``outputs/config.py``, ``detect/config.py``, the
app-layer registry, and each capture backend its own section."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ruleengine.config.catalogue import (
    EVE_TYPES,
    VALUE_KINDS,
    KeyCatalogue,
    describe_kind,
    known_keys,
    matches_pattern,
    shipped_defaults_text,
    value_ok,
)
from ruleengine.config.loader import IncludeResolver, has_suricata_header, parse_yaml
from ruleengine.config.values import (
    ConfigError,
    parse_bool,
    parse_float,
    parse_int,
    parse_size,
    scalar_text,
    value_or,
)

_MISSING = object()
_MAX_SET_DEPTH = 32


class Config:
    """A loaded configuration tree (dicts, lists, scalars) with Suricata-style getters."""

    def __init__(self, data: Mapping[str, Any] | None = None, *,
                 source: Path | None = None) -> None:
        self.data: dict[str, Any] = dict(data or {})
        self.source = source
        self.warnings: list[str] = []

    # --- loading -------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path | None,
             overrides: Sequence[str] = ()) -> tuple[Config, list[str]]:
        warnings: list[str] = []
        if path is None:
            data, _ = parse_yaml(shipped_defaults_text(), "suricata-default.yaml")
            config = cls(data if isinstance(data, dict) else {})
        else:
            config = cls._load_file(Path(path), warnings)
        for override in overrides:
            config.apply_override(override, warnings)
        config.check(warnings)
        config.warnings = warnings
        return config, list(warnings)

    @classmethod
    def _load_file(cls, path: Path, warnings: list[str]) -> Config:
        try:
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
        except FileNotFoundError:
            raise ConfigError(f"{path}: configuration file not found") from None
        except IsADirectoryError:
            raise ConfigError(f"{path}: is a directory, not a configuration file") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read configuration: {exc.strerror}") from None
        if not has_suricata_header(text):
            warnings.append(f"{path}: does not start with '%YAML 1.1' and '---' "
                            "(Suricata refuses such files); read anyway")
        data, dups = parse_yaml(text, str(path))
        warnings.extend(dups)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            warnings.append(f"{path}: the top level is not a mapping of keys; ignored")
            data = {}
        data = IncludeResolver(warnings).resolve(data, path.parent, 0)
        return cls(data, source=path)

    def apply_override(self, override: str, warnings: list[str] | None = None) -> bool:
        """Apply one ``--set name=value`` (value kept as text, as Suricata does)."""
        sink = warnings if warnings is not None else self.warnings
        name, sep, value = override.partition("=")
        name = name.strip()
        if not sep or not name:
            sink.append(f"--set {override}: expected name=value; ignored")
            return False
        segs = name.split(".")
        if any(not s for s in segs):
            sink.append(f"--set {override}: empty part in the name; ignored")
            return False
        if len(segs) > _MAX_SET_DEPTH:
            sink.append(f"--set {override[:80]}...: more than {_MAX_SET_DEPTH} parts; ignored")
            return False
        problem = self.set(name, value.strip())
        if problem:
            sink.append(f"--set {override}: {problem}; ignored")
            return False
        return True

    def set(self, dotted: str, value: Any) -> str | None:
        """Set a value, creating sections on the way. Returns a problem text or None."""
        segs = dotted.split(".")
        node: Any = self.data
        for i, seg in enumerate(segs):
            last = i == len(segs) - 1
            if isinstance(node, list):
                if not seg.isdigit():
                    return f"'{'.'.join(segs[:i])}' is a list; '{seg}' is not an index"
                index = int(seg)
                if index > len(node):
                    return f"index {index} is past the end of '{'.'.join(segs[:i])}'"
                if index == len(node):
                    node.append(None)
                if last:
                    node[index] = value
                    return None
                item = node[index]
                if not isinstance(item, dict | list):
                    # "- http" then --set ...types.3.http.extended=yes: the item becomes
                    # "- http: {extended: yes}", as in Suricata's config tree
                    node[index] = {item: {}} if item == segs[i + 1] else {}
                node = node[index]
            else:
                if last:
                    node[seg] = value
                    return None
                child = node.get(seg)
                if not isinstance(child, dict | list):
                    child = node[seg] = {}
                node = child
        return None

    # --- validation ----------------------------------------------------------------

    def check(self, warnings: list[str]) -> None:
        """Warn about unknown keys, values of the wrong kind and unknown EVE types."""
        catalogue = known_keys()
        self._check_node(self.data, (), catalogue, warnings)
        for dotted, value in self._leaves():
            for pattern, kind in VALUE_KINDS:
                if matches_pattern(pattern, dotted) and not value_ok(kind, value):
                    warnings.append(f"{dotted}: {value!r} is not {describe_kind(kind)}; "
                                    "the default is used")
                    break
        outputs = self.data.get("outputs")
        for i, item in enumerate(outputs if isinstance(outputs, list) else []):
            eve = item.get("eve-log") if isinstance(item, dict) else None
            types = eve.get("types") if isinstance(eve, dict) else None
            for entry in types if isinstance(types, list) else []:
                name = next(iter(entry), None) if isinstance(entry, dict) else entry
                if isinstance(name, str) and name not in EVE_TYPES:
                    warnings.append(f"outputs.{i}.eve-log.types: unknown EVE type '{name}'")

    def _check_node(self, node: Any, path: tuple[str, ...], catalogue: KeyCatalogue,
                    warnings: list[str]) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                sub = (*path, str(key))
                if not catalogue.is_known_prefix(sub):
                    warnings.append(self._unknown_key_message(sub, catalogue))
                    continue
                self._check_node(value, sub, catalogue, warnings)
        elif isinstance(node, list):
            sub = (*path, "#")
            if node and not catalogue.is_known_prefix(sub):
                warnings.append(f"{'.'.join(path)}: Suricata does not expect a list here")
                return
            for item in node:
                self._check_node(item, sub, catalogue, warnings)
        elif path and not catalogue.is_known(path):
            if catalogue.is_known_prefix(path) and node is not None:
                warnings.append(f"{'.'.join(path).replace('.#', '')}: is a section, "
                                f"not a value ({node!r}); ignored")
            elif not catalogue.is_known_prefix(path):
                warnings.append(self._unknown_key_message(path, catalogue))

    @staticmethod
    def _unknown_key_message(path: tuple[str, ...], catalogue: KeyCatalogue) -> str:
        shown = ".".join(path).replace(".#", "[]")
        close = difflib.get_close_matches(path[-1], catalogue.siblings(path), n=1, cutoff=0.7)
        parent = ".".join(path[:-1]).replace(".#", "[]")
        hint = f" (did you mean '{parent + '.' if parent else ''}{close[0]}'?)" if close else ""
        return f"unknown configuration key '{shown}'{hint}; ignored"

    def _leaves(self) -> Iterator[tuple[str, Any]]:
        def walk(node: Any, prefix: str) -> Iterator[tuple[str, Any]]:
            if isinstance(node, dict):
                for key, value in node.items():
                    yield from walk(value, f"{prefix}.{key}" if prefix else str(key))
            elif isinstance(node, list):
                for i, item in enumerate(node):
                    yield from walk(item, f"{prefix}.{i}")
            else:
                yield prefix, node

        yield from walk(self.data, "")

    # --- getters -------------------------------------------------------------------

    def _lookup(self, dotted: str) -> Any:
        node: Any = self.data
        for seg in dotted.split("."):
            if isinstance(node, dict):
                if seg not in node:
                    return _MISSING
                node = node[seg]
            elif isinstance(node, list) and seg.isdigit() and int(seg) < len(node):
                node = node[int(seg)]
            else:
                return _MISSING
        return node

    def get(self, dotted: str, default: Any = None) -> Any:
        """The raw value at ``"stream.reassembly.depth"`` (None/missing -> default)."""
        value = self._lookup(dotted)
        return default if value is _MISSING or value is None else value

    def has(self, dotted: str) -> bool:
        return self._lookup(dotted) is not _MISSING

    def get_bool(self, dotted: str, default: bool) -> bool:
        return value_or(parse_bool, self.get(dotted), default)

    def get_size(self, dotted: str, default: int) -> int:
        return value_or(parse_size, self.get(dotted), default)

    def get_int(self, dotted: str, default: int) -> int:
        return value_or(parse_int, self.get(dotted), default)

    def get_float(self, dotted: str, default: float) -> float:
        return value_or(parse_float, self.get(dotted), default)

    def get_str(self, dotted: str, default: str) -> str:
        value = self.get(dotted)
        if value is None or isinstance(value, dict | list):
            return default
        if isinstance(value, bool):
            return "yes" if value else "no"
        return str(value)

    def get_section(self, dotted: str) -> Mapping[str, Any]:
        """The mapping at ``dotted`` ({} if missing or not a mapping)."""
        value = self.get(dotted)
        return value if isinstance(value, dict) else {}

    def get_list(self, dotted: str) -> list[Any]:
        value = self.get(dotted)
        return value if isinstance(value, list) else []

    # --- values read across stages -----------------------------------------------------

    @property
    def runmode(self) -> str | None:
        value = self.get("runmode")
        return str(value).lower() if value is not None else None

    def address_groups(self) -> dict[str, str]:
        return {str(k): scalar_text(v) for k, v in self.get_section(
            "vars.address-groups").items()}

    def port_groups(self) -> dict[str, str]:
        return {str(k): scalar_text(v) for k, v in self.get_section(
            "vars.port-groups").items()}

    @property
    def sensor_name(self) -> str | None:
        """``sensor-name`` (EVE's ``host`` field), None when not set."""
        value = self.get("sensor-name")
        return None if value is None else scalar_text(value)
