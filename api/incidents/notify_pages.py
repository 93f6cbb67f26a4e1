"""Notification pages: the user's inbox (``/notifications``), reading, and the admin's outbox view.

The nav shows the unread count through the ``unread_notifications()`` template global, which
queries only when a page renders it. Every user sees and marks only their own messages.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from api.auth import role_required
from api.db import get_session, session_scope
from api.errors import RequestError
from api.incidents.models import Notification
from api.incidents.notify import KINDS, inbox_messages, mark_read, unread_count
from api.incidents.outbox import outbox_summary, retry_failed

__all__ = ["bp", "INBOX_LIMIT"]

bp = Blueprint("notify_pages", __name__)
#: Messages listed on the inbox page.
INBOX_LIMIT = 200


def _me() -> str:
    return str(current_user.username)


@bp.app_context_processor
def _unread() -> dict[str, Any]:
    def unread_notifications() -> int:
        if not current_user.is_authenticated:
            return 0
        try:
            return unread_count(get_session(), _me())
        except SQLAlchemyError:  # the badge never turns an error page (e.g. 503 database busy) into a 500
            return 0

    return {"unread_notifications": unread_notifications}


@bp.get("/notifications")
@login_required
def inbox_page() -> str:
    """The user's messages, unread first; admins also see the outbox (pending, sent, failed)."""
    s = get_session()
    outbox = outbox_summary(s) if current_user.role == "admin" else None
    return render_template("incidents/notifications.html", page_title="消息", rows=inbox_messages(s, _me(), limit=INBOX_LIMIT),
                           kinds=KINDS, outbox=outbox, sender=current_app.config["WANGGE"]["notify_sender"])


@bp.post("/notifications/<int:notification_id>/read")
@login_required
def read_one(notification_id: int) -> Response:
    """Mark one of the user's messages read and open its case."""
    with session_scope() as s:
        row = s.get(Notification, notification_id)
        if row is None or row.username != _me():
            raise RequestError(404, "notification_not_found", f"没有编号为 {notification_id} 的消息，或它不是发给您的", "回到消息列表重新打开")
        mark_read(s, _me(), notification_id)
        case_id = row.case_id
    if case_id is None:
        return redirect(url_for("notify_pages.inbox_page"))
    return redirect(url_for("incident_pages.case_page", case_id=case_id))


@bp.post("/notifications/read-all")
@login_required
def read_all() -> Response:
    """Mark all the user's messages read."""
    with session_scope() as s:
        n = mark_read(s, _me())
    flash(f"已将 {n} 条消息标为已读")
    return redirect(url_for("notify_pages.inbox_page"))


@bp.post("/notifications/outbox/retry")
@role_required("admin")
def retry_outbox() -> Response:
    """Queue the failed outbox messages again (after the gateway is fixed)."""
    with session_scope() as s:
        n = retry_failed(s)
    flash(f"已将 {n} 条发送失败的消息重新排队")
    return redirect(url_for("notify_pages.inbox_page"))
