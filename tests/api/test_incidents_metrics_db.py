"""Metrics counted by the database equal the pandas definitions, and reproduce the worked example."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from flask import Flask

from api.db import session_scope
from api.incidents.bulk import insert_cases, new_tokens
from api.incidents.cases import cases_frame
from api.incidents.metrics import metrics_in_db
from geo.errors import LayerError
from geo.incidents.metrics import incident_metrics
from tests.api.query_plan_helpers import query_plan, recorded_statements

START = pd.Timestamp("2026-01-01", tz="Asia/Shanghai")
END = pd.Timestamp("2027-01-01", tz="Asia/Shanghai")


def _worked_example(rng: np.random.Generator) -> pd.DataFrame:
    """972 cases due in 2026 (911 closed, 737 of them on time), 40 due outside it, grids and workers mixed."""
    n_in, n_out = 972, 40
    n = n_in + n_out
    dispatched = START + pd.to_timedelta(rng.uniform(0, 360 * 24, n), unit="h")
    due = pd.Series(dispatched + pd.to_timedelta(rng.uniform(4, 72, n), unit="h"))
    due = due.where(np.arange(n) < n_in, pd.Series(END + pd.to_timedelta(rng.uniform(1, 90, n), unit="D")))
    early = pd.Series(pd.to_timedelta(rng.uniform(0.1, 3, n), unit="h"))
    late = pd.Series(pd.to_timedelta(rng.uniform(0.1, 30, n), unit="h"))
    due = pd.Series(due).dt.floor("s")
    i = pd.Series(np.arange(n))
    closed = (due - early).where(i < 737, due + late).where((i < 911) | ((i >= n_in) & (i < n_in + 20)))
    grids = np.array(["G1", "G2", "G3", None], dtype=object)[rng.integers(0, 4, n)]
    return pd.DataFrame({
        "token": new_tokens(n), "source": "worker", "category": "SJ-0102", "limit_value": 3.0, "limit_unit": "workdays",
        "reported_at": dispatched - pd.Timedelta(hours=1), "dispatched_at": dispatched, "due_at": due,
        "closed_at": closed, "grid_code": grids, "assignee": np.array(["li", "wang"])[rng.integers(0, 2, n)],
        "state": np.where(closed.notna(), "closed", "handling"), "rework_count": rng.integers(0, 3, n) * (rng.random(n) < 0.1),
        "extension_count": (rng.random(n) < 0.05).astype(int)})


@pytest.fixture
def filled(app: Flask) -> Flask:
    with app.app_context(), session_scope() as s:
        insert_cases(s, _worked_example(np.random.default_rng(7)))
    return app


def test_worked_example_in_the_database(filled: Flask) -> None:
    with filled.app_context(), session_scope(write=False) as s:
        m = metrics_in_db(s, start=START, end=END).loc["全部"]
    assert (int(m["due"]), int(m["closed"]), int(m["on_time"])) == (972, 911, 737)
    assert (m["closure_rate"], m["on_time_rate"]) == (93.72, 75.82)


@pytest.mark.parametrize("by", [None, "grid_code", "assignee", ["grid_code", "assignee"], "category"])
@pytest.mark.parametrize("as_of", [None, pd.Timestamp("2026-07-01", tz="UTC")])
def test_database_counts_equal_the_pandas_definitions(filled: Flask, by: str | list[str] | None,
                                                      as_of: pd.Timestamp | None) -> None:
    with filled.app_context(), session_scope(write=False) as s:
        got = metrics_in_db(s, start=START, end=END, by=by, as_of=as_of)
        frame = cases_frame(s)
    want = incident_metrics(frame, start=START, end=END, by=by, as_of=as_of)
    assert len(got) > 0 and list(got.index) == list(want.index)
    counts = ["due", "closed", "on_time", "reworked", "extended", "closure_rate", "on_time_rate", "rework_rate",
              "extension_rate"]
    pd.testing.assert_frame_equal(got[counts], want[counts], check_index_type=False, check_names=False)
    np.testing.assert_allclose(got["mean_handling_hours"], want["mean_handling_hours"], atol=0.011)


def test_bad_grouping_and_naive_period_are_refused(filled: Flask) -> None:
    with filled.app_context(), session_scope(write=False) as s:
        with pytest.raises(LayerError, match="cannot group by description; use some of grid_code"):
            metrics_in_db(s, start=START, end=END, by="description")
        with pytest.raises(LayerError, match="start and end need a time zone"):
            metrics_in_db(s, start=pd.Timestamp("2026-01-01"), end=END)


@pytest.mark.sqlite_only(reason="reads SQLite's EXPLAIN QUERY PLAN of the statement the metrics run")
def test_metrics_by_grid_read_the_covering_index_without_a_sort(filled: Flask) -> None:
    with filled.app_context(), session_scope(write=False) as s:
        with recorded_statements(s, "GROUP BY") as seen:
            metrics_in_db(s, start=START, end=END, by="grid_code")
        plan = query_plan(s, seen)
    assert "USING COVERING INDEX ix_incident_cases_grid_metrics" in plan and "TEMP B-TREE" not in plan, plan


@pytest.mark.sqlite_only(reason="the drop-and-rebuild of secondary indexes is SQLite's bulk path; PostgreSQL loads by COPY")
def test_big_bulk_inserts_rebuild_the_secondary_indexes_inside_the_transaction(
        app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy import text

    import api.incidents.bulk as bulk

    monkeypatch.setattr(bulk, "REBUILD_INDEXES_FROM", 10)
    frame = _worked_example(np.random.default_rng(3))

    def indexes() -> set[str]:
        with app.app_context(), session_scope(write=False) as s:
            return set(s.scalars(text("SELECT name FROM sqlite_master WHERE type = 'index' "
                                      "AND tbl_name = 'incident_cases' AND sql IS NOT NULL")))

    before = indexes()
    assert "ix_incident_cases_due_at" in before
    with app.app_context(), session_scope() as s:
        ids = insert_cases(s, frame)
    assert indexes() == before and len(ids) == len(frame)
    with pytest.raises(Exception, match="UNIQUE constraint failed: incident_cases.token"):
        with app.app_context(), session_scope() as s:  # the table is not doubled: no rebuild, the row is refused
            insert_cases(s, frame.iloc[:20])
    big = _worked_example(np.random.default_rng(4))
    big = pd.concat([big, big.assign(token=new_tokens(len(big)))], ignore_index=True)
    big.loc[len(big) - 1, "token"] = big.loc[0, "token"]
    with pytest.raises(Exception, match="UNIQUE constraint failed: incident_cases.token"):
        with app.app_context(), session_scope() as s:  # doubled: indexes dropped, then the failure rolls all back
            insert_cases(s, big)
    assert indexes() == before
    with app.app_context(), session_scope(write=False) as s:
        assert s.scalar(text("SELECT count(*) FROM incident_cases")) == len(frame)
