"""The whole-plan page of a city-size plan opens on an overview of its communities read from the
database (issue 17 follow-up: at 1 M buildings it loaded a 568 MB state, 32-34 s cold), and a
click opens one community's grids only. The overview's numbers equal the plan's."""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from typing import Any

import pytest
import shapely
from flask import Flask
from flask.testing import FlaskClient

from api.db import session_scope
from api.models import PlanVersion
from api.plans import state as plan_state
from api.plans.state import PlanState, load_state
from api.workspace import load_layer
from tests.api.plans_helpers import district_fixture, login, partitioned_plan

app = district_fixture("overview", 600)


@pytest.fixture(scope="module")
def planner(app: Flask) -> FlaskClient:
    return login(app, "planner")


@pytest.fixture(scope="module")
def plan(app: Flask, planner: FlaskClient) -> int:
    """A partitioned plan with two neighbouring grids merged: one grid over the upper bound."""
    plan = partitioned_plan(planner, "概览测试")
    state = _whole(app, plan)
    full = {g for g, m in state.grids.items() if m.buildings > 0 and not m.exclusive and not m.locked}
    keep, gone = next((g, state.grid_of[j]) for g in sorted(full) for i in sorted(state.members[g])
                      for j in state.neighbours(i).tolist() if state.grid_of[j] != g and state.grid_of[j] in full
                      and state.grids[state.grid_of[j]].community_id == state.grids[g].community_id)
    version = planner.get(f"/api/plans/{plan}").get_json()["version"]
    r = planner.post(f"/api/plans/{plan}/edits", json={"op": "merge", "grid_ids": [keep, gone], "version": version})
    assert r.status_code == 200, r.get_json()
    return plan


@pytest.fixture
def no_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building or reading any plan state (whole or a community's) fails the test from now on."""
    monkeypatch.setattr(plan_state, "_CACHE", OrderedDict())
    monkeypatch.setattr(plan_state, "load_state", lambda *a, **k: pytest.fail("a plan state was loaded"))
    monkeypatch.setattr(plan_state, "_stored_or_built", lambda *a: pytest.fail("the whole plan was loaded"))


def _whole(app: Flask, plan: int) -> PlanState:
    with app.app_context(), session_scope(write=False) as s:
        return load_state(s, s.get(PlanVersion, plan), app.config["WANGGE"])


def _page_data(html: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="wg-page-data">(.*?)</script>', html, re.S)
    assert found, "no page data"
    return dict(json.loads(found.group(1)))


def test_overview_numbers_equal_the_whole_plan(app: Flask, planner: FlaskClient, plan: int) -> None:
    body = planner.get(f"/api/plans/{plan}/communities").get_json()
    state = _whole(app, plan)
    lo, hi = state.lo, state.hi
    expected: dict[str, dict[str, int]] = {}
    for m in state.grids.values():
        e = expected.setdefault(str(m.community_id), {"grids": 0, "households": 0, "buildings": 0,
                                                      "out_of_range": 0, "broken": 0})
        e["grids"] += 1
        e["households"] += m.households
        e["buildings"] += m.buildings
        e["out_of_range"] += int(not m.exclusive and m.buildings > 0 and not lo <= m.households <= hi)
        e["broken"] += int(bool(m.violations))
    got = {c: {k: body[k][i] for k in ("grids", "households", "buildings", "out_of_range", "broken")}
           for i, c in enumerate(body["community_id"])}
    assert got == expected
    assert body["community_id"] == sorted(body["community_id"])
    assert sum(body["out_of_range"]) + sum(body["broken"]) > 0  # the numbers can tell communities apart
    with app.app_context(), session_scope(write=False) as s:
        comms = load_layer(s, "communities").set_index("community_id")
    for i, c in enumerate(body["community_id"]):
        assert body["name"][i] == (comms.loc[c, "name"] or c)
        assert body["bbox"][i] == pytest.approx(list(shapely.bounds(comms.loc[c, "geometry"])), abs=1e-6)


def test_a_big_plan_opens_on_the_overview_without_loading_it(app: Flask, planner: FlaskClient, plan: int,
                                                              no_state: None, monkeypatch: pytest.MonkeyPatch) -> None:
    grids = planner.get(f"/api/plans/{plan}").get_json()["summary"]["grids"]
    assert planner.get(f"/api/plans/{plan}/communities").status_code == 200
    monkeypatch.setitem(app.config["WANGGE"], "planner_overview_min_grids", grids - 1)
    html = planner.get(f"/plans/{plan}").get_data(as_text=True)
    page = _page_data(html)
    assert page["overview"] is True and page["community"] is None
    assert "overview_page.js" in html and "wg-community-table" in html and 'id="wg-toolbar"' not in html
    assert f"/api/plans/{plan}/communities" in html and "grids.geojson" not in html  # what the page prefetches
    monkeypatch.setitem(app.config["WANGGE"], "planner_overview_min_grids", grids)  # not above: the whole plan
    html = planner.get(f"/plans/{plan}").get_data(as_text=True)
    assert _page_data(html)["overview"] is False and "plan_page.js" in html and "grids.geojson?display=1" in html


def test_a_community_page_loads_its_grids_only(app: Flask, planner: FlaskClient, plan: int,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.config["WANGGE"], "planner_overview_min_grids", 1)
    community = planner.get(f"/api/plans/{plan}/communities").get_json()["community_id"][1]
    html = planner.get(f"/plans/{plan}?community_id={community}").get_data(as_text=True)
    page = _page_data(html)
    assert (page["overview"], page["community"]) == (False, community)
    assert f"grids.geojson?display=1\\u0026community_id={community}" in html or \
        f"grids.geojson?display=1&community_id={community}" in html
    assert 'id="wg-community-crumb"' in html and 'id="wg-toolbar"' in html


def test_an_unknown_community_is_a_404_naming_it(planner: FlaskClient, plan: int) -> None:
    r = planner.get(f"/plans/{plan}?community_id=NOPE-1")
    assert r.status_code == 404
    assert "NOPE-1" in r.get_data(as_text=True)


def test_community_outlines_of_a_view(app: Flask, planner: FlaskClient, plan: int) -> None:
    with app.app_context(), session_scope(write=False) as s:
        comms = load_layer(s, "communities")
    one = comms.iloc[0]
    x0, y0, x1, y1 = shapely.bounds(one.geometry)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    box = (cx - 1e-4, cy - 1e-4, cx + 1e-4, cy + 1e-4)
    b = comms.geometry.bounds  # the route keeps the communities whose bounding box meets the view's
    near = set(comms[(b.minx <= box[2]) & (b.maxx >= box[0]) & (b.miny <= box[3]) & (b.maxy >= box[1])]["community_id"])
    fc = planner.get(f"/api/plans/{plan}/communities.geojson?display=1&bbox={','.join(map(str, box))}").get_json()
    assert {f["properties"]["community_id"] for f in fc["features"]} == near and one.community_id in near
    assert all(set(f["properties"]) == {"community_id", "name"} for f in fc["features"])
    everything = planner.get(f"/api/plans/{plan}/communities.geojson").get_json()
    assert len(everything["features"]) == len(comms) > len(fc["features"])
    bad = planner.get(f"/api/plans/{plan}/communities.geojson?bbox=1,2,x")
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "bad_bbox"
