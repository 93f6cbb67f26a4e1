"""The planner places points through the active-grids index, not private point-in-polygon code (issue 11)."""

from __future__ import annotations

import re
from pathlib import Path

PLANS = Path(__file__).resolve().parents[2] / "api" / "plans"

#: Point-in-polygon primitives: calling one of these directly re-implements geo.activegrids.
_PRIMITIVES = re.compile(r"STRtree|contains_xy|shapely\.(contains|within|intersects)\(|\.sjoin\(|def cells_of_points")


def test_api_plans_has_no_private_point_in_polygon_code() -> None:
    found = {p.name: _PRIMITIVES.findall(p.read_text(encoding="utf-8")) for p in sorted(PLANS.glob("*.py"))}
    assert len(found) >= 8, found  # the package is where this test thinks it is
    assert {name: hits for name, hits in found.items() if hits} == {}


def test_the_planner_uses_the_grid_index() -> None:
    users = [p.name for p in PLANS.glob("*.py") if "GridIndex" in p.read_text(encoding="utf-8")]
    assert sorted(users) == ["edits.py", "rebase.py"]
