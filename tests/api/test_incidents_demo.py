"""Demo incidents: a plausible year (some overdue, some reworked, extended, refused) with timelines."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from flask import Flask
from sqlalchemy import func, select

from api.cli import main
from api.db import session_scope
from api.incidents.cases import cases_frame
from api.incidents.models import IncidentCase, IncidentEvent
from geo.incidents.metrics import incident_metrics
from tests.api.plans_helpers import district_app
from tests.api.register_helpers import published_app


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    with published_app(tmp_path_factory.mktemp("incident_demo"), 600) as app:
        yield app


def test_demo_year_is_plausible_and_made_once(app: Flask) -> None:
    runner = app.test_cli_runner()
    r = runner.invoke(main, ["incidents", "demo", "--per-grid-week", "1.5"])
    assert r.exit_code == 0 and "合成事件 synthetic incidents" in r.output, r.output
    with app.app_context(), session_scope() as s:
        frame = cases_frame(s, columns=("id", "state", "grid_code", "dispatched_at", "due_at", "closed_at",
                                         "rework_count", "extension_count", "supervise_level", "reported_at"))
        events = pd.DataFrame(s.execute(select(IncidentEvent.case_id, IncidentEvent.action)
                                        .order_by(IncidentEvent.id)).all(),
                              columns=["case_id", "action"])
    assert len(frame) > 500 and frame["grid_code"].notna().all()
    now = pd.Timestamp.now(tz="UTC")
    assert (frame["reported_at"] > now - pd.Timedelta(days=366)).all() and (frame["reported_at"] <= now).all()
    year = incident_metrics(frame, start=now - pd.Timedelta(days=365), end=now - pd.Timedelta(days=30))
    row = year.loc["全部"]
    assert 85 <= row["closure_rate"] <= 99.9 and 60 <= row["on_time_rate"] <= 92
    assert 3 <= row["rework_rate"] <= 15 and 1 <= row["extension_rate"] <= 10
    open_ = frame["state"].isin(["accepted", "dispatched", "handling", "feedback"])
    overdue = open_ & (frame["due_at"] < now)
    assert overdue.sum() > 0 and frame.loc[overdue, "supervise_level"].notna().all()
    assert (frame["state"] == "rejected").sum() > 0
    per_case = events.groupby("case_id")["action"].agg(list)
    assert per_case.map(lambda a: a[0] == "report").all()
    closed = frame.loc[frame["closed_at"].notna(), "id"]
    assert per_case.loc[closed].map(lambda a: "verify_pass" in a).all()
    reworked = frame.loc[(frame["rework_count"] > 0) & frame["closed_at"].notna(), "id"]
    assert per_case.loc[reworked].map(lambda a: "verify_fail" in a).all()
    r = runner.invoke(main, ["incidents", "demo"])
    assert "已存在" in r.output
    with app.app_context(), session_scope() as s:
        assert s.scalar(select(func.count()).select_from(IncidentCase)) == len(frame)


def test_demo_without_a_published_plan_says_what_to_do(tmp_path: Path) -> None:
    with district_app(tmp_path, 120) as app:
        r = app.test_cli_runner().invoke(main, ["incidents", "demo"])
    assert r.exit_code == 0 and "尚无已发布的网格方案" in r.output
