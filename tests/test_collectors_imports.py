"""collectors/*.py import each other without a loop: read from the source (ast), so an
import under TYPE_CHECKING or inside a function counts as much as one at the top."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

COLLECTORS = Path(__file__).resolve().parent.parent / "collectors"
PACKAGE = "pue_monitor.collectors"


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The sibling modules (of ``modules``) that a collectors file imports, anywhere in it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module or ""
            else:  # relative: level 1 is collectors itself, deeper is outside it
                base = PACKAGE if node.level == 1 else ""
                base = f"{base}.{node.module}" if base and node.module else base
            # `from pue_monitor.collectors import x` names module x; `from ...x import y`, x.
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name.startswith(PACKAGE + "."):
                module = name[len(PACKAGE) + 1:].split(".")[0]
                if module in modules:
                    found.add(module)
    return found


def import_graph() -> dict[str, set[str]]:
    files = {p.stem: p for p in COLLECTORS.glob("*.py")}
    return {name: imported_modules(path, set(files)) - {name} for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as [a, b, ..., a], or [] if the graph has none (depth-first)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


# The cycle finder itself, on hand-made graphs: (graph, the cycle it must report).
GRAPHS = [
    ({"a": {"b"}, "b": set()}, []),
    ({"a": {"b"}, "b": {"a"}}, ["a", "b", "a"]),
    ({"a": {"b", "c"}, "b": {"c"}, "c": set()}, []),  # a diamond is not a loop
    ({"a": {"b"}, "b": {"c"}, "c": {"b"}}, ["b", "c", "b"]),
]


@pytest.mark.parametrize(("graph", "cycle"), GRAPHS)
def test_find_cycle(graph, cycle):
    assert find_cycle(graph) == cycle


def test_the_walker_sees_every_kind_of_import(tmp_path):
    source = tmp_path / "x.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "from pue_monitor.collectors.a import thing\n"
        "from pue_monitor.collectors import b\n"
        "from . import c\n"
        "from .d import other\n"
        "import pue_monitor.collectors.e\n"
        "if TYPE_CHECKING:\n    from pue_monitor.collectors.f import T\n"
        "def late():\n    from pue_monitor.collectors.g import h\n"
        "from pue_monitor.config.model import Device\n", encoding="utf-8")
    assert imported_modules(source, set("abcdefgz")) == set("abcdefg")


def test_collectors_have_no_import_cycle():
    graph = import_graph()
    assert {"modbus_plan", "modbus_block", "poller", "snmp_plan"} <= set(graph)
    assert find_cycle(graph) == []
