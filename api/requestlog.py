"""Request ids, one log line per request, and JSON log lines for log collectors.

Every request gets an id: the proxy's ``X-Request-ID`` when it is a sane token (so nginx's
``$request_id`` follows a request through both logs), else a fresh one. It is answered in
the ``X-Request-ID`` header and carried by every log line written while the request runs.
After each request one line on the ``wangge.request`` logger says method, path, status,
duration, size, client and user. With the setting ``log_format = "json"`` (``wangge serve
--prod``) every log line of the process is one JSON object (:class:`JsonFormatter`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Flask, g, has_request_context, request
from werkzeug.serving import WSGIRequestHandler
from werkzeug.wrappers import Response

from geo.register.idnumber import mask_numbers_in_text

__all__ = ["REQUEST_ID_HEADER", "JsonFormatter", "MaskedRequestHandler", "configure_logging", "init_app",
           "request_id"]

REQUEST_ID_HEADER = "X-Request-ID"
LOG_FORMATS = ("text", "json")
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_LOG = logging.getLogger("wangge.request")
#: Attributes every LogRecord has; anything else was passed with ``extra=`` and is logged.
_RECORD_KEYS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"


def request_id() -> str | None:
    """The id of the current request (``None`` outside a request)."""
    if not has_request_context():
        return None
    rid = g.get("request_id")
    if rid is None:
        sent = request.headers.get(REQUEST_ID_HEADER, "")
        rid = g.request_id = sent if _SANE_ID.match(sent) else uuid.uuid4().hex
    return str(rid)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, pid, request id, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
            "pid": os.getpid(),
        }
        rid = getattr(record, "request_id", None) or request_id()
        if rid:
            entry["request_id"] = rid
        entry.update({k: v for k, v in vars(record).items() if k not in _RECORD_KEYS and k != "request_id"})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class MaskedRequestHandler(WSGIRequestHandler):
    """The development server's handler whose access lines mask long numbers (ID numbers, phones).

    werkzeug logs each request line with its query string, so a search typed as a resident's ID
    number (``/register?q=110…``) reached the log in clear; ``wangge serve --prod`` logs no access
    lines (api.requestlog's own line has the path only).
    """

    def log(self, type: str, message: str, *args: Any) -> None:  # noqa: A002 - werkzeug's signature
        super().log(type, "%s", mask_numbers_in_text(message % args if args else message))


def configure_logging(log_format: str) -> None:
    """Root logging at INFO in *log_format* ('text' or 'json'), set once per process."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"setting log_format: {log_format!r} is not a log format; "
                         "set WANGGE_LOG_FORMAT to 'text' or 'json'")
    logging.basicConfig(level=logging.INFO, format=_TEXT_FORMAT)
    if log_format == "json":
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter())


def _start() -> None:
    g.request_started = time.perf_counter()
    request_id()


def _finish(response: Response) -> Response:
    rid = request_id()
    if rid:
        response.headers[REQUEST_ID_HEADER] = rid
    started = g.get("request_started")
    ms = round((time.perf_counter() - started) * 1000, 1) if started is not None else None
    user = getattr(g.get("_login_user"), "username", None)
    _LOG.info("%s %s %s %s ms rid=%s", request.method, request.path, response.status_code, ms, rid,
              extra={"method": request.method, "path": request.path, "status": response.status_code,
                     "ms": ms, "bytes": response.calculate_content_length(), "remote": request.remote_addr,
                     "user": user})
    return response


def init_app(app: Flask) -> None:
    """Give every request of *app* an id and a log line."""
    app.before_request(_start)
    app.after_request(_finish)
