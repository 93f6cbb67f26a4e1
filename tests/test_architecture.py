"""House rules a machine can check: one-way dependencies and the documented settings."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from geo.settings import SETTINGS

REPO = Path(__file__).resolve().parents[1]

FORBIDDEN = {
    "geo": {"flask", "sqlalchemy", "folium", "api", "webmap", "alembic", "flask_login"},
    "webmap": {"api", "sqlalchemy", "flask_login"},
}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_dependencies_point_one_way(package: str) -> None:
    bad = [
        f"{path.relative_to(REPO)}:{line} imports {name}"
        for path in sorted((REPO / package).rglob("*.py"))
        if "node_modules" not in path.parts
        for line, name in _imports(path)
        if name.split(".")[0] in FORBIDDEN[package]
    ]
    assert bad == []


def test_every_setting_is_documented_in_readme() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    missing = [s.name for s in SETTINGS if f"`{s.name}`" not in readme]
    assert missing == []


def test_test_module_basenames_are_unique() -> None:
    """pytest's default import mode cannot collect two test modules with the same name."""
    names = [p.name for p in (REPO / "tests").rglob("test_*.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []
