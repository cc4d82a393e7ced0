"""The package's import graph, read from the source with ``ast`` (imports inside functions
included), has no cycle: a cycle means two modules each need the other, so neither can be read,
tested or moved alone, and import order starts to matter. A package's ``__init__`` re-exporting
its own submodules is not counted as a cycle with them."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("nas_gym", "agents")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[0] == "agents":  # installed as nas_gym.agents (pyproject.toml)
        parts.insert(0, "nas_gym")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module an imported dotted name lives in: the longest prefix that is a module."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph(*, re_exports: bool = False) -> dict[str, set[str]]:
    """Edges module -> module it imports, for every import statement anywhere in the file.

    :param re_exports: keep the edges from a package's ``__init__`` to its own submodules.
    """
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = name.split(".") if is_package else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                # ``from pkg import sub`` imports the submodule when ``sub`` is one, else ``pkg``
                targets = [f"{base}.{a.name}" for a in node.names]
            for target in targets:
                resolved = _resolve(target, modules)
                if resolved is not None and resolved != name:
                    edges.add(resolved)
        graph[name] = edges
    # a package importing its own submodules (re-exports) is not a dependency running back up
    for name, path in modules.items():
        if path.name == "__init__.py" and not re_exports:
            graph[name] = {t for t in graph[name] if not t.startswith(name + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
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


def test_the_graph_is_read() -> None:
    graph = import_graph()
    assert "nas_gym.config" in graph["nas_gym.cli"]
    assert "nas_gym.agents.base" in graph["nas_gym.cli"]


def test_cycles_are_detected() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def _within_one_package(component: list[str]) -> bool:
    packages = [m for m in component if all(o == m or o.startswith(m + ".") for o in component)]
    return bool(packages)


def test_no_cycle_through_a_package_init() -> None:
    """With re-exports counted, a cycle may only join a package's ``__init__`` and its own
    submodules: one that leaves the package means importing it runs a module that needs it."""
    found = [c for c in cycles(import_graph(re_exports=True)) if not _within_one_package(c)]
    assert not found, "import cycles through a package __init__: " + "; ".join(" <-> ".join(c) for c in found)
