"""The 15-minute service circle page and its JSON routes (api.access.pages)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.db import session_scope
from api.users import create_user
from api.workspace import import_workspace
from webmap.offline import assert_offline

PASSWORD = "grid2026plan"
N_BUILDINGS = 400


@pytest.fixture
def seeded(app: Flask) -> dict:
    from geo.prepare import prepare_layers
    from geo.synthetic import synthetic_district

    district = synthetic_district(N_BUILDINGS, seed=3)
    names = ("communities", "buildings", "streets", "compounds", "service_points")
    layers = {k: getattr(district, k) for k in names}
    prepared = prepare_layers(layers, settings=app.config["WANGGE"])
    with app.app_context(), session_scope() as s:
        import_workspace(s, prepared, user="test", sources={"kind": "synthetic"}, note="合成示例数据")
        create_user(s, "viewer", PASSWORD, role="viewer", display_name="王小明")
    return prepared.layers


@pytest.fixture
def viewer(app: Flask, client: FlaskClient, seeded: dict) -> FlaskClient:
    client.post("/login", data={"username": "viewer", "password": PASSWORD})
    return client


def _text(html: str) -> str:
    """The page with the map script's JSON string escapes (\\uXXXX) decoded."""
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), html)


def _number(html: str, key: str) -> str:
    found = re.search(rf'data-num="{key}">([^<]*)<', html)
    assert found is not None, key
    return found.group(1)


def test_access_needs_login(client: FlaskClient) -> None:
    r = client.get("/access")
    assert r.status_code == 302 and r.location.startswith("/login?next=/access")


def test_page_renders_the_service_circle_layers(viewer: FlaskClient, seeded: dict) -> None:
    r = viewer.get("/access?category=kindergarten&level=300")
    html = _text(r.get_data(as_text=True))
    assert r.status_code == 200
    assert_offline(html)
    for text in ("生活圈覆盖", "幼儿园", "5分钟生活圈（300 米）", "步行服务圈", "未覆盖楼栋",
                 "覆盖住户比例（按社区）", "直线距离筛查（仅供参考）"):
        assert text in html, text
    assert "L.control.scale({imperial: false" in html and "L.control.scale()" not in html  # metres, no feet
    registry = html[html.index("window.wanggeLayers"):]
    for layer in ("zones", "streets", "isochrones", "buildings", "services"):
        assert f'"{layer}":' in registry, layer
    share = float(_number(html, "share").split()[0])
    screening = float(_number(html, "share_euclidean").split()[0])
    over = float(_number(html, "overstatement").split()[0])
    assert 0 <= share <= screening <= 100
    assert over == pytest.approx(screening - share, abs=0.11)
    # The screening view is labelled as such on the page and the map.
    r = viewer.get("/access?category=kindergarten&level=300&mode=euclidean")
    html = _text(r.get_data(as_text=True))
    assert r.status_code == 200 and "直线距离筛查，仅供参考" in html and "直线距离圆（筛查）" in html


def test_summary_json_has_coverage_per_community(viewer: FlaskClient, seeded: dict) -> None:
    r = viewer.get("/api/access/summary?category=kindergarten&level=300")
    assert r.status_code == 200
    body = r.get_json()
    assert body["group_by"] == "community_id" and body["levels_m"] == [300.0, 500.0, 1000.0]
    assert {c["value"] for c in body["categories"]} >= {"kindergarten", "convenience_store"}
    (area,) = body["area"]
    communities = set(seeded["communities"]["community_id"])
    assert {g["group"] for g in body["groups"]} <= communities | {None}
    assert len(body["groups"]) >= 1
    for row in body["groups"] + [area]:
        assert row["category"] == "kindergarten" and row["level_m"] == 300.0
        assert set(row) >= {"households", "covered_households", "share", "share_euclidean"}
        assert 0 <= row["covered_households"] <= row["households"]
    covered = sum(g["covered_households"] for g in body["groups"])
    assert covered == pytest.approx(area["covered_households"])
    everything = viewer.get("/api/access/summary").get_json()
    assert len(everything["area"]) == 3 * (len(everything["categories"]) + 1)  # + complete


