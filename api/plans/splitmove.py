"""Moves of some buildings of a unit: the unit (cell) is split so exactly the selection moves.

A cell holding several buildings is divided by :func:`geo.cellsplit.split_cell` into a new
cell with the selected buildings (plus any whose footprint overlaps one of them) and the old
cell with the others; neighbouring cells get the new outline vertices so the cells stay a
coverage. The change is a ``"cells"`` part of an edit delta (``update`` / ``add`` / ``drop``
with geometries as hex WKB) plus ``"building_cells"`` (building → its new cell), so undo and
redo replay it like any edit. When a unit cannot be divided (no footprints for its buildings,
footprints overlapping too much to part, an invalid result) the whole unit moves, after the planner
confirms; the confirmation names the overlaps and their shares.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.models import Building
from api.plans.state import PlanState, cell_buildings
from geo.cellsplit import insert_vertices, split_cell
from geo.errors import LayerError

__all__ = ["BuildingSource", "SplitPlan", "plan_split_move", "invert_cells"]

log = logging.getLogger(__name__)

class BuildingSource:
    """Footprints (EPSG:4326) and households of workspace buildings, read when a move needs them."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def _frame(self, where: Any) -> gpd.GeoDataFrame:
        rows = self.session.execute(select(Building.building_id, Building.households, Building.geometry)
                                    .where(where)).all()
        return gpd.GeoDataFrame({"households": [int(r[1] or 0) for r in rows]}, index=[r[0] for r in rows],
                                geometry=[r[2] for r in rows], crs=4326)

    def footprints(self, ids: list[str]) -> gpd.GeoDataFrame:
        """Buildings *ids* (missing ones left out), indexed by building id."""
        return self._frame(Building.building_id.in_(ids))

    def near(self, polygon: Any) -> gpd.GeoDataFrame:
        """Buildings whose bounding box meets *polygon*'s (candidates for a drawn selection)."""
        x0, y0, x1, y1 = polygon.bounds
        return self._frame((Building.maxx >= x0) & (Building.minx <= x1) & (Building.maxy >= y0) & (Building.miny <= y1))


@dataclass
class SplitPlan:
    """The cells a move takes whole and the delta parts of the cells it splits."""

    whole: list[int] = field(default_factory=list)
    cells: dict[str, Any] = field(default_factory=lambda: {"update": {}, "add": [], "drop": []})
    building_cells: list[list[str]] = field(default_factory=list)

    def pieces(self) -> list[Any]:
        """The new cells' geometries (to check they touch the target grid)."""
        return [shapely.from_wkb(r["wkb"]) for r in self.cells["add"]]


def _new_id(state: PlanState, cell_id: str, taken: set[str]) -> str:
    k = 2
    while f"{cell_id}+{k}" in state.cell_index or f"{cell_id}+{k}" in taken:
        k += 1
    return f"{cell_id}+{k}"


