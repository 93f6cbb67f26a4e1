"""Every command that reads layers works on the shared real datasets exactly as shipped,
chooses ids by itself and says so, and takes the same --layer / --field options."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
import shapely
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskCliRunner

from api import db
from api.cli import main
from api.cli.access import access_command
from api.cli.partition import partition_command
from api.workspace import load_layer

SUZHOU = "suzhou_gusu_buildings.geojson"
BUND = "shanghai_bund_osm.gpkg"


def _partition(args: list[str], out: Path) -> tuple[object, dict]:
    res = CliRunner().invoke(partition_command, [*args, "-o", str(out)])
    assert res.exit_code == 0, res.output
    report = json.loads(out.with_suffix(".report.json").read_text(encoding="utf-8"))
    return res, report


@pytest.fixture(scope="module")
def suzhou_utm(tmp_path_factory: pytest.TempPathFactory, shared_datasets: Path) -> Path:
    """The Suzhou file projected to UTM 51N, as a planner's GIS would export it."""
    path = tmp_path_factory.mktemp("utm") / "suzhou_utm.gpkg"
    gpd.read_file(shared_datasets / SUZHOU).to_crs(32651).to_file(path, driver="GPKG")
    return path


def test_partition_suzhou_raw_estimates_households_and_names_the_ids(tmp_path: Path,
                                                                       shared_datasets: Path) -> None:
    res, report = _partition(["--buildings", str(shared_datasets / SUZHOU)], tmp_path / "suzhou.gpkg")
    # Id is 0 for every building: the feature id is used, and the console says so
    assert "column(s) 'Id' are not unique: used the feature id" in res.output
    assert "'Floor' as floors" in res.output
    buildings = gpd.read_file(tmp_path / "suzhou.gpkg", layer="buildings")
    assert len(buildings) == 3076 and buildings["building_id"].is_unique
    assert buildings["grid_id"].notna().all()
    # households come from Floor × footprint ÷ dwelling area, in metres (not degrees²)
    assert 20_000 < report["households"] < 100_000
    assert report["share_in_range"] >= 0.95


def test_partition_suzhou_projected_gives_the_same_households(tmp_path: Path, shared_datasets: Path,
                                                              suzhou_utm: Path) -> None:
    _, wgs = _partition(["--buildings", str(shared_datasets / SUZHOU)], tmp_path / "a.gpkg")
    _, utm = _partition(["--buildings", str(suzhou_utm)], tmp_path / "b.gpkg")
    assert abs(utm["households"] - wgs["households"]) <= 0.001 * wgs["households"]


def test_partition_bund_gpkg_picks_its_layers_by_kind(tmp_path: Path, shared_datasets: Path) -> None:
    bund = str(shared_datasets / BUND)
    res, report = _partition(["--buildings", bund, "--streets", bund, "--compounds", bund],
                             tmp_path / "bund.gpkg")
    assert "OpenStreetMap tile layer" in res.output
    assert report["grids"] > 100 and report["share_in_range"] >= 0.95
    assigned = gpd.read_file(tmp_path / "bund.gpkg", layer="buildings")
    assert assigned["grid_id"].notna().all() and assigned["building_id"].is_unique


def test_partition_buildings_with_an_id_column(tmp_path: Path) -> None:
    boxes = [shapely.box(120.6 + i * 0.0004, 31.3, 120.6 + i * 0.0004 + 0.0002, 31.3002) for i in range(40)]
    gdf = gpd.GeoDataFrame({"id": [f"H{i}" for i in range(40)], "层数": [6] * 40}, geometry=boxes, crs=4326)
    gdf.to_file(tmp_path / "b.geojson", driver="GeoJSON")
    res, _ = _partition(["--buildings", str(tmp_path / "b.geojson"), "--min", "10", "--max", "300",
                         "--target", "100"], tmp_path / "out.gpkg")
    assert "used the unique column 'id' as building_id" in res.output and "'层数' as floors" in res.output
    out = gpd.read_file(tmp_path / "out.gpkg", layer="buildings")
    assert sorted(out["building_id"]) == sorted(gdf["id"])


