"""Incident service on a published plan: intake, location to the active grid, duplicates, dispatch, workflow."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select

from api import db
from api.db import session_scope
from api.grids.service import active_grids
from api.incidents import cases as svc
from api.incidents.intake import IncidentInputError, Intake, report_case
from api.incidents.models import IncidentCase, IncidentEvent
from api.models import User
from api.users import create_user
from geo.incidents.metrics import incident_metrics
from geo.incidents.workflow import TransitionRefused
from tests.api.register_helpers import published_app, serve_first_grid

PASSWORD = "Wangge-test-2026!"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    with published_app(tmp_path_factory.mktemp("incidents"), 600) as app:
        with app.app_context(), session_scope() as s:
            for name, role in (("center", "admin"), ("li", "worker"), ("zhao", "worker"), ("guest", "viewer")):
                create_user(s, name, PASSWORD, role=role)
        serve_first_grid(app, "li", name="李网格", phone="13900000000")
        yield app


def _inside(app: Flask, i: int = 0) -> tuple[str, float, float]:
    with app.app_context(), session_scope() as s:
        g = active_grids(s).iloc[i]
    p = g.geometry.representative_point()
    return g["key"], p.x, p.y


def _user(s, name: str) -> User:  # type: ignore[no-untyped-def]
    return s.scalar(select(User).where(User.username == name))


def test_report_inside_a_grid_records_grid_code_and_plan(app: Flask) -> None:
    key, x, y = _inside(app)
    with app.app_context(), session_scope() as s:
        case, dups = report_case(s, Intake("SJ-0102", "小区门口垃圾堆积", x, y, source="worker", reporter="li",
                                            photos=1), settings=app.config["WANGGE"])
        plan = active_grids(s).set_index("key").loc[key, "plan_version_id"]
        assert (case.grid_code, case.plan_version_id, case.locate_how) == (key, plan, "inside")
        assert case.state == "reported" and case.limit_unit == "workdays" and dups == []
        ev = s.scalars(select(IncidentEvent).where(IncidentEvent.case_id == case.id)).all()
        assert [(e.action, e.to_state, e.actor) for e in ev] == [("report", "reported", "li")]


def test_report_outside_every_grid_waits_for_location_and_nearby_same_category_is_suggested(app: Flask) -> None:
    with app.app_context(), session_scope() as s:
        far, _ = report_case(s, Intake("SJ-0201", "电线杆小广告", 100.0, 20.0, source="public"),
                             settings=app.config["WANGGE"])
        assert (far.grid_code, far.plan_version_id, far.locate_how) == (None, None, "none")
    key, x, y = _inside(app, 1)
    with app.app_context(), session_scope() as s:
        first, _ = report_case(s, Intake("SJ-0201", "小广告", x, y, source="public"), settings=app.config["WANGGE"])
        second, dups = report_case(s, Intake("SJ-0201", "又有小广告", x + 0.0002, y, source="public"),
                                   settings=app.config["WANGGE"])
        other, none = report_case(s, Intake("SJ-0403", "拉客", x, y, source="public"), settings=app.config["WANGGE"])
        assert [d["id"] for d in dups] == [first.id]
        assert 15 < dups[0]["distance_m"] < 25  # 0.0002° of longitude at ~31°N ≈ 19 m
        assert none == []


@pytest.mark.parametrize(("intake", "match"), [
    (Intake("XX-9999", "x", 121.0, 31.0), "未知的事件类别 'XX-9999'"),
    (Intake("SJ-0102", "x"), "没有位置"),
    (Intake("SJ-0102", "x", 121.0, None), "经纬度须同时填写"),
    (Intake("SJ-0102", "x", 221.0, 31.0), "超出范围"),
    (Intake("SJ-0102", "", 121.0, 31.0, photos=1), "必须填写：问题描述"),
    (Intake("BJ-0101", "井盖缺失", 121.0, 31.0), "必须填写：现场照片"),
    (Intake("SJ-0102", "x", 121.0, 31.0, source="fax"), "未知的上报渠道 'fax'"),
])
def test_bad_reports_are_refused_and_nothing_is_written(app: Flask, intake: Intake, match: str) -> None:
    with app.app_context(), session_scope() as s:
        before = s.scalar(select(func.count()).select_from(IncidentCase))
    with pytest.raises(IncidentInputError, match=match), app.app_context(), session_scope() as s:
        report_case(s, intake, settings=app.config["WANGGE"])
    with app.app_context(), session_scope() as s:
        assert s.scalar(select(func.count()).select_from(IncidentCase)) == before


def test_dispatch_to_the_grids_worker_then_rework_and_close(app: Flask) -> None:
    settings = app.config["WANGGE"]
    key, x, y = _inside(app)
    with app.app_context(), session_scope() as s:
        case, _ = report_case(s, Intake("SJ-0103", "路面油污", x, y), settings=settings)
        cid, center = case.id, _user(s, "center")
        svc.act(s, cid, "accept", user=center, settings=settings)
        ev = svc.act(s, cid, "dispatch", user=center, settings=settings)
        case = s.get(IncidentCase, cid)
        assert (case.state, case.assignee, ev.detail["assignee"]) == ("dispatched", "li", "li")
        assert case.dispatched_at is not None and case.due_at > case.dispatched_at + timedelta(hours=12)
    with app.app_context(), session_scope() as s:
        with pytest.raises(TransitionRefused, match="只有承办网格员（li）可以签收处置"):
            svc.act(s, cid, "start", user=_user(s, "zhao"), settings=settings)
    with app.app_context(), session_scope() as s:
        li, center = _user(s, "li"), _user(s, "center")
        svc.act(s, cid, "start", user=li, settings=settings)
        svc.act(s, cid, "feedback", user=li, settings=settings, reason="已清理")
        svc.act(s, cid, "verify_fail", user=center, settings=settings, reason="仍有油污")
        svc.act(s, cid, "feedback", user=li, settings=settings, reason="已用清洗剂冲洗")
        svc.act(s, cid, "verify_pass", user=center, settings=settings)
        case = s.get(IncidentCase, cid)
        assert (case.state, case.rework_count) == ("closed", 1) and case.closed_at is not None
        timeline = svc.case_events(s, cid)
    assert [e["action"] for e in timeline] == ["report", "accept", "dispatch", "start", "feedback", "verify_fail",
                                               "feedback", "verify_pass"]
    assert [e["actor"] for e in timeline][1:4] == ["center", "center", "li"]


def test_refusals_unlocated_no_worker_viewer_and_unknown_case(app: Flask) -> None:
    settings = app.config["WANGGE"]
    _, x, y = _inside(app, 2)
    with app.app_context(), session_scope() as s:
        far, _ = report_case(s, Intake("SJ-0102", "x", 100.0, 20.0, photos=1), settings=settings)
        near, _ = report_case(s, Intake("SJ-0102", "x", x, y, photos=1), settings=settings)
        ids = far.id, near.id
    with app.app_context(), session_scope() as s:
        center = _user(s, "center")
        for cid in ids:
            svc.act(s, cid, "accept", user=center, settings=settings)
    for cid, match in ((ids[0], "待定位"), (ids[1], "没有关联账号的网格员")):
        with app.app_context(), session_scope() as s, pytest.raises(TransitionRefused, match=match):
            svc.act(s, cid, "dispatch", user=_user(s, "center"), settings=settings)
    with app.app_context(), session_scope() as s, pytest.raises(TransitionRefused, match="guest 不是在岗的网格员"):
        svc.act(s, ids[1], "dispatch", user=_user(s, "center"), settings=settings, assignee="guest")
    with app.app_context(), session_scope() as s, pytest.raises(svc.Forbidden, match="只读用户不能办理案件"):
        svc.act(s, ids[1], "cancel", user=_user(s, "guest"), settings=settings, reason="x")
    with app.app_context(), session_scope() as s, pytest.raises(svc.CaseNotFound, match="没有编号为 999999 的案件"):
        svc.act(s, 999999, "accept", user=_user(s, "center"), settings=settings)
    with app.app_context(), session_scope() as s:
        assert s.get(IncidentCase, ids[1]).state == "accepted"


def test_escalation_job_raises_levels_of_overdue_cases_once(app: Flask) -> None:
    settings = app.config["WANGGE"]
    _, x, y = _inside(app)
    with app.app_context(), session_scope() as s:
        case, _ = report_case(s, Intake("SJ-0504", "楼道起火", x, y), settings=settings)
        center = _user(s, "center")
        svc.act(s, case.id, "accept", user=center, settings=settings)
        svc.act(s, case.id, "dispatch", user=center, settings=settings)
        cid, due = case.id, s.get(IncidentCase, case.id).due_at
    assert due is not None
    with app.app_context(), session_scope() as s:
        assert svc.escalate_overdue(s, settings=settings, now=due + timedelta(hours=30)) >= 1
        assert s.get(IncidentCase, cid).supervise_level == "yellow"
        assert svc.escalate_overdue(s, settings=settings, now=due + timedelta(hours=31)) == 0
        assert svc.escalate_overdue(s, settings=settings, now=due + timedelta(hours=80)) >= 1
        assert s.get(IncidentCase, cid).supervise_level == "red"
        last = svc.case_events(s, cid)[-1]
        assert (last["actor"], last["detail"]["level"]) == ("system", "red") and "超期 80.0 小时" in last["reason"]


def test_cases_frame_feeds_the_metrics(app: Flask) -> None:
    import pandas as pd

    with app.app_context(), session_scope() as s:
        frame = svc.cases_frame(s)
    m = incident_metrics(frame, start=pd.Timestamp("2000-01-01", tz="UTC"), end=pd.Timestamp("2100-01-01", tz="UTC"),
                         by="grid_code")
    due = frame["due_at"].notna()
    assert m["due"].sum() == due.sum() and m["closed"].sum() == (due & frame["closed_at"].notna()).sum()


def test_reading_categories_of_an_empty_table_writes_nothing(tmp_path, database_url: str) -> None:
    """Pages read categories inside read transactions: the default table is answered from memory,
    never seeded there (two first requests seeding at once left one with "database is locked")."""
    from api import create_app
    from api.incidents.models import IncidentCategory
    from api.incidents.tables import load_categories
    from geo.incidents.categories import DEFAULT_CATEGORIES

    fresh = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"), "DATABASE_URL": database_url})
    try:
        with fresh.app_context(), session_scope(write=False) as s:
            cats = load_categories(s)
            assert sorted(cats) == sorted(c.code for c in DEFAULT_CATEGORIES)
            assert cats[DEFAULT_CATEGORIES[0].code] == DEFAULT_CATEGORIES[0]
        with fresh.app_context(), session_scope(write=False) as s:
            assert s.scalar(select(func.count()).select_from(IncidentCategory)) == 0
    finally:
        db.dispose(fresh)  # its pooled connection, else closed only by the garbage collector
