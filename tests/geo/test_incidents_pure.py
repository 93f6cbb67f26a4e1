"""Pure incident domain: categories, working-day calendar and SLA, the state machine, metrics."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from geo.errors import LayerError
from geo.incidents.categories import (
    DEFAULT_CATEGORIES,
    categories_from_frame,
    category_frame,
    read_categories,
    search_categories,
)
from geo.incidents.metrics import incident_metrics
from geo.incidents.workcalendar import WorkCalendar, due_time, due_times, read_calendar
from geo.incidents.workflow import (
    ACTIONS,
    STATES,
    CaseState,
    TransitionRefused,
    allowed_actions,
    apply,
    escalation_level,
)

SH = ZoneInfo("Asia/Shanghai")
# A made-up National Day week: Thu 2026-10-01 .. Wed 10-07 off; Sat 10-10 a make-up working day.
HOLIDAYS = frozenset(date(2026, 10, d) for d in range(1, 8))
CAL = WorkCalendar(holidays=HOLIDAYS, workdays=frozenset({date(2026, 10, 10)}))


# ---------------------------------------------------------------- categories

def test_default_categories_cover_the_standard_major_classes() -> None:
    majors = {(c.kind, c.major_name) for c in DEFAULT_CATEGORIES}
    for name in ("公用设施", "道路交通", "市容环境", "园林绿化", "房屋土地", "其他设施"):
        assert ("BJ", name) in majors
    for name in ("市容环境", "宣传广告", "施工管理", "街面秩序", "突发事件", "其他事件"):
        assert ("SJ", name) in majors
    assert {"矛盾纠纷", "安全隐患", "特殊群体服务", "政策宣传"} <= {m for k, m in majors if k == "SH"}
    codes = [c.code for c in DEFAULT_CATEGORIES]
    assert len(codes) == len(set(codes))
    manhole = next(c for c in DEFAULT_CATEGORIES if c.minor_name == "井盖")
    assert (manhole.limit_unit, manhole.grade, "photos" in manhole.required) == ("hours", 1, True)


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_category_table_round_trips_through_csv_and_xlsx(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"cats{suffix}"
    frame = category_frame(DEFAULT_CATEGORIES)
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_excel(path, index=False)
    assert read_categories(path) == DEFAULT_CATEGORIES


@pytest.mark.parametrize(("change", "match"), [
    ({"代码": "XX-0101"}, r"row 2: category code 'XX-0101' is not"),
    ({"时限单位": "周"}, r"row 2: time-limit unit '周' unknown; use 小时 or 工作日"),
    ({"等级": "高"}, r"row 2: grade and time limit must be numbers"),
    ({"等级": "7"}, r"row 2: grade must be 1–3"),
    ({"时限": "0"}, r"time limit > 0"),
    ({"必填项": "身份证"}, r"unknown required field\(s\) 身份证"),
])
def test_bad_category_rows_are_refused_with_row_and_fix(change: dict[str, str], match: str) -> None:
    frame = category_frame(DEFAULT_CATEGORIES[:3]).astype(str)
    for col, value in change.items():
        frame.loc[0, col] = value
    with pytest.raises(LayerError, match=match):
        categories_from_frame(frame)


def test_category_table_missing_column_and_duplicate_code() -> None:
    frame = category_frame(DEFAULT_CATEGORIES[:3])
    with pytest.raises(LayerError, match="lacks column\\(s\\) 责任部门"):
        categories_from_frame(frame.drop(columns=["责任部门"]))
    dup = pd.concat([frame, frame.iloc[[0]]], ignore_index=True)
    with pytest.raises(LayerError, match="row 5: category code BJ-0101 appears twice"):
        categories_from_frame(dup)


def test_category_search_matches_names_and_codes() -> None:
    assert [c.code for c in search_categories(DEFAULT_CATEGORIES, "井盖")] == ["BJ-0101"]
    assert all(c.major_name == "突发事件" for c in search_categories(DEFAULT_CATEGORIES, "突发"))
    assert len(search_categories(DEFAULT_CATEGORIES, " ")) == len(DEFAULT_CATEGORIES)


# ---------------------------------------------------------------- calendar and SLA

def _sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


@pytest.mark.parametrize(("dispatched", "days", "expected"), [
    (_sh(2026, 9, 28, 10), 1, _sh(2026, 9, 29, 10)),        # Mon -> Tue
    (_sh(2026, 9, 30, 16, 30), 1, _sh(2026, 10, 8, 16, 30)),  # Wed before the holiday week -> Thu after
    (_sh(2026, 10, 9, 9), 1, _sh(2026, 10, 10, 9)),         # Fri -> make-up Saturday
    (_sh(2026, 10, 9, 9), 2, _sh(2026, 10, 12, 9)),         # ... -> Mon
    (_sh(2026, 10, 3, 11), 1, _sh(2026, 10, 9, 0)),         # dispatched on a holiday: counts from Thu 8th 00:00
    (_sh(2026, 10, 11, 20), 3, _sh(2026, 10, 15, 0)),       # Sunday -> from Mon 00:00, three days
    (_sh(2026, 9, 25, 23, 59), 5, _sh(2026, 10, 9, 23, 59)),
])
def test_due_time_counts_working_days_with_holidays_and_makeup_days(dispatched: datetime, days: int,
                                                                     expected: datetime) -> None:
    due = due_time(dispatched, days, "workdays", CAL)
    assert due == expected
    assert due.tzinfo is not None


def test_due_time_in_hours_is_clock_time_even_over_holidays() -> None:
    assert due_time(_sh(2026, 10, 1, 22), 4, "hours", CAL) == _sh(2026, 10, 2, 2)


def test_due_times_vectorised_agrees_with_a_day_by_day_count() -> None:
    rng = np.random.default_rng(7)
    start = pd.Timestamp("2026-09-01", tz=SH)
    t = pd.Series(start + pd.to_timedelta(rng.integers(0, 60 * 24 * 60, 500), unit="min"))
    days = rng.integers(1, 8, 500)
    got = due_times(t, days, "workdays", CAL)
    for ti, d, g in zip(t, days, got, strict=True):
        local = ti.tz_convert(SH)
        day = local.normalize()
        while not CAL.is_working(day.date()):  # a rest day: counting starts at 00:00 of the next working day
            day, local = day + pd.Timedelta(days=1), day + pd.Timedelta(days=1)
        cur, left = local, int(d)
        while left:
            cur += pd.Timedelta(days=1)
            left -= CAL.is_working(cur.date())
        assert g == cur, (ti, d)
    mixed = due_times(t[:3], [2, 2, 2], ["hours", "workdays", "hours"], CAL)
    assert mixed[0] == t[0] + pd.Timedelta(hours=2)
    assert due_times(pd.Series([pd.NaT], dtype="datetime64[ns, UTC]"), 1, "workdays", CAL).isna().all()


def test_due_times_refuse_naive_times_parts_of_days_and_unknown_units() -> None:
    with pytest.raises(LayerError, match="no time zone"):
        due_times(pd.Series(pd.to_datetime(["2026-10-09 09:00"])), 1, "workdays", CAL)
    t = pd.Series([pd.Timestamp("2026-10-09 09:00", tz=SH)])
    with pytest.raises(LayerError, match="whole number of days; use hours"):
        due_times(t, 1.5, "workdays", CAL)
    with pytest.raises(LayerError, match="unit 'weeks' unknown"):
        due_times(t, 1, "weeks", CAL)


def test_read_calendar_csv_and_its_errors(tmp_path: Path) -> None:
    p = tmp_path / "cal.csv"
    p.write_text("日期,类型\n2026-10-01,休\n2026/10/02,休\n2026-10-10,班\n", encoding="utf-8")
    cal = read_calendar(p)
    assert cal.holidays == {date(2026, 10, 1), date(2026, 10, 2)}
    assert cal.workdays == {date(2026, 10, 10)}
    assert cal.is_working(date(2026, 10, 10)) and not cal.is_working(date(2026, 10, 2))
    p.write_text("日期,类型\n2026-10-01,休\n2026-13-40,休\n", encoding="utf-8")
    with pytest.raises(LayerError, match="row 3: date '2026-13-40' unreadable"):
        read_calendar(p)
    p.write_text("日期,类型\n2026-10-01,放假\n", encoding="utf-8")
    with pytest.raises(LayerError, match="row 2: day type '放假' unknown; use 休"):
        read_calendar(p)
    p.write_text("日期,类型\n2026-10-01,休\n2026-10-01,班\n", encoding="utf-8")
    with pytest.raises(LayerError, match="2026-10-01 is both 休 and 班"):
        read_calendar(p)


# ---------------------------------------------------------------- state machine

T0 = datetime(2026, 9, 28, 2, 0, tzinfo=UTC)  # Mon 10:00 in Shanghai

# The specification written out independently of ACTIONS: action -> (from states, roles, to state).
SPEC: dict[str, tuple[set[str], set[str], str | None]] = {
    "accept": ({"reported"}, {"center"}, "accepted"),
    "reject": ({"reported"}, {"center"}, "rejected"),
    "cancel": ({"reported", "accepted"}, {"center"}, "cancelled"),
    "dispatch": ({"accepted"}, {"center"}, "dispatched"),
    "reassign": ({"dispatched", "handling"}, {"center"}, "dispatched"),
    "send_back": ({"dispatched", "handling"}, {"worker", "center"}, "accepted"),
    "start": ({"dispatched"}, {"worker"}, "handling"),
    "feedback": ({"handling"}, {"worker"}, "feedback"),
    "verify_pass": ({"feedback"}, {"center"}, "closed"),
    "verify_fail": ({"feedback"}, {"center"}, "handling"),
    "evaluate": ({"closed"}, {"center"}, "evaluated"),
    "visit": ({"closed", "evaluated"}, {"center"}, "visited"),
    "supervise": ({"accepted", "dispatched", "handling", "feedback"}, {"center"}, None),
    "request_extension": ({"dispatched", "handling"}, {"worker"}, None),
    "approve_extension": ({"dispatched", "handling", "feedback"}, {"center"}, None),
    "deny_extension": ({"dispatched", "handling", "feedback"}, {"center"}, None),
}
OPTIONS = {"dispatch": {"assignee": "li"}, "reassign": {"assignee": "wang"}, "evaluate": {"rating": 5},
           "supervise": {"level": "yellow"}, "request_extension": {"days": 2}}


def _case(state: str) -> CaseState:
    dispatched = state not in ("reported", "accepted", "rejected", "cancelled")
    return CaseState(state=state, category="SJ-0102", limit_value=1, limit_unit="workdays", assignee="li",
                     dispatched_at=T0 if dispatched else None, due_at=T0 + timedelta(days=1) if dispatched else None,
                     pending_extension_days=2 if state in ("dispatched", "handling", "feedback") else 0)


def test_spec_names_every_action_and_state() -> None:
    assert set(SPEC) == set(ACTIONS)
    assert {s for v in SPEC.values() for s in v[0]} | {v[2] for v in SPEC.values() if v[2]} <= set(STATES)


@pytest.mark.parametrize("role", ["reporter", "worker", "center"])
@pytest.mark.parametrize("state", list(STATES))
@pytest.mark.parametrize("action", list(SPEC))
def test_every_transition_legal_and_illegal_per_role(action: str, state: str, role: str) -> None:
    sources, roles, target = SPEC[action]
    case = _case(state)
    if action == "request_extension":
        case = replace(case, pending_extension_days=0)
    legal = state in sources and role in roles
    kwargs = {"role": role, "actor": "li", "at": T0 + timedelta(hours=1), "reason": "现场核实", "calendar": CAL,
              **OPTIONS.get(action, {})}
    if not legal:
        with pytest.raises(TransitionRefused, match="不能|由"):
            apply(case, action, **kwargs)
        assert action not in allowed_actions(case, role, "li")
        return
    new, event = apply(case, action, **kwargs)
    assert new.state == (target or state)
    assert (event.from_state, event.to_state, event.actor, event.role) == (state, new.state, "li", role)
    assert action in allowed_actions(case, role, "li")


@pytest.mark.parametrize("action", ["start", "feedback", "send_back", "request_extension"])
def test_worker_actions_need_the_assigned_worker(action: str) -> None:
    state = "dispatched" if action in ("start", "send_back", "request_extension") else "handling"
    case = replace(_case(state), pending_extension_days=0)
    with pytest.raises(TransitionRefused, match=r"只有承办网格员（li）可以"):
        apply(case, action, role="worker", actor="zhao", at=T0, reason="x", days=1)


@pytest.mark.parametrize(("action", "state"), [
    ("reject", "reported"), ("cancel", "accepted"), ("send_back", "handling"), ("feedback", "handling"),
    ("verify_fail", "feedback"), ("supervise", "handling"), ("reassign", "handling"), ("visit", "closed"),
])
def test_actions_that_need_a_reason_refuse_without_one(action: str, state: str) -> None:
    role = "worker" if action == "feedback" else "center"
    with pytest.raises(TransitionRefused, match="必须填写原因或说明"):
        apply(_case(state), action, role=role, actor="li", at=T0, reason="  ", assignee="wang")


def test_refusals_name_the_problem() -> None:
    with pytest.raises(TransitionRefused, match="未知操作 'fly'"):
        apply(_case("reported"), "fly", role="center", actor="a", at=T0)
    with pytest.raises(TransitionRefused, match="未知角色 mayor"):
        apply(_case("reported"), "accept", role="mayor", actor="a", at=T0)
    with pytest.raises(TransitionRefused, match="没有时区"):
        apply(_case("reported"), "accept", role="center", actor="a", at=datetime(2026, 9, 28, 10))
    with pytest.raises(TransitionRefused, match="派遣需要指定承办网格员"):
        apply(_case("accepted"), "dispatch", role="center", actor="a", at=T0)
    with pytest.raises(TransitionRefused, match="满意度"):
        apply(_case("closed"), "evaluate", role="center", actor="a", at=T0, rating=9)
    with pytest.raises(TransitionRefused, match="督办级别 'purple' 未知"):
        apply(_case("handling"), "supervise", role="center", actor="a", at=T0, reason="慢", level="purple")
    with pytest.raises(TransitionRefused, match="没有待审批的延期申请"):
        apply(replace(_case("handling"), pending_extension_days=0), "approve_extension", role="center", actor="a", at=T0)


def test_whole_lifecycle_with_rework_extension_and_clock_from_dispatch() -> None:
    c = CaseState(category="SJ-0102", limit_value=2, limit_unit="workdays")
    steps = [("accept", "center", "zhang", {}), ("dispatch", "center", "zhang", {"assignee": "li"}),
             ("start", "worker", "li", {}), ("request_extension", "worker", "li", {"days": 3}),
             ("approve_extension", "center", "zhang", {}), ("feedback", "worker", "li", {}),
             ("verify_fail", "center", "zhang", {}), ("feedback", "worker", "li", {}),
             ("verify_pass", "center", "zhang", {}), ("evaluate", "center", "zhang", {"rating": 4}),
             ("visit", "center", "zhang", {})]
    events = []
    for i, (action, role, actor, opts) in enumerate(steps):
        at = datetime(2026, 9, 30, 8, tzinfo=SH) + timedelta(hours=i)
        c, ev = apply(c, action, role=role, actor=actor, at=at, reason="说明", calendar=CAL, **opts)
        events.append(ev)
    assert c.state == "visited"
    assert (c.rework_count, c.extension_count, c.rating, c.assignee) == (1, 1, 4, "li")
    # Dispatched Wed 30 Sep 09:00 + 2 working days (holiday week) = Fri 9 Oct 09:00; + 3 (Sat 10th works) = Tue 13th.
    assert c.dispatched_at == datetime(2026, 9, 30, 9, tzinfo=SH)
    assert c.due_at == datetime(2026, 10, 13, 9, tzinfo=SH)
    assert c.closed_at == datetime(2026, 9, 30, 16, tzinfo=SH)
    assert [e.to_state for e in events][-4:] == ["feedback", "closed", "evaluated", "visited"]


def test_send_back_keeps_the_sla_clock_and_extensions_are_bounded() -> None:
    c, _ = apply(_case("accepted"), "dispatch", role="center", actor="z", at=T0, assignee="li", calendar=CAL)
    first_due = c.due_at
    c, _ = apply(c, "send_back", role="worker", actor="li", at=T0 + timedelta(hours=2), reason="不属本网格")
    c, _ = apply(c, "dispatch", role="center", actor="z", at=T0 + timedelta(days=1), assignee="wang", calendar=CAL)
    assert (c.assignee, c.due_at) == ("wang", first_due)
    with pytest.raises(TransitionRefused, match="延期天数须为 1 至 15 个工作日；收到 20"):
        apply(c, "request_extension", role="worker", actor="wang", at=T0, reason="材料", days=20)
    c = replace(c, extension_count=2)
    with pytest.raises(TransitionRefused, match="已延期 2 次，达到上限 2 次"):
        apply(c, "request_extension", role="worker", actor="wang", at=T0, reason="材料", days=1)


def test_escalation_levels_rise_with_lateness_and_never_fall() -> None:
    due = T0
    assert escalation_level(due, T0 - timedelta(hours=1), None) is None
    assert escalation_level(due, T0 + timedelta(hours=1), None) == "ordinary"
    assert escalation_level(due, T0 + timedelta(hours=30), "ordinary") == "yellow"
    assert escalation_level(due, T0 + timedelta(hours=80), "yellow") == "red"
    assert escalation_level(due, T0 + timedelta(hours=30), "red") is None
    assert escalation_level(None, T0, None) is None
    assert escalation_level(due, T0 + timedelta(hours=5), None, yellow_hours=4) == "yellow"


# ---------------------------------------------------------------- metrics

def _worked_example(seed: int = 3) -> pd.DataFrame:
    """972 cases due in March (911 closed, 737 of them on time) and 40 due in April, shuffled."""
    rng = np.random.default_rng(seed)
    n_march, n_april = 972, 40
    start = pd.Timestamp("2026-03-01", tz=SH)
    due = start + pd.to_timedelta(rng.integers(0, 31 * 24 * 60, n_march), unit="min")
    due = due.append(pd.Timestamp("2026-04-01", tz=SH) + pd.to_timedelta(rng.integers(0, 1000, n_april), unit="min"))
    dispatched = due - pd.Timedelta(days=3)
    kind = np.array(["late"] * (911 - 737) + ["on_time"] * 737 + ["open"] * (972 - 911) + ["on_time"] * n_april)
    order = rng.permutation(n_march)
    kind[:n_march] = kind[:n_march][order]
    closed = pd.Series(pd.NaT, index=range(len(kind)), dtype="datetime64[ns, Asia/Shanghai]")
    on_time, late = kind == "on_time", kind == "late"
    closed[on_time] = (due[on_time] - pd.Timedelta(hours=5))
    closed[late] = (due[late] + pd.Timedelta(hours=7))
    return pd.DataFrame({"dispatched_at": dispatched, "due_at": due, "closed_at": closed.to_numpy(),
                         "rework_count": (rng.random(len(kind)) < 0.1).astype(int),
                         "extension_count": 0, "grid_code": rng.choice(["G1", "G2", "G3"], len(kind))})


def test_metrics_reproduce_the_worked_example() -> None:
    cases = _worked_example()
    m = incident_metrics(cases, start=pd.Timestamp("2026-03-01", tz=SH), end=pd.Timestamp("2026-04-01", tz=SH))
    row = m.loc["全部"]
    assert (row["due"], row["closed"], row["on_time"]) == (972, 911, 737)
    assert row["closure_rate"] == 93.72
    assert row["on_time_rate"] == 75.82
    march = cases[cases["due_at"] < pd.Timestamp("2026-04-01", tz=SH)]
    assert row["rework_rate"] == round(100 * (march["rework_count"] > 0).sum() / 972, 2)
    closed = march.dropna(subset=["closed_at"])
    expected_hours = ((closed["closed_at"] - closed["dispatched_at"]).dt.total_seconds() / 3600).mean()
    assert row["mean_handling_hours"] == pytest.approx(expected_hours, abs=0.01)


def test_metrics_by_group_sum_to_the_total_and_respect_as_of_and_extensions() -> None:
    cases = _worked_example()
    cases.loc[cases.index[:50], "extension_count"] = 1
    period = {"start": pd.Timestamp("2026-03-01", tz=SH), "end": pd.Timestamp("2026-04-01", tz=SH)}
    by = incident_metrics(cases, by="grid_code", **period)
    assert list(by.index) == ["G1", "G2", "G3"]
    assert by["due"].sum() == 972 and by["closed"].sum() == 911
    g1 = cases[(cases["grid_code"] == "G1") & (cases["due_at"] < period["end"])]
    assert by.loc["G1", "closure_rate"] == round(100 * g1["closed_at"].notna().sum() / len(g1), 2)
    total = incident_metrics(cases, **period)
    ext = (cases.loc[cases["due_at"] < period["end"], "extension_count"] > 0).sum()
    assert total.loc["全部", "extension_rate"] == round(100 * ext / 972, 2)
    early = incident_metrics(cases, as_of=pd.Timestamp("2026-03-15", tz=SH), **period)
    assert early.loc["全部", "closed"] < 911
    empty = incident_metrics(cases, start=pd.Timestamp("2030-01-01", tz=SH), end=pd.Timestamp("2030-02-01", tz=SH))
    assert empty.loc["全部", "due"] == 0 and np.isnan(empty.loc["全部", "closure_rate"])


def test_metrics_refuse_missing_columns_and_naive_periods() -> None:
    cases = _worked_example()
    with pytest.raises(LayerError, match="lack column\\(s\\) worker"):
        incident_metrics(cases, start=pd.Timestamp("2026-03-01", tz=SH), end=pd.Timestamp("2026-04-01", tz=SH), by="worker")
    with pytest.raises(LayerError, match="need a time zone"):
        incident_metrics(cases, start=pd.Timestamp("2026-03-01"), end=pd.Timestamp("2026-04-01"))
