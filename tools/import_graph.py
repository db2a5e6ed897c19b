"""The import graph of vecbench's own modules, read with ``ast`` (nothing is imported).

Each import of a vecbench module is one edge, labelled by where it sits: ``module`` (run at
import time, including under ``if``/``try`` at module level), ``local`` (inside a function or
method body: run when called) or ``typing`` (under ``if TYPE_CHECKING:``, never run). Cycles are
the strongly connected components (more than one module) of the graph of module-level and local
edges together: a local import hides a cycle from the interpreter, not from the design.

    python tools/import_graph.py            # summary: cycles, local imports (which close one)
    python tools/import_graph.py --edges    # also every local import, one per line
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "vecbench"


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: str  # "module", "local" or "typing"
    line: int


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted name -> file of every module under vecbench/ (packages by their __init__)."""
    found = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The longest known module that ``name`` is or lies in (None outside vecbench)."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_package: bool, known: dict[str, Path]):
    """(target module, kind, line) of every vecbench import in one module."""
    def visit(node, kind):
        for child in ast.iter_child_nodes(node):
            child_kind = kind
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                child_kind = "local" if kind == "module" else kind
            elif isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.body:
                    yield from visit_one(sub, "typing")
                for sub in child.orelse:
                    yield from visit_one(sub, kind)
                continue
            yield from visit_one(child, child_kind, recurse=False)
            yield from visit(child, child_kind)

    def visit_one(child, kind, recurse=True):
        if isinstance(child, ast.Import):
            for alias in child.names:
                target = _resolve(alias.name, known)
                if target:
                    yield target, kind, child.lineno
        elif isinstance(child, ast.ImportFrom):
            base = child.module or ""
            if child.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[:len(anchor) - (child.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in child.names:
                target = _resolve(f"{base}.{alias.name}", known) if base else None
                target = target if target and target != base.rpartition(".")[0] else None
                target = target or _resolve(base, known)
                if target:
                    yield target, kind, child.lineno
        if recurse:
            yield from visit(child, kind)

    yield from visit(tree, "module")


def edges(root: Path = ROOT) -> list[Edge]:
    known = modules(root)
    found, seen = [], set()
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for target, kind, line in _imports(tree, name, path.name == "__init__.py", known):
            edge = Edge(name, target, kind, line)
            if target != name and edge not in seen:
                seen.add(edge)
                found.append(edge)
    return found


def cycles(found: list[Edge], kinds=("module", "local")) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    graph: dict[str, set[str]] = {}
    for edge in found:
        if edge.kind in kinds:
            graph.setdefault(edge.source, set()).add(edge.target)
            graph.setdefault(edge.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))

    def strongconnect(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                strongconnect(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            strongconnect(node)
    return sorted(components, key=lambda c: (-len(c), c))


def summary(root: Path = ROOT, show_edges: bool = False) -> str:
    found = edges(root)
    components = cycles(found)
    member = {name: i for i, comp in enumerate(components) for name in comp}
    local = [e for e in found if e.kind == "local"]
    closing = [e for e in local if e.source in member and member.get(e.target) == member[e.source]]
    statements = {(e.source, e.line) for e in local}
    closing_statements = {(e.source, e.line) for e in closing}
    lines = [f"modules: {len(modules(root))}",
             f"edges: module-level {sum(e.kind == 'module' for e in found)}, "
             f"function-local {len(local)}, TYPE_CHECKING {sum(e.kind == 'typing' for e in found)}",
             f"import cycles (SCCs over module-level + local imports): {len(components)}"]
    for comp in components:
        short = [name.removeprefix(PACKAGE + ".") for name in comp]
        lines.append(f"  ({len(comp)}) " + ", ".join(short))
    lines.append(f"module-level-only cycles: {len(cycles(found, kinds=('module',)))}")
    lines.append(f"function-local import statements of vecbench modules: {len(statements)} "
                 f"({len(closing_statements)} close a cycle, "
                 f"{len(statements - closing_statements)} do not)")
    if show_edges:
        for e in sorted(local, key=lambda e: (e.source, e.line)):
            flag = "cycle" if e in closing else "     "
            lines.append(f"  {flag} {e.source}:{e.line} -> {e.target}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(summary(show_edges="--edges" in sys.argv))
