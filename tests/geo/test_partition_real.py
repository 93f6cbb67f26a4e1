"""Grid partition on real data (Suzhou Gusu footprints with floors; Shanghai Bund OSM)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geo.crs import local_metric_crs
from geo.households import estimate_households
from geo.osm import read_osm_extract
from geo.partition import partition_grids
from geo.partition.quality import grid_quality
from tests.geo.partition_helpers import (
    assert_valid_plan,
    assert_whole_buildings,
    households_from_floors,
)


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


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 4, 5, 42])
def test_shanghai_bund_grid_boundaries_follow_the_streets(shared_datasets, seed: int) -> None:
    """The issue's bar on a real district with dense street data: ≥ 80 % of grid-to-grid
    boundary within 5 m of a street line, mean Polsby–Popper ≥ 0.45 (households estimated
    from OSM tags and heights, ferry lines dropped, one community: the buildings' extent),
    on five seeds.

    Before the open-land mesh (setting ``partition_redraw_mesh_m``) the share was 0.786-0.798:
    grid boundaries redrawn through open land could only follow the Voronoi ridges of the
    buildings. With it (10 m): 0.808-0.821 (0.811-0.823 when the district was tessellated again
    with the mesh instead of the mesh spliced into the cells), mean Polsby-Popper up on every seed."""
    path = shared_datasets / "shanghai_bund_osm.gpkg"
    layers = read_osm_extract(path)
    crs = local_metric_crs(layers["buildings"])
    layers = {name: gdf.to_crs(crs) for name, gdf in layers.items()}
    b, s, k = layers["buildings"], layers["streets"], layers["compounds"]
    b = estimate_households(b.assign(building_id=[f"sh{i}" for i in range(len(b))]))
    minx, miny, maxx, maxy = b.total_bounds
    c = gpd.GeoDataFrame({"community_id": ["ALL"]},
                         geometry=[shapely.box(minx - 25, miny - 25, maxx + 25, maxy + 25)], crs=crs)
    res = partition_grids(b, c, streets=s, compounds=k, seed=seed)
    assert_whole_buildings(res, b)
    q = grid_quality(res.grids.to_crs(crs), s, lo=300, hi=500)
    assert q["non_contiguous"] == 0
    assert q["street_share"] >= 0.80
    assert q["mean_polsby_popper"] >= 0.45
    assert res.report["share_in_range"] == 1.0
