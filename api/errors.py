"""One error shape: JSON ``{"error": {"code", "message", "fix"}}`` on ``/api/``, Chinese pages elsewhere.

Every :class:`geo.errors.WanggeError` and every HTTP error passes through here (the
datasette ``error_body`` idea): routes raise, this module answers.
"""

from __future__ import annotations

import logging
import re
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
from geo.errors import (
    CRSError,
    InfeasiblePlan,
    LayerError,
    ReadError,
    ValidationFailed,
    WanggeError,
)

__all__ = ["error_body", "init_app", "register_error_renderer", "TITLES"]

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

_STATUS: tuple[tuple[type[WanggeError], int], ...] = (
    (ValidationFailed, 422), (CRSError, 422), (LayerError, 422), (ReadError, 400), (InfeasiblePlan, 409),
)


def error_body(code: str, message: str, fix: str, **extra: Any) -> dict[str, Any]:
    """The JSON error body every ``/api/`` route returns."""
    return {"error": {"code": code, "message": message, "fix": fix, **extra}}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _split_fix(message: str, default: str) -> tuple[str, str]:
    """Our messages end with '...; <fix>'; keep the whole message and lift the fix out."""
    head, sep, tail = message.rpartition("; ")
    return (message, tail) if sep and head else (message, default)


#: ``app.extensions`` key of the error renderers registered per path prefix.
_RENDERERS = "wangge_error_renderers"


def register_error_renderer(app: Flask, prefix: str, renderer: Callable[[int, str, str], Response]) -> None:
    """Answer errors under *prefix* with ``renderer(status, message, fix)`` (e.g. Open311's own shape)."""
    app.extensions.setdefault(_RENDERERS, {})[prefix] = renderer


def _respond(status: int, code: str, message: str, fix: str, **extra: Any) -> tuple[Response | str, int]:
    for prefix, renderer in current_app.extensions.get(_RENDERERS, {}).items():
        if request.path.startswith(prefix):
            return renderer(status, message, fix), status
    if request.path.startswith("/api/"):
        return jsonify(error_body(code, message, fix, **extra)), status
    title = TITLES.get(status, "出错了")
    return render_template("error.html", status=status, title=title, message=message, fix=fix), status


def _wangge_error(exc: WanggeError) -> tuple[Response | str, int]:
    status = next((s for cls, s in _STATUS if isinstance(exc, cls)), 400)
    message, fix = _split_fix(str(exc), "按提示修正数据后重试")
    extra: dict[str, Any] = {}
    if isinstance(exc, ValidationFailed):
        extra["issues"] = [str(i) for i in exc.issues]
    log.info("%s on %s: %s", type(exc).__name__, request.path, exc)
    return _respond(status, _snake(type(exc).__name__), message, fix, **extra)


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
    code = _snake(type(exc).__name__)
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
    app.register_error_handler(WanggeError, _wangge_error)
    app.register_error_handler(InternalServerError, _server_error)
    app.register_error_handler(HTTPException, _http_error)
