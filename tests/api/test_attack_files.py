"""Register sheets as street offices keep them, uploaded over real HTTP (tests.live.serving) and by the CLI.

A merged title row (某某社区居民登记表) or a row of merged group headings above the header, blank
rows between blocks of people, a header with no rows: each imports, or gets a 4xx naming the
problem and the fix with nothing written, never a 500. Problems name the row a person sees in Excel.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import func, select

from api.db import session_scope
from tests.api.attack_helpers import World, attack_world, http_session, ids_with_check
from tests.live import serving

HEADER = ["姓名", "身份证号", "联系电话", "楼栋编号", "单元", "门牌"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, str]]:
    with attack_world(tmp_path_factory.mktemp("attack_files"), n_buildings=200) as world, \
            serving(world.app, name="attack-files") as url:
        yield world, url


def _xlsx(rows: list[list[Any]], merges: tuple[str, ...] = ()) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    for cells in merges:
        sheet.merge_cells(cells)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _residents(world: World) -> int:
    from api.register.models import Resident

    with world.app.app_context(), session_scope() as s:
        return int(s.scalar(select(func.count()).select_from(Resident)))


def _building(world: World) -> str:
    from api.models import Building

    with world.app.app_context(), session_scope() as s:
        return str(s.scalars(select(Building.building_id).order_by(Building.building_id)).first())


def _office_sheet(world: World, bodies: list[str], bad_check: bool = False) -> bytes:
    """A title row merged over the table, a row of merged group headings, the header on row 3, people on
    rows 4 and 6 with a blank row 5 between them and blank rows at the end."""
    ids = ids_with_check(bodies)
    if bad_check:  # the person on row 6 has a wrong check character
        ids[1] = ids[1][:-1] + ("0" if ids[1][-1] != "0" else "1")
    b = _building(world)
    return _xlsx([["某某社区居民信息登记表", None, None, None, None, None],
                  ["基本信息", None, None, "住址", None, None],
                  HEADER,
                  ["表格甲", ids[0], "13800009901", b, "1", "901"],
                  [None] * 6,
                  ["表格乙", ids[1], "13800009902", b, "1", "902"],
                  [None] * 6, [None] * 6], merges=("A1:F1", "A2:C2", "D2:F2"))


def _upload(url: str, who: Any, data: bytes, name: str) -> Any:
    return who.post(f"{url}/api/register/import", data={"kind": "residents"},
                    files={"file": (name, data)}, timeout=120)


def test_an_office_sheet_with_title_and_blank_rows_imports_and_names_excel_rows(served: tuple[World, str],
                                                                                tmp_path: Path) -> None:
    world, url = served
    planner = http_session(url, "planner")
    bodies = ["11010519800101771", "11010519800101772"]
    before = _residents(world)
    r = _upload(url, planner, _office_sheet(world, bodies, bad_check=True), "登记表.xlsx")
    assert r.status_code == 422, r.text[:300]
    problems = r.json()["problems"]
    assert [(p["row"], p["column"]) for p in problems] == [(6, "id_number")], problems  # row 6 as Excel shows it
    assert "校验" in problems[0]["problem"] and problems[0]["fix"]
    assert _residents(world) == before
    r = _upload(url, planner, _office_sheet(world, bodies), "登记表.xlsx")
    assert r.status_code == 200 and r.json()["rows"] == 2 and r.json()["inserted"] == 2, r.text[:300]
    assert _residents(world) == before + 2
    # the CLI reads the same sheet the same way
    from api.cli import main

    path = tmp_path / "登记表.xlsx"
    path.write_bytes(_office_sheet(world, ["11010519800101773", "11010519800101774"]))
    result = world.app.test_cli_runner().invoke(main, ["register", "import", "--kind", "residents", str(path)])
    assert result.exit_code == 0, result.output
    assert "2 行 rows, 新增 inserted 2" in result.output and _residents(world) == before + 4


NO_ROWS = [
    ("表头.xlsx", lambda: _xlsx([HEADER])),
    ("空行.xlsx", lambda: _xlsx([["登记表"], HEADER, [None] * 6, [None] * 6])),
    ("空行.csv", lambda: (",".join(HEADER) + "\n,,,,,\n\n ,,,,,\n").encode("gbk")),
]


@pytest.mark.parametrize(("name", "make"), NO_ROWS)
def test_a_sheet_with_a_header_and_no_rows_is_a_400_saying_so(served: tuple[World, str], name: str, make: Any) -> None:
    world, url = served
    before = _residents(world)
    r = _upload(url, http_session(url, "planner"), make(), name)
    assert r.status_code == 400, (r.status_code, r.text[:300])
    error = r.json()["error"]
    assert error["code"] == "no_data_rows" and "没有数据行" in error["message"] and "至少一行" in error["fix"]
    assert _residents(world) == before


WO_HEADER = ["工单编号", "诉求内容", "类别", "经度", "纬度", "受理时间", "时限", "状态"]


def _hotline_export(world: World, first: int, *, bad_row_6: bool = False) -> bytes:
    """A 12345 export as hotline systems write it: a merged title row, the header on row 2, work orders on
    rows 3 and 6 with blank rows between and after."""
    from api.incidents.models import IncidentCase
    from tests.api.attack_helpers import grid_point

    lon, lat = grid_point(world)
    with world.app.app_context(), session_scope() as s:
        category = s.scalars(select(IncidentCase.category)).first()

    def order(i: int, text: str = "路灯不亮") -> list[Any]:
        return [f"WO-{i}", text, category, lon, lat, "2026-12-01 09:00", "3个工作日", "已受理"]

    return _xlsx([["12345 热线工单导出（2026 年 12 月）"] + [None] * 7, WO_HEADER, order(first), [None] * 8, [None] * 8,
                  order(first + 1, "" if bad_row_6 else "井盖缺失"), [None] * 8], merges=("A1:H1",))


def test_a_hotline_export_with_a_title_row_and_blank_rows_imports_and_names_excel_rows(
        served: tuple[World, str], tmp_path: Path) -> None:
    from api.cli import main
    from api.incidents.models import IncidentCase

    world, _ = served
    runner = world.app.test_cli_runner()

    def cases() -> int:
        with world.app.app_context(), session_scope() as s:
            return int(s.scalar(select(func.count()).select_from(IncidentCase)))

    before = cases()
    path = tmp_path / "12345.xlsx"
    path.write_bytes(_hotline_export(world, 100, bad_row_6=True))
    result = runner.invoke(main, ["incidents", "import", "--format", "12345", str(path)])
    assert result.exit_code == 2 and "第 6 行 [诉求内容]" in result.output, result.output
    assert "第 2 行" not in result.output and "第 4 行" not in result.output and cases() == before
    path.write_bytes(_hotline_export(world, 100))
    result = runner.invoke(main, ["incidents", "import", "--format", "12345", str(path)])
    assert result.exit_code == 0 and "新增 inserted 2" in result.output, result.output
    assert cases() == before + 2
    path.write_bytes(_xlsx([WO_HEADER, [None] * 8]))
    result = runner.invoke(main, ["incidents", "import", "--format", "12345", str(path)])
    assert result.exit_code == 2 and "no work orders" in result.output and cases() == before + 2, result.output


def test_category_and_holiday_tables_with_title_rows_load_and_an_empty_table_deletes_nothing(
        served: tuple[World, str], tmp_path: Path) -> None:
    from api.cli import main
    from api.incidents.tables import load_categories
    from geo.incidents.categories import category_frame

    world, _ = served
    runner = world.app.test_cli_runner()
    with world.app.app_context(), session_scope() as s:
        before = load_categories(s)
    table = category_frame(tuple(before.values()))
    header = [str(c) for c in table.columns]
    rows = table.astype(str).to_numpy().tolist()
    path = tmp_path / "类别.xlsx"
    path.write_bytes(_xlsx([["事件类别表（2026 版）"] + [None] * (len(header) - 1), header, *rows[:2], [None] * len(header),
                            *rows[2:], [None] * len(header)], merges=(f"A1:{chr(64 + len(header))}1",)))
    result = runner.invoke(main, ["incidents", "categories", str(path)])
    assert result.exit_code == 0 and f"{len(before)} categories loaded" in result.output, result.output
    path.write_bytes(_xlsx([header, [None] * len(header)]))  # the template, no rows
    result = runner.invoke(main, ["incidents", "categories", str(path)])
    assert result.exit_code == 2 and "no rows" in result.output, result.output
    with world.app.app_context(), session_scope() as s:
        assert load_categories(s) == before  # nothing deleted
    path = tmp_path / "节假日.xlsx"
    path.write_bytes(_xlsx([["2027 年节假日安排", None], ["日期", "类型"], ["2027-01-01", "休"], [None, None],
                            ["2027-02-07", "班"], ["2027-13-01", "休"]], merges=("A1:B1",)))
    result = runner.invoke(main, ["incidents", "calendar", str(path)])
    assert result.exit_code == 2 and "row 6" in result.output, result.output  # the row Excel shows
    path.write_bytes(_xlsx([["2027 年节假日安排", None], ["日期", "类型"], ["2027-01-01", "休"], [None, None],
                            ["2027-02-07", "班"]], merges=("A1:B1",)))
    result = runner.invoke(main, ["incidents", "calendar", str(path)])
    assert result.exit_code == 0 and "1 holidays, 1 make-up working days" in result.output, result.output