def test_isochrones_geojson_one_polygon_per_service_point(viewer: FlaskClient, seeded: dict) -> None:
    r = viewer.get("/api/access/isochrones.geojson?category=convenience_store&level=500")
    assert r.status_code == 200
    body = r.get_json()
    assert body["type"] == "FeatureCollection"
    points = seeded["service_points"]
    stores = set(points.loc[points["category"] == "convenience_store", "point_id"])
    ids = [f["properties"]["point_id"] for f in body["features"]]
    assert len(ids) == len(set(ids)) and set(ids) <= stores and len(ids) >= 0.9 * len(stores)
    for f in body["features"]:
        assert f["geometry"]["type"] in ("Polygon", "MultiPolygon")
        assert f["properties"]["level_m"] == 500.0
        lon, lat = np.asarray(f["geometry"]["coordinates"][0] if f["geometry"]["type"] == "Polygon"
                              else f["geometry"]["coordinates"][0][0]).T
        assert (np.abs(lon) <= 180).all() and (np.abs(lat) <= 90).all()


@pytest.mark.parametrize(("url", "match", "code", "field"), [
    ("/api/access/isochrones.geojson?category=casino&level=500", "未知的设施类别 'casino'", "unknown_category",
     "category"),
    ("/api/access/summary?category=casino", "未知的设施类别 'casino'", "unknown_category", "category"),
    ("/api/access/summary?level=750", "level='750' 不可用", "bad_level", "level"),
    ("/api/access/isochrones.geojson?category=kindergarten&mode=crow", "mode='crow' 不可用", "bad_mode", "mode"),
])
def test_bad_arguments_answer_400_with_the_error_shape(viewer: FlaskClient, url: str, match: str, code: str,
                                                       field: str) -> None:
    r = viewer.get(url)
    assert r.status_code == 400
    error = r.get_json()["error"]
    assert error["code"] == code and match in error["message"] and error["fix"] and error["field"] == field


def test_unknown_category_on_the_page_is_a_chinese_error_page(viewer: FlaskClient) -> None:
    r = viewer.get("/access?category=casino")
    assert r.status_code == 400 and "未知的设施类别" in r.get_data(as_text=True)


def test_result_is_cached_per_import_run(app: Flask, viewer: FlaskClient) -> None:
    viewer.get("/api/access/summary")
    first = app.extensions["wangge_access"]["state"]
    viewer.get("/api/access/summary?category=kindergarten")
    assert app.extensions["wangge_access"]["state"] is first


def test_active_plan_grids_replace_communities(app: Flask, viewer: FlaskClient, seeded: dict) -> None:
    from shapely.geometry import box

    from api.models import PlanGrid, PlanVersion

    assert viewer.get("/api/access/summary").get_json()["group_by"] == "community_id"
    minx, miny, maxx, maxy = seeded["buildings"].total_bounds
    mid = (minx + maxx) / 2
    halves = {"W": box(minx - 0.01, miny - 0.01, mid, maxy + 0.01),
              "E": box(mid, miny - 0.01, maxx + 0.01, maxy + 0.01)}
    with app.app_context(), session_scope() as s:
        plan = PlanVersion(name="东西两网格", author="test", status="published", is_active=True)
        s.add(plan)
        s.flush()
        s.add_all([PlanGrid(plan_version_id=plan.id, grid_id=k, name=f"{k}网格", geometry=g)
                   for k, g in halves.items()])
    body = viewer.get("/api/access/summary?category=kindergarten&level=300").get_json()
    assert body["group_by"] == "grid_id" and body["plans"] == ["东西两网格"]
    assert {g["group"] for g in body["groups"]} == {"W", "E"}
    (area,) = body["area"]
    assert sum(g["households"] for g in body["groups"]) == pytest.approx(area["households"])
    html = _text(viewer.get("/access?category=kindergarten").get_data(as_text=True))
    assert "覆盖率按网格" in html and "东西两网格" in html and "W网格" in html


