"""The OpenAPI 3 description of the JSON API, served at ``/api/openapi.json``.

Written by hand from docs/PLANNER_API.md and the access routes, so it says what the API
promises (parameters, bodies, error shape), not what a generator guessed. The fuzz tests
(``tests/api/test_fuzz_api.py``) run schemathesis against it: every documented operation,
fed generated and malformed input, must answer without a 5xx.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from werkzeug.wrappers import Response

from api.security import MAX_ID, limiter, public_limit

__all__ = ["bp", "openapi_spec"]

bp = Blueprint("openapi", __name__)

_ERROR = {"$ref": "#/components/responses/Error"}
_ID_MAX = MAX_ID


def _int_path(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "integer", "minimum": 1, "maximum": _ID_MAX}}


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "string", "maxLength": 200}}


def _json_body(schema: dict[str, Any], *, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _op(summary: str, *, params: list[dict[str, Any]] | None = None, body: dict[str, Any] | None = None,
        ok: str = "200", media: str = "application/json", tag: str = "plans") -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary, "tags": [tag], "parameters": params or [],
        "responses": {ok: {"description": "成功 / success", "content": {media: {"schema": {}}}},
                      "4XX": _ERROR},
    }
    if body is not None:
        op["requestBody"] = body
    return op


def _visit_post() -> dict[str, Any]:
    """201 a new visit; 200 the same visit recorded again within ``patrol_visit_repeat_s``."""
    op = _op("记录走访 / record a visit (JSON, or multipart with a photo)", tag="patrol", ok="201",
             body=_json_body({"type": "object", "required": ["keyperson_id"], "properties": {
                 "keyperson_id": {"type": "integer"}, "note": {"type": "string", "maxLength": 1000},
                 "lon": {"type": "number"}, "lat": {"type": "number"}}}))
    op["responses"]["200"] = {"description": "同一走访重复提交 / the same visit sent again",
                              "content": {"application/json": {"schema": {}}}}
    return op


_PLAN = _int_path("plan_id", "方案版本 id / plan version id")
_VERSION_BODY = _json_body({"type": "object", "properties": {"version": {"type": "integer"}}}, required=False)
_EDIT_BODY = _json_body({
    "type": "object", "required": ["op", "version"],
    "properties": {
        "op": {"type": "string", "enum": ["move", "split", "merge", "lock", "unlock", "exclusive", "rename"]},
        "version": {"type": "integer"},
        "building_ids": {"type": "array", "items": {"type": "string", "maxLength": 200}},
        "to_grid": {"type": "string"}, "grid_id": {"type": "string"},
        "grid_ids": {"type": "array", "items": {"type": "string"}},
        "polygon": {"type": "object"}, "line": {"type": "object"},
        "value": {"type": "boolean"}, "name": {"type": "string", "maxLength": 200},
    },
})
_PARTITION_BODY = _json_body({
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 200},
        "min_households": {"type": "integer"}, "max_households": {"type": "integer"},
        "target_households": {"type": "integer"}, "micro": {"type": "boolean"}, "seed": {"type": "integer"},
        "community_ids": {"type": "array", "items": {"type": "string"}},
    },
}, required=False)
_ACCESS_PARAMS = [
    _query("category", "服务设施类别 / service category"),
    _query("level", "步行距离 / walk distance (m)", {"type": "string", "maxLength": 20}),
    _query("mode", "network（步行网络）或 euclidean（直线筛查）", {"type": "string", "enum": ["network", "euclidean"]}),
]


def _paths() -> dict[str, Any]:
    """Every documented operation, by area."""
    return {
        **_service_paths(),
        **_plan_paths(),
        **_plan_edit_paths(),
        **_job_paths(),
        **_context_paths(),
        **_access_paths(),
        **_import_paths(),
        **_grid_and_register_paths(),
        **_board_paths(),
        **_patrol_paths(),
        **_incident_paths(),
    }


def _service_paths() -> dict[str, Any]:
    """The service itself: liveness, this description, the load balancers' probes."""
    return {
        "/api/health": {"get": _op("服务与数据库状态 / liveness", tag="service")},
        "/api/openapi.json": {"get": _op("本说明 / this description", tag="service")},
        **_probe_paths(),
    }


