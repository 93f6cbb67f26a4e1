"""geo.partition has no import cycle, and no import hidden inside a function to dodge one (issue 11)."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "geo" / "partition"


def _module_name(path: Path, package: Path, prefix: str) -> str:
    return prefix if path.name == "__init__.py" else f"{prefix}.{path.stem}"


def _imported(node: ast.Import | ast.ImportFrom, prefix: str, modules: set[str]) -> set[str]:
    """Modules of the package a statement imports (``from pkg import mod`` names a module too)."""
    if isinstance(node, ast.Import):
        return {a.name for a in node.names if a.name in modules}
    if node.module is None or not (node.module == prefix or node.module.startswith(prefix + ".")):
        return set()
    named = {f"{node.module}.{a.name}" for a in node.names} & modules
    return named | ({node.module} & modules)


def import_graph(package: Path, prefix: str) -> dict[str, set[str]]:
    """Module → the modules of the same package it imports, at any depth of its code."""
    files = sorted(package.glob("*.py"))
    modules = {_module_name(f, package, prefix) for f in files}
    graph: dict[str, set[str]] = {}
    for f in files:
        name = _module_name(f, package, prefix)
        graph[name] = set()
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                graph[name] |= _imported(node, prefix, modules) - {name}
    return graph


def nested_imports(package: Path) -> list[str]:
    """``file:line`` of every import inside a function or class body."""
    found = []
    for f in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                found += [f"{f.name}:{n.lineno}" for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom)]
    return found


def test_partition_package_has_no_import_cycle() -> None:
    graph = import_graph(PACKAGE, "geo.partition")
    assert {"geo.partition.engine", "geo.partition.pipeline", "geo.partition.shards"} <= set(graph)
    order = list(graphlib.TopologicalSorter(graph).static_order())  # raises CycleError on a cycle
    assert order.index("geo.partition.result") < order.index("geo.partition.pipeline") \
        < order.index("geo.partition.shards") < order.index("geo.partition.engine")


def test_partition_package_imports_at_module_level_only() -> None:
    assert nested_imports(PACKAGE) == []


def test_the_checks_find_a_cycle_hidden_in_a_function(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "engine.py").write_text("from pkg.assemble import assemble\n")
    (pkg / "assemble.py").write_text("def assemble():\n    from pkg.engine import Result\n    return Result\n")
    graph = import_graph(pkg, "pkg")
    assert graph["pkg.engine"] == {"pkg.assemble"} and graph["pkg.assemble"] == {"pkg.engine"}
    with pytest.raises(graphlib.CycleError, match="cycle"):
        list(graphlib.TopologicalSorter(graph).static_order())
    assert nested_imports(pkg) == ["assemble.py:2"]
