"""``wangge partition`` end to end on a small file."""

from __future__ import annotations

import json

import geopandas as gpd
import pyogrio
from click.testing import CliRunner

from api.cli.partition import partition_command
from tests.geo.test_partition import city


def test_partition_cli_writes_layers_and_report(tmp_path) -> None:
    b, c, s = city()
    b = b.rename(columns={"households": "户数"}).to_crs("EPSG:4326")
    b.to_file(tmp_path / "b.gpkg", driver="GPKG")
    c.to_crs("EPSG:4326").to_file(tmp_path / "c.gpkg", driver="GPKG")
    s.to_crs("EPSG:4326").to_file(tmp_path / "s.gpkg", driver="GPKG")
    out = tmp_path / "plan.gpkg"
    res = CliRunner().invoke(partition_command, [
        "--buildings", str(tmp_path / "b.gpkg"), "--communities", str(tmp_path / "c.gpkg"),
        "--streets", str(tmp_path / "s.gpkg"), "--households-field", "户数", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert {name for name, _ in pyogrio.list_layers(out)} == {"grids", "buildings"}
    grids = gpd.read_file(out, layer="grids")
    assert list(grids.columns) == ["grid_id", "community_id", "code", "households", "geometry"]
    assert grids["households"].between(300, 500).all()
    assigned = gpd.read_file(out, layer="buildings")
    assert assigned["grid_id"].isin(grids["grid_id"]).all() and len(assigned) == len(b)
    report = json.loads((tmp_path / "plan.report.json").read_text(encoding="utf-8"))
    assert report["share_in_range"] == 1.0
    assert (tmp_path / "plan.report.csv").read_text(encoding="utf-8").startswith("grid_id,")


def test_partition_cli_without_communities_reports_infeasible(tmp_path) -> None:
    b, _, _ = city(nx=1, ny=1, per_block=2, hh=275)
    b.to_crs("EPSG:4326").to_file(tmp_path / "b.gpkg", driver="GPKG")
    out = tmp_path / "plan.gpkg"
    res = CliRunner().invoke(partition_command, ["--buildings", str(tmp_path / "b.gpkg"), "-o", str(out)])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "plan.report.json").read_text(encoding="utf-8"))
    assert "550 households" in report["infeasible_communities"]["ALL"][0]


def test_partition_cli_bad_bounds_fails_cleanly(tmp_path) -> None:
    b, _, _ = city(nx=1, ny=1)
    b.to_crs("EPSG:4326").to_file(tmp_path / "b.gpkg", driver="GPKG")
    res = CliRunner().invoke(partition_command, ["--buildings", str(tmp_path / "b.gpkg"), "--min", "600",
                                                 "-o", str(tmp_path / "x.gpkg")])
    assert res.exit_code != 0
    assert "min ≤ target ≤ max" in res.output