def _plan_paths() -> dict[str, Any]:
    """Plan versions (docs/PLANNER_API.md): list, partition job, reads, diff and export."""
    plan = "/api/plans/{plan_id}"
    return {
        "/api/plans": {"get": _op("方案版本列表 / plan versions, newest first")},
        "/api/plans/partition": {"post": _op("自动划分（后台任务）/ queue a partition", body=_PARTITION_BODY, ok="202")},
        plan: {"get": _op("方案详情与汇总 / plan meta and summary", params=[_PLAN])},
        f"{plan}/grids.geojson": {"get": _op("方案网格 / grids", params=[
            _PLAN, _query("community_id", "只看一个社区 / one community"),
            _query("display", "1 = 地图显示形式 / map form", {"type": "string", "enum": ["0", "1"]})],
            media="application/geo+json")},
        f"{plan}/buildings.geojson": {"get": _op("楼栋归属 / buildings with grid", params=[
            _PLAN, _query("bbox", "minx,miny,maxx,maxy (WGS84)"), _query("grid_id", "网格 id")])},
        f"{plan}/communities.geojson": {"get": _op("社区边界 / community outlines", params=[
            _PLAN, _query("bbox", "minx,miny,maxx,maxy (WGS84)"), _query("display", "1: 地图简化形式 / the map's form")],
                                                   media="application/geo+json")},
        "/api/plans/{a}/diff/{b}": {"get": _op("版本对比 / moved buildings", params=[
            _int_path("a", "旧版本 / old"), _int_path("b", "新版本 / new")])},
        f"{plan}/export": {"get": _op("导出 / export file", params=[
            _PLAN, _query("format", "文件格式", {"type": "string",
                                                "enum": ["gpkg", "geojson", "shp", "kml", "csv", "xlsx"]}),
            _query("layer", "grids 或 buildings", {"type": "string", "enum": ["grids", "buildings"]})],
            media="application/octet-stream")},
        f"{plan}/communities": {"get": _op("社区概览 / the plan's communities with their numbers", params=[_PLAN])},
    }


def _plan_edit_paths() -> dict[str, Any]:
    """Changing a plan: edits, undo/redo, re-partition, copies, publish, roll back, re-base."""
    plan = "/api/plans/{plan_id}"
    return {
        f"{plan}/edits": {"post": _op("编辑 / one edit", params=[_PLAN], body=_EDIT_BODY)},
        f"{plan}/undo": {"post": _op("撤销 / undo", params=[_PLAN], body=_VERSION_BODY)},
        f"{plan}/redo": {"post": _op("重做 / redo", params=[_PLAN], body=_VERSION_BODY)},
        f"{plan}/repartition": {"post": _op("重新划分 / re-partition unlocked grids", params=[_PLAN],
                                            body=_VERSION_BODY, ok="202")},
        f"{plan}/versions": {"post": _op("另存版本 / save a copy", params=[_PLAN], ok="201", body=_json_body({
            "type": "object", "required": ["name"],
            "properties": {"name": {"type": "string", "maxLength": 200}, "message": {"type": "string"}}}))},
        f"{plan}/publish": {"post": _op("发布 / publish", params=[_PLAN], body=_VERSION_BODY)},
        f"{plan}/rollback": {"post": _op("回滚 / roll back", params=[_PLAN])},
        f"{plan}/rebase": {"post": _op("基于当前工作区重建 / re-base a stale plan", params=[_PLAN], ok="201",
                                       body=_json_body({"type": "object", "properties": {
                                           "name": {"type": "string", "maxLength": 200}}}, required=False))},
    }


