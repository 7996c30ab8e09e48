"""The package's import graph has no cycles and no imports that run back up the layers: data flows
task -> method -> metrics -> record -> summary/report/leaderboard -> command line.

Every ``import`` counts, also those inside functions (a lazy import is still a dependency); only
``if TYPE_CHECKING:`` blocks are left out. The same check from the shell:
``python tests/test_imports.py`` prints the layer violations and cycles, if any.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "structure_bench"

# Lowest first. A module may import its own layer's modules (without a cycle) and lower ones.
LAYERS: list[list[str]] = [
    ["errors", "version", "numerics"],
    ["structures", "plugins"],
    ["metrics", "kinds", "methods", "results"],
    ["storage", "task", "cache", "identity", "registry", "synthetic", "hidden", "sae", "adapters", "external"],
    ["planning", "provenance", "export"],
    ["unit"],
    ["checks"],
    ["executors"],
    ["runner"],
    ["summary"],
    ["report", "leaderboard"],
    ["cli"],
]
LAYER = {name: level for level, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The package modules ``path`` imports (resolved to modules, not names in them)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.split(".")[0] == "structure_bench":
            targets = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in known]
            found.update(targets or ([node.module] if node.module in known else []))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return found - {module_name(path)}


def graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: imports_of(path, set(paths)) for name, path in paths.items()}


def top(module: str) -> str:
    """The layer key of a module: its first component under the package."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(edges.get(node, ())):
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
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

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return found


def upward(edges: dict[str, set[str]]) -> list[str]:
    """Each import of a higher layer (the package's own __init__, the public facade, is exempt)."""
    lines = []
    for source, targets in sorted(edges.items()):
        if source == "structure_bench":
            continue
        for target in sorted(targets):
            if target == "structure_bench":
                lines.append(f"{source} imports the package facade structure_bench (import the module itself)")
            elif LAYER[top(target)] > LAYER[top(source)]:
                lines.append(f"{source} (layer {LAYER[top(source)]}) imports {target} (layer {LAYER[top(target)]})")
    return lines


def test_every_module_has_a_layer() -> None:
    missing = sorted({top(m) for m in graph() if m != "structure_bench" and top(m) not in LAYER})
    assert not missing, f"add these modules to LAYERS: {missing}"


def test_the_import_graph_has_no_cycles() -> None:
    assert cycles(graph()) == []


def test_no_module_imports_a_higher_layer() -> None:
    assert upward(graph()) == []


def test_the_checker_sees_a_cycle_and_an_upward_import() -> None:
    edges = {"structure_bench.task": {"structure_bench.cache"}, "structure_bench.cache": {"structure_bench.task"},
             "structure_bench.metrics": {"structure_bench.summary"}}
    assert cycles(edges) == [["structure_bench.cache", "structure_bench.task"]]
    assert upward(edges) == [f"structure_bench.metrics (layer 2) imports structure_bench.summary (layer {LAYER['summary']})"]


if __name__ == "__main__":
    edges = graph()
    problems = upward(edges) + [" -> ".join(c) + " (cycle)" for c in cycles(edges)]
    print("\n".join(problems) or "no cycles, no upward imports")
    sys.exit(1 if problems else 0)
