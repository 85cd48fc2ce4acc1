"""The packages of ``app`` import each other without cycles, so each can be read, tested and
changed from the bottom up (``app.lib`` and ``app.schema`` at the bottom, the server on top).

The graph is read from the source (every ``import``, also inside functions), so a lazy import
cannot hide a cycle. ``python tests/unit/test_import_graph.py`` prints the graph."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"
Graph = dict[str, set[str]]


def package_of(module: str) -> str | None:
    """``app.trust.assess`` -> ``trust``; modules directly under ``app`` count as their own name."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "app" else None


def import_graph() -> Graph:
    graph: Graph = defaultdict(set)
    for path in APP.rglob("*.py"):
        relative = path.relative_to(APP.parent).with_suffix("")
        module = ".".join(relative.parts).removesuffix(".__init__")
        source = package_of(module)
        if source is None or "migrations" in relative.parts:
            continue
        graph[source]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                target = package_of(name)
                if target is not None and target != source:
                    graph[source].add(target)
    return dict(graph)


def cycles(graph: Graph) -> list[list[str]]:
    """Strongly connected components with more than one package (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_is_read_from_every_package() -> None:
    graph = import_graph()
    assert {"lib", "server", "extraction", "jobs", "registry"} <= set(graph)
    assert "lib" in graph["server"]


def test_no_package_import_cycle() -> None:
    assert cycles(import_graph()) == []


if __name__ == "__main__":
    for package, targets in sorted(import_graph().items()):
        print(f"{package} -> {', '.join(sorted(targets)) or '-'}")
    print("cycles:", cycles(import_graph()) or "none")