def _job_paths() -> dict[str, Any]:
    """Background jobs (api/jobs/): list, state, cancel."""
    return {
        "/api/jobs": {"get": _op("后台任务列表 / newest jobs (own; all for admins)", tag="jobs", params=[
            _query("limit", "条数 1–500 / how many", {"type": "string", "maxLength": 10})])},
        "/api/jobs/{job_id}": {"get": _op("任务进度 / job state", params=[_JOB_ID])},
        "/api/jobs/{job_id}/cancel": {"post": _op("取消任务 / cancel a job", params=[_JOB_ID])},
    }


def _context_paths() -> dict[str, Any]:
    """Context layers of the plan map, loaded per bounding box."""
    return {
        "/api/context/{kind}.geojson": {"get": _op("底图图层 / streets or compounds per bbox", params=[
            {"name": "kind", "in": "path", "required": True,
             "schema": {"type": "string", "enum": ["streets", "compounds"]}},
            _query("bbox", "minx,miny,maxx,maxy (WGS84)"),
            _query("major", "1 = 只要主干道 / major roads only", {"type": "string", "enum": ["0", "1"]})],
            media="application/geo+json", tag="context")},
    }


def _access_paths() -> dict[str, Any]:
    """The 15-minute circle (issue 5): coverage, service circles, suggested sites."""
    return {
        "/api/access/summary": {"get": _op("生活圈覆盖 / coverage summary", params=[
            *_ACCESS_PARAMS, _query("group_by", "grid 或 community")], tag="access")},
        "/api/access/isochrones.geojson": {"get": _op("服务圈 / service circles", params=_ACCESS_PARAMS,
                                                      media="application/geo+json", tag="access")},
        "/api/access/suggest": {"get": _op("建议新址 / suggested new service sites", params=[
            *_ACCESS_PARAMS, _query("k", "新址个数 / number of sites", {"type": "string", "maxLength": 10})],
            tag="access")},
    }


def _import_paths() -> dict[str, Any]:
    """The web import: uploads, their columns, the import job."""
    upload = {"name": "upload_id", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 64}}
    files = {k: {"type": "string", "format": "binary"}
             for k in ("buildings", "communities", "streets", "compounds", "services")}
    return {
        "/api/imports/uploads": {"post": _op("上传导入文件 / upload import files", ok="201", tag="imports", body={
            "required": True,
            "content": {"multipart/form-data": {"schema": {"type": "object", "properties": files}}}})},
        "/api/imports/uploads/{upload_id}/columns": {"get": _op("图层的列 / columns of a layer", params=[
            upload, _query("kind", "图层类别 / layer kind"), _query("layer", "图层名 / layer name")], tag="imports")},
        "/api/imports": {"post": _op("开始导入（后台任务）/ start an import job", ok="202", tag="imports",
                                     body=_json_body({"type": "object", "required": ["upload_id"], "properties": {
                                         "upload_id": {"type": "string", "maxLength": 64}}}))},
        "/api/imports/jobs/{job_id}": {"get": _op("导入任务进度 / import job state", tag="imports",
                                                  params=[_JOB_ID])},
        "/api/imports/jobs/{job_id}/cancel": {"post": _op("取消导入任务 / cancel an import job", tag="imports",
                                                          params=[_JOB_ID])},
    }


def _incident_paths() -> dict[str, Any]:
    """Incidents (issue 13) on the map: case points and open cases per grid."""
    days = _query("days", "最近天数 / last N days", {"type": "string", "maxLength": 10})
    return {
        "/api/incidents/geojson": {"get": _op("事件点位 / cases the user may see", tag="incidents", params=[
            _query("state", "状态 / state (open, pending_location, or a workflow state)"),
            _query("category", "类别代码 / category code"), _query("grid_code", "网格编码 / grid code"),
            _query("source", "来源 / intake channel"), _query("bbox", "minx,miny,maxx,maxy (WGS84)"), days],
            media="application/geo+json")},
        "/api/incidents/grids": {"get": _op("各网格事件数 / open cases per grid", tag="incidents", params=[
            _query("bbox", "只取视图内的网格 / only grids in minx,miny,maxx,maxy (WGS84)"),
            _query("state", "状态 / state"), _query("category", "类别代码 / category code"),
            _query("source", "来源 / intake channel"), days],
            media="application/geo+json")},
    }


