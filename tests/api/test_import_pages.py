"""Import in the browser (api.imports.pages): upload, map columns, job, report, nothing written on failure."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import geopandas as gpd
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from api.db import session_scope
from api.models import AuditEntry, Building, ImportRun
from api.users import create_user

PASSWORD = "grid2026plan"


@pytest.fixture(scope="module")
def district() -> dict[str, gpd.GeoDataFrame]:
    from geo.synthetic import synthetic_district

    d = synthetic_district(200, seed=3)
    return {k: getattr(d, k) for k in ("communities", "buildings", "streets", "compounds", "service_points")}


@pytest.fixture
def users(app: Flask) -> None:
    with app.app_context(), session_scope() as s:
        for role in ("admin", "planner", "worker", "viewer"):
            create_user(s, f"u_{role}", PASSWORD, role=role)


def _login(client: FlaskClient, role: str) -> FlaskClient:
    r = client.post("/login", data={"username": f"u_{role}", "password": PASSWORD})
    assert r.status_code == 302
    return client


@pytest.fixture
def planner(client: FlaskClient, users: None) -> FlaskClient:
    return _login(client, "planner")


def _geojson(gdf: gpd.GeoDataFrame, path: Path) -> Path:
    gdf.to_file(path, driver="GeoJSON")
    return path


def _shapefile_zip(gdf: gpd.GeoDataFrame, folder: Path, name: str) -> Path:
    folder.mkdir(exist_ok=True)
    gdf.to_file(folder / f"{name}.shp", driver="ESRI Shapefile", encoding="UTF-8")
    out = folder.parent / f"{name}.zip"
    with zipfile.ZipFile(out, "w") as zf:
        for part in folder.iterdir():
            zf.write(part, part.name)
    return out


def _csv(points: gpd.GeoDataFrame, path: Path) -> Path:
    frame = points.drop(columns="geometry").assign(lon=points.geometry.x, lat=points.geometry.y)
    frame.to_csv(path, index=False, encoding="utf-8-sig")
    return path


def _upload(client: FlaskClient, files: dict[str, tuple[Path, str]]):
    data = {kind: (io.BytesIO(path.read_bytes()), name) for kind, (path, name) in files.items()}
    return client.post("/api/imports/uploads", data=data, content_type="multipart/form-data")


def _wait(client: FlaskClient, job_id: str, timeout_s: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout_s
    seen = []
    while time.monotonic() < deadline:
        job = client.get(f"/api/imports/jobs/{job_id}").get_json()
        seen.append(job["progress"])
        if job["state"] in ("done", "failed"):
            assert seen == sorted(seen), "progress never goes back"
            return job
        time.sleep(0.1)
    raise AssertionError(f"import job {job_id} did not finish in {timeout_s} s")


def _counts(app: Flask) -> tuple[int, int, int]:
    with app.app_context(), session_scope() as s:
        return (s.scalar(select(func.count()).select_from(Building)),
                s.scalar(select(func.count()).select_from(ImportRun)),
                s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "workspace.import")))


def test_import_page_is_for_planners_and_admins(client: FlaskClient, users: None) -> None:
    assert client.get("/import").status_code == 302  # to the login page
    for role, status in (("viewer", 403), ("worker", 403), ("planner", 200), ("admin", 200)):
        client.post("/logout")
        _login(client, role)
        r = client.get("/import")
        assert r.status_code == status, role
        if status == 200:
            html = r.get_data(as_text=True)
            assert "导入数据" in html and 'name="buildings"' in html and "max_upload_mb" in html
    client.post("/logout")
    _login(client, "viewer")
    r = client.post("/api/imports/uploads", data={}, content_type="multipart/form-data")
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "forbidden"


def test_every_cli_format_imports_with_column_mapping(app: Flask, planner: FlaskClient, district: dict,
                                                     tmp_path: Path) -> None:
    buildings = district["buildings"][["building_id", "name", "use", "floors", "households", "geometry"]]
    buildings = buildings.rename(columns={"building_id": "楼号", "households": "户数"})
    gpkg = tmp_path / "data.gpkg"
    district["communities"].to_file(gpkg, layer="社区边界", driver="GPKG")
    district["compounds"].to_file(gpkg, layer="小区", driver="GPKG")
    files = {
        "buildings": (_shapefile_zip(buildings, tmp_path / "shp", "楼栋"), "楼栋.zip"),
        "communities": (gpkg, "数据.gpkg"),
        "streets": (_geojson(district["streets"], tmp_path / "streets.geojson"), "道路.geojson"),
        "service_points": (_csv(district["service_points"], tmp_path / "poi.csv"), "服务点.csv"),
    }
    r = _upload(planner, files)
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    described = body["files"]
    assert described["buildings"]["file"] == "楼栋.zip" and "楼号" in described["buildings"]["columns"]
    assert described["communities"]["layers"] == ["社区边界", "小区"]
    assert "lon" in described["service_points"]["columns"]
    # another layer of the GeoPackage: its own columns
    other = planner.get(f"/api/imports/uploads/{body['upload_id']}/columns?kind=communities&layer=小区").get_json()
    assert other["layer"] == "小区" and "compound_id" in other["columns"]
    r = planner.post("/api/imports", json={
        "upload_id": body["upload_id"], "layers": {"communities": "社区边界"},
        "fields": {"buildings": {"楼号": "building_id", "户数": "households"}}})
    assert r.status_code == 202
    job = _wait(planner, r.get_json()["job_id"])
    assert job["state"] == "done", job
    assert job["summary"]["counts"] == {"communities": 3, "buildings": 200, "streets": 238, "service_points": 68}
    assert job["summary"]["households"] == int(district["buildings"]["households"].sum())
    assert job["rows_done"] == job["rows_total"] == 3 + 200 + 238 + 68
    with app.app_context(), session_scope() as s:
        run = s.scalars(select(ImportRun).order_by(ImportRun.id.desc())).first()
        assert run.username == "u_planner" and run.sources["via"] == "web"
        assert run.sources["files"]["buildings"] == "楼栋.zip"
        assert run.sources["fields"] == {"buildings": {"楼号": "building_id", "户数": "households"}}
        stored = set(s.scalars(select(Building.building_id)))
    assert stored == set(district["buildings"]["building_id"].astype(str))
    # the upload is gone once imported
    again = planner.post("/api/imports", json={"upload_id": body["upload_id"]})
    assert again.status_code == 404 and "重新选择文件" in again.get_json()["error"]["fix"]


def test_validation_failure_reports_each_problem_and_writes_nothing(app: Flask, planner: FlaskClient,
                                                                   district: dict, tmp_path: Path) -> None:
    good = _upload(planner, {"buildings": (_geojson(district["buildings"], tmp_path / "b.geojson"), "b.geojson")})
    job = _wait(planner, planner.post("/api/imports", json={"upload_id": good.get_json()["upload_id"]})
                .get_json()["job_id"])
    assert job["state"] == "done"
    before = _counts(app)
    bad = district["buildings"].copy()
    bad.loc[bad.index[:3], "building_id"] = "DUP"
    bad.loc[bad.index[5], "households"] = -4
    r = _upload(planner, {"buildings": (_geojson(bad, tmp_path / "bad.geojson"), "坏楼栋.geojson")})
    job = _wait(planner, planner.post("/api/imports", json={"upload_id": r.get_json()["upload_id"]})
                .get_json()["job_id"])
    assert job["state"] == "failed" and "未写入任何数据" in job["message"]
    errors = [i for i in job["issues"] if i["severity"].startswith("错误")]
    by_code = {i["code"]: i for i in errors}
    assert by_code["duplicate_id"]["feature_id"] == "DUP" and by_code["duplicate_id"]["problem"] == "编号重复"
    assert by_code["duplicate_id"]["layer"] == "楼栋（buildings）"
    assert "列映射" in by_code["duplicate_id"]["fix"]
    assert by_code["negative_households"]["problem"] == "户数为负数"
    assert _counts(app) == before


def test_unreadable_file_and_bad_options_are_clear_4xx(app: Flask, planner: FlaskClient, district: dict,
                                                       tmp_path: Path) -> None:
    text = tmp_path / "x.txt"
    text.write_text("not a map", encoding="utf-8")
    r = _upload(planner, {"buildings": (text, "楼栋.txt")})
    assert r.status_code == 400 and "格式不支持" in r.get_json()["error"]["message"]
    r = _upload(planner, {"streets": (_geojson(district["streets"], tmp_path / "s.geojson"), "s.geojson")})
    assert r.status_code == 400 and "buildings" in r.get_json()["error"]["message"]
    upload_id = _upload(planner, {"buildings": (_geojson(district["buildings"], tmp_path / "b.geojson"),
                                                "b.geojson")}).get_json()["upload_id"]
    for body, field in (({"coords": "mars"}, "经纬度坐标系统"),
                        ({"fields": {"buildings": {"name": "nonsense"}}}, "标准列"),
                        ({"fields": {"buildings": {"name": "households", "use": "households"}}}, "同一标准列"),
                        ({"append": "yes"}, "追加")):
        r = planner.post("/api/imports", json={"upload_id": upload_id, **body})
        assert r.status_code == 400, body
        assert field in r.get_json()["error"]["message"] + r.get_json()["error"]["fix"], body
    # a CSV without coordinates: the job fails, naming the user's file, nothing written
    before = _counts(app)
    plain = tmp_path / "plain.csv"
    plain.write_text("building_id,households\nB1,10\n", encoding="utf-8")
    r = _upload(planner, {"buildings": (plain, "我的楼栋.csv")})
    job = _wait(planner, planner.post("/api/imports", json={"upload_id": r.get_json()["upload_id"]})
                .get_json()["job_id"])
    assert job["state"] == "failed" and "我的楼栋.csv" in job["issues"][0]["problem"]
    assert _counts(app) == before


def test_upload_larger_than_max_upload_mb_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from api import create_app, db

    monkeypatch.setenv("WANGGE_SECRET_KEY", "test-secret")
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "i"), "WTF_CSRF_ENABLED": False,
                      "DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}", "WANGGE": {"max_upload_mb": 1}})
    try:
        with app.app_context(), session_scope() as s:
            create_user(s, "u_planner", PASSWORD, role="planner")
        client = _login(app.test_client(), "planner")
        # encoded in memory: the test client would spool a large body to a file it never closes
        boundary, body = encode_multipart({"buildings": FileStorage(io.BytesIO(b"0" * (1024 * 1024 + 10)),
                                                                    filename="big.geojson")})
        r = client.post("/api/imports/uploads", data=body,
                        content_type=f"multipart/form-data; boundary={boundary}")
        assert r.status_code == 413, r.get_data(as_text=True)
        error = r.get_json()["error"]
        assert "1 MB" in error["message"] and "max_upload_mb" in error["message"]
    finally:
        db.dispose(app)


def test_a_failed_import_can_be_retried_with_other_options(app: Flask, planner: FlaskClient, district: dict,
                                                          tmp_path: Path) -> None:
    b = district["buildings"][["building_id", "households", "geometry"]].to_crs(32651)
    b = b.rename(columns={"building_id": "bid"})  # Shapefile names have at most 10 characters
    fields = {"buildings": {"bid": "building_id"}}
    archive = _shapefile_zip(b, tmp_path / "shp", "楼栋")
    with zipfile.ZipFile(archive) as zf:  # a Shapefile whose .prj got lost
        parts = {n: zf.read(n) for n in zf.namelist() if not n.endswith(".prj")}
    with zipfile.ZipFile(archive, "w") as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    upload_id = _upload(planner, {"buildings": (archive, "楼栋.zip")}).get_json()["upload_id"]
    job = _wait(planner, planner.post("/api/imports", json={"upload_id": upload_id, "fields": fields})
                .get_json()["job_id"])
    assert job["state"] == "failed" and _counts(app)[0] == 0
    problem = job["issues"][0]
    assert problem["layer"] == "楼栋（buildings）" and "坐标系" in problem["fix"]
    job = _wait(planner, planner.post("/api/imports", json={"upload_id": upload_id, "crs": "EPSG:32651",
                                                                 "fields": fields})
                .get_json()["job_id"])
    assert job["state"] == "done", job
    assert job["summary"]["approximate_communities"] and _counts(app)[0] == 200


def test_appending_ids_already_stored_fails_whole(app: Flask, planner: FlaskClient, district: dict,
                                                  tmp_path: Path) -> None:
    path = _geojson(district["buildings"], tmp_path / "b.geojson")
    first = _upload(planner, {"buildings": (path, "b.geojson")}).get_json()["upload_id"]
    assert _wait(planner, planner.post("/api/imports", json={"upload_id": first}).get_json()["job_id"]
                 )["state"] == "done"
    before = _counts(app)
    again = _upload(planner, {"buildings": (path, "b.geojson")}).get_json()["upload_id"]
    job = _wait(planner, planner.post("/api/imports", json={"upload_id": again, "append": True})
                .get_json()["job_id"])
    assert job["state"] == "failed" and "写入失败" in job["message"]
    assert "追加" in job["issues"][0]["fix"] and job["issues"][0]["problem"].startswith("写入失败")
    assert _counts(app) == before


def _issue_codes_in_geo() -> set[str]:
    """Every issue code written literally as the third argument of ``Issue(...)`` in geo/."""
    import re

    root = Path(__file__).resolve().parents[2] / "geo"
    call = re.compile(r'Issue\(\s*[^,()]+(?:\([^()]*\))?,\s*[^,()]+(?:\([^()]*\))?,\s*"([a-z_]+)"')
    return {m.group(1) for p in root.rglob("*.py") for m in call.finditer(p.read_text(encoding="utf-8"))}


def test_every_issue_code_has_chinese_wording_for_the_import_page() -> None:
    from webmap.import_report import ISSUE_TEXT_ZH

    codes = _issue_codes_in_geo()
    assert {"duplicate_id", "columns_recognised", "id_too_long"} <= codes  # the scan finds them
    assert sorted(codes - set(ISSUE_TEXT_ZH)) == []


def test_the_report_of_an_untidy_file_is_chinese_and_names_the_page_not_cli_options(
        app: Flask, planner: FlaskClient, district: dict, tmp_path: Path) -> None:
    """An ``id`` column read as building_id, an absurd household count, an overlong id and one with a line
    break: every report row in Chinese, none telling a web user to pass ``--field``."""
    b = district["buildings"][["building_id", "households", "geometry"]].head(6).rename(columns={"building_id": "id"})
    b["id"] = ["A1", "A\n2", "L" * 300, "A4", "A5", "A6"]
    b["households"] = [10, 10, 10, 10**7, 10, 10]
    r = _upload(planner, {"buildings": (_geojson(b, tmp_path / "b.geojson"), "楼栋.geojson")})
    job = _wait(planner, planner.post("/api/imports", json={"upload_id": r.get_json()["upload_id"]})
                .get_json()["job_id"])
    assert job["state"] == "failed" and _counts(app)[0] == 0
    rows = job["issues"]
    assert {"households_too_many", "id_too_long", "id_control_character"} <= {i["code"] for i in rows}, rows
    b["id"], b["households"] = [f"A{i}" for i in range(6)], 10  # tidied: imports, noting the id column it used
    r = _upload(planner, {"buildings": (_geojson(b, tmp_path / "ok.geojson"), "楼栋.geojson")})
    job = _wait(planner, planner.post("/api/imports", json={"upload_id": r.get_json()["upload_id"]})
                .get_json()["job_id"])
    assert job["state"] == "done" and _counts(app)[0] == 6
    assert "columns_recognised" in {i["code"] for i in job["issues"]}, job["issues"]
    for row in rows + job["issues"]:
        shown = row["problem"] + row["fix"]
        assert "--" not in shown and any("\u4e00" <= ch <= "\u9fff" for ch in row["problem"]), row


def test_3d_buildings_and_streets_import_flattened_on_every_database(app: Flask, planner: FlaskClient, district: dict,
                                                                      tmp_path: Path) -> None:
    """Footprints and streets with Z (CAD and survey exports): stored 2-D with one repaired row per layer;
    on PostgreSQL the Z rows crashed the import (PostGIS 2-D columns refuse them)."""
    import shapely

    from api.workspace import load_layer

    b = district["buildings"][["building_id", "households", "geometry"]].head(20)
    b = b.set_geometry(shapely.force_3d(b.geometry.to_numpy(), 12.5))
    streets = district["streets"].set_geometry(shapely.force_3d(district["streets"].geometry.to_numpy(), 3.0))
    r = _upload(planner, {"buildings": (_geojson(b, tmp_path / "b.geojson"), "楼栋.geojson"),
                          "streets": (_geojson(streets, tmp_path / "s.geojson"), "道路.geojson")})
    job = _wait(planner, planner.post("/api/imports", json={"upload_id": r.get_json()["upload_id"]})
                .get_json()["job_id"])
    assert job["state"] == "done", job
    flattened = [i for i in job["issues"] if i["code"] == "z_dropped"]
    assert sorted(i["layer"] for i in flattened) == sorted(["道路（streets）", "楼栋（buildings）"]), job["issues"]
    assert all("Z" in i["problem"] and i["severity"] == "已自动修复" for i in flattened)
    with app.app_context(), session_scope() as s:
        for kind, count in (("buildings", 20), ("streets", len(streets))):
            stored = load_layer(s, kind)
            assert len(stored) == count and not stored.geometry.has_z.any(), kind
