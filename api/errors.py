"""One error path: every refused request answers ``{"error": {"code", "message", "fix", "field"}}``.

JSON for ``/api/`` and JSON requests, the Chinese error page (``error.html``) for HTML.
Routes raise :class:`RequestError` (status, code, Chinese message, fix, form field);
:class:`geo.errors.WanggeError` gets its Chinese wording from :mod:`api.error_text` (never
the English command-line text); HTTP errors (``abort``, 404, 405, 413, 429, CSRF) and
database contention take the same shape. This module is the only place that answers an
error (the datasette ``error_body`` idea); Open311 (``api.incidents.open311``) alone keeps
the error list its specification prescribes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.wrappers import Response

from api.db import DatabaseBusy
from api.error_text import error_code, geo_error_text
from geo.errors import ValidationFailed, WanggeError
from webmap.import_report import issue_rows

__all__ = ["RequestError", "error_body", "init_app", "register_error_renderer", "wants_json", "TITLES"]

log = logging.getLogger(__name__)

#: Chinese page titles per HTTP status.
TITLES: dict[int, str] = {
    400: "请求有误", 401: "请先登录", 403: "没有权限", 404: "页面不存在", 405: "不支持的请求方式",
    409: "无法完成", 413: "文件太大", 422: "数据有问题", 429: "请求过于频繁", 500: "服务器内部错误",
    503: "服务繁忙",
}

_FIXES: dict[int, str] = {
    400: "检查请求参数后重试",
    401: "请先登录后再试",
    403: "请使用有相应权限的账号，或联系管理员分配角色",
    404: "检查网址是否正确，或从首页进入",
    405: "检查请求方式（GET/POST）",
    500: "请稍后重试；如仍出错，请把时间和操作告诉管理员（详情见服务日志）",
}

_CSRF_REASONS: dict[str, str] = {
    "The CSRF token is missing.": "缺少安全令牌",
    "The CSRF token has expired.": "安全令牌已过期",
    "The CSRF token is invalid.": "安全令牌无效",
    "The CSRF session token is missing.": "会话中没有安全令牌（Cookie 可能被禁用）",
    "The CSRF tokens do not match.": "安全令牌不匹配",
}



class RequestError(Exception):
    """A request refused for a reason the user can act on.

    Parameters
    ----------
    status
        HTTP status (4xx; 5xx only for a server-side state the user cannot change).
    code
        Stable snake-case error code for scripts (``plan_not_found``, ``bad_bbox``...).
    message
        What is wrong, in Chinese, naming the value at fault.
    fix
        How to fix it, in Chinese, naming the page's field or the request parameter.
    field
        The form field or request parameter at fault, when there is one.
    **extra
        More JSON members of the error (e.g. the buildings a move would also take).
    """

    def __init__(self, status: int, code: str, message: str, fix: str, *, field: str | None = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fix, self.field = status, code, message, fix, field
        self.extra = extra


def error_body(code: str, message: str, fix: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    """The JSON error body of every refused request: ``{"error": {code, message, fix, field, ...}}``."""
    return {"error": {"code": code, "message": message, "fix": fix, "field": field, **extra}}


def wants_json() -> bool:
    """True for ``/api/`` routes, JSON request bodies and clients that prefer JSON to HTML."""
    if request.path.startswith("/api/") or request.is_json:
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


#: ``app.extensions`` key of the error renderers registered per path prefix.
_RENDERERS = "wangge_error_renderers"


def register_error_renderer(app: Flask, prefix: str, renderer: Callable[[int, str, str], Response]) -> None:
    """Answer errors under *prefix* with ``renderer(status, message, fix)`` (e.g. Open311's own shape)."""
    app.extensions.setdefault(_RENDERERS, {})[prefix] = renderer


def _respond(status: int, code: str, message: str, fix: str, field: str | None = None,
             **extra: Any) -> tuple[Response | str, int]:
    for prefix, renderer in current_app.extensions.get(_RENDERERS, {}).items():
        if request.path.startswith(prefix):
            return renderer(status, message, fix), status
    if wants_json():
        return jsonify(error_body(code, message, fix, field, **extra)), status
    title = TITLES.get(status, "出错了")
    return render_template("error.html", status=status, title=title, message=message, fix=fix,
                           field=field), status


def _request_error(exc: RequestError) -> tuple[Response | str, int]:
    log.info("%s %s refused (%d %s): %s", request.method, request.path, exc.status, exc.code, exc.message)
    return _respond(exc.status, exc.code, exc.message, exc.fix, exc.field, **exc.extra)


def _wangge_error(exc: WanggeError) -> tuple[Response | str, int]:
    code, text = geo_error_text(exc)
    message = text.message if text.message is not None else str(exc)
    extra: dict[str, Any] = {}
    if isinstance(exc, ValidationFailed):
        message = f"{message}（共 {len(exc.issues)} 个）"
        extra["issues"] = [{k: v for k, v in row.items() if k != "detail"} for row in issue_rows(exc.issues)]
    log.info("%s on %s: %s", type(exc).__name__, request.path, exc)  # the English detail stays in the log
    return _respond(text.status, code, message, text.fix, text.field, **extra)


def _default_message(status: int) -> str:
    if status == 404:
        return f"找不到 {request.path}"
    if status == 405:
        return f"{request.path} 不支持 {request.method} 请求"
    return TITLES.get(status, "出错了")


def _http_error(exc: HTTPException) -> tuple[Response | str, int] | HTTPException:
    status = exc.code or 500
    if status < 400:  # redirects raised as exceptions (RequestRedirect) are not errors
        return exc
    code = error_code(exc)
    # werkzeug's own descriptions are English; routes that abort() pass Chinese ones.
    custom = exc.description and exc.description != type(exc).description
    message = exc.description if custom else _default_message(status)
    fix = _FIXES.get(status, "检查请求后重试")
    if isinstance(exc, CSRFError):
        reason = _CSRF_REASONS.get(exc.description, exc.description)
        code, message = "csrf_failed", f"请求被拒绝：{reason}"
        fix = "刷新页面后重新提交表单；JSON 请求须带 X-CSRFToken 请求头"
    elif status == 413:
        code, message, fix = _too_large()
    elif status == 429:
        code, message = "rate_limited", f"请求过于频繁（上限：{exc.description}），请稍后再试"
        fix = "等待片刻后重试；如为正常业务量，请管理员调整设置 login_rate_limit / public_rate_limit"
    return _respond(status, code, message, fix)


def _too_large() -> tuple[str, str, str]:
    """413: name the limit of this route and the setting behind it."""
    settings = current_app.config["WANGGE"]
    limit = request.max_content_length or 0
    if limit == int(settings["max_upload_mb"]) * 1024 * 1024:  # an upload route (api.security.upload_route)
        return ("payload_too_large", f"上传的文件超过 {limit // (1024 * 1024)} MB 的上限（设置 max_upload_mb）",
                "拆分文件或压缩后再上传，或由管理员调大设置 max_upload_mb（环境变量 WANGGE_MAX_UPLOAD_MB）")
    return ("payload_too_large", f"请求体超过 {limit // 1024} KB 的上限（设置 max_request_kb）",
            "缩小请求；文件请通过导入页面上传，或由管理员调大设置 max_request_kb")


def _server_error(exc: InternalServerError) -> tuple[Response | str, int]:
    original = getattr(exc, "original_exception", None)
    if original is not None:
        log.error("unhandled error on %s %s", request.method, request.path, exc_info=original)
    return _respond(500, "internal_error", "服务器内部错误", _FIXES[500])


def _stale_write(exc: StaleDataError) -> tuple[Response | str, int]:
    # optimistic version check of the ORM (PlanVersion.version_counter) lost a race
    log.info("concurrent change on %s: %s", request.path, exc)
    return _respond(409, "conflict", "数据刚被其他人修改，您的修改没有保存", "刷新页面，在最新数据上重新操作")


def _database_busy(exc: Exception) -> tuple[Response | str, int]:
    if isinstance(exc, OperationalError) and "locked" not in str(exc.orig) and "busy" not in str(exc.orig):
        # any other database failure is a 500 with its traceback in the log
        log.error("database error on %s %s", request.method, request.path, exc_info=exc)
        return _respond(500, "internal_error", "服务器内部错误", _FIXES[500])
    log.warning("database busy on %s %s: %s", request.method, request.path, exc)
    settings = current_app.config["WANGGE"]
    answer, status = _respond(503, "database_busy", "数据库繁忙（可能有人正在导入数据），本次请求没有执行",
                              "稍等片刻后重试；如经常出现，请管理员调大设置 db_busy_timeout_s 或 db_pool_size")
    response = current_app.make_response((answer, status))
    response.headers["Retry-After"] = str(max(1, int(settings["db_busy_timeout_s"] // 10)))
    return response, status


def init_app(app: Flask) -> None:
    """Register the handlers on *app*."""
    app.register_error_handler(StaleDataError, _stale_write)
    app.register_error_handler(OperationalError, _database_busy)
    app.register_error_handler(PoolTimeout, _database_busy)
    app.register_error_handler(DatabaseBusy, _database_busy)
    app.register_error_handler(RequestError, _request_error)
    app.register_error_handler(WanggeError, _wangge_error)
    app.register_error_handler(InternalServerError, _server_error)
    app.register_error_handler(HTTPException, _http_error)