def test_map_of_a_view_is_built_once_until_a_plan_is_published(app: Flask, viewer: FlaskClient,
                                                                 seeded: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """The page's map (1-1.5 s to build on the demo) is kept per view; a publish is a new key."""
    from shapely.geometry import box

    from api.access import pages
    from api.models import PlanGrid, PlanVersion

    built: list[str] = []
    real = pages._map_parts
    monkeypatch.setattr(pages, "_map_parts", lambda state, category, *a, **k: (
        built.append(category), real(state, category, *a, **k))[1])
    first = viewer.get("/access?category=kindergarten&level=300").get_data(as_text=True)
    again = viewer.get("/access?category=kindergarten&level=300").get_data(as_text=True)
    assert built == ["kindergarten"] and _map_html(first) == _map_html(again)
    viewer.get("/access?category=kindergarten&level=300&mode=euclidean")
    assert len(built) == 2  # another view, another map
    with app.app_context(), session_scope() as s:
        plan = PlanVersion(name="整片一网格", author="test", status="published", is_active=True)
        s.add(plan)
        s.flush()
        s.add(PlanGrid(plan_version_id=plan.id, grid_id="A", name="整片网格",
                       geometry=box(*seeded["buildings"].total_bounds).buffer(0.01)))
    after = _text(viewer.get("/access?category=kindergarten&level=300").get_data(as_text=True))
    assert len(built) == 3 and "整片网格" in after and "覆盖率按网格" in after


def _map_html(page: str) -> str:
    """The map's script (folium names its elements at random: the same names, the same built map)."""
    return re.sub(r'nonce="[^"]*"', "", page[page.index("window.wanggeLayers"):])


def test_suggested_sites_on_the_page_and_as_json(app: Flask, viewer: FlaskClient) -> None:
    from api.access.pages import access_state

    r = viewer.get("/api/access/suggest?category=kindergarten&level=300&k=2")
    assert r.status_code == 200
    body = r.get_json()
    sites = body["sites"]
    assert body["category"] == "kindergarten" and body["k"] == 2 and body["level_m"] == 300
    assert 1 <= len(sites) <= 2 and [s["rank"] for s in sites] == list(range(1, len(sites) + 1))
    assert sum(s["households_added"] for s in sites) == pytest.approx(body["newly_covered_households"], abs=1)
    assert 0 < body["newly_covered_households"] <= body["uncovered_households"]
    with app.test_request_context():
        from flask_login import login_user

        from api.db import get_session
        from api.users import get_user

        login_user(get_user(get_session(), "viewer"))
        state = access_state()
        dist = state.network.buildings["dist_kindergarten"]
        hh = state.network.buildings["households"].fillna(0)
    # the uncovered households are those of buildings beyond 300 m (reachable or not)
    snapped = ~state.network.buildings["building_id"].astype(str).isin(state.network.unsnapped_buildings)
    assert body["uncovered_households"] == pytest.approx(hh[~(dist <= 300) & snapped].sum(), abs=1)
    html = _text(viewer.get("/access?category=kindergarten&level=300&suggest=2").get_data(as_text=True))
    assert "建议新址 1" in html and '"suggested":' in html[html.index("window.wanggeLayers"):]
    assert _number(html, "newly_covered") == f"{body['newly_covered_households']:,}"
    first = f"建议新址 1：新增覆盖 <b>{sites[0]['households_added']:,}</b> 户"
    assert first in html
    assert '"suggested":' not in viewer.get("/access?category=kindergarten&level=300").get_data(as_text=True)


@pytest.mark.parametrize(("url", "match", "field"), [  # in the message or the fix
    ("/api/access/suggest?category=kindergarten&k=x", "须为整数", "k"),
    ("/api/access/suggest?category=kindergarten&k=0", "1 到 20", "k"),
    ("/api/access/suggest?category=kindergarten&k=21", "maxcover_max_sites", "k"),
    ("/api/access/suggest?category=nothing&k=1", "未知的设施类别", "category"),
])
def test_bad_suggestions_are_400(viewer: FlaskClient, url: str, match: str, field: str) -> None:
    r = viewer.get(url)
    error = r.get_json()["error"]
    assert r.status_code == 400 and match in error["message"] + error["fix"] and error["field"] == field
    page = viewer.get("/access?category=kindergarten&suggest=0").get_data(as_text=True)
    assert "建议新址数 0 超出范围" in page and "填写 1 到 20 之间的整数" in page
