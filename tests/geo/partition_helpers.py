"""Shared helpers for the grid partition tests: a street-grid city and the plan checks."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import LineString, box

from geo.partition import PartitionResult
from geo.partition.quality import footprint_share_inside

__all__ = ["CRS", "X0", "Y0", "city", "assert_valid_plan", "assert_whole_buildings", "households_from_floors"]

CRS = "EPSG:32651"
X0, Y0 = 300_000.0, 3_460_000.0


def city(nx: int = 4, ny: int = 4, per_block: int = 4, hh: int = 30, block: float = 100.0,
         seed: int = 1) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Square blocks between streets, *per_block* buildings per block, one community."""
    rng = np.random.default_rng(seed)
    geoms, ids = [], []
    for i in range(nx):
        for j in range(ny):
            for k in range(per_block):
                x = X0 + i * block + 15 + (k % 2) * 45 + rng.uniform(0, 5)
                y = Y0 + j * block + 15 + (k // 2) * 45 + rng.uniform(0, 5)
                geoms.append(box(x, y, x + 20, y + 12))
                ids.append(f"b{i}_{j}_{k}")
    b = gpd.GeoDataFrame({"building_id": ids, "households": hh}, geometry=geoms, crs=CRS)
    w, h = nx * block, ny * block
    lines = [LineString([(X0 + i * block, Y0), (X0 + i * block, Y0 + h)]) for i in range(1, nx)]
    lines += [LineString([(X0, Y0 + j * block), (X0 + w, Y0 + j * block)]) for j in range(1, ny)]
    s = gpd.GeoDataFrame({"street_id": [f"s{i}" for i in range(len(lines))], "road_class": "minor"},
                         geometry=lines, crs=CRS)
    c = gpd.GeoDataFrame({"community_id": ["C1"], "admin_code": ["320508001001"]},
                         geometry=[box(X0, Y0, X0 + w, Y0 + h)], crs=CRS)
    return b, c, s


def assert_valid_plan(res: PartitionResult, b: gpd.GeoDataFrame, c: gpd.GeoDataFrame,
                      lo: int = 300, hi: int = 500) -> None:
    if c.crs.is_geographic:
        c = c.to_crs(c.estimate_utm_crs())
    g = res.grids.to_crs(c.crs)
    assert set(res.assignment.index) == set(b["building_id"])
    assert res.assignment.notna().all()
    assert set(res.assignment) <= set(g["grid_id"])
    assert (g.geom_type == "Polygon").all() and g.is_valid.all()
    geom = g.set_index("grid_id").geometry
    pts = shapely.point_on_surface(b.to_crs(c.crs).geometry.values)
    own = geom.loc[res.assignment.reindex(b["building_id"]).to_numpy()].to_numpy()
    assert shapely.covers(shapely.buffer(own, 1e-6), pts).all()
    for cid, part in g.groupby("community_id"):
        comm = c.set_index("community_id").geometry.loc[cid]
        union = shapely.union_all(part.geometry.values)
        assert abs(union.area - comm.area) <= 1e-6 * comm.area
        assert part.area.sum() - union.area < 1.0
    hh = b.set_index("building_id")["households"].groupby(res.assignment).sum()
    assert (g.set_index("grid_id")["households"].reindex(hh.index) == hh).all()
    plain = g[g["flags"].isin(["", "compound_split"])]
    assert plain["households"].between(lo, hi).all()
    parts = shapely.get_num_geometries(g.geometry.values)
    assert (parts == 1).all(), "every grid is one piece"
    assert_whole_buildings(res, b.to_crs(c.crs))


def assert_whole_buildings(res: PartitionResult, b: gpd.GeoDataFrame, min_share: float = 0.99) -> None:
    """Every building has at least *min_share* of its footprint area inside its own grid."""
    share = footprint_share_inside(b, res.grids, res.assignment).dropna()
    cut = share[share < min_share]
    assert cut.empty, f"{len(cut)} of {len(share)} buildings cut by a grid boundary: {cut.round(3).head(5).to_dict()}"


def households_from_floors(b: gpd.GeoDataFrame, floors: np.ndarray, dwelling_m2: float = 90.0) -> np.ndarray:
    """Households of footprints: area × floors ÷ a dwelling's floor area (at least 1)."""
    area = b.to_crs(b.estimate_utm_crs()).area.to_numpy()
    return np.maximum(1, np.round(area * floors / dwelling_m2)).astype(int)
