"""Suricata's informational flags: ``--build-info``, ``--list-keywords[=all|csv|KEYWORD]``
and ``--list-app-layer-protos``. They print and exit 0 before anything is loaded, on the
top-level command (``ruleengine --build-info``) as on ``ruleengine run``.

Formats follow Suricata (``SigTableList`` in detect-engine-register.c, ``AppProtoListAll``):
``--list-keywords`` prints ``=====Supported keywords=====`` then ``- name`` per keyword
(``- name (not built-in)`` for keywords the engine parses but does not evaluate: rules using
them are skipped), ``=all`` a block per keyword, ``=csv`` Suricata's csv, ``=NAME`` one
keyword. Optional features in ``--build-info`` are found by trying to load them, never
assumed.
"""

from __future__ import annotations

import argparse
import importlib
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import ruleengine
from ruleengine.applayer import registry as applayer
from ruleengine.keywords import REGISTRY, ArgKind, KeywordSpec, Stage
from ruleengine.keywords import transforms as transform_keywords

APP_LAYER_HEADER = "=========Supported App Layer Protocols========="
KEYWORDS_HEADER = "=====Supported keywords====="
SHORT = "short"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The three flags; SUPPRESS defaults, so a subcommand's parser does not overwrite what
    the top-level parser already read, and dests of their own (``lint`` has a
    ``--list-keywords`` of its own)."""
    group = parser.add_argument_group("information (print and exit)")
    group.add_argument("--build-info", dest="info_build_info", action="store_true",
                       default=argparse.SUPPRESS,
                       help="version, Python and which optional features are available")
    group.add_argument("--list-keywords", dest="info_list_keywords", nargs="?", const=SHORT,
                       metavar="all|csv|KEYWORD",
                       default=argparse.SUPPRESS,
                       help="rule keywords: one per line; =all details; =csv; =NAME one")
    group.add_argument("--list-app-layer-protos", dest="info_list_app_layer_protos",
                       action="store_true",
                       default=argparse.SUPPRESS, help="the app-layer protocols")


def run_requested(args: argparse.Namespace) -> int | None:
    """Print what an informational flag asks for and return the exit code; None when none
    was given."""
    if getattr(args, "info_build_info", False):
        print(build_info())
        return 0
    mode = getattr(args, "info_list_keywords", None)
    if mode is not None:
        text, ok = list_keywords(mode)
        print(text, file=sys.stdout if ok else sys.stderr)
        return 0 if ok else 1
    if getattr(args, "info_list_app_layer_protos", False):
        print(list_app_layer_protos())
        return 0
    return None


# --- --list-app-layer-protos ----------------------------------------------------------


def list_app_layer_protos() -> str:
    return "\n".join([APP_LAYER_HEADER, *applayer.names()])


# --- --list-keywords ------------------------------------------------------------------


@dataclass(frozen=True)
class KeywordInfo:
    name: str
    description: str
    features: tuple[str, ...]
    built: bool  # False: parsed only, rules using it are skipped
    app_layer: str = ""
    replaced_by: str = ""  # an alias: the keyword's own name


def keyword_infos() -> list[KeywordInfo]:
    """Every keyword and alias of the keyword registry, plus any app-layer buffer or
    keyword that only the app-layer registry knows, sorted by name."""
    transforms = {spec.name for spec in transform_keywords.SPECS}
    infos: dict[str, KeywordInfo] = {}
    for spec in REGISTRY.specs:
        info = _info(spec, spec.name in transforms)
        infos.setdefault(spec.name, info)
        for alias in spec.aliases:
            infos.setdefault(alias, KeywordInfo(alias, info.description, info.features,
                                                info.built, replaced_by=spec.name))
    _add_app_layer(infos)
    return [infos[name] for name in sorted(infos)]


def _info(spec: KeywordSpec, is_transform: bool) -> KeywordInfo:
    features: list[str] = []
    if spec.arg is ArgKind.NONE:
        features.append("No option")
    if spec.stage is Stage.MODIFIER:
        features.append("content modifier")
    if spec.stage is Stage.STICKY:
        features.append("sticky buffer")
    if is_transform:
        features.append("transform")
    built = spec.stage is not Stage.UNSUPPORTED
    description = spec.doc or ("parsed but not evaluated: rules using it are skipped"
                               if not built else "")
    return KeywordInfo(spec.name, description, tuple(features), built)


def _add_app_layer(infos: dict[str, KeywordInfo]) -> None:
    for name, buffer in applayer.buffers().items():
        for kw in (name, *buffer.aliases):
            known = infos.get(kw)
            infos[kw] = KeywordInfo(kw, known.description if known else f"sticky buffer {name}",
                                    ("sticky buffer",), True, buffer.alproto,
                                    "" if kw == name else name)
    for name, entry in applayer.tx_keywords().items():
        known = infos.get(name)
        canonical = entry.keyword.name
        infos[name] = KeywordInfo(
            name, known.description if known else f"{entry.alproto} keyword",
            known.features if known else (), True, entry.alproto,
            "" if name == canonical else canonical)


def list_keywords(mode: str) -> tuple[str, bool]:
    """(text, found). ``mode``: ``short`` (the flag alone), ``all``, ``csv`` or a keyword."""
    infos = keyword_infos()
    if mode == SHORT:
        return "\n".join([KEYWORDS_HEADER, *(
            f"- {i.name}" if i.built else f"- {i.name} (not built-in)" for i in infos)]), True
    if mode == "csv":
        lines = ["name;description;app layer;features;documentation"]
        # a ';' inside a description would shift the columns
        lines.extend(f"{i.name};{i.description.replace(';', ',')};{i.app_layer or 'Unset'};"
                     f"{_features(i, ':')};;" for i in infos if i.built)
        return "\n".join(lines), True
    if mode == "all":
        return "\n".join(f"{i.name}:\n" + _details(i, "\t") for i in infos), True
    found = next((i for i in infos if i.name == mode), None)
    if found is None:
        return f"error: unknown keyword {mode!r} (--list-keywords lists them all)", False
    if not found.built:
        return f"= {found.name} =\nNot built-in", True
    return f"= {found.name} =\n" + _details(found, ""), True


def _features(info: KeywordInfo, sep: str) -> str:
    return sep.join(info.features) if info.features else "none"


def _details(info: KeywordInfo, prefix: str) -> str:
    lines = []
    if info.description:
        lines.append(f"{prefix}Description: {info.description}")
    lines.append(f"{prefix}Features: {_features(info, ',')}")
    if info.app_layer:
        lines.append(f"{prefix}App layer: {info.app_layer}")
    if info.replaced_by:
        lines.append(f"{prefix}Replaced by: {info.replaced_by}")
    if not info.built:
        lines.append(f"{prefix}Not built-in: rules using it load but are skipped")
    return "\n".join(lines)


# --- --build-info ---------------------------------------------------------------------


@dataclass(frozen=True)
class Feature:
    label: str  # Suricata's Features: word
    what: str
    available: bool
    detail: str


def build_info() -> str:
    import platform  # here: every command line imports this module, few ask for this

    features = list(optional_features())
    names = " ".join(f.label for f in features if f.available)
    lines = [
        f"This is ruleengine version {ruleengine.__version__}",
        f"Features: {' '.join(_core_features())} {names}".rstrip(),
        f"Python version: {platform.python_version()} ({platform.python_implementation()})",
        f"Platform: {platform.system()} {platform.release()} {platform.machine()}",
        f"App-layer protocols: {', '.join(applayer.names())}",
        f"Rule keywords: {len(keyword_infos())}",
    ]
    width = max(len(f.what) for f in features) + 1
    for feature in features:
        state = "yes" if feature.available else "no"
        lines.append(f"{feature.what + ':':<{width}} {state} ({feature.detail})")
    return "\n".join(lines)


def _core_features() -> list[str]:
    """Built in, but AF_PACKET (and its fanout) needs a Linux socket module."""
    features = ["PCAP_FILE"]
    if hasattr(socket, "AF_PACKET"):
        features += ["AF_PACKET", "HAVE_PACKET_FANOUT"]
    return features


def optional_features() -> Iterator[Feature]:
    yield _module_feature("HAVE_HYPERSCAN", "hyperscan (mpm-algo: hs)", "hyperscan",
                          "pip install '.[hyperscan]'")
    yield _module_feature("AHOCORASICK", "pyahocorasick (mpm-algo: ac)", "ahocorasick",
                          "pip install pyahocorasick")
    yield _ebpf_feature("EBPF_LIBBPF", "eBPF loader libbpf", "libbpf")
    yield _ebpf_feature("EBPF_BCC", "eBPF loader bcc", "bcc")
    yield _module_feature("NFQ", "NFQueue (netfilterqueue)", "netfilterqueue",
                          "pip install '.[nfq]'")
    yield _module_feature("MAGIC", "libmagic (python-magic)", "magic",
                          "pip install python-magic")
    yield _module_feature("TLS_CERTS", "TLS certificates (cryptography)", "cryptography",
                          "pip install cryptography")


def _module_feature(label: str, what: str, module: str, hint: str) -> Feature:
    loaded = _try_import(module)
    if loaded is None:
        return Feature(label, what, False, hint)
    return Feature(label, what, True, f"{module} {_version(loaded, module)}")


def _try_import(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except Exception:  # any failure to load means "not available" (ImportError, OSError...)
        return None


def _version(loaded: Any, module: str) -> str:
    version = getattr(loaded, "__version__", None)
    if version:
        return str(version)
    try:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as dist_version
    except ImportError:  # pragma: no cover
        return "version unknown"
    names = {"ahocorasick": "pyahocorasick", "magic": "python-magic"}
    try:
        return dist_version(names.get(module, module))
    except PackageNotFoundError:
        return "version unknown"


def _ebpf_feature(label: str, what: str, loader: str) -> Feature:
    check: Callable[[str], str | None]
    try:
        from capture_backends.ebpf import loader_unavailable as check
    except Exception as exc:  # pragma: no cover (the package ships with the engine)
        return Feature(label, what, False, f"{type(exc).__name__}: {exc}")
    try:
        reason = check(loader)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
    return Feature(label, what, reason is None, reason or "usable")
