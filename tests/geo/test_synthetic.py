"""The seeded synthetic street office: schema, topology, households, determinism, output."""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from geo.errors import LayerError
from geo.layers import BUILDING_USES, ROAD_CLASSES, SCHEMAS
from geo.settings import DEFAULTS
from geo.synthetic import LABEL, SyntheticDistrict, main, synthetic_district, write_district

CATEGORIES = {
    "kindergarten", "primary_school", "middle_school", "health_station", "community_health_centre",
    "elderly_daycare", "elderly_care_home", "food_market", "convenience_store",
    "community_service_station", "public_toilet", "bus_stop", "sports_ground", "culture_centre",
    "police_station", "street_service_centre",
}
DTYPES = {"str": "str", "int": "int64", "float": "float64", "bool": "bool"}
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def district() -> SyntheticDistrict:
    return synthetic_district(3000, seed=7)


@pytest.fixture(scope="module")
def metric(district: SyntheticDistrict) -> dict[str, gpd.GeoDataFrame]:
    return {name: frame.to_crs(district.metric_crs) for name, frame in district.layers.items()}


@pytest.mark.parametrize("layer", sorted(SCHEMAS))
def test_layers_follow_the_canonical_schema(district: SyntheticDistrict, layer: str) -> None:
    frame, schema = district.layers[layer], SCHEMAS[layer]
    assert list(frame.columns) == [*schema.column_names, "geometry"]
    assert {c.name: str(frame[c.name].dtype) for c in schema.columns} == {
        c.name: DTYPES[c.dtype] for c in schema.columns
    }
    assert frame.crs.to_epsg() == 4326
    assert set(frame.geom_type) <= set(schema.geometry_types)
    assert frame.geometry.is_valid.all()
    assert frame[schema.id_column].is_unique and frame[schema.id_column].notna().all()


def test_district_metadata(district: SyntheticDistrict) -> None:
    assert district.metric_crs == "EPSG:32651"  # UTM 51N holds Suzhou (120.62 E)
    assert district.label == LABEL == "合成示例数据 (synthetic)"


@pytest.mark.parametrize("n", [1000, 2500, 5000])
def test_building_count_is_honoured(n: int) -> None:
    count = len(synthetic_district(n, seed=n).buildings)
    assert abs(count - n) <= 0.02 * n


def test_same_seed_same_frames_other_seed_other_frames() -> None:
    first, again, other = (synthetic_district(1500, seed=s) for s in (3, 3, 4))
    for name in SCHEMAS:
        assert_geodataframe_equal(first.layers[name], again.layers[name])
    assert not first.buildings.geometry.geom_equals(other.buildings.geometry).all()


def test_buildings_lie_in_their_community_and_compound(metric: dict[str, gpd.GeoDataFrame]) -> None:
    b = metric["buildings"]
    communities = metric["communities"].set_index("community_id").geometry
    assert shapely.within(b.geometry.values, communities.loc[b.community_id].values).all()
    points = gpd.GeoDataFrame(geometry=b.representative_point(), crs=b.crs)
    found = points.sjoin(metric["communities"], predicate="within")
    assert (found.community_id.values == b.community_id.loc[found.index].values).all()
    assert len(found) == len(b)
    walled = b[b.compound_id.notna()]
    compounds = metric["compounds"].set_index("compound_id").geometry
    assert len(walled) > 0.3 * len(b)
    assert shapely.within(walled.geometry.values, compounds.loc[walled.compound_id].values).all()


