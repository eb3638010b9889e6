"""Import graph of Orca's packages, read from source with `ast` (nothing is imported).

Rules of the graph, chosen so that it shows what actually runs:

- A node is a module file; a package's ``__init__.py`` is the node named after the package.
- Every ``import`` / ``from ... import`` statement counts, wherever it is written: module top,
  function or method bodies, class bodies, ``try`` blocks and ``if TYPE_CHECKING:`` blocks
  (the last are flagged with ``type_checking=True`` so a check may leave them out).
- ``from pkg import name`` is an edge to the module ``pkg.name`` when that module exists,
  otherwise to ``pkg`` itself (``name`` is then an attribute of ``pkg/__init__.py``).
  ``import a.b.c`` is an edge to ``a.b.c``. Relative imports are resolved against the module.
- The parent packages that Python imports on the way (``a`` and ``a.b`` for ``import a.b.c``)
  are *not* edges: otherwise every ``__init__`` that re-exports its submodules would form a
  cycle with each of them, although that pattern is safe.
- Imports of packages outside the analysed set (third-party, stdlib) are ignored. Imports of
  an analysed package that name no module in the tree are collected as ``unresolved``.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

__all__ = [
    "Import",
    "ImportGraph",
    "Unresolved",
    "build_import_graph",
    "find_cycles",
    "find_modules",
    "format_cycle",
]


@dataclass(frozen=True, order=True)
class Import:
    """One import statement (one imported name) from one Orca module to another."""

    path: str  # file of the importing module, posix, relative to the analysed root
    line: int
    source: str
    target: str
    type_checking: bool = False

    @property
    def location(self) -> str:
        """``path:line``, the form editors and terminals turn into a link."""
        return f"{self.path}:{self.line}"


@dataclass(frozen=True, order=True)
class Unresolved:
    """An import of an analysed package that matches no module file in the tree."""

    path: str
    line: int
    source: str
    name: str

    @property
    def location(self) -> str:
        """``path:line`` of the import statement."""
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class ImportGraph:
    """Every module of the analysed packages and every import between them."""

    modules: dict[str, Path]  # module name -> file, relative to the root
    imports: tuple[Import, ...]
    unresolved: tuple[Unresolved, ...]


def find_modules(root: Path, packages: Sequence[str]) -> dict[str, Path]:
    """Map each module name under ``packages`` to its file (relative to ``root``).

    Folders without ``__init__.py`` (namespace packages such as Streamlit's page folder)
    are walked too; their files are named as if the folder were a package.
    """
    modules: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root)
            if "__pycache__" in relative.parts:
                continue
            parts = list(relative.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = relative
    return modules


def build_import_graph(root: Path, packages: Sequence[str]) -> ImportGraph:
    """Parse every module under ``packages`` and collect the imports between them."""
    modules = find_modules(root, packages)
    imports: list[Import] = []
    unresolved: list[Unresolved] = []
    for name, relative in modules.items():
        tree = ast.parse((root / relative).read_text(encoding="utf-8"), filename=str(relative))
        collector = _Collector(name, relative, modules, frozenset(packages))
        collector.visit(tree)
        imports.extend(collector.imports)
        unresolved.extend(collector.unresolved)
    return ImportGraph(modules, tuple(sorted(set(imports))), tuple(sorted(set(unresolved))))


class _Collector(ast.NodeVisitor):
    """Collects the imports of one module, remembering whether each is TYPE_CHECKING-only."""

    def __init__(
        self, module: str, path: Path, modules: dict[str, Path], packages: frozenset[str]
    ) -> None:
        self.module = module
        self.path = path
        self.modules = modules
        self.packages = packages
        self.is_package = path.name == "__init__.py"
        self.imports: list[Import] = []
        self.unresolved: list[Unresolved] = []
        self._type_checking = 0

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            self._type_checking += 1
            for statement in node.body:
                self.visit(statement)
            self._type_checking -= 1
            # The else branch of `if TYPE_CHECKING:` is what runs.
            for statement in node.orelse:
                self.visit(statement)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if self._is_analysed(alias.name):
                self._add(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = self._absolute(node.module, node.level)
        if base is None or not self._is_analysed(base):
            return
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            self._add(node, submodule if submodule in self.modules else base)

    def _is_analysed(self, name: str) -> bool:
        return name.split(".", 1)[0] in self.packages

    def _absolute(self, module: str | None, level: int) -> str | None:
        """Absolute name of a (possibly relative) ``from`` target; None if it leaves the tree."""
        if level == 0:
            return module
        package = self.module.split(".") if self.is_package else self.module.split(".")[:-1]
        if level - 1 > len(package) - 1:
            return None
        base = package[: len(package) - (level - 1)]
        return ".".join([*base, module] if module else base)

    def _add(self, node: ast.stmt, target: str) -> None:
        path = self.path.as_posix()
        if target not in self.modules:
            self.unresolved.append(Unresolved(path, node.lineno, self.module, target))
            return
        type_checking = self._type_checking > 0
        self.imports.append(Import(path, node.lineno, self.module, target, type_checking))


def _is_type_checking(test: ast.expr) -> bool:
    """True for ``TYPE_CHECKING`` and ``typing.TYPE_CHECKING`` (any module prefix)."""
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def find_cycles(imports: Iterable[Import]) -> list[tuple[Import, ...]]:
    """Every import cycle needed to show each edge that lies on a cycle, shortest first.

    The strongly connected components are found first; then, for each edge ``u -> v``
    inside a component, the shortest way back ``v -> ... -> u`` closes one cycle. So every
    edge that takes part in a cycle appears in at least one reported cycle, and breaking
    all reported cycles is necessary to make the graph acyclic. A module importing itself
    is not reported. Each cycle starts at its smallest module name, for a stable output.
    """
    first: dict[tuple[str, str], Import] = {}
    for item in sorted(imports):
        if item.source != item.target:
            first.setdefault((item.source, item.target), item)
    graph: dict[str, list[str]] = {}
    for source, target in sorted(first):
        graph.setdefault(source, []).append(target)
        graph.setdefault(target, [])
    cycles: dict[tuple[str, ...], tuple[Import, ...]] = {}
    for component in _strongly_connected(graph):
        if len(component) < 2:
            continue
        for source in sorted(component):
            for target in graph[source]:
                if target not in component:
                    continue
                back = _shortest_path(graph, target, source, component)
                nodes = [source, *back]
                start = nodes.index(min(nodes))
                nodes = nodes[start:] + nodes[:start]
                key = tuple(nodes)
                ring = [*nodes, nodes[0]]
                cycles[key] = tuple(first[(a, b)] for a, b in pairwise(ring))
    return sorted(cycles.values(), key=lambda cycle: (len(cycle), [i.source for i in cycle]))


def format_cycle(cycle: Sequence[Import]) -> str:
    """``a -> b -> a``, then one indented line per import with where it is written."""
    chain = " -> ".join([*(item.source for item in cycle), cycle[0].source])
    lines = [f"    {item.source} -> {item.target}  ({item.location})" for item in cycle]
    return "\n".join([chain, *lines])


def _strongly_connected(graph: dict[str, list[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative so a deep graph cannot hit the recursion limit."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            successors = graph[node]
            if child < len(successors):
                work.append((node, child + 1))
                successor = successors[child]
                if successor not in index:
                    work.append((successor, 0))
                elif successor in on_stack:
                    low[node] = min(low[node], index[successor])
                continue
            if low[node] == index[node]:
                component: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                components.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return components


def _shortest_path(
    graph: dict[str, list[str]], start: str, goal: str, within: set[str]
) -> list[str]:
    """Nodes from ``start`` up to, not including, ``goal`` (breadth first, inside ``within``)."""
    previous: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            break
        for successor in graph[node]:
            if successor in within and successor not in previous:
                previous[successor] = node
                queue.append(successor)
    path: list[str] = []
    step: str | None = previous[goal]
    while step is not None:
        path.append(step)
        step = previous[step]
    return path[::-1]