def test_partition_errors_name_cli_options(tmp_path: Path) -> None:
    b = gpd.GeoDataFrame({"building_id": ["B1"]}, geometry=[shapely.box(120.6, 31.3, 120.6002, 31.3002)],
                         crs=4326)
    path = tmp_path / "two.gpkg"
    b.to_file(path, layer="甲")
    b.to_file(path, layer="乙")
    res = CliRunner().invoke(partition_command, ["--buildings", str(path), "-o", str(tmp_path / "o.gpkg")])
    assert res.exit_code == 2 and "choose one with --layer buildings=" in res.output
    assert "field_map" not in res.output and "layer=..." not in res.output
    res = CliRunner().invoke(partition_command, ["--buildings", str(path), "--layer", "buildings=甲",
                                                 "--field", "buildings:户数=households",
                                                 "-o", str(tmp_path / "o.gpkg")])
    assert res.exit_code == 2 and "--field names column(s) '户数' that the file lacks" in res.output


def test_import_bund_and_suzhou_as_shipped(app: Flask, runner: FlaskCliRunner, shared_datasets: Path,
                                           suzhou_utm: Path) -> None:
    bund = str(shared_datasets / BUND)
    res = runner.invoke(main, ["import", "--buildings", bund, "--streets", bund, "--compounds", bund,
                               "--services", bund])
    assert res.exit_code == 0, res.output
    with app.app_context(), db.session_scope() as session:
        points = load_layer(session, "service_points")
        streets = load_layer(session, "streets")
    assert len(points) > 400 and points["point_id"].is_unique and points["category"].notna().all()
    assert set(streets["road_class"]) >= {"major", "path"}
    for path in (shared_datasets / SUZHOU, suzhou_utm):
        res = runner.invoke(main, ["import", "--buildings", str(path)])
        assert res.exit_code == 0, res.output
        assert "used the feature id" in res.output
        with app.app_context(), db.session_scope() as session:
            b = load_layer(session, "buildings")
        assert len(b) == 3076 and int(b["households"].sum()) > 20_000


def test_access_bund_lists_every_dropped_category(tmp_path: Path, shared_datasets: Path) -> None:
    bund = str(shared_datasets / BUND)
    out = tmp_path / "acc.gpkg"
    res = CliRunner().invoke(access_command, ["--buildings", bund, "--streets", bund, "--services", bund,
                                              "-o", str(out)])
    assert res.exit_code == 0, res.output
    dropped = pyogrio.read_dataframe(out, layer="dropped_categories")
    pois = gpd.read_file(bund, layer="pois").drop_duplicates("id")
    kept = gpd.read_file(out, layer="buildings").filter(like="dist_").columns
    # every point is either analysed or listed with its category, on the console and in the file
    assert {"dist_bus_stop", "dist_public_toilet", "dist_food_market"} <= set(kept)
    assert 0 < dropped["points"].sum() < len(pois)
    for row in dropped.itertuples(index=False):
        assert f"  {row.category}: {row.points}\n" in res.output
    assert "restaurant" in set(dropped["category"]) and "bus_stop" not in set(dropped["category"])