def _probe_paths() -> dict[str, Any]:
    """The probes of load balancers and systemd (api/health.py), at the site root."""
    ready = _op("就绪检查 / readiness: database, schema at the newest migration, job queue", tag="service")
    ready["responses"]["503"] = {"description": "未就绪，列出失败的检查与修复方法 / not ready: failed checks and fixes",
                                 "content": {"application/json": {"schema": {}}}}
    return {"/healthz": {"get": _op("存活检查 / liveness", tag="service")}, "/readyz": {"get": ready}}


def _patrol_paths() -> dict[str, Any]:
    """Patrol (issue 14): tracker intake (OsmAnd / Traccar protocol), coverage, tracks, visits, alerts."""
    day = {"type": "string", "maxLength": 10}
    fix = [_query(k, d) for k, d in (("id", "设备标识 / device id"), ("lat", "纬度"), ("lon", "经度"),
                                       ("timestamp", "时间（秒、毫秒或 ISO 8601）"), ("speed", "速度"),
                                       ("bearing", "方向"), ("altitude", "海拔"), ("accuracy", "精度 (m)"),
                                       ("hdop", "水平精度因子"), ("batt", "电量"))]
    return {
        "/api/patrol/osmand": {
            "get": _op("定位上报（OsmAnd 协议）/ one fix, OsmAnd protocol", tag="patrol", params=fix),
            "post": _op("定位上报（OsmAnd 或 Traccar Client JSON）/ fixes", tag="patrol", params=fix,
                        body=_json_body({"type": "object"}, required=False))},
        "/api/patrol/devices": {
            "get": _op("巡查设备 / bound and refused devices (admins)", tag="patrol"),
            "post": _op("绑定设备 / bind a device to a worker", tag="patrol", ok="201", body=_json_body({
                "type": "object", "required": ["device_id", "username"], "properties": {
                    "device_id": {"type": "string", "maxLength": 100},
                    "username": {"type": "string", "maxLength": 64},
                    "label": {"type": "string", "maxLength": 200}}}))},
        "/api/patrol/coverage": {"get": _op("巡查覆盖率 / coverage", tag="patrol", params=[
            _query("from", "起始日期 YYYY-MM-DD", day), _query("to", "结束日期 YYYY-MM-DD", day),
            _query("by", "grid、worker 或 day", {"type": "string", "enum": ["grid", "worker", "day"]}),
            _query("period", "day、week、month 或 all（按日、周、月分行）",
                   {"type": "string", "enum": ["all", "day", "week", "month"]})])},
        "/api/patrol/track": {"get": _op("巡查轨迹（留痕）/ one worker's track of a day", tag="patrol", params=[
            _query("user", "网格员账号 / worker"), _query("date", "日期 YYYY-MM-DD", day)])},
        "/api/patrol/visits": {
            "get": _op("重点人员走访 / due, overdue and done visits", tag="patrol",
                       params=[_query("grid", "网格编码 / grid code")]),
            "post": _visit_post()},
        "/api/patrol/visits/history": {"get": _op("走访记录 / visit history of a grid, newest first", tag="patrol",
                                                  params=[_query("grid", "网格编码 / grid code")])},
        "/api/patrol/visits/{visit_id}/photo": {"get": _op(
            "走访照片 / a visit's photo", tag="patrol", params=[_int_path("visit_id", "走访 id / visit id")],
            media="image/jpeg")},
        "/api/patrol/my": {"get": _op("我的巡查 / my patrol map data", tag="patrol",
                                      params=[_query("date", "日期 YYYY-MM-DD", day)])},
        "/api/patrol/route": {"get": _op("建议巡查路线 / suggested patrol loop", tag="patrol", params=[
            _query("grid", "网格编码 / grid code"), _query("date", "日期 YYYY-MM-DD", day),
            _query("due_only", "1 = 只含待走访 / due visits only", {"type": "string", "enum": ["0", "1"]}),
            _query("lon", "起点经度 / start longitude"), _query("lat", "起点纬度 / start latitude")])},
        "/api/patrol/positions": {"get": _op("网格员最新位置 / last known positions", tag="patrol", params=[
            _query("hours", "最近几小时 / within hours", {"type": "string", "maxLength": 4})])},
        "/api/patrol/alerts": {"get": _op("电子围栏告警 / geofence alerts", tag="patrol",
                                          params=[_query("at", "时刻 ISO 8601 / at")])},
    }


