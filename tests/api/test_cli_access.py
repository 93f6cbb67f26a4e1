"""``wangge access`` end to end on small files."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pyogrio
from click.testing import CliRunner

from api.cli.access import access_command
from tests.geo.access_helpers import random_layers


def _write_inputs(tmp_path, *, raw: bool = False):
    streets, buildings, services = random_layers(seed=12)
    if raw:  # OSM-style raw tags, as geo.osm leaves them
        services["category"] = services["category"].map(
            {"kindergarten": "kindergarten", "bus_stop": "bus_stop", "primary_school": "school"})
    paths = {}
    for name, layer in (("b", buildings), ("s", streets), ("p", services)):
        paths[name] = tmp_path / f"{name}.gpkg"
        layer.to_crs(4326).to_file(paths[name])
    return paths, buildings


def test_access_cli_writes_buildings_and_coverage(tmp_path) -> None:
    paths, buildings = _write_inputs(tmp_path, raw=True)
    out = tmp_path / "out.gpkg"
    res = CliRunner().invoke(access_command, [
        "--buildings", str(paths["b"]), "--streets", str(paths["s"]),
        "--services", str(paths["p"]), "--levels", "300,500,1000", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "15分钟生活圈" in res.output and "步行网络" in res.output
    layers = dict(pyogrio.list_layers(out))
    assert layers["buildings"] is not None and layers["coverage"] is None
    b = gpd.read_file(out, layer="buildings")
    assert sorted(b.building_id) == sorted(buildings.building_id)
    assert {"dist_kindergarten", "dist_bus_stop", "dist_primary_school"} <= set(b.columns)
    d = b["dist_bus_stop"].to_numpy()
    assert np.nanmax(d) <= 1000 and (d[~np.isnan(d)] > 0).all()
    cov = pyogrio.read_dataframe(out, layer="coverage")
    assert set(cov["level_m"]) == {300.0, 500.0, 1000.0}
    assert cov["share"].between(0, 1).all()


def test_access_cli_errors_are_clean(tmp_path) -> None:
    paths, _ = _write_inputs(tmp_path)
    base = ["--buildings", str(paths["b"]), "--streets", str(paths["s"]),
            "--services", str(paths["p"]), "-o", str(tmp_path / "o.gpkg")]
    res = CliRunner().invoke(access_command, [*base, "--category-field", "kind"])
    assert res.exit_code == 2 and "names column(s) 'kind' that the file lacks" in res.output
    res = CliRunner().invoke(access_command, [*base, "--levels", "300,abc"])
    assert res.exit_code != 0 and "like 300,500,1000" in res.output
    res = CliRunner().invoke(access_command, [*base, "--levels", "500,300,1000"])
    assert res.exit_code != 0 and "positive and increasing" in res.output


def test_access_cli_suggests_new_sites(tmp_path) -> None:
    paths, _ = _write_inputs(tmp_path)
    out = tmp_path / "out.gpkg"
    base = ["--buildings", str(paths["b"]), "--streets", str(paths["s"]), "--services", str(paths["p"]),
            "--levels", "300,500,1000", "-o", str(out)]
    res = CliRunner().invoke(access_command, [*base, "--suggest", "2", "--suggest-category", "bus_stop"])
    assert res.exit_code == 0, res.output
    sites = gpd.read_file(out, layer="suggested_sites")
    assert 1 <= len(sites) <= 2 and set(sites["category"]) == {"bus_stop"}
    assert sites["rank"].tolist() == list(range(1, len(sites) + 1))
    assert set(sites["level_m"]) == {300.0}  # the bus stop's own (5-minute) level
    line = next(x for x in res.output.splitlines() if x.startswith("建议新址 bus_stop"))
    total = sites["households_added"].sum()
    assert f"新覆盖 {total:,.0f} /" in line and f"#1 +{sites['households_added'].iloc[0]:,.0f}" in line
    assert dict(pyogrio.list_layers(out)).keys() >= {"buildings", "coverage", "suggested_sites"}
    for k, match in (("0", "1..20"), ("99", "maxcover_max_sites")):
        bad = CliRunner().invoke(access_command, [*base, "--suggest", k])
        assert bad.exit_code == 2 and match in bad.output and "--suggest" in bad.output
    bad = CliRunner().invoke(access_command, [*base, "--suggest", "1", "--suggest-category", "casino"])
    assert bad.exit_code == 2 and "no service points of category 'casino'" in bad.output
