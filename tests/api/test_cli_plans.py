"""``wangge plans``: the workspace partitioned into a draft plan from the command line."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from api import db
from api.cli import main
from api.models import AuditEntry, PlanAssignment, PlanGrid, PlanVersion
from api.workspace import workspace_stats


def test_partition_needs_a_workspace(runner: FlaskCliRunner) -> None:
    result = runner.invoke(main, ["plans", "partition"])
    assert result.exit_code == 1
    assert "workspace is empty" in result.output and "wangge demo" in result.output


def test_partition_writes_a_draft_plan_then_if_none_skips(app: Flask, runner: FlaskCliRunner) -> None:
    assert runner.invoke(main, ["demo", "--buildings", "1200"]).exit_code == 0
    result = runner.invoke(main, ["plans", "partition", "--name", "示例方案", "--user", "planner"])
    assert result.exit_code == 0, result.output
    with app.app_context(), db.session_scope() as s:
        plan = s.scalars(select(PlanVersion).where(PlanVersion.status == "draft")).one()
        auto = s.get(PlanVersion, plan.parent_id)  # the automatic result, kept read-only as the first version
        assert auto is not None and auto.status == "auto"
        n_assigned = s.scalar(select(func.count()).select_from(PlanAssignment)
                              .where(PlanAssignment.plan_version_id == plan.id))
        households = s.scalar(select(func.sum(PlanGrid.households)).where(PlanGrid.plan_version_id == plan.id))
        stats = workspace_stats(s)
        audit = s.scalars(select(AuditEntry).where(AuditEntry.action == "plan.partition")).one()
    assert (plan.name, plan.status, plan.author) == ("示例方案", "draft", "planner")
    assert f"/plans/{plan.id}" in result.output
    assert n_assigned == stats["counts"]["buildings"]  # every building in exactly one grid
    assert households == stats["households"]
    assert audit.username == "planner"

    again = runner.invoke(main, ["plans", "partition", "--if-none"])
    assert again.exit_code == 0 and "skipped" in again.output
    listing = runner.invoke(main, ["plans", "list"])
    assert "示例方案" in listing.output and "draft" in listing.output


def test_partition_refuses_bad_bounds(runner: FlaskCliRunner) -> None:
    assert runner.invoke(main, ["demo", "--buildings", "1000"]).exit_code == 0
    result = runner.invoke(main, ["plans", "partition", "--min", "600", "--max", "500"])
    assert result.exit_code == 1 and "下限" in result.output
