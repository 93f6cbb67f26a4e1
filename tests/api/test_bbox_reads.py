"""Reads of the visible area: the buildings and streets of a box are exactly those whose bounding
box meets it (the index bound by the widest feature loses none), and the bound follows a new import."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import shapely
from flask import Flask
from sqlalchemy import select

from api.bbox import widest
from api.db import session_scope
from api.models import Building, PlanAssignment
from api.workspace import import_workspace, load_layer
from tests.api.plans_helpers import district_app, login
from tests.api.register_helpers import publish_partition


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    with district_app(tmp_path_factory.mktemp("bbox-reads"), 1500) as app:
        app.config["PLAN_ID"] = publish_partition(app)
        yield app


def _boxes(bounds: np.ndarray, widest_row: int) -> list[tuple[float, float, float, float]]:
    """Random views, plus one whose west edge cuts the widest building just short of its east end."""
    rng = np.random.default_rng(3)
    minx, miny = bounds[:, 0].min(), bounds[:, 1].min()
    maxx, maxy = bounds[:, 2].max(), bounds[:, 3].max()
    boxes = []
    for _ in range(6):
        w, h = rng.uniform(0.001, 0.01), rng.uniform(0.001, 0.01)
        x, y = rng.uniform(minx, maxx - w), rng.uniform(miny, maxy - h)
        boxes.append((x, y, x + w, y + h))
    bx0, by0, bx1, by1 = bounds[widest_row]
    boxes.append((bx1 - 1e-7, by0, bx1 + 0.002, by1))
    return boxes


def _expected(ids: np.ndarray, bounds: np.ndarray, box: tuple[float, float, float, float]) -> list[str]:
    x0, y0, x1, y1 = box
    hit = (bounds[:, 0] <= x1) & (bounds[:, 2] >= x0) & (bounds[:, 1] <= y1) & (bounds[:, 3] >= y0)
    return sorted(ids[hit].tolist())


def test_plan_buildings_of_a_view_are_exactly_those_meeting_it(app: Flask) -> None:
    plan = app.config["PLAN_ID"]
    with app.app_context(), session_scope(write=False) as s:
        everything = load_layer(s, "buildings")
        assigned = dict(s.execute(select(PlanAssignment.building_id, PlanAssignment.grid_id)
                                  .where(PlanAssignment.plan_version_id == plan)).all())
    bounds = shapely.bounds(everything.geometry.to_numpy())
    ids = everything["building_id"].to_numpy()
    client = login(app, "viewer")
    wide = int(np.argmax(bounds[:, 2] - bounds[:, 0]))
    for box in _boxes(bounds, wide):
        fc = client.get(f"/api/plans/{plan}/buildings.geojson?bbox={','.join(repr(float(v)) for v in box)}").get_json()
        got = sorted(f["id"] for f in fc["features"])
        assert got == _expected(ids, bounds, box)
        for f in fc["features"]:
            assert f["properties"]["grid_id"] == assigned[f["id"]]
            assert shapely.geometry.shape(f["geometry"]).is_valid
    # the box starting at the widest building's east end holds it
    last = _boxes(bounds, wide)[-1]
    assert ids[wide] in _expected(ids, bounds, last)


def test_streets_of_a_view_are_exactly_those_meeting_it(app: Flask) -> None:
    with app.app_context(), session_scope(write=False) as s:
        streets = load_layer(s, "streets")
        bounds = shapely.bounds(streets.geometry.to_numpy())
        ids = streets["street_id"].to_numpy()
        wide = int(np.argmax(bounds[:, 2] - bounds[:, 0]))
        for box in _boxes(bounds, wide):
            got = sorted(load_layer(s, "streets", bbox=box)["street_id"])
            assert got == _expected(ids, bounds, box)


def test_the_bound_follows_a_new_import(app: Flask) -> None:
    from geo.prepare import prepare_layers
    from geo.synthetic import synthetic_district

    with app.app_context(), session_scope(write=False) as s:
        before = widest(s, Building.__table__)
    prepared = prepare_layers(synthetic_district(300, seed=5).layers, settings=app.config["WANGGE"])
    b = prepared.layers["buildings"]
    x0, y0, _, y1 = b.geometry.iloc[0].bounds
    b.loc[b.index[0], "geometry"] = shapely.box(x0, y0, x0 + 10 * before + 0.001, y1)  # one long shed
    with app.app_context(), session_scope() as s:
        import_workspace(s, prepared, user="test", sources={"kind": "synthetic"})
    with app.app_context(), session_scope(write=False) as s:
        after = widest(s, Building.__table__)
        east = x0 + 10 * before + 0.001
        found = load_layer(s, "buildings", bbox=(east - 1e-6, y0, east + 0.001, y1))
    assert after == pytest.approx(10 * before + 0.001, rel=1e-6)
    assert b["building_id"].iloc[0] in set(found["building_id"])
