"""Notifications: who hears of each action, idempotent scans and jobs, own inbox only, the outbox and its senders."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from api.cli import main
from api.db import session_scope
from api.incidents import cases as svc
from api.incidents.intake import Intake, report_case
from api.incidents.models import IncidentCase, Notification, OutboxMessage
from api.incidents.notify import scan_due
from api.incidents.outbox import (
    LogSender,
    OutgoingMessage,
    SenderError,
    drain_outbox,
    load_sender,
    retry_failed,
)
from api.models import User, utcnow
from tests.api.plans_helpers import login
from tests.api.register_helpers import grid_point, published_app, serve_first_grid

PASSWORD = "Wangge-test-2026!"


class FlakySender:
    """A gateway that fails its first *fail* calls (a test double of a real SMS gateway, built from settings)."""

    calls: list[str] = []
    fail = 1

    def __init__(self, settings: Any) -> None:
        self.settings = settings

    def send(self, message: OutgoingMessage) -> None:
        FlakySender.calls.append(message.text)
        if len(FlakySender.calls) <= FlakySender.fail:
            raise ConnectionError("gateway timeout")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    with published_app(tmp_path_factory.mktemp("incident_notify"), 600) as app:
        clients = {r: login(app, r) for r in ("admin", "planner", "worker", "viewer")}
        serve_first_grid(app, "worker", name="王网格", phone="13800001234")
        app.extensions["test_clients"] = clients
        yield app


def _new_case(app: Flask, text: str = "垃圾堆积") -> int:
    x, y = grid_point(app)
    with app.app_context(), session_scope() as s:
        return report_case(s, Intake("SJ-0102", text, x, y, source="worker", reporter="worker", photos=1),
                           settings=app.config["WANGGE"])[0].id


def _act(app: Flask, case_id: int, who: str, action: str, **options: Any) -> set[tuple[str, str]]:
    """Take *action* as *who*; the (kind, recipient) pairs it notified."""
    with app.app_context(), session_scope() as s:
        before = s.scalar(select(func.max(Notification.id))) or 0
        user = s.scalar(select(User).where(User.username == who))
        svc.act(s, case_id, action, user=user, settings=app.config["WANGGE"], **options)
        rows = s.execute(select(Notification.kind, Notification.username).where(Notification.id > before)).all()
    return {(k, u) for k, u in rows}


def test_who_is_notified_for_each_action(app: Flask) -> None:
    cid = _new_case(app)
    centre = {("admin"), ("planner")}
    steps: list[tuple[str, str, dict[str, Any], set[tuple[str, str]]]] = [
        ("admin", "accept", {}, set()),
        ("admin", "dispatch", {}, {("dispatch", "worker")}),
        ("worker", "send_back", {"reason": "不属于本网格"}, {("send_back", u) for u in centre}),
        ("planner", "dispatch", {}, {("dispatch", "worker")}),
        ("worker", "start", {}, set()),
        ("worker", "request_extension", {"reason": "需要物业配合", "days": 2}, {("extension_request", u) for u in centre}),
        ("admin", "approve_extension", {}, {("extension_decided", "worker")}),
        ("admin", "supervise", {"reason": "居民多次反映", "level": "yellow"}, {("supervise", "worker")}),
        ("worker", "feedback", {"reason": "已清运"}, {("feedback", u) for u in centre}),
        ("admin", "verify_fail", {"reason": "仍有残留"}, {("rework", "worker")}),
        ("worker", "feedback", {"reason": "已彻底清运"}, {("feedback", u) for u in centre}),
        ("planner", "verify_pass", {}, set()),
    ]
    for who, action, options, expected in steps:
        assert _act(app, cid, who, action, **options) == expected, (who, action)
    with app.app_context(), session_scope() as s:
        out = s.scalars(select(OutboxMessage).where(OutboxMessage.username == "worker")).all()
        # Default notify_external_kinds: dispatch, rework, supervise, overdue; default channel sms.
        assert sorted(m.template for m in out if m.params["case_id"] == cid) == ["dispatch", "dispatch", "rework", "supervise"]
        assert {m.channel for m in out} == {"sms"} and {m.address for m in out} == {"13800001234"}
        assert any(f"案件{cid}" in m.text and "黄牌督办" in m.text for m in out)


def test_due_scan_and_escalation_job_notify_once(app: Flask) -> None:
    cid = _new_case(app, "路面积水")
    _act(app, cid, "admin", "accept")
    _act(app, cid, "admin", "dispatch")
    settings = app.config["WANGGE"]
    with app.app_context(), session_scope() as s:
        case = s.get(IncidentCase, cid)
        soon = case.due_at - timedelta(hours=1)
        assert scan_due(s, settings=settings, now=soon) >= 1
        assert scan_due(s, settings=settings, now=soon) == 0
        late = case.due_at + timedelta(hours=30)
        assert scan_due(s, settings=settings, now=late) >= 1
        assert scan_due(s, settings=settings, now=late) == 0
        assert svc.escalate_overdue(s, settings=settings, now=late) >= 1
        first = s.scalar(select(func.count()).select_from(Notification).where(Notification.kind == "supervise",
                                                                              Notification.case_id == cid))
        svc.escalate_overdue(s, settings=settings, now=late + timedelta(minutes=15))
        again = s.scalar(select(func.count()).select_from(Notification).where(Notification.kind == "supervise",
                                                                              Notification.case_id == cid))
        kinds = set(s.scalars(select(Notification.kind).where(Notification.case_id == cid)))
    assert first == again == 1
    assert {"dispatch", "due_soon", "overdue", "supervise"} <= kinds


def test_each_user_sees_and_marks_only_their_own(app: Flask) -> None:
    _act(app, _new_case(app, "井盖缺失"), "admin", "accept")
    clients = app.extensions["test_clients"]
    with app.app_context(), session_scope() as s:
        theirs = s.scalar(select(Notification).where(Notification.username == "planner").limit(1))
        unread = s.scalar(select(func.count()).select_from(Notification).where(Notification.username == "worker",
                                                                               Notification.read_at.is_(None)))
    page = clients["worker"].get("/incidents").get_data(as_text=True)
    assert re.search(rf'class="wg-inbox-badge">{unread}<', page)
    inbox = clients["worker"].get("/notifications").get_data(as_text=True)
    assert "新派遣案件" in inbox and "延期申请待审批" not in inbox  # the centre's messages stay with the centre
    assert clients["worker"].post(f"/notifications/{theirs.id}/read").status_code == 404
    admin_inbox = clients["admin"].get("/notifications").get_data(as_text=True)
    assert "外发消息" not in inbox and "外发消息" in admin_inbox
    assert "仅写入服务器日志" in admin_inbox and "发送方式：log" not in admin_inbox  # the sender in words
    viewer = clients["viewer"].get("/notifications")
    assert viewer.status_code == 200 and "暂无消息" in viewer.get_data(as_text=True)
    with app.app_context(), session_scope() as s:
        mine = s.scalar(select(Notification).where(Notification.username == "worker").order_by(Notification.id.desc()))
    r = clients["worker"].post(f"/notifications/{mine.id}/read")
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/incidents/{mine.case_id}")
    clients["worker"].post("/notifications/read-all")
    with app.app_context(), session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Notification).where(Notification.username == "worker",
                                                                             Notification.read_at.is_(None))) == 0
        assert s.get(Notification, theirs.id).read_at is None
    assert 'class="wg-inbox-badge"' not in clients["worker"].get("/incidents").get_data(as_text=True)


def test_outbox_is_sent_retried_kept_when_failing_and_requeued(app: Flask) -> None:
    settings = {**app.config["WANGGE"], "notify_max_attempts": 2, "notify_retry_s": 0.0}
    with app.app_context():
        with session_scope() as s:
            pending = s.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "pending"))
            s.add(OutboxMessage(key="sms:no-phone", channel="sms", username="nobody", address=None, template="dispatch",
                                params={}, text="x"))
        FlakySender.calls, FlakySender.fail = [], 1
        sender = load_sender("tests.api.test_incidents_notify:FlakySender", settings)
        now = utcnow()
        first = drain_outbox(session_scope, sender, settings=settings, now=now)
        assert first == {"sent": pending - 1, "retry": 2, "failed": 0, "skipped": 0}
        second = drain_outbox(session_scope, sender, settings=settings, now=now + timedelta(seconds=1))
        assert second == {"sent": 1, "retry": 0, "failed": 1, "skipped": 0}
        with session_scope() as s:
            failed = s.scalar(select(OutboxMessage).where(OutboxMessage.key == "sms:no-phone"))
            assert (failed.status, failed.attempts) == ("failed", 2) and "没有手机号" in failed.last_error
            assert retry_failed(s) == 1
    r = app.test_cli_runner().invoke(main, ["incidents", "notify", "status"])
    assert r.exit_code == 0 and "pending 1" in r.output, r.output


def test_sender_setting_is_checked_and_the_log_sender_masks_the_number(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(SenderError, match="neither 'log' nor 'package.module:Class'"):
        load_sender("smtpsender", {})
    with pytest.raises(SenderError, match="cannot be loaded"):
        load_sender("no_such_gateway.sms:Sender", {})
    assert isinstance(load_sender("log", {}), LogSender)
    with caplog.at_level("INFO", logger="api.incidents.outbox"):
        LogSender().send(OutgoingMessage(1, "sms", "worker", "13800001234", "dispatch", {}, "【网格通】您有新派遣案件1"))
    assert "***1234" in caplog.text and "13800001234" not in caplog.text


def test_cli_send_drains_with_the_log_sender(app: Flask) -> None:
    _act(app, _new_case(app, "违规广告"), "admin", "accept")
    with app.app_context(), session_scope() as s:
        cid = s.scalar(select(func.max(IncidentCase.id)))
    _act(app, cid, "admin", "dispatch")
    r = app.test_cli_runner().invoke(main, ["incidents", "notify", "send"])
    assert r.exit_code == 0 and re.search(r"sent [1-9]", r.output), r.output
