"""The package's import graph, read from the source with ``ast`` (imports inside functions
included), has no cycle and no import running back up the layers (``LAYERS``, read from each
module's folder): a cycle means two modules each need the other, so neither can be read, tested or
moved alone, and import order starts to matter; an import back up means a lower layer cannot be
used without the one above it. A package's ``__init__`` re-exporting its own submodules is not
counted as a cycle with them. The package also stays navigable: few top-level modules, none long."""

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
    assert "nas_gym.config" in graph["nas_gym.cli.common"]
    assert "nas_gym.agents.base" in graph["nas_gym.cli.common"]


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


# The layers, lowest first. A module may import its own layer and the layers before it, never one
# after it: a dependency running back up means the lower layer cannot be read, tested or reused
# without the one above. Config sits above spaces and data because it is made of their sections
# (a space's ``Params``, ``DataConfig``); storage sits below them because it takes their objects as
# values only (its imports of them are annotations). The space-specific supernets are part of
# their spaces (``spaces/*/supernet.py``, on ``spaces/supernet/``); ``oneshot`` trains them.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "results", "plugins", "extras"),
    ("storage",),
    ("spaces", "data"),
    ("config", "evaluator_kinds"),
    ("training",),
    ("latency", "oneshot"),
    ("execution",),
    ("benchmarks", "surrogates"),
    ("evaluators", "rewards", "preflight"),
    ("envs",),
    ("agents",),
    ("runs",),
    ("cli",),
)
LAYER_OF = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}
TOP = len(LAYERS)  # ``nas_gym/__init__`` re-exports names from every layer: above them all

# Edges allowed to run back up, each with the reason it still exists. A listed edge that no longer
# occurs fails the test below, so this list only shrinks.
BACK_EDGES: dict[tuple[str, str], str] = {
    ("nas_gym.config", "nas_gym.latency.model"):
        "a cost-aware reward's latency table is read while validating; moves to the preflight step (issue 22)",
}
MAX_TOP_LEVEL_MODULES = 8
MAX_LINES = 400
# Modules allowed over MAX_LINES, each with the reason it is not split yet.
LONG_MODULES: dict[str, str] = {
}


def layer(module: str) -> int:
    """The layer of a module, read from its folder: ``nas_gym.<folder>...`` or a top-level module."""
    parts = module.split(".")
    if parts == ["nas_gym"]:
        return TOP
    return LAYER_OF[parts[1]]


def _runtime_graph() -> dict[str, set[str]]:
    """The import graph without imports made for annotations only (under ``if TYPE_CHECKING:``):
    those never run, so they add no dependency."""
    modules = _modules()
    graph = import_graph()
    for name, path in modules.items():
        typing_only: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                for stmt in node.body:
                    if isinstance(stmt, ast.ImportFrom) and stmt.module:
                        typing_only |= {_resolve(f"{stmt.module}.{a.name}", modules) for a in stmt.names}
                    elif isinstance(stmt, ast.Import):
                        typing_only |= {_resolve(a.name, modules) for a in stmt.names}
        graph[name] = {t for t in graph[name] if t not in typing_only or _imported_elsewhere(path, t, modules)}
    return graph


def _imported_elsewhere(path: Path, target: str, modules: dict[str, Path]) -> bool:
    """Whether ``target`` is also imported outside an ``if TYPE_CHECKING:`` block of the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    guarded = {id(s) for n in ast.walk(tree) if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test)
               for s in n.body}
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if any(_resolve(f"{node.module}.{a.name}", modules) == target for a in node.names):
                return True
        elif isinstance(node, ast.Import) and any(_resolve(a.name, modules) == target for a in node.names):
            return True
    return False


def back_edges(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    """Edges to a later layer. ``from nas_gym import __version__`` is not one: importing any
    module of the package runs ``nas_gym/__init__`` first, so naming it adds no dependency."""
    return {(a, b) for a, targets in graph.items() for b in targets if b != "nas_gym" and layer(b) > layer(a)}


def test_every_module_has_a_layer() -> None:
    unplaced = sorted(m for m in _modules() if m != "nas_gym" and m.split(".")[1] not in LAYER_OF)
    assert not unplaced, f"modules in no layer (add their folder to LAYERS): {unplaced}"


def test_back_edges_are_detected() -> None:
    assert back_edges({"nas_gym.spaces.base": {"nas_gym.evaluators.base"}}) == {
        ("nas_gym.spaces.base", "nas_gym.evaluators.base")}
    assert back_edges({"nas_gym.evaluators.base": {"nas_gym.spaces.base"}}) == set()


def test_annotation_only_imports_add_no_dependency() -> None:
    graph = _runtime_graph()
    assert "nas_gym.config" in import_graph()["nas_gym.storage.cache"]  # under TYPE_CHECKING
    assert "nas_gym.config" not in graph["nas_gym.storage.cache"]
    assert "nas_gym.results" in graph["nas_gym.storage.cache"]


def test_no_dependency_runs_back_up_the_layers() -> None:
    found = back_edges(_runtime_graph())
    unexplained = sorted(found - set(BACK_EDGES))
    assert not unexplained, "imports running back up the layers (" + " -> ".join(
        "/".join(p) for p in LAYERS) + "): " + "; ".join(f"{a} -> {b}" for a, b in unexplained)
    stale = sorted(set(BACK_EDGES) - found)
    assert not stale, f"BACK_EDGES lists edges that no longer occur; remove them: {stale}"


def test_the_package_top_level_stays_small() -> None:
    top = sorted(p.stem for p in (ROOT / "nas_gym").glob("*.py") if p.stem != "__init__")
    assert len(top) <= MAX_TOP_LEVEL_MODULES, f"{len(top)} top-level modules in nas_gym/ (at most " \
        f"{MAX_TOP_LEVEL_MODULES}; move the rest into their layer's folder): {top}"


def test_no_module_is_too_long() -> None:
    long = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in _modules().items()}
    over = sorted(f"{n} ({lines} lines)" for n, lines in long.items() if lines > MAX_LINES and n not in LONG_MODULES)
    assert not over, f"modules over {MAX_LINES} lines (split them by responsibility): {over}"
    stale = sorted(n for n in LONG_MODULES if long.get(n, 0) <= MAX_LINES)
    assert not stale, f"LONG_MODULES lists modules no longer over {MAX_LINES} lines; remove them: {stale}"


def _third_party_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def test_the_env_layer_imports_no_rl_library() -> None:
    """The env is for any agent; the SB3 vector env lives with the SB3 agents (``nas_gym.agents.sb3_vec``)."""
    rl = {"stable_baselines3", "sb3_contrib", "ray", "sklearn"}
    found = {name: sorted(_third_party_imports(path) & rl) for name, path in _modules().items()
             if name.startswith("nas_gym.envs")}
    assert not any(found.values()), f"the env layer imports an RL library: {found}"
    assert "stable_baselines3" in _third_party_imports(ROOT / "agents" / "sb3_vec.py")