def test_access_maps_common_english_and_chinese_categories(tmp_path: Path) -> None:
    cats = ["park", "grocery", "healthcare", "pharmacy", "elderly_social", "school", "supermarket",
            "marketplace", "clinic", "doctors", "hospital", "playground", "kindergarten",
            "social_facility", "toilets", "bus_stop", "超市", "菜市场", "卫生服务中心", "幼儿园", "karaoke"]
    x0, y0 = 120.6, 31.3
    streets = gpd.GeoDataFrame({"street_id": ["S1", "S2"]}, crs=4326, geometry=[
        shapely.LineString([(x0, y0), (x0 + 0.01, y0)]), shapely.LineString([(x0 + 0.005, y0 - 0.005),
                                                                             (x0 + 0.005, y0 + 0.005)])])
    buildings = gpd.GeoDataFrame({"building_id": ["B1", "B2"]}, crs=4326, geometry=[
        shapely.box(x0 + 0.001, y0 + 0.0002, x0 + 0.0013, y0 + 0.0004),
        shapely.box(x0 + 0.006, y0 - 0.0004, x0 + 0.0063, y0 - 0.0002)])
    points = gpd.GeoDataFrame({"point_id": [f"P{i}" for i in range(len(cats))], "category": cats}, crs=4326,
                              geometry=[shapely.Point(x0 + 0.0004 * i, y0 + 0.0001) for i in range(len(cats))])
    paths = {}
    for name, layer in (("b", buildings), ("s", streets), ("p", points)):
        paths[name] = tmp_path / f"{name}.geojson"
        layer.to_file(paths[name], driver="GeoJSON")
    out = tmp_path / "o.gpkg"
    res = CliRunner().invoke(access_command, ["--buildings", str(paths["b"]), "--streets", str(paths["s"]),
                                              "--services", str(paths["p"]), "-o", str(out)])
    assert res.exit_code == 0, res.output
    dropped = pyogrio.read_dataframe(out, layer="dropped_categories")
    assert dropped.values.tolist() == [["karaoke", 1]]
    assert "未识别类别，已剔除 1 / 21 个服务点" in res.output and "  karaoke: 1" in res.output
    dists = set(gpd.read_file(out, layer="buildings").filter(like="dist_").columns)
    assert {"dist_park", "dist_food_market", "dist_health_station", "dist_elderly_daycare", "dist_kindergarten",
            "dist_community_health_centre", "dist_playground", "dist_public_toilet", "dist_bus_stop",
            "dist_pharmacy", "dist_primary_school"} <= dists


def test_import_gbk_geojson_and_bad_files_from_the_cli(app: Flask, runner: FlaskCliRunner, tmp_path: Path) -> None:
    b = gpd.GeoDataFrame({"编号": ["甲1", "甲2"], "层数": [3, 6]}, crs=4326,
                         geometry=[shapely.box(120.6, 31.3, 120.6003, 31.3002),
                                   shapely.box(120.601, 31.3, 120.6013, 31.3002)])
    gbk = tmp_path / "楼栋.geojson"
    gbk.write_bytes(b.to_json(ensure_ascii=False, drop_id=True).encode("gbk"))
    for extra in ([], ["--encoding", "gbk"]):
        res = runner.invoke(main, ["import", "--buildings", str(gbk), *extra])
        assert res.exit_code == 0, res.output
        assert "used the unique column '编号' as building_id" in res.output
        with app.app_context(), db.session_scope() as session:
            assert sorted(load_layer(session, "buildings")["building_id"]) == ["甲1", "甲2"]
    zero = tmp_path / "zero.geojson"
    zero.symlink_to("/dev/zero")
    empty = tmp_path / "empty.gpkg"
    empty.write_bytes(b"")
    for path, message in ((zero, "is not a regular file"), (empty, "the file is empty")):
        res = runner.invoke(main, ["import", "--buildings", str(path)])
        assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output


def test_partition_report_csv_has_no_formula_cells(tmp_path: Path) -> None:
    from tests.geo.test_partition import city

    b, c, s = city(nx=2, ny=1)
    c = c.assign(community_id="=1+2")
    b.drop(columns=[x for x in ("community_id",) if x in b.columns]).to_crs(4326).to_file(tmp_path / "b.gpkg")
    c.to_crs(4326).to_file(tmp_path / "c.gpkg")
    _partition(["--buildings", str(tmp_path / "b.gpkg"), "--communities", str(tmp_path / "c.gpkg")],
               tmp_path / "o.gpkg")
    text = (tmp_path / "o.report.csv").read_text(encoding="utf-8")
    assert "'=1+2" in text and ",=1+2" not in text
