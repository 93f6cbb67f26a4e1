"""One JSON error shape on /api/, Chinese HTML pages elsewhere (api.errors)."""

from __future__ import annotations

import pytest
from flask import Flask, abort, request

from api.error_text import GEO_ERROR_TEXT
from api.security import upload_route
from geo.errors import InfeasiblePlan, LayerError, ReadError


@pytest.fixture
def error_app(app: Flask) -> Flask:
    @app.route("/api/layer-error")
    def layer_error() -> str:
        raise LayerError("layer buildings: feature #B7 has floors=-3; set floors to a positive number")

    @app.route("/api/infeasible")
    def infeasible() -> str:
        raise InfeasiblePlan("community C1 has 550 households; cannot split into grids of 300-500")

    @app.route("/page/read-error")
    def read_error() -> str:
        raise ReadError("cannot read x.zip: not a zip file; upload a zipped Shapefile")

    @app.route("/api/boom")
    def boom() -> str:
        raise RuntimeError("unexpected")

    @app.route("/api/upload", methods=["POST"])
    @upload_route
    def upload() -> str:
        abort(413)

    @app.route("/api/not-an-upload", methods=["POST"])
    def not_an_upload() -> str:
        abort(413)

    @app.route("/api/echo", methods=["POST"])
    def echo() -> dict[str, int]:
        return {"fields": len(request.form)}

    @app.route("/page/upload", methods=["POST"])
    @upload_route
    def page_upload() -> str:
        abort(413)

    return app


def test_wangge_error_json_shape_in_chinese(error_app: Flask) -> None:
    r = error_app.test_client().get("/api/layer-error")
    assert r.status_code == 422
    assert r.json == {"error": {
        "code": "layer_error",
        "message": GEO_ERROR_TEXT["layer_error"].message,
        "fix": GEO_ERROR_TEXT["layer_error"].fix,
        "field": "fields",
    }}
    assert "floors=-3" not in r.get_data(as_text=True)  # the English geo text stays in the log


def test_infeasible_plan_is_conflict(error_app: Flask) -> None:
    r = error_app.test_client().get("/api/infeasible")
    assert r.status_code == 409 and r.json["error"]["code"] == "infeasible_plan"


def test_wangge_error_html_page_is_chinese(error_app: Flask) -> None:
    r = error_app.test_client().get("/page/read-error")
    html = r.get_data(as_text=True)
    assert r.status_code == 400 and "请求有误" in html and f"处理办法：{GEO_ERROR_TEXT['read_error'].fix}" in html
    assert "upload a zipped Shapefile" not in html


def test_api_404_and_405_are_json(client) -> None:
    r = client.get("/api/no-such-route")
    assert r.status_code == 404
    assert set(r.json["error"]) == {"code", "message", "fix", "field"}
    assert r.json["error"]["message"] == "找不到 /api/no-such-route"
    r = client.post("/api/health")
    assert r.status_code == 405 and r.json["error"]["code"] == "method_not_allowed"


def test_html_404_is_chinese(client) -> None:
    r = client.get("/no-such-page")
    assert r.status_code == 404 and "页面不存在" in r.get_data(as_text=True)


def test_unhandled_error_is_500_json(error_app: Flask) -> None:
    error_app.config["PROPAGATE_EXCEPTIONS"] = False
    r = error_app.test_client().get("/api/boom")
    assert r.status_code == 500 and r.json["error"]["code"] == "internal_error"
    assert "unexpected" not in r.get_data(as_text=True)


def test_413_names_max_upload_setting(error_app: Flask) -> None:
    limit = error_app.config["WANGGE"]["max_upload_mb"]
    r = error_app.test_client().post("/api/upload")
    assert r.status_code == 413
    assert r.json["error"]["code"] == "payload_too_large"
    assert f"超过 {limit} MB" in r.json["error"]["message"]
    assert "max_upload_mb" in r.json["error"]["fix"]
    page = error_app.test_client().post("/page/upload")
    assert page.status_code == 413 and "max_upload_mb" in page.get_data(as_text=True)


def test_413_outside_upload_routes_names_max_request_kb(error_app: Flask) -> None:
    r = error_app.test_client().post("/api/not-an-upload")
    limit = error_app.config["WANGGE"]["max_request_kb"]
    assert r.status_code == 413 and f"请求体超过 {limit} KB" in r.json["error"]["message"]
    assert "max_request_kb" in r.json["error"]["fix"]


def test_real_oversized_body_gets_413(error_app: Flask) -> None:
    error_app.config["MAX_CONTENT_LENGTH"] = 1024
    assert error_app.test_client().post("/api/echo", data={"f": "x" * 100}).json == {"fields": 1}
    r = error_app.test_client().post("/api/echo", data={"f": "x" * 4096})
    assert r.status_code == 413 and "max_request_kb" in r.json["error"]["fix"]