def _key(description: str = "网格编码 / grid code") -> dict[str, Any]:
    return {"name": "key", "in": "path", "required": True, "description": description,
            "schema": {"type": "string", "maxLength": 64}}


_STAFF = _int_path("staff_id", "工作人员 id / staff id")
_STAFF_BODY: dict[str, Any] = {"type": "object", "properties": {
    k: {"type": "string", "maxLength": 200} for k in (
        "name", "phone", "role", "grid_code", "building_id", "unit", "username", "start_date", "end_date")}}
_JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 64}}


def _board_paths() -> dict[str, Any]:
    """Batch printing of notice boards (issue 15): a job on the durable queue, admins only."""
    body = _json_body({"type": "object", "properties": {
        "scope": {"type": "string", "enum": ["all", "street", "community", "grids"]},
        "target": {"type": "string", "maxLength": 200}, "size": {"type": "string", "enum": ["A3", "A4"]},
        "grids": {"type": "array", "maxItems": 5000, "items": {"type": "string", "maxLength": 40}},
        "orientation": {"type": "string", "maxLength": 20}, "format": {"type": "string", "maxLength": 20},
        "drafts": {"type": "boolean"}}})
    return {
        "/api/boards/batch": {"post": _op("批量打印公示牌（后台任务）/ queue a board batch", tag="boards",
                                          body=body, ok="202")},
        "/api/boards/batch/{job_id}": {"get": _op("批量打印进度 / batch state", tag="boards", params=[_JOB_ID])},
        "/api/boards/batch/{job_id}/cancel": {"post": _op("取消批量打印 / cancel a batch", tag="boards",
                                                          params=[_JOB_ID])},
    }


