"""geo.partition.boundaries: grid boundaries through open land redrawn along the streets."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import shapely

import geo.partition.pipeline as pipeline
from geo.partition import partition_grids
from geo.partition.boundaries import _min_cut, _swap
from geo.partition.quality import street_boundary_share
from geo.synthetic import synthetic_district
from tests.geo.partition_helpers import CRS, assert_valid_plan


def _without_redraw(monkeypatch: pytest.MonkeyPatch) -> None:
    def unchanged(tess: Any, node_grid: Any, **_: Any) -> Any:
        return tess

    monkeypatch.setattr(pipeline, "redraw_boundaries", unchanged)


def _edges(pairs: list[tuple[int, int, float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a, b, cost = zip(*pairs, strict=True)
    return np.array(a), np.array(b), np.array(cost, dtype=float)


def test_free_faces_move_so_the_line_takes_the_cheapest_edge() -> None:
    # faces in a row: 0 fixed in grid 0, 4 fixed in grid 1; the line sits on edge 1–2 (cost 10)
    # while edge 2–3 runs along a street (cost 1)
    edges = _edges([(0, 1, 10), (1, 2, 10), (2, 3, 1), (3, 4, 10)])
    fixed = np.array([True, False, False, False, True])
    new = _swap(np.array([0, 0, 1, 1, 1]), fixed, edges, 0, 1)
    assert new is not None and new.tolist() == [0, 0, 0, 1, 1]
    assert _swap(new, fixed, edges, 0, 1) is None  # nothing cheaper left: no change


def test_a_cut_that_would_split_a_grid_is_not_taken() -> None:
    # grid 0 holds fixed faces 0 and 4 joined only through free face 2; grid 1's fixed face 5
    # hangs on face 2 by a dear edge, so the bare minimum cut hands face 2 to grid 1
    edges = _edges([(0, 1, 5), (1, 2, 1), (2, 3, 1), (3, 4, 5), (2, 5, 100)])
    fixed = np.array([True, False, False, False, True, True])
    ea, eb, cost = edges
    bare = _min_cut(6, ea, eb, np.round(cost * 100).astype(np.int32), np.array([0, 4]), np.array([5]))
    assert bare.tolist() == [True, True, False, True, True, False]  # grid 0 in two pieces
    assert _swap(np.array([0, 0, 0, 0, 0, 1]), fixed, edges, 0, 1) is None


@pytest.mark.slow
def test_redraw_moves_no_building_and_keeps_every_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    d = synthetic_district(1200, seed=11)
    kw = {"streets": d.streets, "compounds": d.compounds, "shard_buildings": 0}
    res = partition_grids(d.buildings, d.communities, **kw)
    assert_valid_plan(res, d.buildings, d.communities)
    _without_redraw(monkeypatch)
    before = partition_grids(d.buildings, d.communities, **kw)
    assert res.assignment.equals(before.assignment)
    households = res.grids.set_index("grid_id")["households"]
    assert households.equals(before.grids.set_index("grid_id")["households"].reindex(households.index))
    # cells still tile the grids: a cell's outline lies inside its grid
    cells = res.cells.to_crs(CRS)
    grid = res.grids.to_crs(CRS).set_index("grid_id").geometry.reindex(cells["grid_id"]).to_numpy()
    inside = shapely.area(shapely.intersection(cells.geometry.values, grid)) / cells.area.to_numpy()
    assert (inside > 1 - 1e-6).all()
    metric = d.streets.to_crs(CRS)
    assert street_boundary_share(res.grids.to_crs(CRS), metric) >= street_boundary_share(before.grids.to_crs(CRS),
                                                                                          metric)
    assert res.report["mean_polsby_popper"] >= before.report["mean_polsby_popper"]
