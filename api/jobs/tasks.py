"""Running one job: claim its row, call its function with a :class:`JobContext`, record the end.

A job function is ``fn(ctx, params) -> dict | None`` named ``"package.module:function"``
(trusted code only, never a name from a request). It reports progress with
``ctx.progress(message, fraction)``, which raises :class:`JobCancelled` once the user
cancelled; it writes its output in one transaction and, inside that transaction, calls
``ctx.complete(session, ...)`` so the output and the job's "done" commit together (or the
runner records the returned dict as the result).
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from api.db import session_scope
from api.error_text import geo_error_text
from api.jobs import store
from geo.errors import WanggeError

__all__ = ["JobCancelled", "JobError", "JobContext", "JobFunction", "resolve", "execute"]

log = logging.getLogger(__name__)


class JobCancelled(Exception):
    """Raised by :meth:`JobContext.progress` when the user cancelled the job."""


class JobError(Exception):
    """A job failure whose *message* (Chinese, naming the fix) is shown to the user as is.

    *result* (e.g. the rows of a refused import's report) is kept as the failed job's result.
    """

    def __init__(self, message: str, *, result: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message, self.result = message, result


class JobContext:
    """What a running job function gets: its app, id, user, progress and cancel checks."""

    def __init__(self, app: Flask, job_id: str, user: str) -> None:
        self.app, self.job_id, self.user = app, job_id, user
        self.completed = False
        self._every = float(app.config["WANGGE"]["job_progress_every_s"])
        self._last = 0.0

    def progress(self, message: str, fraction: float) -> None:
        """Record *fraction* (0..1) and *message*; raise :class:`JobCancelled` if cancelled.

        Writes at most every ``job_progress_every_s`` seconds (the rest are dropped).
        """
        now = time.monotonic()
        if now - self._last < self._every:
            return
        self._last = now
        with self.app.app_context(), session_scope() as session:
            saved = store.save_progress(session, self.job_id, min(max(float(fraction), 0.0), 1.0), message)
            cancelled = not saved and store.cancel_requested(session, self.job_id)
        if cancelled:
            raise JobCancelled(self.job_id)

    def check_cancelled(self, session: Session | None = None) -> None:
        """Raise :class:`JobCancelled` if the user cancelled (read in *session* when given)."""
        if session is not None:
            cancelled = store.cancel_requested(session, self.job_id)
        else:
            with self.app.app_context(), session_scope() as own:
                cancelled = store.cancel_requested(own, self.job_id)
        if cancelled:
            raise JobCancelled(self.job_id)

    def complete(self, session: Session, *, message: str, result: dict[str, Any] | None = None,
                 plan_id: int | None = None) -> None:
        """Mark the job done in the job's own output transaction *session*.

        Raises :class:`JobCancelled` (rolling the output back) when the user cancelled first
        or the job was given up as failed meanwhile.
        """
        if not store.finish_job(session, self.job_id, state="done", message=message, result=result, plan_id=plan_id):
            raise JobCancelled(self.job_id)
        self.completed = True


JobFunction = Callable[[JobContext, dict[str, Any]], "dict[str, Any] | None"]


def resolve(fn_name: str) -> JobFunction:
    """The function named ``"package.module:function"``."""
    module, sep, name = fn_name.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"job function {fn_name!r}: name it as 'package.module:function'")
    fn = getattr(importlib.import_module(module), name, None)
    if not callable(fn):
        raise ValueError(f"job function {fn_name!r}: module {module} has no function {name}")
    return fn


def _failure_message(exc: BaseException) -> str:
    """What the user reads: a :class:`JobError`'s message, a geo error's Chinese wording, else a generic one."""
    if isinstance(exc, JobError):
        return exc.message
    if isinstance(exc, WanggeError):
        _code, text = geo_error_text(exc)
        return f"任务失败：{text.message or exc}；{text.fix}"
    return "任务失败：服务器内部错误；请稍后重试，如仍出错，请把任务编号告诉管理员（详情见服务日志）"


def _fail(app: Flask, job_id: str, exc: BaseException) -> None:
    result = exc.result if isinstance(exc, JobError) else None
    with app.app_context(), session_scope() as session:
        store.finish_job(session, job_id, state="failed", message=_failure_message(exc), result=result,
                         error=f"{type(exc).__name__}: {exc}")


def execute(app: Flask, job_id: str, worker: str) -> None:
    """Run job *job_id* on *worker* unless it was cancelled or claimed meanwhile."""
    with app.app_context():
        with session_scope() as session:
            if not store.claim_job(session, job_id, worker):
                log.info("job %s not queued any more (cancelled or taken), skipped", job_id)
                return
            row = store.load_job(session, job_id)
            assert row is not None
            fn_name, params, user = row.fn_name, dict(row.params or {}), row.username
        ctx = JobContext(app, job_id, user)
        log.info("job %s (%s) started on %s", job_id, fn_name, worker)
        try:
            result = resolve(fn_name)(ctx, params)
            if not ctx.completed:
                with session_scope() as session:
                    ctx.complete(session, message=str((result or {}).get("message", "完成")), result=result)
        except JobCancelled:
            with session_scope() as session:
                store.finish_job(session, job_id, state="cancelled", message="已取消")
            log.info("job %s cancelled", job_id)
        except Exception as exc:  # the job reports any failure to the user instead of dying silently
            log.exception("job %s failed", job_id)
            _fail(app, job_id, exc)
        else:
            log.info("job %s done", job_id)