def test_community_outlines_come_from_the_street_network(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING", logger="geo.synthetic")
    district = synthetic_district(2000, seed=11)
    assert not [r for r in caplog.records if "using unions" in r.getMessage()]
    assert (district.communities.geom_type == "Polygon").all()


def test_communities_tile_the_district(metric: dict[str, gpd.GeoDataFrame]) -> None:
    c = metric["communities"]
    union = c.union_all()
    assert union.area == pytest.approx(union.convex_hull.area, rel=1e-9)
    assert c.area.sum() == pytest.approx(union.area, rel=1e-9)
    assert (c.geom_type == "Polygon").all()  # each community is one connected piece


def test_community_boundaries_follow_street_centre_lines(metric: dict[str, gpd.GeoDataFrame]) -> None:
    streets = metric["streets"]
    roads = streets.geometry[streets.road_class.isin(["major", "secondary", "minor"])].values
    # Boundary edges run between junctions: an edge whose ends and middle lie on road centre
    # lines runs along them.
    rings = shapely.get_coordinates(metric["communities"].boundary.values, return_index=True)
    coords, ring = rings
    same_ring = ring[1:] == ring[:-1]
    a, b = coords[:-1][same_ring], coords[1:][same_ring]
    probes = shapely.points(np.concatenate([a, b, (a + b) / 2]))
    on_road = shapely.STRtree(roads).query(probes, predicate="dwithin", distance=0.01)[0]
    assert len(probes) > 0 and np.unique(on_road).size == len(probes)


def test_no_building_touches_a_street_lane_or_path(metric: dict[str, gpd.GeoDataFrame]) -> None:
    streets = metric["streets"]
    assert {"lane", "path"} <= set(streets.road_class)  # lanes in compounds, paths in the old town
    tree = shapely.STRtree(streets.geometry.values)
    hits = tree.query(metric["buildings"].geometry.values, predicate="intersects")
    assert hits.shape[1] == 0


def test_streets_are_noded_and_connected(metric: dict[str, gpd.GeoDataFrame]) -> None:
    lines = metric["streets"].geometry.values
    assert set(metric["streets"].road_class) <= set(ROAD_CLASSES)
    ends = shapely.get_coordinates(lines).reshape(-1, 2, 2)
    points = shapely.points(ends.reshape(-1, 2))
    # Every line an endpoint touches has a vertex there: junctions are nodes of both lines.
    near_line = shapely.STRtree(lines).query(points, predicate="dwithin", distance=0.01)
    gap = ends[near_line[1]] - ends.reshape(-1, 2)[near_line[0]][:, None, :]
    assert (np.hypot(gap[..., 0], gap[..., 1]).min(axis=1) < 0.01).all()
    # Endpoints that coincide are one node; segments join their two ends: one component.
    same = shapely.STRtree(points).query(points, predicate="dwithin", distance=0.01)
    own = np.arange(len(points))
    rows = np.concatenate([same[0], own[::2]])
    cols = np.concatenate([same[1], own[1::2]])
    graph = coo_matrix((np.ones(rows.size), (rows, cols)), shape=(len(points),) * 2)
    assert connected_components(graph, directed=False)[0] == 1


def test_households_are_plausible(district: SyntheticDistrict) -> None:
    b = district.buildings
    residential = b.use == "residential"
    assert (b.loc[~residential, "households"] == 0).all()
    assert {"school", "hospital", "market", "office"} <= set(b.use) <= set(BUILDING_USES)
    assert (b.loc[residential, "households"] > 0).all()
    low = residential & (b.floors <= 3)
    towers = residential & (b.floors >= 18)
    slabs = residential & b.floors.between(5, 7)
    assert low.any() and towers.any() and slabs.any()
    assert b.loc[low, "households"].between(1, 4).all()
    assert (b.loc[towers, "households"] / b.loc[towers, "floors"]).isin([4, 6, 8]).all()
    assert b.loc[slabs & (b.floors == 6), "households"].between(24, 48).all()
    assert (b.height_m // DEFAULTS["floor_height_m"] == b.floors).all()
    assert not b.households_estimated.any()


def _admits_grids(households: int) -> bool:
    lo, hi = DEFAULTS["grid_min_households"], DEFAULTS["grid_max_households"]
    return any(lo * k <= households <= hi * k for k in range(1, households // lo + 1))


def test_community_totals_admit_grids_of_300_to_500(district: SyntheticDistrict) -> None:
    totals = district.buildings.groupby("community_id").households.sum()
    assert len(totals) == len(district.communities) >= 5
    assert all(_admits_grids(int(t)) for t in totals)
    assert 2000 <= totals.median() <= 5000
    assert totals.between(1000, 7000).all()


def test_n_communities_is_honoured() -> None:
    district = synthetic_district(2000, seed=5, n_communities=6)
    assert len(district.communities) == 6
    assert district.buildings.community_id.nunique() == 6


def test_names_and_codes_are_chinese_and_well_formed(district: SyntheticDistrict) -> None:
    c, b = district.communities, district.buildings
    assert c.name.str.endswith("社区").all() and c.name.is_unique
    assert c.street_name.str.endswith("街道").all()
    assert c.admin_code.str.fullmatch(r"320508\d{6}").all() and c.admin_code.is_unique
    assert b.name.str.fullmatch(r".*\d+号楼?").all()
    assert b.name.str.endswith("号楼").any() and (~b.name.str.endswith("号楼")).any()
    assert district.compounds.name.str.fullmatch(r".+[一二三四五六七八九十百]+(小区|村)").all()
    streets = district.streets
    assert streets.loc[streets.road_class == "major", "name"].str.endswith("路").all()
    for frame in (c, district.compounds, district.service_points):
        assert frame.name.map(lambda s: bool(CJK.search(s))).all()


def test_service_points_cover_every_category(metric: dict[str, gpd.GeoDataFrame]) -> None:
    points = metric["service_points"]
    assert set(points.category) == CATEGORIES
    inside = points.sjoin(metric["communities"], predicate="within")
    assert len(inside) == len(points)
    in_building = points.sjoin(metric["buildings"], predicate="intersects")
    assert in_building.empty


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_buildings": 10}, r"n_buildings=10 is too small; pass at least 100"),
        ({"n_buildings": 1000, "county_code": "3205"}, r"county_code '3205' is not 6 digits"),
        ({"n_buildings": 1000, "n_communities": 0}, r"n_communities=0; pass 1 or more"),
        ({"n_buildings": 1000, "centre": (31.3, 200.0)}, r"is not a lon/lat position"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(LayerError, match=match):
        synthetic_district(**kwargs)


def test_write_district_round_trips(district: SyntheticDistrict, tmp_path: Path) -> None:
    path = tmp_path / "district.gpkg"
    path.write_text("stale")  # replaced, not appended to
    write_district(district, path)
    assert sorted(pyogrio.list_layers(path)[:, 0]) == sorted(SCHEMAS)
    back = gpd.read_file(path, layer="buildings")
    assert len(back) == len(district.buildings)
    assert list(back.columns) == list(district.buildings.columns)
    assert back.households.sum() == district.buildings.households.sum()


def test_write_district_rejects_single_layer_drivers(district: SyntheticDistrict, tmp_path: Path) -> None:
    with pytest.raises(LayerError, match=r"driver 'GeoJSON' cannot hold the five layers"):
        write_district(district, tmp_path / "d.geojson", driver="GeoJSON")


def test_main_writes_a_geopackage(tmp_path: Path) -> None:
    path = tmp_path / "cli.gpkg"
    assert main(["--buildings", "500", "--seed", "2", "-o", str(path), "-q"]) == 0
    assert len(gpd.read_file(path, layer="buildings")) == 500
