"""Notifications: who hears of what, in the in-app inbox and, for some kinds, in the outbox.

Every workflow event that someone must act on becomes an inbox message for them, written in
the transaction of the action itself (nothing is lost, nothing is sent for an action that
rolled back):

=====================  ===========================================  ======================
action                 kind                                         to
=====================  ===========================================  ======================
派遣 / 改派              ``dispatch``                                 the (new) assignee
回退                     ``send_back``                                the 指挥中心 (admin, planner)
处置反馈                  ``feedback`` (to verify)                     the 指挥中心
核查不通过                ``rework``                                   the assignee
督办 (by hand or job)     ``supervise``                                the assignee
申请延期                  ``extension_request``                        the 指挥中心
批准 / 驳回延期            ``extension_decided``                        the assignee
due within the window    ``due_soon`` (periodic scan)                 the assignee
past the due time        ``overdue`` (periodic scan)                  the assignee
=====================  ===========================================  ======================

The actor is never told of their own action. Each message has a unique ``key`` (the event
and recipient, or the case, due time and recipient for the scans), so running a scan or
the 督办 job twice adds nothing. Kinds listed in ``notify_external_kinds`` also get one
:class:`~api.incidents.models.OutboxMessage` per channel of ``notify_channels``, drained by
:mod:`api.incidents.outbox`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from api.incidents.models import IncidentCase, IncidentEvent, Notification, OutboxMessage
from api.incidents.tables import load_categories
from api.models import User, utcnow
from api.register.models import Staff
from geo.incidents.workflow import OPEN_STATES, SUPERVISE_LEVELS

__all__ = ["KINDS", "TEMPLATES", "Notice", "recipients", "case_params", "make_notice", "notify_event", "notify",
           "scan_due", "unread_count", "inbox_messages", "mark_read"]

#: Notification kind -> Chinese label.
KINDS: dict[str, str] = {
    "dispatch": "新派遣案件", "send_back": "案件被回退", "feedback": "案件待核查", "rework": "核查不通过需返工",
    "supervise": "案件被督办", "extension_request": "延期申请待审批", "extension_decided": "延期申请已审批",
    "due_soon": "案件即将到期", "overdue": "案件已超期",
}
#: External text per kind (SMS / WeChat template body); ``{sign}`` is ``notify_sms_signature``.
TEMPLATES: dict[str, str] = {
    "dispatch": "【{sign}】您有新派遣案件{case_id}（{category}），请于{due}前处置。",
    "rework": "【{sign}】案件{case_id}（{category}）核查未通过，请返工处置。",
    "send_back": "【{sign}】案件{case_id}（{category}）被回退，请重新受理派遣。",
    "supervise": "【{sign}】案件{case_id}（{category}）被{level}，请尽快处置。",
    "due_soon": "【{sign}】案件{case_id}（{category}）将于{due}到期，请抓紧处置。",
    "overdue": "【{sign}】案件{case_id}（{category}）已超过处置时限（{due}），请立即处置。",
    "extension_request": "【{sign}】案件{case_id}（{category}）申请延期，请审批。",
    "extension_decided": "【{sign}】案件{case_id}（{category}）的延期申请已审批，请登录查看。",
    "feedback": "【{sign}】案件{case_id}（{category}）已反馈，请核查。",
}
_CENTRE_ROLES = ("admin", "planner")
_TO_ASSIGNEE = {"dispatch": "dispatch", "reassign": "dispatch", "verify_fail": "rework", "supervise": "supervise",
                "approve_extension": "extension_decided", "deny_extension": "extension_decided"}
_TO_CENTRE = {"send_back": "send_back", "feedback": "feedback", "request_extension": "extension_request"}


@dataclass(frozen=True)
class Notice:
    """One message to write: its unique key, recipient, kind, case and text."""

    key: str
    username: str
    kind: str
    case_id: int | None
    title: str
    body: str
    params: tuple[tuple[str, Any], ...] = ()


def _centre(session: Session) -> list[str]:
    return list(session.scalars(select(User.username).where(User.role.in_(_CENTRE_ROLES), User.active.is_(True))
                                .order_by(User.username)))


def recipients(session: Session, action: str, *, assignee: str | None, actor: str) -> list[tuple[str, str]]:
    """(kind, username) pairs told of *action* on a case now assigned to *assignee* (never the actor)."""
    if action in _TO_ASSIGNEE:
        pairs = [(_TO_ASSIGNEE[action], assignee)] if assignee else []
    elif action in _TO_CENTRE:
        pairs = [(_TO_CENTRE[action], u) for u in _centre(session)]
    else:
        pairs = []
    return [(k, u) for k, u in pairs if u and u != actor]


def _local(value: datetime | None, tz: str) -> str:
    return "—" if value is None else value.astimezone(ZoneInfo(tz)).strftime("%m月%d日%H:%M")


def case_params(case: IncidentCase, category: str, tz: str, **extra: Any) -> dict[str, Any]:
    return {"case_id": case.id, "category": category, "due": _local(case.due_at, tz), **extra}


def make_notice(key: str, username: str, kind: str, case: IncidentCase, params: dict[str, Any],
                reason: str = "") -> Notice:
    """The :class:`Notice` of *kind* about *case* for *username* (title, body with the reason)."""
    title = f"{KINDS[kind]} #{case.id}"
    body = f"{params['category']}：{(case.description or '')[:60]}（时限 {params['due']}）" + (f"。{reason}" if reason else "")
    return Notice(key, username, kind, case.id, title, body, tuple(sorted(params.items())))


def notify_event(session: Session, case: IncidentCase, event: IncidentEvent, *,
                 settings: Mapping[str, Any]) -> list[Notice]:
    """Write the notifications of one stored workflow *event* on *case*; the notices written."""
    pairs = recipients(session, event.action, assignee=case.assignee, actor=event.actor)
    if not pairs:
        return []
    cat = load_categories(session).get(case.category)
    name = cat.name if cat else case.category
    level = SUPERVISE_LEVELS.get(case.supervise_level or "", "督办")
    tz = settings["incident_timezone"]
    params = case_params(case, name, tz, level=level)
    notices = [make_notice(f"ev:{event.id}:{user}", user, kind, case, params, event.reason) for kind, user in pairs]
    return notify(session, notices, settings=settings)


def _phones(session: Session, usernames: set[str]) -> dict[str, str]:
    rows = session.execute(select(User.username, Staff.phone).join(Staff, Staff.user_id == User.id)
                           .where(User.username.in_(sorted(usernames))).order_by(Staff.id)).all()
    out: dict[str, str] = {}
    for user, phone in rows:
        out.setdefault(user, phone)
    return out


def _split(value: str) -> list[str]:
    return [v.strip() for v in str(value or "").split(",") if v.strip()]


def _outbox_rows(session: Session, fresh: list[Notice], ids: Mapping[str, int],
                 settings: Mapping[str, Any]) -> list[dict[str, Any]]:
    kinds, channels = set(_split(settings["notify_external_kinds"])), _split(settings["notify_channels"])
    external = [n for n in fresh if n.kind in kinds]
    if not external or not channels:
        return []
    phones, now = _phones(session, {n.username for n in external}), utcnow()
    sign = settings["notify_sms_signature"]
    return [{"key": f"{ch}:{n.key}", "notification_id": ids[n.key], "channel": ch, "username": n.username,
             "address": phones.get(n.username), "template": n.kind, "params": dict(n.params),
             "text": TEMPLATES[n.kind].format(sign=sign, **dict(n.params)), "status": "pending", "attempts": 0,
             "created_at": now, "next_attempt_at": now} for n in external for ch in channels]


def notify(session: Session, notices: Iterable[Notice], *, settings: Mapping[str, Any]) -> list[Notice]:
    """Write the *notices* not written before (by key) and their outbox messages; the new ones."""
    todo = {n.key: n for n in notices}
    if not todo:
        return []
    keys = list(todo)
    seen: set[str] = set()
    for i in range(0, len(keys), 900):
        seen.update(session.scalars(select(Notification.key).where(Notification.key.in_(keys[i:i + 900]))))
    fresh = [n for k, n in todo.items() if k not in seen]
    if not fresh:
        return []
    now = utcnow()
    session.execute(insert(Notification), [{"key": n.key, "username": n.username, "kind": n.kind, "case_id": n.case_id,
                                            "title": n.title, "body": n.body, "created_at": now} for n in fresh])
    ids: dict[str, int] = {}
    fresh_keys = [n.key for n in fresh]
    for i in range(0, len(fresh_keys), 900):
        ids.update(session.execute(select(Notification.key, Notification.id)
                                   .where(Notification.key.in_(fresh_keys[i:i + 900]))).all())
    rows = _outbox_rows(session, fresh, ids, settings)
    if rows:
        session.execute(insert(OutboxMessage), rows)
    return fresh


def scan_due(session: Session, *, settings: Mapping[str, Any], now: datetime | None = None) -> int:
    """Tell assignees of their open cases due within ``incident_due_soon_hours`` or overdue; new notices.

    Keyed by case, due time and kind: a case is announced once as due soon and once as
    overdue per due time (an approved extension moves the due time and starts again).
    """
    now = now or utcnow()
    soon = now + timedelta(hours=float(settings["incident_due_soon_hours"]))
    cases = session.scalars(select(IncidentCase).where(IncidentCase.state.in_(OPEN_STATES),
                                                       IncidentCase.assignee.is_not(None),
                                                       IncidentCase.due_at.is_not(None), IncidentCase.due_at < soon))
    cats, tz = load_categories(session), settings["incident_timezone"]
    notices = []
    for case in cases:
        kind = "overdue" if case.due_at < now else "due_soon"
        cat = cats.get(case.category)
        params = case_params(case, cat.name if cat else case.category, tz)
        key = f"{kind}:{case.id}:{case.due_at.isoformat()}:{case.assignee}"
        notices.append(make_notice(key, str(case.assignee), kind, case, params))
    return len(notify(session, notices, settings=settings))


def unread_count(session: Session, username: str) -> int:
    """Unread inbox messages of *username* (the nav badge)."""
    return int(session.scalar(select(func.count()).select_from(Notification)
                              .where(Notification.username == username, Notification.read_at.is_(None))) or 0)


def inbox_messages(session: Session, username: str, *, limit: int) -> list[Notification]:
    """The newest *limit* inbox messages of *username*, unread first."""
    return list(session.scalars(select(Notification).where(Notification.username == username)
                                .order_by(Notification.read_at.is_not(None), Notification.id.desc()).limit(limit)))


def mark_read(session: Session, username: str, notification_id: int | None = None) -> int:
    """Mark one message (or all) of *username* read; how many changed. Others' messages are never touched."""
    stmt = update(Notification).where(Notification.username == username, Notification.read_at.is_(None))
    if notification_id is not None:
        stmt = stmt.where(Notification.id == notification_id)
    result = session.execute(stmt.values(read_at=utcnow()).execution_options(synchronize_session=False))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]

