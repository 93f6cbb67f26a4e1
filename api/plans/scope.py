"""Which communities an edit or an undo touches, so it loads their plan state and not the city's.

A planner works on one community at a time: a rename, a lock, a split or a merge names its
grids, a move its target grid and buildings (or a drawn polygon), an undo or redo its stored
delta. Their communities, closed by :func:`api.plans.state.community_scope`, hold every cell
the edit can read or change; a request naming grids that do not exist is refused here,
before anything is loaded.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any, NamedTuple

import shapely
from shapely.geometry import shape
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.errors import RequestError
from api.models import Community, PlanAssignment, PlanCell, PlanGrid
from api.plans.state import plan_lock

__all__ = ["unknown_grid", "merge_ids", "DeltaRefs", "delta_refs", "edit_communities", "delta_communities",
           "whole_lock"]

_ONE_GRID = ("split", "lock", "unlock", "exclusive", "rename")


def unknown_grid(plan_id: int, grid_id: Any, what: str) -> RequestError:
    """400 naming a grid that *plan_id* does not have."""
    return RequestError(400, "unknown_grid", f"未知网格 {what}={grid_id!r}（方案 {plan_id} 中没有该网格）",
                        "从 grids.geojson 的 grid_id 中选择")


def merge_ids(body: dict[str, Any]) -> list[str]:
    """The two ``grid_ids`` of a merge, checked."""
    ids = body.get("grid_ids")
    if not isinstance(ids, list) or len(ids) != 2 or ids[0] == ids[1]:
        raise RequestError(400, "bad_request", f"grid_ids 须为两个不同的网格：{ids!r}",
                           '例如 {"op": "merge", "grid_ids": ["G1", "G2"]}')
    return ids


def _named_grids(body: dict[str, Any]) -> list[tuple[Any, str]]:
    """(grid id, field) of every grid edit *body* names; [] for an op the edit itself refuses."""
    op = body.get("op")
    if op == "move":
        return [(body.get("to_grid"), "to_grid")]
    if op == "merge":
        ids = merge_ids(body)
        return [(ids[0], "grid_ids[0]"), (ids[1], "grid_ids[1]")]
    if op in _ONE_GRID:
        return [(body.get("grid_id"), "grid_id")]
    return []


def _grid_communities(session: Session, plan_id: int, grids: list[str]) -> set[Any]:
    """Communities of *grids*: their own and their cells'."""
    found = set(session.scalars(select(PlanCell.community_id).where(PlanCell.plan_version_id == plan_id,
                                                                    PlanCell.grid_id.in_(grids))))
    return found | set(session.scalars(select(PlanGrid.community_id).where(PlanGrid.plan_version_id == plan_id,
                                                                           PlanGrid.grid_id.in_(grids))))


def _cell_communities(session: Session, plan_id: int, cells: Any) -> set[Any]:
    return set(session.scalars(select(PlanCell.community_id).where(PlanCell.plan_version_id == plan_id,
                                                                   PlanCell.cell_id.in_(cells))))


def _building_communities(session: Session, plan_id: int, ids: Any) -> set[Any]:
    """Communities of the cells of buildings *ids* (unknown ones are named by the edit itself)."""
    if not isinstance(ids, list) or not all(isinstance(b, str) for b in ids):
        return set()
    cells = select(PlanAssignment.cell_id).where(PlanAssignment.plan_version_id == plan_id,
                                                 PlanAssignment.building_id.in_(ids[:5000]))
    return _cell_communities(session, plan_id, cells)


def _drawn_communities(session: Session, polygon: Any) -> set[Any]:
    """Communities whose extent meets a drawn polygon (a malformed one is refused by the edit)."""
    try:
        geom = shape(polygon)
    except Exception:  # noqa: BLE001 - shapely raises several types; the edit words the refusal
        return set()
    if geom.is_empty:
        return set()
    minx, miny, maxx, maxy = shapely.bounds(geom).tolist()
    rows = session.execute(select(Community.community_id, Community.geometry).where(
        Community.minx <= maxx, Community.maxx >= minx, Community.miny <= maxy, Community.maxy >= miny)).all()
    return {c for c, g in rows if g is None or g.intersects(geom)}


def _loadable(found: set[Any]) -> set[str] | None:
    """*found* as the communities to load, or ``None`` (the whole plan) when a cell or grid has none."""
    return None if not found or None in found else {str(c) for c in found}


def edit_communities(session: Session, plan_id: int, body: dict[str, Any]) -> set[str] | None:
    """Communities edit *body* of plan *plan_id* reads or changes; ``None``: load the whole plan."""
    named = _named_grids(body)
    grids = [g for g, _ in named if isinstance(g, str)]
    known = set(session.scalars(select(PlanGrid.grid_id).where(PlanGrid.plan_version_id == plan_id,
                                                               PlanGrid.grid_id.in_(grids))))
    for grid, what in named:
        if grid not in known:
            raise unknown_grid(plan_id, grid, what)
    out = _grid_communities(session, plan_id, grids) if grids else set()
    if body.get("op") == "move":
        if "building_ids" in body:
            out |= _building_communities(session, plan_id, body["building_ids"])
        elif isinstance(body.get("polygon"), dict):
            out |= _drawn_communities(session, body["polygon"])
    return _loadable(out)


class DeltaRefs(NamedTuple):
    """What a delta names: existing cells and grids, and the grids and cells it creates (id -> community)."""

    cells: list[str]
    grids: list[str]
    created: dict[str, Any]
    added: dict[str, Any]


def delta_refs(delta: dict[str, Any]) -> DeltaRefs:
    """The cells and grids *delta* (:mod:`api.plans.edits`) reads or changes."""
    part = delta.get("cells") or {}
    added = {r["cell_id"]: r.get("community_id") for r in part.get("add", [])}
    created = {a["grid_id"]: a.get("community_id") for a in delta.get("create", [])}
    cells = ([c for c, _ in delta.get("assign", [])] + list(part.get("update", {})) + list(part.get("drop", []))
             + [c for _, c in delta.get("building_cells", [])])
    grids = ([g for _, g in delta.get("assign", [])] + list(delta.get("attrs", {})) + list(delta.get("delete", []))
             + [r["grid_id"] for r in part.get("add", [])])
    return DeltaRefs([c for c in dict.fromkeys(cells) if c not in added],
                     [g for g in dict.fromkeys(grids) if g not in created], created, added)


def delta_communities(session: Session, plan_id: int, delta: dict[str, Any]) -> set[str] | None:
    """Communities a stored delta (an undo or a redo) changes; ``None``: load the whole plan."""
    refs = delta_refs(delta)
    out = set(refs.created.values()) | set(refs.added.values())
    out |= _cell_communities(session, plan_id, refs.cells)
    out |= _grid_communities(session, plan_id, refs.grids)
    return _loadable(out)


def whole_lock(session: Session, plan_id: int, communities: set[str] | None) -> AbstractContextManager[Any]:
    """The whole plan's lock when an edit loads the whole state (*communities* ``None``), else nothing
    (the caller holds the plan's community lock)."""
    return plan_lock(session, plan_id) if communities is None else nullcontext()
