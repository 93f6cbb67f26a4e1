"""``wangge incidents``: 12345 / CSV / Open311 work-order import (catalogue of bad rows), metrics, keys, tables."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from flask import Flask
from sqlalchemy import func, select

from api.cli import main
from api.db import session_scope
from api.grids.service import active_grids, grids_of_buildings
from api.incidents.keys import verify_key
from api.incidents.models import IncidentCalendarDay, IncidentCase, IncidentCategory, IncidentEvent
from api.register.models import Household
from tests.api.register_helpers import published_app

HEAD = "工单编号,诉求内容,类别,地址,经度,纬度,受理时间,时限,状态\n"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    with published_app(tmp_path_factory.mktemp("incident_import"), 600) as app:
        with app.app_context(), session_scope() as s:
            building = str(grids_of_buildings(s).index[0])
            s.add(Household(building_id=building, unit="1", room="101", address="幸福路18号", size=2))
        yield app


def _count(app: Flask) -> int:
    with app.app_context(), session_scope() as s:
        return int(s.scalar(select(func.count()).select_from(IncidentCase)))


def _inside(app: Flask) -> tuple[str, float, float]:
    with app.app_context(), session_scope() as s:
        g = active_grids(s).iloc[1]
    p = g.geometry.representative_point()
    return g["key"], p.x, p.y


def test_12345_xlsx_located_by_address_then_coordinates_else_pending_and_deduplicated(app: Flask, tmp_path: Path) -> None:
    key, x, y = _inside(app)
    rows = [
        {"工单编号": "GD001", "诉求内容": "楼下垃圾无人清运", "类别": "暴露垃圾", "地址": "幸福路 18 号", "受理时间": "2026-11-02 09:30",
         "时限": "3个工作日", "状态": "已派单"},
        {"工单编号": "GD002", "诉求内容": "夜间施工噪声", "类别": "SJ-0301", "地址": "某路", "坐标": f"{x},{y}",
         "受理时间": "2026-11-03 22:10", "时限": "24小时", "状态": "待受理"},
        {"工单编号": "GD003", "诉求内容": "路灯不亮", "类别": "BJ-0102", "地址": "幸福路19号", "受理时间": "2026-11-04",
         "时限": "", "状态": ""},
        {"工单编号": "GD004", "诉求内容": "小广告", "类别": "SJ-0201", "坐标": "100.0,20.0", "受理时间": "2026/11/05 08:00",
         "时限": "2天", "状态": "处理中"},
    ]
    path = tmp_path / "12345.xlsx"
    pd.DataFrame(rows).to_excel(path, index=False)
    runner = app.test_cli_runner()
    r = runner.invoke(main, ["incidents", "import", "--format", "12345", str(path)])
    assert r.exit_code == 0, r.output
    assert "新增 inserted 4" in r.output and "待定位 pending location 2" in r.output
    with app.app_context(), session_scope() as s:
        got = {c.external_id: c for c in s.scalars(select(IncidentCase).where(IncidentCase.source == "12345"))}
        building = s.scalar(select(Household.building_id).where(Household.address == "幸福路18号"))
        assert (got["GD001"].locate_how, got["GD001"].grid_code) == ("address", grids_of_buildings(s)[building])
        assert (got["GD002"].locate_how, got["GD002"].grid_code) == ("inside", key)
        assert (got["GD002"].limit_value, got["GD002"].limit_unit) == (24, "hours")
        assert (got["GD004"].limit_value, got["GD004"].limit_unit, got["GD004"].grid_code) == (48, "hours", None)
        assert (got["GD003"].limit_value, got["GD003"].limit_unit, got["GD003"].grid_code) == (2, "workdays", None)
        assert str(got["GD001"].reported_at) == "2026-11-02 01:30:00+00:00"
        ev = s.scalar(select(IncidentEvent).where(IncidentEvent.case_id == got["GD003"].id))
        assert ev.detail["candidates"][0] == "幸福路18号" and ev.detail["source_status"] == "reported"
        assert s.scalar(select(IncidentEvent.detail).where(IncidentEvent.case_id == got["GD001"].id))["source_status"] == "dispatched"
    r = runner.invoke(main, ["incidents", "import", "--format", "12345", str(path)])
    assert r.exit_code == 0 and "新增 inserted 0, 重复跳过 skipped 4" in r.output


def test_json_csv_and_open311_formats(app: Flask, tmp_path: Path) -> None:
    _, x, y = _inside(app)
    j = tmp_path / "orders.json"
    j.write_text(json.dumps([{"工单编号": "J1", "诉求内容": "积水", "类别": "SJ-0503", "经度": x, "纬度": y, "受理时间": "2026-11-01 10:00"}],
                            ensure_ascii=False), encoding="utf-8")
    c = tmp_path / "cases.csv"
    c.write_text(f"external_id,category,description,lon,lat,reported_at\nC1,SJ-0403,拉客,{x},{y},2026-11-01T10:00:00+08:00\n"
                 , encoding="utf-8")
    o = tmp_path / "open311.json"
    o.write_text(json.dumps([{"service_request_id": "98", "service_code": "SJ-0201", "description": "广告",
                              "lat": y, "long": x, "requested_datetime": "2026-11-01T10:00:00+08:00", "status": "open"}]),
                 encoding="utf-8")
    runner = app.test_cli_runner()
    for fmt, path in (("12345", j), ("csv", c), ("open311", o)):
        r = runner.invoke(main, ["incidents", "import", "--format", fmt, str(path)])
        assert r.exit_code == 0 and "新增 inserted 1" in r.output, (fmt, r.output)
    with app.app_context(), session_scope() as s:
        assert s.scalar(select(IncidentCase.grid_code).where(IncidentCase.external_id == "98")) is not None


BAD_ROWS: list[tuple[str, str]] = [
    (",垃圾,SJ-0102,幸福路18号,,,2026-11-01,,", "工单编号为空"),
    ("B02,垃圾,SJ-0102,幸福路18号,,,2026-11-01,,", ""),  # the first B02 is fine
    ("B02,垃圾,SJ-0102,幸福路18号,,,2026-11-01,,", "工单编号 B02 在文件中重复"),
    ("B03,,SJ-0102,幸福路18号,,,2026-11-01,,", "诉求内容为空"),
    ("B04,垃圾,,幸福路18号,,,2026-11-01,,", "类别为空"),
    ("B05,垃圾,XX-0001,幸福路18号,,,2026-11-01,,", "未知的类别 XX-0001"),
    ("B06,垃圾,SJ-0102,,,,2026-11-01,,", "没有地址也没有坐标"),
    ("B07,垃圾,SJ-0102,,东经121,31.2,2026-11-01,,", "坐标不是数字"),
    ("B08,垃圾,SJ-0102,,121.4,,2026-11-01,,", "经度和纬度只填了一个"),
    ("B09,垃圾,SJ-0102,,191.0,31.2,2026-11-01,,", "坐标超出范围"),
    ("B10,垃圾,SJ-0102,幸福路18号,,,2026-13-45,,", "受理时间无法识别"),
    ("B11,垃圾,SJ-0102,幸福路18号,,,2099-01-01,,", "受理时间晚于当前时间"),
    ("B12,垃圾,SJ-0102,幸福路18号,,,2026-11-01,尽快,", "时限无法识别：尽快"),
    ("B13,垃圾,SJ-0102,幸福路18号,,,2026-11-01,0小时,", "时限无法识别：0小时"),
    ("B14,垃圾,SJ-0102,幸福路18号,,,2026-11-01,1.5个工作日,", "工作日时限须为整数天"),
    ("B15,垃圾,SJ-0102,幸福路18号,,,2026-11-01,,挂起", "未知的状态 挂起"),
    ("B16,垃圾,SJ-0102,幸福路18号,,,2026-11-01,,", ""),
    ("B17" + "x" * 70 + ",垃圾,SJ-0102,幸福路18号,,,2026-11-01,,", "工单编号超过 64 个字符"),
    ("B18," + "长" * 4001 + ",SJ-0102,幸福路18号,,,2026-11-01,,", "诉求内容超过 4000 字"),
]


def test_bad_row_catalogue_each_with_its_message_and_nothing_written(app: Flask, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(HEAD + "\n".join(r for r, _ in BAD_ROWS) + "\n", encoding="utf-8")
    before = _count(app)
    r = app.test_cli_runner().invoke(main, ["incidents", "import", "--format", "12345", str(path)])
    assert r.exit_code == 2 and "nothing written" in r.output
    expected = [(i + 2, msg) for i, (_, msg) in enumerate(BAD_ROWS) if msg]
    assert len(expected) >= 15
    for row, msg in expected:
        assert f"第 {row} 行" in r.output and msg in r.output.split(f"第 {row} 行", 1)[1].split("\n", 1)[0], (row, msg)
    assert "第 3 行" not in r.output and "第 18 行" not in r.output  # the first B02 and B16 are good rows
    assert _count(app) == before


def test_unreadable_files_are_refused(app: Flask, tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("{not json", encoding="utf-8")
    r = app.test_cli_runner().invoke(main, ["incidents", "import", "--format", "open311", str(bad)])
    assert r.exit_code == 2 and "not valid UTF-8 JSON" in r.output


def test_metrics_to_xlsx_by_grid(app: Flask, tmp_path: Path) -> None:
    from api.incidents import cases as svc
    from api.models import User
    from api.users import create_user

    with app.app_context(), session_scope() as s:
        admin = create_user(s, "boss", "Wangge-test-2026!", role="admin")
        cid = s.scalar(select(IncidentCase.id).where(IncidentCase.external_id == "GD002"))
        create_user(s, "wk", "Wangge-test-2026!", role="worker")
        svc.act(s, cid, "accept", user=admin, settings=app.config["WANGGE"])
        svc.act(s, cid, "dispatch", user=admin, settings=app.config["WANGGE"], assignee="wk")
        assert s.scalar(select(User.role).where(User.username == "wk")) == "worker"
    out = tmp_path / "m.xlsx"
    r = app.test_cli_runner().invoke(main, ["incidents", "metrics", "--from", "2000-01-01", "--to", "2100-01-01",
                                            "--by", "grid", "-o", str(out)])
    assert r.exit_code == 0, r.output
    table = pd.read_excel(out, engine="calamine")
    assert {"应结案件数", "结案率(%)", "按期结案率(%)", "返工率(%)", "延期率(%)", "平均处置时长(小时)"} <= set(table.columns)
    assert table["应结案件数"].sum() >= 1
    r = app.test_cli_runner().invoke(main, ["incidents", "metrics", "--from", "2026-02-01", "--to", "2026-01-01"])
    assert r.exit_code != 0 and "--to must be after --from" in r.output


def test_apikey_categories_and_calendar(app: Flask, tmp_path: Path) -> None:
    runner = app.test_cli_runner()
    r = runner.invoke(main, ["incidents", "apikey", "create", "wechat-app"])
    key = r.output.strip()
    assert r.exit_code == 0 and len(key) >= 30
    with app.app_context(), session_scope() as s:
        assert verify_key(s, key).name == "wechat-app"
    r = runner.invoke(main, ["incidents", "apikey", "create", "wechat-app"])
    assert r.exit_code == 2 and "已存在名为 wechat-app" in r.output
    assert runner.invoke(main, ["incidents", "apikey", "revoke", "wechat-app"]).exit_code == 0
    with app.app_context(), session_scope() as s:
        assert verify_key(s, key) is None
    table = tmp_path / "cats.csv"
    assert runner.invoke(main, ["incidents", "categories", "--export", str(table)]).exit_code == 0
    frame = pd.read_csv(table, dtype=str).iloc[:3]
    frame.loc[0, "时限"] = "9"
    frame.to_csv(table, index=False)
    r = runner.invoke(main, ["incidents", "categories", str(table)])
    assert r.exit_code == 0 and "3 categories loaded" in r.output
    with app.app_context(), session_scope() as s:
        active = s.scalars(select(IncidentCategory).where(IncidentCategory.active.is_(True))).all()
        assert [(c.code, c.limit_value) for c in active][0] == ("BJ-0101", 9)
    cal = tmp_path / "cal.csv"
    cal.write_text("日期,类型\n2026-10-01,休\n2026-10-10,班\n", encoding="utf-8")
    r = runner.invoke(main, ["incidents", "calendar", str(cal)])
    assert r.exit_code == 0 and "1 holidays, 1 make-up" in r.output
    with app.app_context(), session_scope() as s:
        assert s.scalar(select(func.count()).select_from(IncidentCalendarDay)) == 2
    # Restore the default table for any later test in this module.
    full = tmp_path / "full.csv"
    from geo.incidents.categories import category_frame

    category_frame().to_csv(full, index=False)
    assert runner.invoke(main, ["incidents", "categories", str(full)]).exit_code == 0


