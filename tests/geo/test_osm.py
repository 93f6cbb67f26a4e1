"""geo.osm: OSM PBF reading (pyosmium) and OSM-derived column mapping."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
from pyproj import Geod
from shapely.geometry import LineString, Point

from geo.errors import LayerError, ReadError
from geo.layers import BUILDING_USES, ROAD_CLASSES
from geo.osm import (
    building_use_from_osm,
    normalise_osm_columns,
    read_osm_extract,
    read_osm_pbf,
    road_class_from_osm,
)

BUND = "shanghai_bund_osm.gpkg"


def test_pbf_buildings(osm_pbf: Path) -> None:
    b = read_osm_pbf(osm_pbf, kind="buildings").set_index("building_id")
    assert sorted(b.index) == ["r7", "w100", "w104"]  # way, multipolygon relation, amenity
    assert b.crs.to_epsg() == 4326
    assert b.loc["w100", "use"] == "residential" and b.loc["w100", "floors"] == 6
    assert b.loc["w100", "name"] == "1号楼"
    assert b.loc["r7", "use"] == "school" and b.loc["r7", "height_m"] == 12.0
    assert b.loc["w104", "use"] == "school"  # building=yes refined by amenity=school
    assert set(b.geom_type) == {"Polygon"}
    # ~0.0004° square at 31°N: about 38 m x 44 m
    area = abs(Geod(ellps="WGS84").geometry_area_perimeter(b.loc["w100", "geometry"])[0])
    assert 1_500 < area < 1_800


def test_pbf_streets(osm_pbf: Path) -> None:
    s = read_osm_pbf(osm_pbf, kind="streets").set_index("street_id")
    # subway (underground), construction and the way with a missing node are left out
    assert sorted(s.index) == ["w200", "w201", "w202", "w203", "w205"]
    assert s.loc["w200", ["road_class", "foot", "name"]].tolist() == ["major", True, "东大名路"]
    assert s.loc["w201", ["road_class", "foot"]].tolist() == ["path", False]  # foot=no
    assert not s.loc["w202", "foot"]  # motorway
    assert s.loc["w203", "road_class"] == "rail" and s.loc["w205", "road_class"] == "water"
    assert set(s["road_class"]) <= set(ROAD_CLASSES)
    assert set(s.geom_type) == {"LineString"}


def test_pbf_service_points_and_compounds(osm_pbf: Path) -> None:
    p = read_osm_pbf(osm_pbf, kind="service_points").set_index("point_id")
    assert dict(p["category"]) == {
        "n60": "kindergarten", "n61": "convenience", "n63": "bus_stop",
        "w102": "clinic", "w104": "school",
    }  # the bench is street furniture, not a service point
    assert set(p.geom_type) == {"Point"}
    clinic = p.loc["w102", "geometry"]
    assert clinic.x == pytest.approx(121.4950 + 0.002 + 0.0002)
    c = read_osm_pbf(osm_pbf, kind="compounds")
    assert c[["compound_id", "name"]].values.tolist() == [["w103", "梅园小区"]]


def test_pbf_errors(osm_pbf: Path, tmp_path: Path) -> None:
    with pytest.raises(LayerError, match="OSM data has no 'communities' layer; use one of buildings"):
        read_osm_pbf(osm_pbf, kind="communities")
    bad = tmp_path / "bad.osm.pbf"
    bad.write_bytes(b"not a pbf at all" * 10)
    with pytest.raises(ReadError, match="cannot read OSM file .*bad.osm.pbf.*complete .osm.pbf"):
        read_osm_pbf(bad, kind="buildings")


@pytest.mark.parametrize(
    ("value", "use"),
    [("apartments", "residential"), ("house", "residential"), ("commercial", "commercial"),
     ("school", "school"), ("hospital", "hospital"), ("warehouse", "industrial"),
     ("embassy", "public"), ("shed", "other"), ("yes", None), (None, None), ("", None)],
)
def test_building_use_from_osm(value: str | None, use: str | None) -> None:
    assert building_use_from_osm(value) == use
    assert use is None or use in BUILDING_USES


@pytest.mark.parametrize(
    ("highway", "cls"),
    [("primary", "major"), ("trunk_link", "major"), ("tertiary", "secondary"),
     ("residential", "minor"), ("service", "lane"), ("steps", "path"), ("proposed", None), (3, None)],
)
def test_road_class_from_osm(highway: object, cls: str | None) -> None:
    assert road_class_from_osm(highway) == cls


def test_normalise_bund_buildings(shared_datasets: Path) -> None:
    raw = gpd.read_file(shared_datasets / BUND, layer="buildings")
    b = normalise_osm_columns(raw, kind="buildings")
    assert list(b.columns) == ["building_id", "name", "use", "height_m", "geometry"]
    assert len(b) == (raw["kind"] == "building").sum()  # building parts dropped
    assert b["building_id"].is_unique
    assert set(b["use"].dropna()) <= set(BUILDING_USES)
    apartments = raw.loc[raw["kind_detail"] == "apartments", "id"].astype(str)
    assert (b.set_index("building_id").loc[apartments, "use"] == "residential").all()
    assert b["height_m"].notna().sum() > 500


def test_normalise_bund_roads(shared_datasets: Path) -> None:
    raw = gpd.read_file(shared_datasets / BUND, layer="roads")
    s = normalise_osm_columns(raw, kind="streets").set_index("street_id")
    assert len(s) == len(raw) - (raw["kind_detail"] == "subway").sum()
    assert set(s["road_class"]) <= set(ROAD_CLASSES)
    by_id = raw.assign(id=raw["id"].astype(str)).set_index("id")
    primary = by_id.index[by_id["kind_detail"] == "primary"]
    assert (s.loc[primary, "road_class"] == "major").all()
    footway = by_id.index[by_id["kind_detail"] == "footway"]
    assert (s.loc[footway, "road_class"] == "path").all() and s.loc[footway, "foot"].all()
    ferry = by_id.index[by_id["kind"] == "ferry"]
    assert (s.loc[ferry, "road_class"] == "water").all() and not s.loc[ferry, "foot"].any()


def test_normalise_bund_landuse_and_pois(shared_datasets: Path) -> None:
    landuse = gpd.read_file(shared_datasets / BUND, layer="landuse")
    c = normalise_osm_columns(landuse, kind="compounds")
    assert len(c) == (landuse["kind"] == "residential").sum() == 18
    assert {"梅一小区", "崂山二村"} <= set(c["name"].dropna())
    pois = gpd.read_file(shared_datasets / BUND, layer="pois")
    p = normalise_osm_columns(pois, kind="service_points")
    assert p["point_id"].is_unique  # the tile copy of one hotel is dropped
    assert len(p) == pois["id"].nunique()
    assert {"kindergarten", "bus_stop", "toilets", "supermarket"} <= set(p["category"])


def test_normalise_errors() -> None:
    roads = gpd.GeoDataFrame({"kind": ["path"]}, geometry=[LineString([(0, 0), (1, 1)])])
    with pytest.raises(LayerError, match=r"kind='streets'\): column\(s\) id missing; got kind, geometry"):
        normalise_osm_columns(roads, kind="streets")
    pts = gpd.GeoDataFrame({"id": [1]}, geometry=[Point(0, 0)])
    with pytest.raises(LayerError, match="OSM data has no 'grids' layer"):
        normalise_osm_columns(pts, kind="grids")


def test_osm_extract_layers(shared_datasets: Path) -> None:
    path = shared_datasets / BUND
    got = read_osm_extract(path)
    raw_roads = gpd.read_file(path, layer="roads")
    assert set(got) == {"buildings", "streets", "compounds"}
    b, s, k = got["buildings"], got["streets"], got["compounds"]
    assert set(b.geom_type) <= {"Polygon", "MultiPolygon"} and b.is_valid.all() and b["building_id"].is_unique
    assert set(s.geom_type) == {"LineString"}  # multi-lines exploded
    assert "water" not in set(s["road_class"]) and (raw_roads["kind"] == "ferry").any()  # ferries dropped
    assert set(s["street_id"]) == set(normalise_osm_columns(raw_roads[raw_roads["kind"] != "ferry"],
                                                            kind="streets")["street_id"])
    assert len(k) == 18 and b.crs == s.crs == k.crs == raw_roads.crs
