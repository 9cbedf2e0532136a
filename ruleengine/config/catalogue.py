"""What Suricata's suricata.yaml knows: key names and the kind of value each key takes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from functools import cache
from importlib import resources
from typing import Any

from ruleengine.config.loader import parse_yaml
from ruleengine.config.values import (
    EXCEPTION_POLICIES,
    parse_bool,
    parse_float,
    parse_int,
    parse_size,
)


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
def shipped_defaults_text() -> str:
    return _data_text("suricata-default.yaml")


LIBHTP = "app-layer.protocols.http.libhtp."


@cache
def known_keys() -> KeyCatalogue:
    """The catalogue of keys Suricata's suricata.yaml knows."""
    defaults, _ = parse_yaml(shipped_defaults_text(), "suricata-default.yaml")
    extra, _ = parse_yaml(_data_text("suricata-known-keys.yaml"), "suricata-known-keys.yaml")
    patterns = [".".join(p) for p in _flatten_paths(defaults)]
    patterns.extend(str(p) for p in extra or [])
    # server-config entries take every key default-config takes
    patterns.extend(
        LIBHTP + "server-config.#.*." + p[len(LIBHTP + "default-config."):]
        for p in list(patterns) if p.startswith(LIBHTP + "default-config."))
    return KeyCatalogue(patterns)


# EVE event types Suricata knows (outputs.N.eve-log.types).
EVE_TYPES = frozenset({
    "alert", "anomaly", "http", "dns", "tls", "files", "drop", "smtp", "ftp", "ftp-data",
    "rdp", "nfs", "smb", "tftp", "ike", "ikev2", "dcerpc", "krb5", "bittorrent-dht", "snmp",
    "rfb", "sip", "quic", "ldap", "dhcp", "ssh", "mqtt", "http2", "doh2", "pgsql", "stats",
    "flow", "netflow", "metadata", "dnp3", "frame", "arp", "websocket", "pop3", "imap",
    "llmnr", "mdns", "template", "enip", "modbus", "ntp", "nfs3", "sctp",
})

# Values checked at load: pattern -> kind ("bool", "size", "int", "float", or allowed words).
VALUE_KINDS: tuple[tuple[str, Any], ...] = (
    ("stream.midstream", "bool"),
    ("stream.async-oneside", "bool"),
    ("stream.bypass", "bool"),
    ("stream.auto-bypass", "bool"),
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
    ("engine.init-failure-fatal", "bool"),
    ("stats.interval", "int"),
    ("vlan.use-for-tracking", "bool"),
    ("livedev.use-for-tracking", "bool"),
    ("max-pending-packets", "int"),
    ("packet-alert-max", "int"),
    ("runmode", ("single", "autofp", "workers")),
    ("threading.detect-thread-ratio", "float"),
    ("autofp-scheduler", ("hash", "ippair", "ftp-hash", "active-packets")),
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
    (LIBHTP + "default-config.request-body-limit", "size"),
    (LIBHTP + "default-config.response-body-limit", "size"),
    (LIBHTP + "default-config.request-body-minimal-inspect-size", "size"),
    (LIBHTP + "default-config.request-body-inspect-window", "size"),
    (LIBHTP + "default-config.response-body-minimal-inspect-size", "size"),
    (LIBHTP + "default-config.response-body-inspect-window", "size"),
    (LIBHTP + "default-config.response-body-decompress-layer-limit", "int"),
    (LIBHTP + "default-config.double-decode-path", "bool"),
    (LIBHTP + "default-config.double-decode-query", "bool"),
    (LIBHTP + "default-config.http-body-inline", ("auto", "bool")),
    (LIBHTP + "default-config.personality",
     ("minimal", "generic", "ids", "iis_4_0", "iis_5_0", "iis_5_1", "iis_6_0", "iis_7_0",
      "iis_7_5", "apache_2", "apache_2_2")),
)


def matches_pattern(pattern: str, path: str) -> bool:
    psegs, segs = pattern.split("."), path.split(".")
    return len(psegs) == len(segs) and all(p in ("*", s) for p, s in zip(psegs, segs, strict=True))


def value_ok(kind: Any, value: Any) -> bool:
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


def describe_kind(kind: Any) -> str:
    if isinstance(kind, str):
        return {"bool": "yes/no", "size": "a size like 1mb", "int": "an integer",
                "float": "a number"}[kind]
    return "one of " + ", ".join("yes/no" if w == "bool" else w for w in kind)

