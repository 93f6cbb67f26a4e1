"""docs/ARCHITECTURE.md names every module of geo/, webmap/ and api/, and nothing that does not exist.

A module is named by its path (`` `api/plans/store.py` ``), or by its file name in the row
of its package (`` `api/plans/` | … `store.py` … ``). Private modules (``_name.py``,
``__main__.py``) are covered by their package's row; ``api/migrations/versions/`` by
``api/migrations/``.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "ARCHITECTURE.md"
PACKAGES = ("geo", "webmap", "api")
#: A path of ours in backticks: `geo/errors.py`, `api/register/`, `webmap/templates/boards/board.html`.
PATH = re.compile(r"`((?:geo|webmap|api)/[\w./-]*)`")
#: A bare module file name in backticks: `store.py`.
BARE = re.compile(r"`(\w+\.py)`")


def _modules() -> set[str]:
    """Every public module file of the three packages, as a repository path."""
    out = set()
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            rel = path.relative_to(REPO)
            parts = rel.parts
            if "node_modules" in parts or "static" in parts or parts[:3] == ("api", "migrations", "versions"):
                continue
            if path.name.startswith("_"):
                continue  # __init__, __main__, private helpers: the package's row covers them
            out.add(rel.as_posix())
    return out


def _rows() -> list[tuple[list[str], str]]:
    """(paths in the first cell, whole line) of every table row and bullet of the doc."""
    rows = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        first = line.split("|")[1] if line.startswith("|") else line
        rows.append((PATH.findall(first), line))
    return rows


def _named() -> tuple[set[str], set[str]]:
    """(modules the doc names, paths the doc names that do not exist)."""
    named, missing = set(), set()
    for heads, line in _rows():
        for path in PATH.findall(line):
            if not (REPO / path.rstrip("/")).exists():
                missing.add(path)
            named.add(path)
        for head in (h for h in heads if h.endswith("/")):
            for name in BARE.findall(line):
                path = head + name
                (named.add(path) if (REPO / path).exists() else missing.add(f"{path} (row {head})"))
    return named, missing


def test_architecture_names_every_module() -> None:
    named, _missing = _named()
    unnamed = sorted(_modules() - named)
    assert not unnamed, f"docs/ARCHITECTURE.md does not name: {unnamed}; add each to its package's row"


def test_architecture_names_nothing_that_does_not_exist() -> None:
    _named_paths, missing = _named()
    assert not missing, f"docs/ARCHITECTURE.md names paths that do not exist: {sorted(missing)}"


def test_the_walk_finds_modules_and_rows_name_them_by_file_name() -> None:
    """The walk finds real modules, and a package row's bare file names resolve inside that package."""
    modules = _modules()
    assert {"geo/errors.py", "api/plans/store.py", "webmap/maps.py"} <= modules
    assert not any(m.endswith("__init__.py") or "/_" in m for m in modules)
    named, _ = _named()
    assert {"api/plans/store.py", "api/access/analysis.py"} <= named  # `store.py` in the `api/plans/` row
