"""Grid partition on real data (Suzhou Gusu footprints with floors; Shanghai Bund OSM)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest

from geo.partition import partition_grids
from tests.geo.partition_helpers import assert_valid_plan, households_from_floors


@pytest.mark.slow
def test_suzhou_gusu(shared_datasets) -> None:
    b = gpd.read_file(shared_datasets / "suzhou_gusu_buildings.geojson").explode(ignore_index=True)
    b = b[b.is_valid & ~b.is_empty].reset_index(drop=True)
    b["building_id"] = [f"sz{i}" for i in range(len(b))]
    b["households"] = households_from_floors(b, b["Floor"].fillna(1).to_numpy())
    res = partition_grids(b[["building_id", "households", "geometry"]])
    c = res.grids.dissolve().assign(community_id="ALL")[["community_id", "geometry"]]
    assert_valid_plan(res, b, c.reset_index(drop=True))
    assert res.report["share_in_range"] == 1.0


@pytest.mark.slow
def test_shanghai_bund(shared_datasets) -> None:
    path = shared_datasets / "shanghai_bund_osm.gpkg"
    b = gpd.read_file(path, layer="buildings")
    b = b[b.geom_type.isin(["Polygon", "MultiPolygon"])].reset_index(drop=True)
    b["building_id"] = [f"sh{i}" for i in range(len(b))]
    floors = np.maximum(1, np.round(b["height"].fillna(9).to_numpy(dtype=float) / 3.0))
    b["households"] = households_from_floors(b, floors)
    roads = gpd.read_file(path, layer="roads")
    roads = roads[roads.geom_type.isin(["LineString", "MultiLineString"])]
    roads = roads.assign(street_id=[f"r{i}" for i in range(len(roads))],
                         road_class=np.where(roads["kind"] == "major_road", "major", "minor"))
    land = gpd.read_file(path, layer="landuse")
    comp = land[land["kind"] == "residential"].reset_index(drop=True)
    comp = comp.assign(compound_id=[f"k{i}" for i in range(len(comp))])
    res = partition_grids(b[["building_id", "households", "geometry"]], streets=roads, compounds=comp)
    c = res.grids.dissolve().assign(community_id="ALL")[["community_id", "geometry"]]
    assert_valid_plan(res, b, c.reset_index(drop=True))
    assert res.report["share_in_range"] >= 0.95
    out = res.grids[res.grids["flags"].str.contains("over_max|under_min")]
    assert out.empty or res.report["infeasible_communities"]["ALL"]
