"""Architecture guard: no import cycles, imports only along the layer table, short modules.

The import graph is read from the source with ``ast`` (see ``tests/support/import_graph.py``):
every import statement counts, at module top or inside a function, method or class, so a
cycle cannot hide behind a function-level import.

Decisions worth knowing when a test here fails:

- ``if TYPE_CHECKING:`` imports are left out of the cycle check (they never run, and they are
  the standard way to name a type from a layer that imports you) but they *are* checked
  against the layer table: a type annotation that names a higher layer still couples a
  lower layer to it.
- The layer table ``ALLOWED`` maps each component (a package or module prefix of Orca) to the
  components it may import. A module belongs to the longest component that is a prefix of
  it; ``orca_flows`` itself only covers ``orca_flows/__init__.py``. A module that belongs to
  no component fails ``test_every_module_is_in_the_layer_table``: a new package is added to
  the table (and to ``docs/architecture.md``) on purpose, not by accident.
- Every component may import itself. Nothing outside ``ui`` may import ``ui``.
  Third-party and standard-library imports are ignored.
- A module under ``orca_flows``, ``orca_blocks`` or ``ui`` longer than 400 lines must say why
  in its module docstring, with a sentence containing ``over 400 lines because`` followed by
  the reason, e.g. "It is over 400 lines because the template is one document.".

Each failure lists every violation at once, sorted, with ``file:line`` of each import.
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Iterable
from pathlib import Path

import pytest

from tests.support.import_graph import (
    Import,
    ImportGraph,
    build_import_graph,
    find_cycles,
    format_cycle,
)

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("orca_flows", "orca_blocks", "orca_emulator", "ui", "deployments")

# Components, lowest layer first.
SETTINGS = "orca_flows.settings"
ERRORS = "orca_flows.errors"
LOGS = "orca_flows.logs"
DOMAIN = "orca_flows.domain"
DB = "orca_flows.db"
AWS = "orca_flows.aws"
SANDBOX_RECORD = "orca_flows.sandbox_record"
BLOCKS = "orca_blocks"
PREFECT_ADAPTER = "orca_flows.prefect_adapter"
RUNNERS = "orca_flows.runners"
SERVICES = "orca_flows.services"
WORKER = "orca_flows.worker"
FLOWS = "orca_flows.flows"
LOCAL = "orca_flows.local"
CLI = "orca_flows.cli"
UI = "ui"
DEPLOYMENTS = "deployments"
EXAMPLES = "orca_flows.examples"
# Prefect tasks for users' own flows (submit, wait, run a pipeline): a top layer, like the CLI.
TASKS = "orca_flows.tasks"
ROOT_PACKAGE = "orca_flows"
# The sandbox's AWS emulator: moto and its SSM agent; it knows nothing of Orca.
EMULATOR = "orca_emulator"

_BASE = frozenset({SETTINGS, ERRORS, LOGS})

# What may import what (besides itself). Keep in step with docs/architecture.md.
ALLOWED: dict[str, frozenset[str]] = {
    SETTINGS: frozenset({ERRORS}),
    ERRORS: frozenset(),
    LOGS: frozenset(),
    DOMAIN: frozenset({ERRORS}),
    DB: frozenset({DOMAIN}) | _BASE,
    AWS: frozenset({DOMAIN}) | _BASE,
    SANDBOX_RECORD: frozenset({AWS, DOMAIN}) | _BASE,
    BLOCKS: frozenset({AWS, DOMAIN}) | _BASE,
    PREFECT_ADAPTER: frozenset({BLOCKS, DB, AWS, SANDBOX_RECORD, DOMAIN}) | _BASE,
    RUNNERS: frozenset({PREFECT_ADAPTER, BLOCKS, DB, AWS, DOMAIN}) | _BASE,
    SERVICES: frozenset({RUNNERS, PREFECT_ADAPTER, BLOCKS, DB, AWS, SANDBOX_RECORD, DOMAIN})
    | _BASE,
    WORKER: frozenset({SERVICES, RUNNERS, PREFECT_ADAPTER, BLOCKS, DB, AWS, DOMAIN}) | _BASE,
    FLOWS: frozenset({SERVICES, PREFECT_ADAPTER, DOMAIN}) | _BASE,
    LOCAL: frozenset(
        {
            WORKER,
            SERVICES,
            FLOWS,
            PREFECT_ADAPTER,
            RUNNERS,
            BLOCKS,
            DB,
            AWS,
            SANDBOX_RECORD,
            DOMAIN,
            EXAMPLES,  # the demo uploads the example pipelines
            EMULATOR,  # starts it; the fleet's on-disk layout (agent flags)
        }
    )
    | _BASE,
    CLI: frozenset({LOCAL, WORKER, FLOWS, SERVICES, DOMAIN}) | _BASE,
    UI: frozenset({SERVICES, DOMAIN}) | _BASE,
    DEPLOYMENTS: frozenset({FLOWS, SETTINGS, LOGS}),
    TASKS: frozenset({SERVICES, PREFECT_ADAPTER, DOMAIN}) | _BASE,
    EXAMPLES: frozenset({TASKS}),  # the example flows are users' flows
    ROOT_PACKAGE: frozenset(),
    EMULATOR: frozenset(),
}

# Components that cover exactly one module, not the modules below it.
EXACT_COMPONENTS = frozenset({ROOT_PACKAGE})

LENGTH_CHECKED = ("orca_flows", "orca_blocks", "orca_emulator", "ui")
MAX_MODULE_LINES = 400
LONG_MODULE_REASON = re.compile(r"over 400 lines because\s+\w", re.IGNORECASE)


@pytest.fixture(scope="module")
def graph() -> ImportGraph:
    """Orca's import graph, built once for this module's tests."""
    return build_import_graph(ROOT, PACKAGES)


def component_of(module: str) -> str | None:
    """The component ``module`` belongs to (longest matching prefix), or None if uncovered."""
    matches = [
        component
        for component in ALLOWED
        if module == component
        or (component not in EXACT_COMPONENTS and module.startswith(component + "."))
    ]
    return max(matches, key=len, default=None)


def direction_violations(imports: Iterable[Import]) -> list[str]:
    """One ``file:line: a (component) -> b (component)`` line per import the table forbids.

    Imports whose source or target belongs to no component are left to the coverage test.
    """
    found: list[str] = []
    for item in sorted(imports):
        source, target = component_of(item.source), component_of(item.target)
        if source is None or target is None or source == target:
            continue
        if target not in ALLOWED[source]:
            note = "  [TYPE_CHECKING]" if item.type_checking else ""
            found.append(
                f"{item.location}: {item.source} ({source}) -> {item.target} ({target}){note}"
            )
    return found


def _fail_if_any(title: str, lines: list[str], hint: str) -> None:
    """Fail with every line at once; no traceback, the list is the whole story."""
    if lines:
        pytest.fail(f"{title} ({len(lines)}):\n" + "\n".join(lines) + f"\n\n{hint}", pytrace=False)


def test_every_module_is_in_the_layer_table(graph: ImportGraph) -> None:
    uncovered = sorted(
        f"{path.as_posix()}: {module}"
        for module, path in graph.modules.items()
        if component_of(module) is None
    )
    _fail_if_any(
        "Modules that belong to no component of the layer table",
        uncovered,
        "Add the package to ALLOWED in tests/test_architecture.py and to docs/architecture.md.",
    )


def test_every_orca_import_names_an_existing_module(graph: ImportGraph) -> None:
    # A function-level import of a moved module only fails when that function runs.
    missing = [f"{item.location}: {item.source} imports {item.name}" for item in graph.unresolved]
    _fail_if_any(
        "Imports of Orca modules that do not exist", missing, "Point them at the new module."
    )


def test_no_import_cycles(graph: ImportGraph) -> None:
    cycles = find_cycles(item for item in graph.imports if not item.type_checking)
    _fail_if_any(
        "Import cycles, counting function-level imports",
        [format_cycle(cycle) for cycle in cycles],
        "Break each cycle: move the shared piece down a layer, or invert the call.",
    )


def test_imports_follow_the_layer_table(graph: ImportGraph) -> None:
    violations = direction_violations(graph.imports)
    _fail_if_any(
        "Imports against the layer table (file:line: from -> to)",
        violations,
        "See ALLOWED in tests/test_architecture.py for what each component may import.",
    )


def test_no_module_over_400_lines_without_a_reason(graph: ImportGraph) -> None:
    too_long: list[str] = []
    for module, path in sorted(graph.modules.items()):
        if module.split(".", 1)[0] not in LENGTH_CHECKED:
            continue
        text = (ROOT / path).read_text(encoding="utf-8")
        lines = len(text.splitlines())
        docstring = ast.get_docstring(ast.parse(text)) or ""
        if lines > MAX_MODULE_LINES and not LONG_MODULE_REASON.search(docstring):
            too_long.append(f"{path.as_posix()}: {lines} lines")
    _fail_if_any(
        f"Modules over {MAX_MODULE_LINES} lines with no reason in their docstring",
        too_long,
        "Split the module by concept, or add to its docstring a sentence "
        "'It is over 400 lines because <reason>.'",
    )


def test_every_module_says_what_it_owns(graph: ImportGraph) -> None:
    missing = [
        path.as_posix()
        for _, path in sorted(graph.modules.items())
        if not (
            ast.get_docstring(ast.parse((ROOT / path).read_text(encoding="utf-8"))) or ""
        ).strip()
    ]
    _fail_if_any(
        "Modules without an opening docstring",
        missing,
        "Open each module with a one-line docstring saying what it owns.",
    )


# Above db/, code may name a Session (for types) and catch SQLAlchemy's errors, never
# build a statement or run one: all SQL lives in orca_flows.db.repositories.
_SQL_BUILDERS = frozenset({"select", "update", "delete", "insert", "func", "text", "or_", "and_"})
_SESSION_SQL = frozenset({"execute", "scalar", "scalars", "query", "get", "delete", "add"})


def test_no_sql_outside_the_data_layer(graph: ImportGraph) -> None:
    found: list[str] = []
    for module, path in sorted(graph.modules.items()):
        if module.startswith(("orca_flows.db", "orca_flows.local")) or not module.startswith(
            ("orca_flows", "ui", "deployments")
        ):
            continue
        tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
                found += [
                    f"{path.as_posix()}:{node.lineno} imports sqlalchemy's {alias.name}"
                    for alias in node.names
                    if alias.name in _SQL_BUILDERS
                ]
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "session"
                and node.func.attr in _SESSION_SQL
            ):
                found.append(f"{path.as_posix()}:{node.lineno} calls session.{node.func.attr}")
    _fail_if_any(
        "SQL outside orca_flows.db",
        found,
        "Put the statement in a repository function (orca_flows/db/repositories/) and call it.",
    )


# The checker itself, on synthetic trees, so it is proven able to fail.


def _write_tree(root: Path, files: dict[str, str]) -> None:
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")


def test_checker_finds_a_cycle_through_a_function_level_import(tmp_path: Path) -> None:
    _write_tree(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "import pkg.b\n",
            "pkg/b.py": """\
                def late():
                    from pkg import a
                    return a
            """,
            "pkg/c.py": """\
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    import pkg.a
                import requests
            """,
        },
    )
    graph = build_import_graph(tmp_path, ["pkg"])

    cycles = find_cycles(item for item in graph.imports if not item.type_checking)

    assert [format_cycle(cycle).splitlines()[0] for cycle in cycles] == ["pkg.a -> pkg.b -> pkg.a"]
    assert [item.location for item in cycles[0]] == ["pkg/a.py:1", "pkg/b.py:2"]
    # The TYPE_CHECKING import is in the graph (for the direction check), flagged.
    assert [item.target for item in graph.imports if item.type_checking] == ["pkg.a"]


def test_checker_resolves_submodules_and_relative_imports(tmp_path: Path) -> None:
    _write_tree(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.sub import helper\n",
            "pkg/sub/__init__.py": "",
            "pkg/sub/helper.py": "from . import sibling\nfrom .. import VERSION\n",
            "pkg/sub/sibling.py": "from pkg.sub import not_a_module\nimport pkg.gone\n",
        },
    )
    graph = build_import_graph(tmp_path, ["pkg"])

    assert {(item.source, item.target) for item in graph.imports} == {
        ("pkg", "pkg.sub.helper"),
        ("pkg.sub.helper", "pkg.sub.sibling"),
        ("pkg.sub.helper", "pkg"),
        ("pkg.sub.sibling", "pkg.sub"),
    }
    assert [item.name for item in graph.unresolved] == ["pkg.gone"]
    # pkg -> pkg.sub.helper -> pkg: a package __init__ is a node like any module.
    assert len(find_cycles(graph.imports)) == 1


def test_direction_check_reports_a_lower_layer_importing_a_higher_one() -> None:
    imports = [
        Import("orca_flows/domain/x.py", 3, "orca_flows.domain.x", "orca_flows.db.models"),
        Import("orca_flows/services/y.py", 9, "orca_flows.services.y", "ui.session", True),
        Import("orca_flows/db/z.py", 1, "orca_flows.db.z", "orca_flows.domain.states"),
    ]

    assert direction_violations(imports) == [
        "orca_flows/domain/x.py:3: orca_flows.domain.x (orca_flows.domain)"
        " -> orca_flows.db.models (orca_flows.db)",
        "orca_flows/services/y.py:9: orca_flows.services.y (orca_flows.services)"
        " -> ui.session (ui)  [TYPE_CHECKING]",
    ]
    assert component_of("orca_flows") == ROOT_PACKAGE
    assert component_of("orca_flows.newthing") is None
