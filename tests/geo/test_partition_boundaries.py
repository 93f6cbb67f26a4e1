"""geo.partition.boundaries: grid boundaries through open land redrawn along the streets."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import shapely

import geo.partition.pipeline as pipeline
from geo.partition import partition_grids
from geo.partition.boundaries import _min_cut, _swap
from geo.partition.mesh import _open_land_mesh, _parent_faces, _spliced
from geo.partition.options import PartitionOptions
from geo.partition.planar import arrangement_from_segments, rings_of_cycles
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


def test_open_land_mesh_is_hexagons_once_each_clear_of_buildings() -> None:
    anchors, footprint = np.array([[50.0, 50.0]]), shapely.box(40, 40, 60, 60)
    near = np.array([[0.0, 0.0, 100.0, 100.0], [0.0, 100.0, 100.0, 0.0]])
    assert _open_land_mesh(anchors, np.array([footprint]), near, 0.0).shape == (0, 4)
    assert _open_land_mesh(anchors, np.array([footprint]), near[:0], 10.0).shape == (0, 4)
    seg = _open_land_mesh(anchors, np.array([footprint]), near, 10.0)
    lines = shapely.linestrings(seg.reshape(-1, 2, 2))
    assert len(seg) > 100 and np.allclose(shapely.length(lines), 10 / np.sqrt(3))
    mid = shapely.centroid(lines)
    assert shapely.STRtree(mid).query(mid, predicate="dwithin", distance=0.1)[0].size == len(seg)  # each once
    # hexagon centres keep a quarter of the width clear of the footprint: the inner part of
    # the building holds no mesh, open land 20 m away is meshed within a hexagon's reach
    assert shapely.distance(lines, footprint.centroid).min() > 10 - 10 / np.sqrt(3)
    assert shapely.distance(lines, shapely.Point(85, 20)).min() <= 10 / np.sqrt(3)


def test_segments_of_one_family_are_split_by_the_others_only() -> None:
    square = [(0, 0, 10, 0), (10, 0, 10, 10), (10, 10, 0, 10), (0, 10, 0, 0)]
    seg = np.array([*square, (0, 0, 10, 10), (0, 10, 5, 5), (5, 5, 10, 0)], dtype=float)
    bits = np.array([1, 1, 1, 1, 16, 16, 16])
    # the diagonal is a ridge (split by nothing of its own); the two mesh halves cross it
    arr = arrangement_from_segments(seg, bits, split_mask=np.array([True] * 4 + [False, True, True]),
                                    family=np.array([0, 0, 0, 0, 0, 1, 1]))
    assert arr.n_faces == 4
    assert sorted(np.round(arr.face_area, 6).tolist()) == [25.0] * 4


@pytest.mark.slow
def test_the_mesh_keeps_the_plan_and_only_shortens_its_boundaries(monkeypatch: pytest.MonkeyPatch,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    d = synthetic_district(1200, seed=11)
    kw: dict[str, Any] = {"streets": d.streets, "compounds": d.compounds, "shard_buildings": 0}
    plain = partition_grids(d.buildings, d.communities, options=PartitionOptions(redraw_mesh_m=0), **kw)
    meshed = partition_grids(d.buildings, d.communities, options=PartitionOptions(redraw_mesh_m=10), **kw)
    assert "redraw mesh" not in caplog.text  # the mesh was used, not given up
    assert_valid_plan(meshed, d.buildings, d.communities)
    assert meshed.assignment.equals(plain.assignment)  # the plan is made on the same cells
    metric = d.streets.to_crs(CRS)
    share = [street_boundary_share(r.grids.to_crs(CRS), metric) for r in (plain, meshed)]
    assert share[1] >= share[0]
    # without the redraw, the plan on the meshed cells has the plain outlines (the mesh is
    # spliced into the cells: every old edge is kept, up to a mesh vertex snapped onto an old
    # one on the 0.1 mm vertex grid: under 0.01 m² on grids of hectares; it was 1 m² when the
    # district was tessellated again with the mesh)
    _without_redraw(monkeypatch)
    a = partition_grids(d.buildings, d.communities, options=PartitionOptions(redraw_mesh_m=0), **kw)
    b = partition_grids(d.buildings, d.communities, options=PartitionOptions(redraw_mesh_m=10), **kw)
    ga, gb = (r.grids.to_crs(CRS).set_index("grid_id").geometry for r in (a, b))
    gb = gb.reindex(ga.index)
    assert shapely.area(shapely.symmetric_difference(ga.to_numpy(), gb.to_numpy())).max() < 0.01
    assert len(b.cells) >= len(a.cells) and b.assignment.equals(a.assignment)


def test_spliced_mesh_faces_take_the_face_they_were_cut_from() -> None:
    # old cells: a 10 m square cut in two at x = 4; the mesh: a line across both and beyond,
    # and a triangle inside the right face touching no old edge
    seg = np.array([(0, 0, 10, 0), (10, 0, 10, 10), (10, 10, 0, 10), (0, 10, 0, 0), (4, 0, 4, 10)], dtype=float)
    old = arrangement_from_segments(seg, np.ones(len(seg), dtype=np.int64))
    mesh = np.array([(-5, 5, 15, 5), (6, 6, 9, 6), (9, 6, 7, 9), (7, 9, 6, 6)], dtype=float)
    arr = _spliced(old, mesh, np.array([shapely.box(1, 1, 3, 3)]))
    parent = _parent_faces(old, arr)
    assert arr.n_faces == 6  # each half cut in two, the triangle, the footprint (a hole of its face)
    old_polys = shapely.polygons(rings_of_cycles(old.xy, old.eu, old.ev, old.cycle, old.face_cycle, nxt=old.nxt))
    new_polys = shapely.polygons(rings_of_cycles(arr.xy, arr.eu, arr.ev, arr.cycle, arr.face_cycle, nxt=arr.nxt))
    inside = shapely.point_on_surface(new_polys)
    truth = [int(np.flatnonzero(shapely.contains(old_polys, p))[0]) for p in inside]
    assert parent.tolist() == truth
    assert sorted(set(truth)) == [0, 1]