class _Split:
    """Splits of one move, applied to a working copy of the touched geometries."""

    def __init__(self, state: PlanState, target: str) -> None:
        self.state, self.target = state, target
        self.geom: dict[int, Any] = {}  # existing cells changed so far
        self.new: list[dict[str, Any]] = []  # cells added so far (with "geometry")
        self.counts: dict[int, tuple[int, int]] = {}
        self.building_cells: list[list[str]] = []

    def now(self, i: int) -> Any:
        return self.geom.get(i, self.state.geom[i])

    def split(self, i: int, members: list[str], chosen: list[str], footprints: gpd.GeoDataFrame) -> bool:
        """Split cell *i* for *chosen*; False when the whole cell moves."""
        s = self.state
        result = split_cell(self.now(i), footprints.geometry.reindex(members), chosen)
        if result is None:
            return False
        hh = int(footprints["households"].reindex(list(result.moving)).sum())
        old_hh, old_n = self.counts.get(i, (int(s.households[i]), int(s.buildings[i])))
        self.counts[i] = (max(old_hh - hh, 0), old_n - len(result.moving))
        old = self.now(i)
        self.geom[i] = result.rest
        near = s.neighbours(i).tolist()
        pieces = [result.piece, result.rest]
        for j, g in zip(near, insert_vertices([self.now(j) for j in near], pieces, old), strict=True):
            if not g.equals_exact(self.now(j), 0):
                self.geom[j] = g
        for cell in self.new:
            cell["geometry"] = insert_vertices([cell["geometry"]], pieces, old)[0]
        cid = _new_id(s, str(s.cell_ids[i]), {c["cell_id"] for c in self.new})
        self.new.append({"cell_id": cid, "community_id": s.community[i], "grid_id": self.target,
                         "households": hh, "buildings": len(result.moving), "geometry": result.piece})
        self.building_cells += [[b, cid] for b in result.moving]
        return True

    def valid(self) -> bool:
        """The changed cells, the new ones and their neighbours still form a coverage."""
        s = self.state
        near = {j for i in self.geom for j in s.neighbours(i).tolist()} | set(self.geom)
        geoms = [self.now(j) for j in sorted(near)] + [c["geometry"] for c in self.new]
        return bool(shapely.coverage_is_valid(np.asarray(geoms, dtype=object)))

    def delta(self) -> tuple[dict[str, Any], list[list[str]]]:
        s = self.state
        update = {}
        for i, g in self.geom.items():
            v: dict[str, Any] = {"wkb": shapely.to_wkb(g, hex=True)}
            if i in self.counts:
                v["households"], v["buildings"] = self.counts[i]
            update[str(s.cell_ids[i])] = v
        add = [{**{k: c[k] for k in ("cell_id", "community_id", "grid_id", "households", "buildings")},
                "wkb": shapely.to_wkb(c["geometry"], hex=True)} for c in self.new]
        return {"update": update, "add": add, "drop": []}, self.building_cells


def plan_split_move(state: PlanState, target: str, chosen: dict[int, list[str]],
                    buildings: BuildingSource | None) -> SplitPlan:
    """Which cells move whole and how the others split so that only *chosen* buildings move.

    *chosen* maps a cell index to the selected buildings in it. Without *buildings*, or
    when a split fails, the affected cells move whole (the caller asks the planner first).
    """
    members = cell_buildings(state)
    partial = {i: b for i, b in chosen.items() if set(b) != set(members.get(str(state.cell_ids[i]), b))}
    plan = SplitPlan(whole=sorted(set(chosen) - set(partial)))
    if not partial or buildings is None:
        plan.whole = sorted(chosen)
        return plan
    fp = buildings.footprints(sorted({b for i in partial for b in members[str(state.cell_ids[i])]}))
    work = _Split(state, target)
    try:
        for i, picked in sorted(partial.items()):
            cell_members = members[str(state.cell_ids[i])]
            if fp.index.isin(cell_members).sum() < len(cell_members) or not work.split(i, cell_members, picked, fp):
                plan.whole.append(i)
        if not work.valid():
            raise LayerError("the divided cells are not a valid coverage")
    except LayerError as exc:
        log.info("plan %d: units %s move whole: %s", state.plan_id, sorted(partial), exc)
        plan.whole = sorted(chosen)
        return plan
    plan.whole.sort()
    plan.cells, plan.building_cells = work.delta()
    return plan


def invert_cells(state: PlanState, delta: dict[str, Any]) -> dict[str, Any]:
    """The ``cells`` and ``building_cells`` parts undoing *delta* (computed before it is applied)."""
    cells = delta.get("cells")
    if not cells:
        return {}
    update = {}
    for c in cells.get("update", {}):
        i = state.cell_index[c]
        update[c] = {"wkb": shapely.to_wkb(state.geom[i], hex=True), "households": int(state.households[i]),
                     "buildings": int(state.buildings[i])}
    add = []
    for c in cells.get("drop", []):
        i = state.cell_index[c]
        add.append({"cell_id": c, "community_id": state.community[i], "grid_id": state.grid_of[i],
                    "households": int(state.households[i]), "buildings": int(state.buildings[i]),
                    "wkb": shapely.to_wkb(state.geom[i], hex=True)})
    back = [[b, state.building_cell[b]] for b, _ in delta.get("building_cells", [])]
    return {"cells": {"update": update, "add": add, "drop": [r["cell_id"] for r in cells.get("add", [])]},
            "building_cells": back}
