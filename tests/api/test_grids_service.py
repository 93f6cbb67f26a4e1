"""The active-grids service on a published plan: grid of points and buildings agree with the plan."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from api.db import session_scope
from api.grids import service
from api.models import PlanVersion
from tests.api.query_plan_helpers import query_plan, recorded_statements
from tests.api.register_helpers import published_app


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    with published_app(tmp_path_factory.mktemp("grids")) as app:
        yield app


def test_active_grids_have_codes_and_metadata(app: Flask) -> None:
    with app.app_context(), session_scope() as s:
        grids = service.active_grids(s)
        assert len(grids) > 1 and grids["code"].notna().all()
        assert (grids["key"] == grids["code"]).all()
        meta = service.grid_meta(s, grids["key"].iloc[0])
        assert meta["households"] == int(grids["households"].iloc[0])
        with pytest.raises(service.GridNotFound, match="没有编码为 nope"):
            service.grid_meta(s, "nope")


def test_point_of_each_building_lands_in_its_assigned_grid(app: Flask) -> None:
    from api.workspace import load_layer

    with app.app_context(), session_scope() as s:
        active = service.load_active(s, settings=app.config["WANGGE"])
        assigned = service.grids_of_buildings(s)
        buildings = load_layer(s, "buildings").set_index("building_id")
    reps = buildings.geometry.representative_point()
    found = active.grid_of_points(reps.x.to_numpy(), reps.y.to_numpy())
    found.index = buildings.index
    # Buildings on a shared edge may go either way; the plan assignment is the truth for
    # buildings, the geometry for points: they must agree for nearly every building.
    agree = (found["grid_id"] == assigned.reindex(buildings.index)).mean()
    assert agree > 0.98
    assert set(found["how"]) <= {"inside", "within_tolerance"}


def test_cached_active_is_rebuilt_only_when_the_active_plans_change(app: Flask) -> None:
    settings, store = app.config["WANGGE"], {}
    with app.app_context(), session_scope(write=False) as s:
        first = service.cached_active(s, settings=settings, store=store)
        assert service.cached_active(s, settings=settings, store=store) is first
        row = first.grids.iloc[0]
        assert first.lookup[row["key"]] == (int(row["plan_version_id"]), row["community_id"])
        plans = service.active_plan_ids(s)
    assert plans == (int(row["plan_version_id"]),)
    with pytest.raises(RuntimeError, match="rolled back"), app.app_context(), session_scope() as s:
        s.get(PlanVersion, plans[0]).is_active = False  # a retirement, seen by the next request
        s.flush()
        assert service.active_plan_ids(s) == ()
        assert len(service.cached_active(s, settings=settings, store=store).grids) == 0
        raise RuntimeError("rolled back")
    with app.app_context(), session_scope(write=False) as s:
        again = service.cached_active(s, settings=settings, store=store)
    assert again is not first and again.grids["key"].tolist() == first.grids["key"].tolist()


def test_community_filter(app: Flask) -> None:
    with app.app_context(), session_scope() as s:
        grids = service.active_grids(s)
        community = grids["community_id"].iloc[0]
        mine = service.active_grids(s, community_id=community)
    assert set(mine["community_id"]) == {community}
    assert len(mine) == (grids["community_id"] == community).sum()


def test_routes_list_locate_and_one(app: Flask) -> None:
    from tests.api.plans_helpers import login

    assert app.test_client().get("/api/grids").status_code == 401
    client = login(app, "viewer")
    grids = client.get("/api/grids").get_json()["grids"]
    key = grids[0]["key"]
    one = client.get(f"/api/grids/{key}").get_json()
    assert one["code"] == key and one["geometry"]["type"] in {"Polygon", "MultiPolygon"}
    from shapely.geometry import shape

    p = shape(one["geometry"]).representative_point()
    r = client.get(f"/api/grids/locate?lon={p.x},0&lat={p.y},0").get_json()["points"]
    assert [r[0]["grid"], r[0]["how"]] == [key, "inside"] and [r[1]["grid"], r[1]["how"]] == [None, "none"]
    bad = client.get("/api/grids/locate?lon=abc&lat=1")
    assert bad.status_code == 400 and "逗号分隔" in bad.get_json()["error"]["message"]
    assert client.get("/api/grids/nope").status_code == 404


@pytest.mark.sqlite_only(reason="reads SQLite's EXPLAIN QUERY PLAN of the lookup by code")
def test_a_grid_looked_up_by_code_is_one_index_probe(app: Flask) -> None:
    """``GET /api/grids/<code>`` reads the code index, not every grid of the active plans (a city has 115,000)."""
    with app.app_context(), session_scope(write=False) as s:
        code = service.active_grids(s)["code"].iloc[0]
        with recorded_statements(s, "plan_grids.code = ") as seen:
            assert service.grid_meta(s, code)["code"] == code
        plan = query_plan(s, seen)
    assert "ix_plan_grids_code" in plan, plan
