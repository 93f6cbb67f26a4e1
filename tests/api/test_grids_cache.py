"""The active grids' cached point index: reused while the active plans stay, rebuilt in every
process once another one publishes; one grid's card read by code without reading every grid."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from api import create_app, db
from api.db import session_scope
from api.grids import service
from api.grids.cache import active_plan_ids, cached_active
from tests.api.register_helpers import publish_partition, published_app


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    with published_app(tmp_path_factory.mktemp("grids-cache")) as app:
        yield app


def _other_process(app: Flask) -> Flask:
    """A second app on the same database and instance, as a second web worker has."""
    return create_app({"TESTING": True, "INSTANCE_PATH": app.instance_path, "DATABASE_URL": app.config["DATABASE_URL"],
                       "WTF_CSRF_ENABLED": False})


def test_grid_meta_reads_the_same_card_as_the_whole_table(app: Flask) -> None:
    with app.app_context(), session_scope(write=False) as s:
        grids = service.active_grids(s)
        for row in grids.sample(min(25, len(grids)), random_state=1).itertuples():
            meta = service.grid_meta(s, row.key)
            assert (meta["code"], meta["name"], meta["community_id"], meta["households"], meta["buildings"],
                    meta["plan_id"]) == (row.code, row.name, row.community_id, row.households, row.buildings,
                                         row.plan_version_id)
            assert meta["geometry"].equals(row.geometry)
        plan, grid = int(grids["plan_version_id"].iloc[0]), str(grids["grid_id"].iloc[0])
        assert service.grid_meta(s, f"{plan}:{grid}")["code"] == grids["code"].iloc[0]
        with pytest.raises(service.GridNotFound, match="没有编码为 999999:nope 的生效网格"):
            service.grid_meta(s, "999999:nope")


def test_index_is_reused_until_another_process_publishes(app: Flask) -> None:
    other = _other_process(app)
    try:
        with other.app_context(), session_scope(write=False) as s:
            first = cached_active(s)
            assert cached_active(s) is first  # nothing changed: no rebuild
            before = active_plan_ids(s)
        assert set(first.grids["plan_version_id"]) == set(before)
        new_plan = publish_partition(app, seed=7, name="新方案")  # published by the first app
        with other.app_context(), session_scope(write=False) as s:
            after = cached_active(s)
            fresh = service.load_active(s, settings=other.config["WANGGE"])
            assert active_plan_ids(s) != before and new_plan in active_plan_ids(s)
        assert after is not first
        assert sorted(after.grids["key"]) == sorted(fresh.grids["key"])
        assert set(after.grids["plan_version_id"]) == set(fresh.grids["plan_version_id"])
        assert new_plan in set(after.grids["plan_version_id"])
        pts = fresh.grids.geometry.representative_point()
        got = after.grid_of_points(pts.x.to_numpy(), pts.y.to_numpy())
        assert list(got["grid_id"]) == list(fresh.grids["key"])
    finally:
        db.dispose(other)


def test_locate_route_answers_from_the_current_plans(app: Flask) -> None:
    from tests.api.plans_helpers import login

    client = login(app, "viewer")
    with app.app_context(), session_scope(write=False) as s:
        grids = service.active_grids(s)
    row = grids.iloc[len(grids) // 2]
    p = row.geometry.representative_point()
    for _ in range(2):  # the second answer comes from the cached index
        got = client.get(f"/api/grids/locate?lon={p.x}&lat={p.y}").get_json()["points"][0]
        assert (got["grid"], got["how"]) == (row.key, "inside")
