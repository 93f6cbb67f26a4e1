"""Status export back to the 12345 hotline: the sheet the import reads, with the workflow's status words."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from flask import Flask
from sqlalchemy import select

from api.cli import main
from api.db import session_scope
from api.grids.service import active_grids
from api.incidents import cases as svc
from api.incidents.models import IncidentCase
from api.models import User
from api.users import create_user
from tests.api.plans_helpers import login
from tests.api.register_helpers import published_app


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """Three 12345 work orders: one rejected with a reason, one left waiting, one outside every grid."""
    with published_app(tmp_path_factory.mktemp("incident_export"), 600) as app:
        with app.app_context(), session_scope() as s:
            p = active_grids(s).geometry.iloc[0].representative_point()
            create_user(s, "center", "Wangge-test-2026!", role="admin")
        rows = [{"工单编号": "E1", "诉求内容": "垃圾未清运", "类别": "SJ-0102", "坐标": f"{p.x},{p.y}",
                 "受理时间": "2026-11-02 09:30", "时限": "3个工作日", "状态": "待受理"},
                {"工单编号": "E2", "诉求内容": "@SUM(A1) 楼道堆物", "类别": "SJ-0201",
                 "坐标": f"{p.x},{p.y}", "受理时间": "2026-11-03 10:00", "时限": "24小时", "状态": ""},
                {"工单编号": "E3", "诉求内容": "远处积水", "类别": "SJ-0503", "坐标": "100.0,20.0",
                 "受理时间": "2026-11-04 08:00", "时限": "", "状态": ""}]
        path = tmp_path_factory.mktemp("incident_export_in") / "in.xlsx"
        pd.DataFrame(rows).to_excel(path, index=False)
        r = app.test_cli_runner().invoke(main, ["incidents", "import", "--format", "12345", str(path)])
        assert r.exit_code == 0, r.output
        with app.app_context(), session_scope() as s:
            center = s.scalar(select(User).where(User.username == "center"))
            e1 = s.scalar(select(IncidentCase.id).where(IncidentCase.external_id == "E1"))
            svc.act(s, e1, "reject", user=center, settings=app.config["WANGGE"], reason="属物业管理范围，已转物业")
        yield app


def test_cli_export_has_the_hotline_shape_and_reads_back_as_duplicates(app: Flask, tmp_path: Path) -> None:
    out = tmp_path / "status.xlsx"
    runner = app.test_cli_runner()
    r = runner.invoke(main, ["incidents", "export", "--format", "12345", "-o", str(out)])
    assert r.exit_code == 0 and "3 条工单" in r.output, r.output
    sheet = pd.read_excel(out, dtype=str, engine="calamine").fillna("")
    assert list(sheet.columns[:9]) == ["工单编号", "类别", "诉求内容", "地址", "经度", "纬度", "受理时间", "时限", "状态"]
    by_id = sheet.set_index("工单编号")
    assert by_id.loc["E1", ["状态", "办理结果", "受理时间", "时限"]].tolist() == [
        "不予受理", "属物业管理范围，已转物业", "2026-11-02 09:30", "3个工作日"]
    assert by_id.loc["E2", ["状态", "时限"]].tolist() == ["待受理", "24小时"]
    assert by_id.loc["E2", "诉求内容"].startswith("'@SUM")  # a formula stays text in Excel/WPS
    assert by_id.loc["E3", "所属网格"] == "" and by_id.loc["E1", "所属网格"] != ""
    again = runner.invoke(main, ["incidents", "import", "--format", "12345", str(out)])
    assert again.exit_code == 0 and "新增 inserted 0, 重复跳过 skipped 3" in again.output, again.output


def test_cli_export_period_and_output_type(app: Flask, tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    r = app.test_cli_runner().invoke(main, ["incidents", "export", "--from", "2026-11-03", "--to", "2026-11-04",
                                            "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert [row["工单编号"] for row in pd.read_json(out, dtype=False).to_dict("records")] == ["E2"]
    bad = app.test_cli_runner().invoke(main, ["incidents", "export", "-o", str(tmp_path / "s.pdf")])
    assert bad.exit_code == 2 and "use .xlsx, .csv or .json" in bad.output


def test_export_route_for_the_centre_only(app: Flask) -> None:
    admin = login(app, "admin")
    r = admin.get("/incidents/export.csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    table = pd.read_csv(io.BytesIO(r.data), dtype=str, encoding="utf-8-sig")
    assert sorted(table["工单编号"]) == ["E1", "E2", "E3"]
    assert admin.get("/incidents/export.csv?source=worker").status_code == 200
    bad = admin.get("/incidents/export.csv?source=nope")
    assert bad.status_code == 400 and "未知的来源" in bad.get_data(as_text=True)
    assert admin.get("/incidents/export.pdf").status_code == 404
    assert login(app, "worker").get("/incidents/export.csv").status_code == 403
