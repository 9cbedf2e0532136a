"""The house's layering, checked on the source: no import circles, no import upwards.

Imports are read with ``ast`` (every import, also those inside functions, which still tie
modules together at run time); imports under ``if TYPE_CHECKING:`` are annotations only and
do not count. ``from pkg import sub`` is an edge to ``pkg.sub`` alone: loading a package's
``__init__`` on the way to a submodule is Python's rule, not a dependency of the design.
See ARCHITECTURE.md for the layers.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOTS = ("ruleengine", "capture_backends")

# (importer prefix, imported prefix) pairs that must not occur. A prefix matches the module
# itself and everything below it.
FORBIDDEN = (
    # the engine never imports a backend; the CLI (commands/, cli) is where one is chosen
    *((eng, "capture_backends") for eng in (
        "ruleengine.decode", "ruleengine.flow", "ruleengine.stream", "ruleengine.applayer",
        "ruleengine.detect", "ruleengine.keywords", "ruleengine.rules", "ruleengine.outputs",
        "ruleengine.pipeline", "ruleengine.bypass", "ruleengine.workers", "ruleengine.config",
        "ruleengine.settings", "ruleengine.buffers", "ruleengine.capture")),
    # the contract both sides share imports nothing of the engine
    ("ruleengine.capture", "ruleengine."),
    # lower layers never import higher ones
    *((low, high) for low in ("ruleengine.decode",)
      for high in ("ruleengine.flow", "ruleengine.stream", "ruleengine.applayer",
                   "ruleengine.detect", "ruleengine.pipeline", "ruleengine.outputs")),
    *((low, high) for low in ("ruleengine.flow", "ruleengine.stream")
      for high in ("ruleengine.applayer", "ruleengine.detect", "ruleengine.pipeline",
                   "ruleengine.outputs")),
    *((low, high) for low in ("ruleengine.applayer",)
      for high in ("ruleengine.detect", "ruleengine.pipeline", "ruleengine.outputs",
                   "ruleengine.commands")),
    ("ruleengine.keywords", "ruleengine.detect"),
    ("ruleengine.rules", "ruleengine.detect"),
    *((low, "ruleengine.pipeline") for low in (
        "ruleengine.detect", "ruleengine.outputs", "ruleengine.bypass")),
    *((low, "ruleengine.commands") for low in (
        "ruleengine.pipeline", "ruleengine.detect", "ruleengine.outputs")),
    *((low, "ruleengine.cli") for low in ("ruleengine.commands", "ruleengine.pipeline")),
    # the unix socket package knows only its target interface, nothing of the engine
    *(("ruleengine.control", eng) for eng in (
        "ruleengine.pipeline", "ruleengine.workers", "ruleengine.detect", "ruleengine.flow",
        "ruleengine.stream", "ruleengine.applayer", "ruleengine.outputs", "ruleengine.rules",
        "ruleengine.commands", "ruleengine.bypass", "ruleengine.config")),
    *((low, "ruleengine.control") for low in (
        "ruleengine.detect", "ruleengine.pipeline", "ruleengine.workers", "ruleengine.outputs",
        "ruleengine.flow", "ruleengine.stream", "ruleengine.applayer", "ruleengine.bypass")),
)
# backends may import exactly this of the engine
BACKEND_MAY_IMPORT = ("ruleengine.capture",)


def _modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for root in ROOTS:
        for path in (REPO / root).rglob("*.py"):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts)
            mods[name.removesuffix(".__init__")] = path
    return mods


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skip


def _targets(module: str, is_pkg: bool, node: ast.Import | ast.ImportFrom,
             mods: dict[str, Path]) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        parts = module.split(".")
        if not is_pkg:
            parts = parts[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join([*parts, base] if base else parts)
    subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in mods]
    return subs if len(subs) == len(node.names) else [base, *subs]


def _owner(name: str, mods: dict[str, Path]) -> str | None:
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    mods = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_nodes(tree)
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or id(node) in skip:
                continue
            for target in _targets(module, path.name == "__init__.py", node, mods):
                owner = _owner(target, mods)
                if owner is not None and owner != module:
                    graph[module].add(owner)
        graph.setdefault(module, set())
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _under(module: str, prefix: str) -> bool:
    if prefix.endswith("."):
        return module.startswith(prefix)
    return module == prefix or module.startswith(prefix + ".")


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_graph_sees_the_package(graph: dict[str, set[str]]) -> None:
    # guards the test itself: the walk found the modules and their edges
    assert "ruleengine.pipeline" in graph and "capture_backends.nfqueue" in graph
    assert "ruleengine.detect.engine" in graph["ruleengine.pipeline"]


def test_no_import_cycles(graph: dict[str, set[str]]) -> None:
    assert cycles(graph) == []


def test_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_against_the_layers(graph: dict[str, set[str]]) -> None:
    wrong = sorted(
        f"{src} -> {dst}"
        for src, dsts in graph.items() for dst in dsts
        for low, high in FORBIDDEN
        if _under(src, low) and _under(dst, high) and not _under(dst, low)
    )
    assert wrong == []


def test_backends_import_only_the_contract(graph: dict[str, set[str]]) -> None:
    wrong = sorted(
        f"{src} -> {dst}"
        for src, dsts in graph.items() if src.startswith("capture_backends")
        for dst in dsts
        if dst.startswith("ruleengine") and dst not in BACKEND_MAY_IMPORT
    )
    assert wrong == []
