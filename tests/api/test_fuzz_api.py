"""Fuzzing the JSON API: schemathesis against /api/openapi.json, hypothesis against routes and
the error handler. Whatever comes in — schema-conforming or not, random bytes, absurd ids,
odd query strings — the answer is never a 5xx, and every /api/ error has the one JSON shape.

Bounded: a few examples per operation and mode, so the module runs in well under a minute.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.generation.modes import GenerationMode

from api.openapi import openapi_spec
from tests.api.plans_helpers import district_app, login, wait_job

#: Operations that start background jobs (partitions, imports that replace the workspace) or
#: store uploads: fuzzed bodies would queue real jobs; their validation has its own tests.
NOT_FUZZED = {("post", "/api/plans/partition"), ("post", "/api/plans/{plan_id}/repartition"),
              ("post", "/api/imports"), ("post", "/api/imports/uploads"), ("post", "/api/register/import"),
              ("post", "/api/boards/batch")}
_SPEC_PATHS = openapi_spec()["paths"]
#: (method, path, mode): negative cases only where there is input to break (parameters or a body).
CASES = sorted((method, path, mode) for path, item in _SPEC_PATHS.items() for method, op in item.items()
               for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
               if (method, path) not in NOT_FUZZED
               and (mode == GenerationMode.POSITIVE or op["parameters"] or "requestBody" in op))
FUZZ = settings(max_examples=8, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """A workspace of 600 synthetic buildings with one partitioned plan."""
    with district_app(tmp_path_factory.mktemp("fuzz"), 600,
                      settings={"login_rate_limit": "100000 per minute",
                                "public_rate_limit": "100000 per minute"}) as app:
        client = login(app, "planner")
        r = client.post("/api/plans/partition", json={"name": "fuzz"})
        job = wait_job(client, r.json["job_id"])
        assert job["state"] == "done"
        app.config["FUZZ_PLAN_ID"] = job["plan_id"]
        yield app


@pytest.fixture(scope="module")
def planner(fuzz_app: Flask) -> FlaskClient:
    return login(fuzz_app, "planner")


def _mime(headers: Any) -> str:
    value = headers.get("Content-Type") or headers.get("content-type") or ""
    return (value[0] if isinstance(value, list) else value).split(";")[0].strip()


def _check(status: int, path: str, body: bytes, content_type: str | None) -> None:
    assert status < 500, f"{status} on {path}: {body[:300]!r}"
    if path.startswith("/api/") and status >= 400 and content_type == "application/json":
        error = json.loads(body)["error"]
        assert set(error) >= {"code", "message", "fix"}, error


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_schemathesis_never_5xx(fuzz_app: Flask, planner: FlaskClient, method: str, path: str,
                                mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", fuzz_app)
    cookie = planner.get_cookie("session")
    assert cookie is not None
    operation = schema[path][method.upper()]
    # Valid cases aim at the real plan, so bodies and queries reach the code behind the lookup.
    plan_id = fuzz_app.config["FUZZ_PLAN_ID"]
    fixed = {p: plan_id for p in ("plan_id", "a", "b") if "{" + p + "}" in path} if mode == "positive" else {}

    @FUZZ
    @given(case=operation.as_strategy(generation_mode=mode, cookies={"session": cookie.value},
                                      path_parameters=fixed or None))
    def run(case: Any) -> None:
        response = case.call()
        _check(response.status_code, case.formatted_path, response.content, _mime(response.headers))

    run()


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                 max_size=4),
                     max_leaves=20)
_PLAN_ID = st.one_of(st.integers(min_value=-10, max_value=10), st.integers(min_value=2**62, max_value=10**30),
                     st.text(min_size=1, max_size=30).filter(lambda t: "/" not in t and "?" not in t and "#" not in t))
_POST_ROUTES = ["edits", "undo", "redo", "versions", "publish", "rollback"]


@FUZZ
@given(route=st.sampled_from(_POST_ROUTES), body=st.one_of(_JSON.map(json.dumps).map(str.encode), st.binary(max_size=200)),
       content_type=st.sampled_from(["application/json", "text/plain", "application/octet-stream"]))
def test_random_bodies_never_5xx(planner: FlaskClient, route: str, body: bytes, content_type: str) -> None:
    r = planner.post(f"/api/plans/1/{route}", data=body, content_type=content_type)
    _check(r.status_code, route, r.data, r.mimetype)


@FUZZ
@given(plan_id=_PLAN_ID, tail=st.sampled_from(["", "/grids.geojson", "/buildings.geojson", "/export", "/diff/1"]),
       query=st.dictionaries(st.sampled_from(["bbox", "grid_id", "community_id", "display", "format", "layer"]),
                             st.text(max_size=40), max_size=3))
def test_random_ids_and_queries_never_5xx(planner: FlaskClient, plan_id: Any, tail: str, query: dict[str, str]) -> None:
    path = f"/api/plans/{plan_id}{tail}"
    r = planner.get(path, query_string=query)
    _check(r.status_code, path, r.data, r.mimetype)


@FUZZ
@given(path=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60),
       method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]))
def test_error_handler_never_5xx(planner: FlaskClient, path: str, method: str) -> None:
    url = "/api/" + path.lstrip("/")
    r = planner.open(url, method=method)
    _check(r.status_code, url, r.data, r.mimetype)


def test_openapi_is_served_without_login_and_lists_the_plan_routes(fuzz_app: Flask) -> None:
    spec = fuzz_app.test_client().get("/api/openapi.json").json
    assert spec["openapi"].startswith("3.")
    assert {"/api/plans", "/api/plans/{plan_id}/edits", "/api/plans/{plan_id}/export"} <= set(spec["paths"])
    rules = {r.rule for r in fuzz_app.url_map.iter_rules() if r.rule.startswith("/api/")}
    documented = {p.replace("{", "<").replace("}", ">") for p in spec["paths"]}
    undocumented = {r for r in rules if r.replace("<int:", "<") not in documented}
    assert undocumented == set()
