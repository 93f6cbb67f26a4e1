"""geo.readers.read_layer: every format, encodings, CRS rules and error messages."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from pyproj import Geod

from geo.chinacoords import wgs84_to_bd09, wgs84_to_gcj02
from geo.errors import CRSError, LayerError, ReadError
from geo.readers import detect_format, list_file_layers, read_layer

GEOD = Geod(ellps="WGS84")


def _shift_m(a: gpd.GeoSeries, b: gpd.GeoSeries) -> np.ndarray:
    # centroids in degrees are fine for footprints of a few tens of metres
    ca, cb = shapely.centroid(np.asarray(a.values)), shapely.centroid(np.asarray(b.values))
    return GEOD.inv(shapely.get_x(ca), shapely.get_y(ca), shapely.get_x(cb), shapely.get_y(cb))[2]


def _same_layer(out: gpd.GeoDataFrame, src: gpd.GeoDataFrame) -> None:
    assert out.crs.to_epsg() == 4326
    assert out["名称"].tolist() == src["名称"].tolist()
    assert _shift_m(out.geometry, src.geometry).max() < 0.01


# --- GeoPackage ------------------------------------------------------------------


def test_gpkg_single_layer(tmp_path: Path, small_buildings: gpd.GeoDataFrame) -> None:
    path = tmp_path / "b.gpkg"
    small_buildings.to_file(path, layer="楼栋")
    out = read_layer(path, kind="buildings", field_map={"bid": "building_id", "层数": "floors"})
    _same_layer(out, small_buildings)
    assert out["building_id"].tolist() == ["b1", "b2", "b3"]
    assert out["floors"].tolist() == [6, 18, 3]
    assert out.attrs["source"]["layer"] == "楼栋" and out.attrs["source"]["format"] == "gpkg"


def test_gpkg_several_layers(tmp_path: Path, small_buildings: gpd.GeoDataFrame) -> None:
    path = tmp_path / "two.gpkg"
    small_buildings.to_file(path, layer="buildings")
    small_buildings.head(1).to_file(path, layer="other")
    # the layer named after the kind is picked by itself; otherwise the error names --layer KIND=NAME
    assert len(read_layer(path, kind="buildings")) == len(small_buildings)
    assert read_layer(path, kind="buildings").attrs["source"]["layer"] == "buildings"
    with pytest.raises(ReadError, match="two.gpkg has 2 layers: buildings, other, none named streets; "
                                        "choose one with --layer streets=buildings"):
        read_layer(path, kind="streets")
    assert len(read_layer(path, kind="buildings", layer="other")) == 1
    with pytest.raises(ReadError, match="two.gpkg has no layer 'roads'; it has: buildings, other"):
        read_layer(path, kind="buildings", layer="roads")
    assert list_file_layers(path) == ["buildings", "other"]


# --- GeoJSON ---------------------------------------------------------------------


def test_geojson(tmp_path: Path, small_buildings: gpd.GeoDataFrame) -> None:
    path = tmp_path / "b.geojson"
    small_buildings.to_file(path, driver="GeoJSON")
    out = read_layer(path, kind="buildings")
    _same_layer(out, small_buildings)
    json_path = tmp_path / "b.json"
    json_path.write_bytes(path.read_bytes())
    _same_layer(read_layer(json_path, kind="buildings"), small_buildings)


def test_geojson_not_utf8(tmp_path: Path, small_buildings: gpd.GeoDataFrame) -> None:
    path = tmp_path / "gbk.geojson"
    path.write_bytes(small_buildings.to_json(ensure_ascii=False).encode("gbk"))
    # GBK (older Chinese tools) is detected and decoded, no --encoding needed
    out = read_layer(path, kind="buildings")
    assert out["名称"].tolist() == small_buildings["名称"].tolist()
    assert out.attrs["source"]["encoding"] == "GB18030"
    out = read_layer(path, kind="buildings", encoding="GB18030")
    assert out["名称"].tolist() == small_buildings["名称"].tolist()
    with pytest.raises(ReadError, match="gbk.geojson is not utf-8 text .*pass its encoding with --encoding"):
        read_layer(path, kind="buildings", encoding="utf-8")
    with pytest.raises(ReadError, match="unknown text encoding 'klingon'; use e.g. --encoding gbk"):
        read_layer(path, kind="buildings", encoding="klingon")


def test_geojson_neither_utf8_nor_gbk(tmp_path: Path, small_buildings: gpd.GeoDataFrame) -> None:
    path = tmp_path / "bad.geojson"
    path.write_bytes(small_buildings.to_json().encode("ascii")[:-2] + b'\xff\xff"}')
    with pytest.raises(ReadError, match=r"bad.geojson is not UTF-8 text \(nor GBK/GB18030\): re-save it as "
                                        "UTF-8, or pass its encoding with --encoding") as err:
        read_layer(path, kind="buildings")
    assert err.value.code == "not_utf8"


def test_geojson_projected_coordinates_without_crs_member(
    tmp_path: Path, small_buildings: gpd.GeoDataFrame
) -> None:
    # Common export mistake: metres written to GeoJSON with no crs member (read as WGS84).
    metric = small_buildings.to_crs(32651)
    doc = json.loads(metric.to_json())
    doc.pop("crs", None)
    path = tmp_path / "metres.geojson"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(CRSError, match=r"metres.geojson: coordinates reach x=\d+.*not lon/lat.*--crs EPSG:4547"):
        read_layer(path, kind="buildings")
    out = read_layer(path, kind="buildings", declared_crs="EPSG:32651")
    _same_layer(out, small_buildings)


# --- Shapefile -------------------------------------------------------------------


def _shapefile_parts(tmp_path: Path, gdf: gpd.GeoDataFrame, *, encoding: str, cpg: bool,
                     prj: bool = True, stem: str = "楼栋") -> dict[str, bytes]:
    folder = tmp_path / f"shp_{encoding}_{cpg}_{prj}"
    folder.mkdir()
    gdf.to_file(folder / f"{stem}.shp", encoding=encoding)
    parts = {p.name: p.read_bytes() for p in folder.iterdir()}
    if not cpg:
        parts.pop(f"{stem}.cpg")
    if not prj:
        parts.pop(f"{stem}.prj")
    return parts


@pytest.mark.parametrize(
    ("encoding", "cpg", "reported"),
    [("UTF-8", True, "from .cpg"), ("UTF-8", False, "UTF-8"), ("GBK", True, "from .cpg"),
     ("GBK", False, "GB18030")],
)
def test_zipped_shapefile_encodings(
    tmp_path: Path, small_buildings: gpd.GeoDataFrame, write_zip: Callable[..., Path],
    encoding: str, cpg: bool, reported: str,
) -> None:
    parts = _shapefile_parts(tmp_path, small_buildings, encoding=encoding, cpg=cpg)
    path = write_zip(tmp_path / "b.zip", {f"data/{k}": v for k, v in parts.items()})
    out = read_layer(path, kind="buildings")
    _same_layer(out, small_buildings)
    assert out.attrs["source"]["encoding"] == reported
    assert out.attrs["source"]["layer"] == "楼栋"


def test_shapefile_undecodable_dbf(tmp_path: Path, small_buildings: gpd.GeoDataFrame,
                                   write_zip: Callable[..., Path]) -> None:
    parts = _shapefile_parts(tmp_path, small_buildings, encoding="UTF-8", cpg=False)
    dbf = bytearray(parts["楼栋.dbf"])
    at = bytes(dbf).index("梅园".encode())
    dbf[at:at + 2] = b"\xff\xff"  # invalid in UTF-8 and in GB18030
    parts["楼栋.dbf"] = bytes(dbf)
    path = write_zip(tmp_path / "bad_text.zip", parts)
    with pytest.raises(ReadError, match="the .dbf text is neither UTF-8 nor GB18030; add a .cpg"):
        read_layer(path, kind="buildings")


def test_bare_shapefile_and_missing_prj(tmp_path: Path, small_buildings: gpd.GeoDataFrame) -> None:
    parts = _shapefile_parts(tmp_path, small_buildings, encoding="UTF-8", cpg=True, prj=False)
    folder = tmp_path / "bare"
    folder.mkdir()
    for name, data in parts.items():
        (folder / name).write_bytes(data)
    shp = folder / "楼栋.shp"
    with pytest.raises(CRSError, match=r"楼栋.shp has no CRS .*--crs EPSG:4326"):
        read_layer(shp, kind="buildings")
    _same_layer(read_layer(shp, kind="buildings", declared_crs="EPSG:4326"), small_buildings)


def test_zip_problems(tmp_path: Path, small_buildings: gpd.GeoDataFrame,
                      write_zip: Callable[..., Path]) -> None:
    with pytest.raises(ReadError, match="empty.zip is an empty zip"):
        read_layer(write_zip(tmp_path / "empty.zip", {}), kind="buildings")
    with pytest.raises(ReadError, match=r"noshp.zip holds no .shp file \(it has readme.txt\)"):
        read_layer(write_zip(tmp_path / "noshp.zip", {"readme.txt": b"hi"}), kind="buildings")
    parts = _shapefile_parts(tmp_path, small_buildings, encoding="UTF-8", cpg=True)
    no_dbf = {k: v for k, v in parts.items() if not k.endswith(".dbf")}
    with pytest.raises(ReadError, match=r"楼栋.shp comes without its .dbf"):
        read_layer(write_zip(tmp_path / "nodbf.zip", no_dbf), kind="buildings")
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(ReadError, match="corrupt.zip is not a readable zip file"):
        read_layer(corrupt, kind="buildings")


def test_zip_with_two_shapefiles(tmp_path: Path, small_buildings: gpd.GeoDataFrame,
                                 write_zip: Callable[..., Path]) -> None:
    a = _shapefile_parts(tmp_path, small_buildings, encoding="UTF-8", cpg=True, stem="a")
    b = _shapefile_parts(tmp_path, small_buildings.head(2), encoding="GBK", cpg=False, stem="b")
    path = write_zip(tmp_path / "two.zip", {**a, **b})
    with pytest.raises(ReadError, match=r"two.zip has 2 Shapefiles: a.shp, b.shp, none named buildings; "
                                        "choose one with --layer buildings=a.shp"):
        read_layer(path, kind="buildings")
    assert len(read_layer(path, kind="buildings", layer="b")) == 2
    assert list_file_layers(path) == ["a", "b"]


# --- CSV -------------------------------------------------------------------------


def _csv_text(gdf: gpd.GeoDataFrame, lon: str = "lon", lat: str = "lat") -> str:
    pts = gpd.GeoSeries(shapely.centroid(np.asarray(gdf.geometry.values)))
    rows = [f"{lon},{lat},point_id,名称,code"]
    rows += [f"{x:.7f},{y:.7f},p{i},{n},00{i}" for i, (x, y, n) in
             enumerate(zip(pts.x, pts.y, gdf["名称"], strict=True))]
    return "\n".join(rows) + "\n"


@pytest.mark.parametrize(
    ("encoding", "lon", "lat", "reported"),
    [("utf-8", "lon", "lat", "UTF-8"), ("utf-8-sig", "Longitude", "Latitude", "UTF-8"),
     ("gbk", "经度", "纬度", "GB18030"), ("utf-8", "lng", "lat", "UTF-8")],
)
def test_csv_lon_lat(tmp_path: Path, small_buildings: gpd.GeoDataFrame, encoding: str,
                     lon: str, lat: str, reported: str) -> None:
    path = tmp_path / "points.csv"
    path.write_bytes(_csv_text(small_buildings, lon, lat).encode(encoding))
    out = read_layer(path, kind="service_points")
    assert out.crs.to_epsg() == 4326  # lon/lat names imply degrees
    assert out["名称"].tolist() == small_buildings["名称"].tolist()
    assert out["code"].tolist() == ["000", "001", "002"]  # leading zeros kept as text
    assert lon not in out.columns and lat not in out.columns
    assert _shift_m(out.geometry, small_buildings.geometry).max() < 0.05
    assert out.attrs["source"]["encoding"] == reported


def test_csv_undecodable(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(b"lon,lat,name\n121.5,31.2,\xff\xfe\xff\n")
    with pytest.raises(ReadError, match=r"bad.csv is not UTF-8 or GB18030 text \(bad byte 0xff"):
        read_layer(path, kind="service_points")


def test_csv_xy_needs_crs_and_wkt(tmp_path: Path, small_buildings: gpd.GeoDataFrame) -> None:
    metric = small_buildings.to_crs(32651)
    xy = tmp_path / "xy.csv"
    c = metric.geometry.centroid  # metric CRS: no warning
    xy.write_text("x,y,name\n" + "".join(f"{a},{b},n{i}\n" for i, (a, b) in
                                       enumerate(zip(c.x, c.y, strict=True))), encoding="utf-8")
    with pytest.raises(CRSError, match=r"xy.csv has no CRS .*--crs EPSG:4326"):
        read_layer(xy, kind="service_points")
    out = read_layer(xy, kind="service_points", declared_crs="EPSG:32651")
    assert out.crs.to_epsg() == 4326 and 121.49 < out.geometry.x.min() < 121.5
    wkt = tmp_path / "wkt.csv"
    wkt.write_text("WKT;name\n" + "".join(f'"{g.wkt}";{n}\n' for g, n in
                                          zip(small_buildings.geometry, "abc", strict=True)), encoding="utf-8")
    poly = read_layer(wkt, kind="buildings", declared_crs="EPSG:4326")
    assert poly.geom_type.tolist() == ["Polygon"] * 3 and poly["name"].tolist() == ["a", "b", "c"]


def test_csv_bad_cells_and_missing_columns(tmp_path: Path) -> None:
    bad_num = tmp_path / "n.csv"
    bad_num.write_text("lon,lat\n121.5,31.2\n121.5,北纬31\n", encoding="utf-8")
    with pytest.raises(ReadError, match="n.csv line 3: lat '北纬31' is not a number"):
        read_layer(bad_num, kind="service_points")
    bad_wkt = tmp_path / "w.csv"
    bad_wkt.write_text("wkt\nPOINT (1 2)\nPOINT (1\n", encoding="utf-8")
    with pytest.raises(ReadError, match="w.csv line 3: wkt 'POINT \\(1' is not valid WKT"):
        read_layer(bad_wkt, kind="service_points", declared_crs="EPSG:4326")
    none = tmp_path / "none.csv"
    none.write_text("名称,地址\n幼儿园,东大名路\n", encoding="utf-8")
    with pytest.raises(ReadError, match="none.csv: no coordinate columns; .*columns are 名称, 地址"):
        read_layer(none, kind="service_points")


def test_csv_empty_coordinates_give_missing_geometry(tmp_path: Path) -> None:
    path = tmp_path / "gap.csv"
    path.write_text("lon,lat,name\n121.5,31.2,a\n,,b\n", encoding="utf-8")
    out = read_layer(path, kind="service_points")
    assert out.geometry.isna().tolist() == [False, True]


def test_csv_field_map_applies_before_coordinate_detection(tmp_path: Path) -> None:
    path = tmp_path / "east.csv"
    path.write_text("东经,北纬,编号\n121.5,31.2,7\n", encoding="utf-8")
    out = read_layer(path, kind="service_points",
                     field_map={"东经": "lon", "北纬": "lat", "编号": "point_id"})
    assert out.geometry.iloc[0].x == 121.5 and out["point_id"].tolist() == [7]


def test_swapped_lon_lat_hint(tmp_path: Path) -> None:
    path = tmp_path / "swapped.csv"
    path.write_text("lat,lon\n121.5,31.2\n", encoding="utf-8")
    with pytest.raises(CRSError, match="longitude and latitude look swapped"):
        read_layer(path, kind="service_points")


# --- Chinese coordinate systems and CRS rules -------------------------------------------


@pytest.mark.parametrize(("system", "forward"), [("gcj02", wgs84_to_gcj02), ("GCJ-02", wgs84_to_gcj02),
                                                 ("bd09", wgs84_to_bd09)])
def test_gcj02_and_bd09_input_converted(tmp_path: Path, small_buildings: gpd.GeoDataFrame,
                                        system: str, forward: Callable) -> None:
    shifted = small_buildings.copy()
    shifted.geometry = shapely.transform(
        small_buildings.geometry.values, lambda c: np.column_stack(forward(c[:, 0], c[:, 1]))
    )
    assert _shift_m(shifted.geometry, small_buildings.geometry).min() > 400
    path = tmp_path / "mars.gpkg"
    shifted.to_file(path)
    out = read_layer(path, kind="buildings", coord_system=system)
    assert _shift_m(out.geometry, small_buildings.geometry).max() < 0.05
    assert out.attrs["source"]["coord_system"] in ("gcj02", "bd09")


def test_cgcs2000_relabelled(tmp_path: Path, small_buildings: gpd.GeoDataFrame) -> None:
    path = tmp_path / "cgcs.gpkg"
    small_buildings.set_crs("EPSG:4490", allow_override=True).to_file(path)
    out = read_layer(path, kind="buildings", coord_system="CGCS2000")
    assert out.attrs["source"]["crs"] == "EPSG:4490"
    assert out.geometry.equals(small_buildings.geometry)


def test_gcj02_needs_lon_lat_crs(tmp_path: Path, small_buildings: gpd.GeoDataFrame) -> None:
    path = tmp_path / "utm.gpkg"
    small_buildings.to_crs(32651).to_file(path)
    with pytest.raises(CRSError, match="gcj02 coordinates are lon/lat, but the CRS is EPSG:32651"):
        read_layer(path, kind="buildings", coord_system="gcj02")


def test_declared_crs_overrides_wrong_prj(tmp_path: Path, small_buildings: gpd.GeoDataFrame) -> None:
    metric = small_buildings.to_crs(32651).set_crs(32650, allow_override=True)  # wrong label
    path = tmp_path / "wrong.gpkg"
    metric.to_file(path)
    assert _shift_m(read_layer(path, kind="buildings").geometry, small_buildings.geometry).min() > 1e5
    fixed = read_layer(path, kind="buildings", declared_crs="EPSG:32651")
    _same_layer(fixed, small_buildings)
    with pytest.raises(CRSError, match="unknown CRS 'EPSG:12345678'"):
        read_layer(path, kind="buildings", declared_crs="EPSG:12345678")


# --- file-level errors -----------------------------------------------------------


def test_file_errors(tmp_path: Path, small_buildings: gpd.GeoDataFrame) -> None:
    with pytest.raises(ReadError, match="file not found: .*nope.gpkg; check the path"):
        read_layer(tmp_path / "nope.gpkg", kind="buildings")
    with pytest.raises(ReadError, match=r"data.xlsx: unsupported file type; use one of .gpkg, .geojson"):
        read_layer(tmp_path / "data.xlsx", kind="buildings")
    folder = tmp_path / "folder.gpkg"
    folder.mkdir()
    with pytest.raises(ReadError, match="is a folder, not a file"):
        read_layer(folder, kind="buildings")
    big = tmp_path / "big.geojson"
    small_buildings.to_file(big, driver="GeoJSON")
    with pytest.raises(ReadError, match=r"big.geojson is 0.0 MB, over the import limit of 0.0001 MB .*WANGGE_MAX_UPLOAD_MB"):
        read_layer(big, kind="buildings", max_mb=0.0001)


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [("c.geojson", b'{"type": "FeatureCollection", "features": [', "cannot read c.geojson as GeoJSON"),
     ("c.osm.pbf", b"garbage" * 20, "cannot read OSM file")],
)
def test_corrupt_files(tmp_path: Path, name: str, content: bytes, match: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ReadError, match=match):
        read_layer(path, kind="buildings")


def test_truncated_gpkg(tmp_path: Path, small_buildings: gpd.GeoDataFrame) -> None:
    full = tmp_path / "full.gpkg"
    small_buildings.to_file(full)
    cut = tmp_path / "cut.gpkg"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 3])
    with pytest.raises(ReadError, match="cannot read cut.gpkg as a GeoPackage: .*malformed"):
        read_layer(cut, kind="buildings")


def test_argument_errors(tmp_path: Path, small_buildings: gpd.GeoDataFrame) -> None:
    path = tmp_path / "b.geojson"
    small_buildings.to_file(path, driver="GeoJSON")
    with pytest.raises(LayerError, match="unknown layer kind 'houses'; use one of communities"):
        read_layer(path, kind="houses")
    with pytest.raises(LayerError, match="unknown coordinate system 'mars'"):
        read_layer(path, kind="buildings", coord_system="mars")
    with pytest.raises(LayerError, match=r"--field names column\(s\) 'Floor' that the file lacks"):
        read_layer(path, kind="buildings", field_map={"Floor": "floors"})
    with pytest.raises(LayerError, match="would give two columns the same name \\('名称'\\)"):
        read_layer(path, kind="buildings", field_map={"bid": "名称"})
    with pytest.raises(ReadError, match=r"b.geojson holds one layer \(b\); drop --layer x"):
        read_layer(path, kind="buildings", layer="x")


def test_detect_format() -> None:
    assert detect_format("a/b.OSM.PBF") == "pbf"
    assert detect_format("x.shp.zip") == "zip"
    assert detect_format("x.json") == "geojson"


# --- OSM PBF through read_layer ------------------------------------------------------


def test_osm_pbf_through_read_layer(osm_pbf: Path) -> None:
    b = read_layer(osm_pbf, kind="buildings")
    assert len(b) == 3 and b.crs.to_epsg() == 4326 and b.attrs["source"]["format"] == "pbf"
    assert len(read_layer(osm_pbf, kind="streets")) == 5
    with pytest.raises(ReadError, match="tiny.osm.pbf: .*no 'communities' layer"):
        read_layer(osm_pbf, kind="communities")


# --- every real dataset ------------------------------------------------------------


def test_every_shared_dataset_layer(shared_datasets: Path) -> None:
    seen = 0
    for path in sorted(shared_datasets.iterdir()):
        if path.suffix not in (".gpkg", ".geojson"):
            continue
        for name, _ in pyogrio.list_layers(path):
            out = read_layer(path, kind="buildings", layer=name if path.suffix == ".gpkg" else None)
            assert out.crs.to_epsg() == 4326, (path.name, name)
            assert len(out) == pyogrio.read_info(path, layer=name)["features"] > 0
            minx, miny, maxx, maxy = out.total_bounds
            assert -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90
            seen += 1
    assert seen == 11


def test_tsinghua_campus_utm49_comes_out_in_wgs84(shared_datasets: Path) -> None:
    out = read_layer(shared_datasets / "tsinghua_campus.geojson", kind="communities")
    assert out.attrs["source"]["crs"] == "EPSG:32649"
    assert out.crs.to_epsg() == 4326
    c = out.geometry.iloc[0].centroid
    assert 116.30 < c.x < 116.34 and 39.99 < c.y < 40.02  # Tsinghua University, Haidian
    # the polygon keeps its size: ~3 km² whichever CRS it is measured in
    raw = gpd.read_file(shared_datasets / "tsinghua_campus.geojson")
    area_wgs = abs(GEOD.geometry_area_perimeter(out.geometry.iloc[0])[0])
    assert area_wgs == pytest.approx(raw.area.iloc[0], rel=0.02)


def test_real_gcj02_units_through_read_layer(shared_datasets: Path) -> None:
    path = shared_datasets / "china_admin_codes.gpkg"
    raw = read_layer(path, kind="communities", layer="units_gcj02")
    out = read_layer(path, kind="communities", layer="units_gcj02", coord_system="gcj02")
    sh = (raw["province"] == "上海市") & ~raw.geometry.is_empty
    d = _shift_m(out.geometry[sh], raw.geometry[sh])
    assert 400 < d.min() and d.max() < 600
