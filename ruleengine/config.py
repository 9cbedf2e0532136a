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
is what the ``default`` of every getter and the typed views below supply.

Only two things raise ``ConfigError``: a file given explicitly that cannot be read, and one
that is not YAML at all (the message has the file, line and column).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:  # the stages' own config types (imported lazily: they import nothing back)
    from ruleengine.applayer.http1.config import HttpConfig
    from ruleengine.flow.table import FlowTimeouts
    from ruleengine.stream.tcp import StreamConfig

# --- errors and value parsing ------------------------------------------------------------


class ConfigError(Exception):
    """The configuration file cannot be used at all (missing, unreadable, not YAML)."""


_TRUE = frozenset({"1", "yes", "true", "on", "y"})
_FALSE = frozenset({"0", "no", "false", "off", "n"})

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
    "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
    "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
    "t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40,
}


def parse_bool(value: Any) -> bool | None:
    """Suricata truthiness (``ConfValIsTrue``/``ConfValIsFalse``); None when neither."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    return None


def parse_size(value: Any) -> int | None:
    """``"1mb"``, ``"4kb"``, ``"100 KiB"``, ``"1.5m"``, plain numbers -> bytes (1024-based,
    as Suricata's ``ParseSizeStringU64``); None when it is not a size."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float):
        return int(value) if value >= 0 else None
    if not isinstance(value, str):
        return None
    match = _SIZE_RE.match(value)
    if match is None:
        return None
    unit = _SIZE_UNITS.get(match.group(2).lower())
    if unit is None:
        return None
    return int(float(match.group(1)) * unit)


def parse_int(value: Any) -> int | None:
    """Decimal or ``0x`` hex integers; None otherwise."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        word = value.strip()
        try:
            return int(word, 16) if word.lower().startswith(("0x", "-0x")) else int(word, 10)
        except ValueError:
            return None
    return None


def parse_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


# --- YAML loading with Suricata's include rules --------------------------------------------

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


def _parse_yaml(text: str, name: str) -> tuple[Any, list[str]]:
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


def _has_suricata_header(text: str) -> bool:
    lines = [ln.strip() for ln in text.splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    return len(lines) >= 2 and lines[0].startswith("%YAML 1.1") and lines[1].startswith("---")


class _IncludeResolver:
    def __init__(self, warnings: list[str]) -> None:
        self.warnings = warnings

    def load_file(self, path: Path, depth: int) -> Any:
        try:
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
        except OSError as exc:
            self.warnings.append(f"include {path}: cannot read: {exc.strerror}; ignored")
            return None
        try:
            data, dups = _parse_yaml(text, str(path))
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


# --- known-key catalogue ---------------------------------------------------------------------


class _Trie:
    __slots__ = ("children", "open", "terminal")

    def __init__(self) -> None:
        self.children: dict[str, _Trie] = {}
        self.terminal = False
        self.open = False


class KeyCatalogue:
    """Dotted key patterns (``#`` list item, ``*`` any name, ``**`` anything below)."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self._root = _Trie()
        for pattern in patterns:
            self.add(pattern)

    def add(self, pattern: str) -> None:
        node = self._root
        for seg in pattern.split("."):
            if seg == "**":
                node.open = True
                return
            node = node.children.setdefault(seg, _Trie())
        node.terminal = True

    def _walk(self, segs: Sequence[str], i: int, node: _Trie, prefix: bool) -> bool:
        if node.open:
            return True
        if i == len(segs):
            return prefix or node.terminal
        seg = segs[i]
        for name in (seg, "*"):
            child = node.children.get(name)
            if child is not None and (name != "*" or seg != "#") and self._walk(
                    segs, i + 1, child, prefix):
                return True
        return False

    def is_known(self, segs: Sequence[str]) -> bool:
        """The full path is a key Suricata knows."""
        return self._walk(segs, 0, self._root, prefix=False)

    def is_known_prefix(self, segs: Sequence[str]) -> bool:
        """The path is a key or a section that holds known keys."""
        return self._walk(segs, 0, self._root, prefix=True)

    def siblings(self, segs: Sequence[str]) -> list[str]:
        """Names known next to the last segment (for "did you mean")."""
        nodes = [self._root]
        for seg in segs[:-1]:
            nxt: list[_Trie] = []
            for node in nodes:
                for name in (seg, "*"):
                    child = node.children.get(name)
                    if child is not None:
                        nxt.append(child)
            nodes = nxt
        names = {n for node in nodes for n in node.children if n not in ("*", "#")}
        return sorted(names)


def _flatten_paths(node: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The path of every leaf (scalar or empty section) of a YAML tree, list items as ``#``."""
    if prefix and (not isinstance(node, dict | list) or not node):
        yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _flatten_paths(value, (*prefix, str(key)))
    elif isinstance(node, list):
        for item in node:
            yield from _flatten_paths(item, (*prefix, "#"))


def _data_text(name: str) -> str:
    return resources.files("ruleengine.data").joinpath(name).read_text(encoding="utf-8")


@cache
def _shipped_defaults_text() -> str:
    return _data_text("suricata-default.yaml")


_LIBHTP = "app-layer.protocols.http.libhtp."


@cache
def known_keys() -> KeyCatalogue:
    """The catalogue of keys Suricata's suricata.yaml knows."""
    defaults, _ = _parse_yaml(_shipped_defaults_text(), "suricata-default.yaml")
    extra, _ = _parse_yaml(_data_text("suricata-known-keys.yaml"), "suricata-known-keys.yaml")
    patterns = [".".join(p) for p in _flatten_paths(defaults)]
    patterns.extend(str(p) for p in extra or [])
    # server-config entries take every key default-config takes
    patterns.extend(
        _LIBHTP + "server-config.#.*." + p[len(_LIBHTP + "default-config."):]
        for p in list(patterns) if p.startswith(_LIBHTP + "default-config."))
    return KeyCatalogue(patterns)


# EVE event types Suricata knows (outputs.N.eve-log.types).
EVE_TYPES = frozenset({
    "alert", "anomaly", "http", "dns", "tls", "files", "drop", "smtp", "ftp", "ftp-data",
    "rdp", "nfs", "smb", "tftp", "ike", "ikev2", "dcerpc", "krb5", "bittorrent-dht", "snmp",
    "rfb", "sip", "quic", "ldap", "dhcp", "ssh", "mqtt", "http2", "doh2", "pgsql", "stats",
    "flow", "netflow", "metadata", "dnp3", "frame", "arp", "websocket", "pop3", "imap",
    "llmnr", "mdns", "template", "enip", "modbus", "ntp", "nfs3", "sctp",
})

EXCEPTION_POLICIES = ("auto", "ignore", "pass-flow", "pass-packet", "drop-flow", "drop-packet",
                      "bypass", "reject", "reject-both", "not-set")

# Values checked at load: pattern -> kind ("bool", "size", "int", "float", or allowed words).
_VALUE_KINDS: tuple[tuple[str, Any], ...] = (
    ("stream.midstream", "bool"),
    ("stream.async-oneside", "bool"),
    ("stream.bypass", "bool"),
    ("stream.drop-invalid", "bool"),
    ("stream.checksum-validation", "bool"),
    ("stream.inline", ("auto", "bool")),
    ("stream.memcap", "size"),
    ("stream.reassembly.memcap", "size"),
    ("stream.reassembly.depth", "size"),
    ("stream.reassembly.toserver-chunk-size", "size"),
    ("stream.reassembly.toclient-chunk-size", "size"),
    ("stream.reassembly.randomize-chunk-size", "bool"),
    ("stream.reassembly.raw", "bool"),
    ("stream.midstream-policy", EXCEPTION_POLICIES),
    ("stream.memcap-policy", EXCEPTION_POLICIES),
    ("stream.reassembly.memcap-policy", EXCEPTION_POLICIES),
    ("flow.memcap-policy", EXCEPTION_POLICIES),
    ("defrag.memcap-policy", EXCEPTION_POLICIES),
    ("app-layer.error-policy", EXCEPTION_POLICIES),
    ("exception-policy", EXCEPTION_POLICIES),
    ("flow.memcap", "size"),
    ("flow.hash-size", "int"),
    ("flow.prealloc", "int"),
    ("flow-timeouts.*.*", "int"),
    ("defrag.memcap", "size"),
    ("stats.enabled", "bool"),
    ("stats.interval", "int"),
    ("vlan.use-for-tracking", "bool"),
    ("livedev.use-for-tracking", "bool"),
    ("max-pending-packets", "int"),
    ("packet-alert-max", "int"),
    ("runmode", ("single", "autofp", "workers")),
    ("host-mode", ("auto", "router", "sniffer-only")),
    ("mpm-algo", ("auto", "ac", "ac-bs", "ac-ks", "hs")),
    ("spm-algo", ("auto", "bm", "hs")),
    ("capture.checksum-validation", ("bool", "none", "all", "auto")),
    ("pcap-file.checksum-checks", ("bool", "auto")),
    ("nfq.mode", ("accept", "repeat", "route")),
    ("nfq.repeat-mark", "int"),
    ("nfq.repeat-mask", "int"),
    ("nfq.bypass-mark", "int"),
    ("nfq.bypass-mask", "int"),
    ("nfq.route-queue", "int"),
    ("nfq.batchcount", "int"),
    ("nfq.fail-open", "bool"),
    ("detect.inspection-recursion-limit", "int"),
    (_LIBHTP + "default-config.request-body-limit", "size"),
    (_LIBHTP + "default-config.response-body-limit", "size"),
    (_LIBHTP + "default-config.request-body-minimal-inspect-size", "size"),
    (_LIBHTP + "default-config.request-body-inspect-window", "size"),
    (_LIBHTP + "default-config.response-body-minimal-inspect-size", "size"),
    (_LIBHTP + "default-config.response-body-inspect-window", "size"),
    (_LIBHTP + "default-config.response-body-decompress-layer-limit", "int"),
    (_LIBHTP + "default-config.double-decode-path", "bool"),
    (_LIBHTP + "default-config.double-decode-query", "bool"),
    (_LIBHTP + "default-config.http-body-inline", ("auto", "bool")),
    (_LIBHTP + "default-config.personality",
     ("minimal", "generic", "ids", "iis_4_0", "iis_5_0", "iis_5_1", "iis_6_0", "iis_7_0",
      "iis_7_5", "apache_2", "apache_2_2")),
)


def _matches(pattern: str, path: str) -> bool:
    psegs, segs = pattern.split("."), path.split(".")
    return len(psegs) == len(segs) and all(p in ("*", s) for p, s in zip(psegs, segs, strict=True))


def _value_ok(kind: Any, value: Any) -> bool:
    if value is None:
        return True  # an empty value: Suricata treats it as not set
    if kind == "bool":
        return parse_bool(value) is not None
    if kind == "size":
        return parse_size(value) is not None
    if kind == "int":
        return parse_int(value) is not None
    if kind == "float":
        return parse_float(value) is not None
    words: tuple[str, ...] = kind
    if "bool" in words and parse_bool(value) is not None:
        return True
    return isinstance(value, str) and value.strip().lower() in words


def _describe(kind: Any) -> str:
    if isinstance(kind, str):
        return {"bool": "yes/no", "size": "a size like 1mb", "int": "an integer",
                "float": "a number"}[kind]
    return "one of " + ", ".join("yes/no" if w == "bool" else w for w in kind)


# --- typed views -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamSettings:
    memcap: int = 64 << 20
    checksum_validation: bool = True
    midstream: bool = False
    midstream_policy: str | None = None  # None: not set (the exception-policy applies)
    async_oneside: bool = False
    inline: str = "auto"  # auto | yes | no
    drop_invalid: bool = True
    bypass: bool = False
    reassembly_memcap: int = 256 << 20
    reassembly_depth: int = 1 << 20
    toserver_chunk_size: int = 2560
    toclient_chunk_size: int = 2560
    randomize_chunk_size: bool = True
    raw: bool = True

    def is_inline(self, ips: bool) -> bool:
        return ips if self.inline == "auto" else self.inline == "yes"


@dataclass(frozen=True)
class ProtoTimeoutSettings:
    new: int
    established: int
    closed: int
    bypassed: int
    emergency_new: int
    emergency_established: int
    emergency_closed: int
    emergency_bypassed: int


# Suricata's shipped flow-timeouts; "closed" does not apply to udp/icmp (0).
_TIMEOUT_DEFAULTS: dict[str, tuple[int, ...]] = {
    "default": (30, 300, 0, 100, 10, 100, 0, 50),
    "tcp": (60, 600, 60, 100, 5, 100, 10, 50),
    "udp": (30, 300, 0, 100, 10, 100, 0, 50),
    "icmp": (30, 300, 0, 100, 10, 100, 0, 50),
}
_TIMEOUT_FIELDS = ("new", "established", "closed", "bypassed", "emergency-new",
                   "emergency-established", "emergency-closed", "emergency-bypassed")


@dataclass(frozen=True)
class HttpServerSettings:
    """One libhtp personality block (default-config or a server-config entry). Defaults are
    Suricata's built-in ones (used when the YAML leaves a key out)."""

    name: str = "default-config"
    addresses: tuple[str, ...] = ()
    personality: str = "IDS"
    request_body_limit: int = 4096
    response_body_limit: int = 4096
    request_body_minimal_inspect_size: int = 32 << 10
    request_body_inspect_window: int = 4 << 10
    response_body_minimal_inspect_size: int = 32 << 10
    response_body_inspect_window: int = 4 << 10
    response_body_decompress_layer_limit: int = 2
    http_body_inline: str = "auto"
    double_decode_path: bool = False
    double_decode_query: bool = False
    randomize_inspection_sizes: bool = True
    randomize_inspection_range: int = 10
    raw: Mapping[str, Any] = field(default_factory=dict)  # every key as written


@dataclass(frozen=True)
class AfPacketInterface:
    interface: str
    threads: str | int = "auto"
    cluster_id: int = 99
    cluster_type: str = "cluster_flow"
    defrag: bool = True
    use_mmap: bool = True
    tpacket_v3: bool = False
    ring_size: int | None = None
    block_size: int | None = None
    buffer_size: int | None = None
    checksum_checks: str = "kernel"
    bpf_filter: str | None = None
    copy_mode: str | None = None
    copy_iface: str | None = None
    bypass: bool = False
    ebpf_filter_file: str | None = None
    xdp_filter_file: str | None = None
    xdp_mode: str | None = None
    disable_promisc: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NfqSettings:
    mode: str = "accept"
    repeat_mark: int = 0
    repeat_mask: int = 0
    bypass_mark: int = 0
    bypass_mask: int = 0
    route_queue: int = 0
    batchcount: int = 1
    fail_open: bool = False


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


@dataclass(frozen=True)
class StatsLogSettings:
    """The ``stats`` output (``stats.log``)."""

    enabled: bool = False
    filename: str = "stats.log"
    append: bool = True
    null_values: bool = False


@dataclass(frozen=True)
class ExceptionPolicies:
    """Resolved exception policies (``src/util-exception-policy.c``)."""

    stream_memcap: str = "ignore"
    stream_midstream: str = "ignore"
    stream_reassembly_memcap: str = "ignore"
    flow_memcap: str = "ignore"
    defrag_memcap: str = "ignore"
    app_layer_error: str = "ignore"


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


# --- the config --------------------------------------------------------------------------------

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
            data, _ = _parse_yaml(_shipped_defaults_text(), "suricata-default.yaml")
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
        if not _has_suricata_header(text):
            warnings.append(f"{path}: does not start with '%YAML 1.1' and '---' "
                            "(Suricata refuses such files); read anyway")
        data, dups = _parse_yaml(text, str(path))
        warnings.extend(dups)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            warnings.append(f"{path}: the top level is not a mapping of keys; ignored")
            data = {}
        data = _IncludeResolver(warnings).resolve(data, path.parent, 0)
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
            for pattern, kind in _VALUE_KINDS:
                if _matches(pattern, dotted) and not _value_ok(kind, value):
                    warnings.append(f"{dotted}: {value!r} is not {_describe(kind)}; "
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
        parsed = parse_bool(self.get(dotted))
        return default if parsed is None else parsed

    def get_size(self, dotted: str, default: int) -> int:
        parsed = parse_size(self.get(dotted))
        return default if parsed is None else parsed

    def get_int(self, dotted: str, default: int) -> int:
        parsed = parse_int(self.get(dotted))
        return default if parsed is None else parsed

    def get_float(self, dotted: str, default: float) -> float:
        parsed = parse_float(self.get(dotted))
        return default if parsed is None else parsed

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

    # --- typed views -----------------------------------------------------------------

    @property
    def runmode(self) -> str | None:
        value = self.get("runmode")
        return str(value).lower() if value is not None else None

    def checksum_validation(self, k_option: str | None = None) -> bool:
        """Whether to validate checksums: ``-k none|all`` wins, else
        ``capture.checksum-validation: none`` disables, else ``stream.checksum-validation``."""
        if k_option is not None:
            return k_option.strip().lower() != "none"
        capture = self.get("capture.checksum-validation")
        if isinstance(capture, str) and capture.strip().lower() == "none":
            return False
        if parse_bool(capture) is False:
            return False
        return self.get_bool("stream.checksum-validation", True)

    def stream(self) -> StreamSettings:
        inline = self.get("stream.inline", "auto")
        inline_bool = parse_bool(inline)
        policy = self.get("stream.midstream-policy")
        return StreamSettings(
            memcap=self.get_size("stream.memcap", 64 << 20),
            checksum_validation=self.get_bool("stream.checksum-validation", True),
            midstream=self.get_bool("stream.midstream", False),
            midstream_policy=str(policy).lower() if policy is not None else None,
            async_oneside=self.get_bool("stream.async-oneside", False),
            inline="auto" if inline_bool is None else ("yes" if inline_bool else "no"),
            drop_invalid=self.get_bool("stream.drop-invalid", True),
            bypass=self.get_bool("stream.bypass", False),
            reassembly_memcap=self.get_size("stream.reassembly.memcap", 256 << 20),
            reassembly_depth=self.get_size("stream.reassembly.depth", 1 << 20),
            toserver_chunk_size=self.get_size("stream.reassembly.toserver-chunk-size", 2560),
            toclient_chunk_size=self.get_size("stream.reassembly.toclient-chunk-size", 2560),
            randomize_chunk_size=self.get_bool("stream.reassembly.randomize-chunk-size", True),
            raw=self.get_bool("stream.reassembly.raw", True),
        )

    def flow_timeouts(self) -> dict[str, ProtoTimeoutSettings]:
        """Timeouts for ``default``, ``tcp``, ``udp``, ``icmp``; a value the YAML leaves out
        comes from the ``default`` section, then from Suricata's shipped values."""
        result: dict[str, ProtoTimeoutSettings] = {}
        default_section = self.get_section("flow-timeouts.default")
        for proto, shipped in _TIMEOUT_DEFAULTS.items():
            section = self.get_section(f"flow-timeouts.{proto}")
            values = []
            for name, fallback in zip(_TIMEOUT_FIELDS, shipped, strict=True):
                if name in section:
                    value = parse_int(section.get(name))
                elif proto != "default":
                    value = parse_int(default_section.get(name))
                else:
                    value = None
                values.append(fallback if value is None or value < 0 else value)
            result[proto] = ProtoTimeoutSettings(*values)
        return result

    def http_default_config(self) -> HttpServerSettings:
        return _http_settings("default-config", (),
                              self.get_section(_LIBHTP + "default-config"), HttpServerSettings())

    def http_server_configs(self) -> list[HttpServerSettings]:
        """``server-config`` entries, each on top of default-config (Suricata's order)."""
        base = self.http_default_config()
        out = []
        for item in self.get_list(_LIBHTP + "server-config"):
            if not isinstance(item, dict) or len(item) != 1:
                continue
            name, body = next(iter(item.items()))
            if not isinstance(body, dict):
                continue
            addresses = body.get("address")
            addr_list = addresses if isinstance(addresses, list) else (
                [addresses] if addresses is not None else [])
            out.append(_http_settings(str(name), tuple(str(a) for a in addr_list), body, base))
        return out

    # --- the stages' own config objects ---------------------------------------------

    def stream_config(self, *, ips: bool) -> StreamConfig:
        """``ruleengine.stream.tcp.StreamConfig`` from the ``stream`` section."""
        from ruleengine.stream.tcp import StreamConfig

        view = self.stream()
        return StreamConfig(midstream=view.midstream, inline=view.is_inline(ips),
                            reassembly_depth=view.reassembly_depth,
                            async_oneside=view.async_oneside, bypass=view.bypass)

    def flow_timeouts_config(self) -> FlowTimeouts:
        """``ruleengine.flow.table.FlowTimeouts`` from ``flow-timeouts``."""
        from ruleengine.flow.table import FlowTimeouts

        return FlowTimeouts.from_mapping(self.get_section("flow-timeouts"))

    def http_config(self) -> tuple[HttpConfig, list[str]]:
        """``ruleengine.applayer.http1.config.HttpConfig`` from libhtp's default-config, with
        the keys it could not use."""
        from ruleengine.applayer.http1.config import HttpConfig

        return HttpConfig.from_mapping(self.get_section(_LIBHTP + "default-config"))

    def address_groups(self) -> dict[str, str]:
        return {str(k): _scalar_text(v) for k, v in self.get_section(
            "vars.address-groups").items()}

    def port_groups(self) -> dict[str, str]:
        return {str(k): _scalar_text(v) for k, v in self.get_section(
            "vars.port-groups").items()}

    def af_packet(self) -> list[AfPacketInterface]:
        """The ``af-packet`` interfaces, each completed from the ``interface: default``
        entry (the ``default`` entry itself is not listed)."""
        entries = [e for e in self.get_list("af-packet") if isinstance(e, dict)]
        default = next((e for e in entries if str(e.get("interface")) == "default"), {})
        return [_af_packet_iface({**default, **e}) for e in entries
                if e.get("interface") is not None and str(e.get("interface")) != "default"]

    def af_packet_for(self, iface: str) -> AfPacketInterface:
        """Settings for ``iface``: its own entry, else the ``default`` entry."""
        for entry in self.af_packet():
            if entry.interface == iface:
                return entry
        entries = [e for e in self.get_list("af-packet") if isinstance(e, dict)]
        default = next((e for e in entries if str(e.get("interface")) == "default"), {})
        return _af_packet_iface({**default, "interface": iface})

    def nfq(self) -> NfqSettings:
        return NfqSettings(
            mode=self.get_str("nfq.mode", "accept").lower(),
            repeat_mark=self.get_int("nfq.repeat-mark", 0),
            repeat_mask=self.get_int("nfq.repeat-mask", 0),
            bypass_mark=self.get_int("nfq.bypass-mark", 0),
            bypass_mask=self.get_int("nfq.bypass-mask", 0),
            route_queue=self.get_int("nfq.route-queue", 0),
            batchcount=self.get_int("nfq.batchcount", 1),
            fail_open=self.get_bool("nfq.fail-open", False),
        )

    def eve(self) -> EveSettings:
        """The first ``eve-log`` output (Suricata may have several; we write one file)."""
        for item in self.get_list("outputs"):
            body = item.get("eve-log") if isinstance(item, dict) else None
            if body is None:
                continue
            body = body if isinstance(body, dict) else {}
            types: set[str] = set()
            options: dict[str, Mapping[str, Any]] = {}
            for entry in body.get("types") or []:
                if isinstance(entry, str):
                    types.add(entry)
                elif isinstance(entry, dict) and entry:
                    name, opts = next(iter(entry.items()))
                    opts = opts if isinstance(opts, dict) else {}
                    if parse_bool(opts.get("enabled", True)) is False:
                        continue
                    types.add(str(name))
                    options[str(name)] = opts
            return EveSettings(
                enabled=parse_bool(body.get("enabled", True)) is not False,
                filename=_scalar_text(body.get("filename") or "eve.json"),
                filetype=_scalar_text(body.get("filetype") or "regular"),
                append=parse_bool(body.get("append", True)) is not False,
                types=frozenset(types),
                type_options=options,
                community_id=parse_bool(body.get("community-id")) is True,
                pcap_file=parse_bool(body.get("pcap-file")) is True,
            )
        return EveSettings()

    def stats_log(self) -> StatsLogSettings:
        """The first ``stats`` output (``outputs: - stats: {enabled, filename, ...}``)."""
        for item in self.get_list("outputs"):
            body = item.get("stats") if isinstance(item, dict) else None
            if isinstance(body, dict):
                return StatsLogSettings(
                    enabled=parse_bool(body.get("enabled", True)) is not False,
                    filename=_scalar_text(body.get("filename") or "stats.log"),
                    append=parse_bool(body.get("append", True)) is not False,
                    null_values=parse_bool(body.get("null-values")) is True,
                )
        return StatsLogSettings()

    @property
    def sensor_name(self) -> str | None:
        """``sensor-name`` (EVE's ``host`` field), None when not set."""
        value = self.get("sensor-name")
        return None if value is None else _scalar_text(value)

    def stats_enabled(self) -> bool:
        return self.get_bool("stats.enabled", True)

    def stats_interval(self) -> int:
        interval = self.get_int("stats.interval", 8)
        return interval if interval > 0 else 8

    def exception_policies(self, ips: bool) -> ExceptionPolicies:
        """Each policy: its own key, else the master ``exception-policy``; ``auto`` means
        drop-flow in IPS mode and ignore otherwise; drop/reject policies only act in IPS
        mode (ignore in IDS), as in Suricata."""
        master = self.get_str("exception-policy", "auto").lower()

        def resolve(key: str, packet_level: bool = False) -> str:
            value = self.get_str(key, "").lower() or master
            if value not in EXCEPTION_POLICIES or value == "not-set":
                value = master if master in EXCEPTION_POLICIES else "auto"
            if value == "auto":
                value = ("drop-packet" if packet_level else "drop-flow") if ips else "ignore"
            if not ips and value.startswith(("drop", "reject")):
                value = "ignore"
            return value

        midstream = resolve("stream.midstream-policy")
        if self.get_bool("stream.midstream", False):
            midstream = "ignore"  # midstream pick-up enabled: there is no exception
        return ExceptionPolicies(
            stream_memcap=resolve("stream.memcap-policy"),
            stream_midstream=midstream,
            stream_reassembly_memcap=resolve("stream.reassembly.memcap-policy"),
            flow_memcap=resolve("flow.memcap-policy", packet_level=True),
            defrag_memcap=resolve("defrag.memcap-policy", packet_level=True),
            app_layer_error=resolve("app-layer.error-policy"),
        )

    def detect(self) -> DetectSettings:
        order = [str(a).lower() for a in self.get_list("action-order")]
        return DetectSettings(
            profile=self.get_str("detect.profile", "medium").lower(),
            sgh_mpm_context=self.get_str("detect.sgh-mpm-context", "auto").lower(),
            inspection_recursion_limit=self.get_int("detect.inspection-recursion-limit", 3000),
            prefilter_default=self.get_str("detect.prefilter.default", "mpm").lower(),
            mpm_algo=self.get_str("mpm-algo", "auto").lower(),
            spm_algo=self.get_str("spm-algo", "auto").lower(),
            packet_alert_max=self.get_int("packet-alert-max", 15),
            action_order=tuple(order) if order else DetectSettings().action_order,
        )


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value)


def _http_settings(name: str, addresses: tuple[str, ...], body: Mapping[str, Any],
                   base: HttpServerSettings) -> HttpServerSettings:
    def size(key: str, default: int) -> int:
        parsed = parse_size(body.get(key))
        return default if parsed is None else parsed

    def flag(key: str, default: bool) -> bool:
        parsed = parse_bool(body.get(key))
        return default if parsed is None else parsed

    def integer(key: str, default: int) -> int:
        parsed = parse_int(body.get(key))
        return default if parsed is None else parsed

    inline = body.get("http-body-inline")
    inline_bool = parse_bool(inline)
    return HttpServerSettings(
        name=name,
        addresses=addresses,
        personality=_scalar_text(body.get("personality") or base.personality),
        request_body_limit=size("request-body-limit", base.request_body_limit),
        response_body_limit=size("response-body-limit", base.response_body_limit),
        request_body_minimal_inspect_size=size("request-body-minimal-inspect-size",
                                               base.request_body_minimal_inspect_size),
        request_body_inspect_window=size("request-body-inspect-window",
                                         base.request_body_inspect_window),
        response_body_minimal_inspect_size=size("response-body-minimal-inspect-size",
                                                base.response_body_minimal_inspect_size),
        response_body_inspect_window=size("response-body-inspect-window",
                                          base.response_body_inspect_window),
        response_body_decompress_layer_limit=integer("response-body-decompress-layer-limit",
                                                     base.response_body_decompress_layer_limit),
        http_body_inline=(base.http_body_inline if inline is None else
                          "auto" if inline_bool is None else ("yes" if inline_bool else "no")),
        double_decode_path=flag("double-decode-path", base.double_decode_path),
        double_decode_query=flag("double-decode-query", base.double_decode_query),
        randomize_inspection_sizes=flag("randomize-inspection-sizes",
                                        base.randomize_inspection_sizes),
        randomize_inspection_range=integer("randomize-inspection-range",
                                           base.randomize_inspection_range),
        raw={**base.raw, **{str(k): v for k, v in body.items() if k != "address"}},
    )


def _af_packet_iface(entry: Mapping[str, Any]) -> AfPacketInterface:
    def opt_str(key: str) -> str | None:
        value = entry.get(key)
        return None if value is None else _scalar_text(value)

    threads_raw = entry.get("threads", "auto")
    threads_int = parse_int(threads_raw)
    return AfPacketInterface(
        interface=_scalar_text(entry.get("interface")),
        threads=threads_int if threads_int is not None and threads_int > 0 else "auto",
        cluster_id=parse_int(entry.get("cluster-id")) or 99,
        cluster_type=_scalar_text(entry.get("cluster-type") or "cluster_flow"),
        defrag=parse_bool(entry.get("defrag")) is not False,
        use_mmap=parse_bool(entry.get("use-mmap")) is not False,
        tpacket_v3=parse_bool(entry.get("tpacket-v3")) is True,
        ring_size=parse_int(entry.get("ring-size")),
        block_size=parse_int(entry.get("block-size")),
        buffer_size=parse_int(entry.get("buffer-size")),
        checksum_checks=_scalar_text(entry.get("checksum-checks") or "kernel").lower(),
        bpf_filter=opt_str("bpf-filter"),
        copy_mode=opt_str("copy-mode"),
        copy_iface=opt_str("copy-iface"),
        bypass=parse_bool(entry.get("bypass")) is True,
        ebpf_filter_file=opt_str("ebpf-filter-file"),
        xdp_filter_file=opt_str("xdp-filter-file"),
        xdp_mode=opt_str("xdp-mode"),
        disable_promisc=parse_bool(entry.get("disable-promisc")) is True,
        raw=dict(entry),
    )
