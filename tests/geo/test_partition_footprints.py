"""A grid boundary never cuts a building (issue 10 §1): whole footprints on adversarial layouts.

Every layout here is one where cells drawn from one point per building cut footprints:
buildings of unequal width sharing walls, a footway through buildings, overlapping
footprints and a U-shaped building wrapping a neighbour.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, Polygon, box

from geo.partition import partition_grids
from geo.partition.footprints import footprint_units
from geo.partition.quality import footprint_share_inside
from tests.geo.partition_helpers import CRS, X0, Y0, assert_valid_plan, city


def _community(w: float, h: float) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"community_id": ["C1"], "admin_code": ["320508001001"]},
                            geometry=[box(X0, Y0, X0 + w, Y0 + h)], crs=CRS)


def _terraces(rows: int = 4, houses: int = 24) -> gpd.GeoDataFrame:
    """Rows of wall-sharing houses, 4 m and 12 m wide in turn (households by width)."""
    geoms, hh = [], []
    for r in range(rows):
        x, y = X0 + 10, Y0 + 10 + r * 25
        for k in range(houses):
            w = 4.0 if k % 2 else 12.0
            geoms.append(box(x, y, x + w, y + 10))
            hh.append(int(w * 2.5))
            x += w
    return gpd.GeoDataFrame({"building_id": [f"t{i}" for i in range(len(geoms))], "households": hh},
                            geometry=geoms, crs=CRS)


def test_terrace_of_touching_houses_is_divided_along_party_walls() -> None:
    b = _terraces()
    c = _community(220, 110)
    res = partition_grids(b, c)
    assert res.grids["households"].gt(0).sum() >= 3  # the terraces are divided
    assert_valid_plan(res, b, c)
    share = footprint_share_inside(b, res.grids, res.assignment)
    assert share.min() >= 0.999


def test_footway_through_buildings_does_not_split_them() -> None:
    b, c, s = city(nx=4, ny=4, per_block=4, hh=30)
    # a footway down the middle of the left-hand buildings of every block
    xs = sorted({round(g.bounds[0] + 10.0, 1) for g in b.geometry.values if (g.bounds[0] - X0) % 100 < 30})
    ways = [LineString([(x, Y0), (x, Y0 + 400)]) for x in xs]
    foot = gpd.GeoDataFrame({"street_id": [f"f{i}" for i in range(len(ways))], "road_class": "path"},
                            geometry=ways, crs=CRS)
    streets = pd_concat(s, foot)
    crossed = shapely.STRtree(b.geometry.values).query(foot.geometry.values, predicate="crosses")[1]
    assert len(np.unique(crossed)) >= 16  # the layout really puts footways through buildings
    res = partition_grids(b, c, streets=streets)
    assert_valid_plan(res, b, c)


def pd_concat(a: gpd.GeoDataFrame, b: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    import pandas as pd

    return gpd.GeoDataFrame(pd.concat([a, b], ignore_index=True), geometry="geometry", crs=a.crs)


def test_overlapping_footprints_share_a_grid_and_are_reported() -> None:
    b, c, _ = city(nx=3, ny=3, per_block=4, hh=200)
    twins = b.assign(building_id=b["building_id"] + "x", households=200,
                     geometry=b.geometry.translate(8.0, 5.0))  # 12 × 7 m of 20 × 12 m shared
    both = gpd.GeoDataFrame(pd_concat(b, twins), crs=CRS)
    res = partition_grids(both, c)
    assert_valid_plan(res, both, c)
    a = res.assignment
    assert (a.reindex(b["building_id"]).to_numpy() == a.reindex(twins["building_id"]).to_numpy()).all()
    over = res.report["overlapping_footprints"]
    assert over["pairs"] == len(b) and over["kept_together"] == len(b)
    assert len(over["examples"]) == len(b)
    assert all(sorted(e[:2])[1] == sorted(e[:2])[0] + "x" and e[2] == pytest.approx(84.0) and e[3]
               for e in over["examples"])


def test_u_shaped_building_wrapping_a_neighbour_stays_whole() -> None:
    u = Polygon([(0, 0), (60, 0), (60, 50), (45, 50), (45, 15), (15, 15), (15, 50), (0, 50)])
    inner = box(20, 20, 40, 45)
    others = [box(80 + 25 * i, 5 + 25 * j, 95 + 25 * i, 20 + 25 * j) for i in range(3) for j in range(2)]
    geoms = [shapely.affinity.translate(g, X0 + 20, Y0 + 20) for g in [u, inner, *others]]
    hh = [350, 250] + [60] * len(others)
    b = gpd.GeoDataFrame({"building_id": ["U", "inner"] + [f"o{i}" for i in range(len(others))],
                          "households": hh}, geometry=geoms, crs=CRS)
    c = _community(200, 100)
    res = partition_grids(b, c)
    assert res.assignment["U"] != res.assignment["inner"]  # 600 households cannot share a grid
    assert_valid_plan(res, b, c)


@pytest.mark.parametrize(("shift", "merged"), [(19.99, False), (10.0, True)])
def test_footprint_units_merge_only_real_overlaps(shift: float, merged: bool) -> None:
    g = np.array([box(0, 0, 20, 10), box(shift, 0, shift + 20, 10), box(-10, 0, 0, 10)], dtype=object)
    fu = footprint_units(g, np.zeros(3, dtype=np.int64), overlap_share=0.01)
    assert bool(fu.unit[0] == fu.unit[1]) is merged
    assert fu.unit[2] not in (fu.unit[0], fu.unit[1])  # a shared wall alone never merges
    assert fu.pairs.tolist() == [[0, 1]] and fu.merged.tolist() == [merged]
    assert fu.rep[fu.unit[0]] == 0  # the larger (first of equals) stands for the unit