def _grid_and_register_paths() -> dict[str, Any]:
    """The active grids service and the grid register (issue 12): masked unless unmasked with a reason."""
    reg, person = "/api/register", _int_path("resident_id", "居民 id / resident id")
    limit = _query("limit", "条数 / rows", {"type": "string", "maxLength": 10})
    return {
        "/api/grids": {"get": _op("现行网格 / grids of the active plans", tag="grids",
                                  params=[_query("community_id", "只看一个社区 / one community")])},
        "/api/grids/locate": {"get": _op("点所在网格 / grid of points", tag="grids", params=[
            _query("lon", "经度，逗号分隔 / longitudes"), _query("lat", "纬度，逗号分隔 / latitudes")])},
        "/api/grids/{key}": {"get": _op("网格信息 / one grid", tag="grids", params=[_key()])},
        f"{reg}/grids/{{key}}/residents": {"get": _op("网格居民（脱敏）/ residents, masked", tag="register", params=[
            _key(), _query("q", "姓名、地址、房号或证件尾号 / search"),
            _query("offset", "偏移 / offset", {"type": "string", "maxLength": 10})])},
        f"{reg}/residents/{{resident_id}}": {
            "get": _op("居民详情（脱敏）/ one resident, masked", tag="register", params=[person]),
            "post": _op("修改居民 / edit a resident", tag="register", params=[person],
                        body=_json_body({"type": "object"}))},
        f"{reg}/residents/{{resident_id}}/unmask": {"post": _op(
            "查看明文（需权限与理由，留痕）/ unmask with a reason", tag="register", params=[person],
            body=_json_body({"type": "object", "required": ["reason"],
                             "properties": {"reason": {"type": "string", "maxLength": 500}}}))},
        f"{reg}/grids/{{key}}/keypersons": {"get": _op("重点人员 / key persons", tag="register", params=[_key()])},
        f"{reg}/keypersons/{{keyperson_id}}": {"get": _op("重点人员详情 / one key person", tag="register", params=[
            _int_path("keyperson_id", "重点人员 id")])},
        f"{reg}/grids/{{key}}/export": {"get": _op("导出（脱敏）/ masked export", tag="register", params=[
            _key(), _query("format", "csv 或 xlsx", {"type": "string", "enum": ["csv", "xlsx"]})],
            media="application/octet-stream")},
        f"{reg}/grids/{{key}}/summary": {"get": _op("网格概况 / grid summary", tag="register", params=[_key()])},
        f"{reg}/my": {"get": _op("我的网格 / my grids", tag="register")},
        f"{reg}/checks": {"get": _op("人员配置检查 / staff checks", tag="register")},
        f"{reg}/rebinding/{{plan_id}}": {"get": _op("重新关联报告 / re-binding report", tag="register",
                                                   params=[_PLAN])},
        f"{reg}/import": {"post": _op("导入登记册 / import a sheet", tag="register", body={
            "required": True, "content": {"multipart/form-data": {"schema": {"type": "object", "properties": {
                "kind": {"type": "string", "enum": ["residents", "staff", "keypersons", "party"]},
                "file": {"type": "string", "format": "binary"}, "fields": {"type": "string"},
                "coords": {"type": "string", "enum": ["wgs84", "gcj02", "bd09"]}}}}}})},
        f"{reg}/grids/{{key}}/staff": {"get": _op("网格工作人员（电话脱敏）/ staff of a grid, phones masked",
                                                  tag="register", params=[_key()])},
        f"{reg}/staff": {"post": _op("新增工作人员 / add a staff member", tag="register", ok="201",
                                     body=_json_body(_STAFF_BODY))},
        f"{reg}/staff/{{staff_id}}": {
            "post": _op("修改工作人员 / edit a staff member", tag="register", params=[_STAFF], body=_json_body(_STAFF_BODY)),
            "delete": _op("删除工作人员 / remove a staff member", tag="register", params=[_STAFF])},
        f"{reg}/audit": {"get": _op("审计日志 / audit log (admins)", tag="register", params=[
            limit, _query("action", "操作 / action"), _query("user", "用户 / user"),
            _query("target", "对象 / target"), _query("since", "起始时间 ISO 8601 / since"),
            _query("until", "截止日期（含当天）ISO 8601 / until, day included")])},
    }


def openapi_spec() -> dict[str, Any]:
    """The OpenAPI 3.0 document of the JSON API (routes under ``/api/``)."""
    error_schema = {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "message", "fix", "field"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "fix": {"type": "string"},
                       "field": {"type": "string", "nullable": True}}}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Wangge 网格 JSON API", "version": "1",
                 "description": "登录后使用（会话 Cookie）；修改类请求须带 X-CSRFToken 请求头。"
                                "Errors: {error: {code, message, fix, field}}. See docs/PLANNER_API.md."},
        "paths": _paths(),
        "components": {
            "schemas": {"Error": error_schema},
            "responses": {"Error": {"description": "错误 / error",
                                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
            "securitySchemes": {"session": {"type": "apiKey", "in": "cookie", "name": "session"}},
        },
        "security": [{"session": []}],
    }


@bp.get("/api/openapi.json")
@limiter.limit(public_limit)
def openapi_json() -> Response:
    """This API's OpenAPI 3 description (no login needed: it holds no data)."""
    return jsonify(openapi_spec())
