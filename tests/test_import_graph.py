"""The house's import graph, read from the source with ``ast``: no loops, and no floor imports upwards.

Every ``import`` counts, those inside functions too: an import deferred to break a loop is still
a loop. ``storage`` and ``ocr`` sit below ``gateway``; from it they may use only the ground floor
(``gateway.errors``, ``gateway.clock``), which imports nothing of the project.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gateway", "ocr", "storage", "dialplan")
GROUND_FLOOR = {"gateway", "gateway.errors", "gateway.clock"}
LOWER_FLOORS = ("storage", "ocr")


def module_files() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imported(tree: ast.AST, known: set[str]) -> set[str]:
    """The project's modules a module imports (``from a import b`` names ``a.b`` when it is a module)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in known}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = {f"{node.module}.{alias.name}" for alias in node.names}
            found |= ({node.module} | names) & known
    return found


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    known = set(files)
    return {name: imported(ast.parse(path.read_text(encoding="utf-8")), known) - {name}
            for name, path in files.items()}


def test_the_graph_is_read_from_the_tree() -> None:
    graph = import_graph()
    assert "gateway.shifts.calendar" in graph["gateway.config"]  # the deferred import counts too
    assert "gateway.outbox" in graph["gateway.report.mail"]
    assert "gateway.paging.mailer" not in graph and "gateway.paging.calendar" not in graph


def test_a_loop_would_be_found() -> None:
    graph = import_graph()
    graph["gateway.shifts.config"] = graph["gateway.shifts.config"] | {"gateway.config"}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        assert {"gateway.config", "gateway.shifts.config"} <= set(exc.args[1])
    else:
        raise AssertionError("the loop config → shifts.config → config was not found")


def test_no_import_loop() -> None:
    try:
        graphlib.TopologicalSorter(import_graph()).prepare()
    except graphlib.CycleError as exc:
        raise AssertionError(f"import loop: {' → '.join(exc.args[1])}") from None


def test_lower_floors_do_not_import_upwards() -> None:
    upward = {f"{name} → {target}"
              for name, targets in import_graph().items() if name.startswith(LOWER_FLOORS)
              for target in targets if target.startswith("gateway") and target not in GROUND_FLOOR}
    assert upward == set()


def test_the_ground_floor_imports_nothing_of_the_project() -> None:
    graph = import_graph()
    assert {name: graph[name] for name in GROUND_FLOOR if graph[name]} == {}
