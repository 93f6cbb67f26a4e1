"""A partition job on a district large enough to be planned in shards (worker processes
started from the web app's job thread), then a manual edit on the stitched plan."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.api.plans_helpers import boundary_move, district_app, login, wait_job

N_BUILDINGS = 1200


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    with district_app(tmp_path_factory.mktemp("plans_sharded"), N_BUILDINGS, seed=3,
                      settings={"partition_shard_buildings": 300, "partition_workers": 2}) as app:
        yield app


@pytest.mark.slow
def test_sharded_partition_job_then_a_move(app: Flask) -> None:
    planner: FlaskClient = login(app, "planner")
    r = planner.post("/api/plans/partition", json={"name": "分片方案"})
    assert r.status_code == 202
    job = wait_job(planner, r.get_json()["job_id"], timeout=300)
    assert job["state"] == "done", job
    plan = job["plan_id"]
    meta = planner.get(f"/api/plans/{plan}").get_json()
    assert meta["summary"]["buildings"] == N_BUILDINGS
    assert meta["settings"]["report"]["shards"] > 1  # the settings reached the engine
    grids = {f["id"]: f for f in planner.get(f"/api/plans/{plan}/grids.geojson").get_json()["features"]}
    assert len(grids) == meta["summary"]["grids"]
    codes = [g["properties"]["code"] for g in grids.values()]
    assert len(set(codes)) == len(codes)
    building, source, target = boundary_move(app, plan)
    r = planner.post(f"/api/plans/{plan}/edits", json={"op": "move", "building_ids": [building],
                                                        "to_grid": target, "version": meta["version"]})
    assert r.status_code == 200, r.get_json()
    assert {g["id"] for g in r.get_json()["grids"]} == {source, target}
