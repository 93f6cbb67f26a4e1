"""``wangge register``: import with --field and GBK, refusal exit code, grant, categories, demo."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from api.cli import main
from api.db import session_scope
from api.register.models import KeyPersonCategory, RegisterGrant, Resident, Staff
from geo.register.idnumber import id_check_char
from tests.api.plans_helpers import login
from tests.api.register_helpers import published_app


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    with published_app(tmp_path_factory.mktemp("register_cli"), 600) as app:
        yield app


def _first_building(app: Flask) -> str:
    from api.grids.service import grids_of_buildings

    with app.app_context(), session_scope() as s:
        return str(grids_of_buildings(s).index[0])


def test_import_gbk_with_field_mapping_then_refusal(app: Flask, tmp_path: Path) -> None:
    body = "43012419800101001"
    good = tmp_path / "居民.csv"
    good.write_text(f"户主姓名,身份证号,楼栋编号,门牌\n张三,{body + id_check_char(body)},{_first_building(app)},101\n",
                    encoding="gbk")
    runner = app.test_cli_runner()
    r = runner.invoke(main, ["register", "import", "--kind", "residents", str(good), "--field", "户主姓名=name"])
    assert r.exit_code == 0, r.output
    assert "新增 inserted 1" in r.output
    bad = tmp_path / "bad.csv"
    bad.write_text("姓名,身份证号,楼栋编号,门牌\n李四,123,nope,1\n", encoding="utf-8")
    r = runner.invoke(main, ["register", "import", "--kind", "residents", str(bad)])
    assert r.exit_code == 2
    assert "nothing written" in r.output and "第 2 行 [building_id]：楼栋编号在工作区中不存在" in r.output
    with app.app_context(), session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Resident)) == 1


def test_grant_categories_and_demo(app: Flask, tmp_path: Path) -> None:
    login(app, "worker")
    login(app, "admin")
    runner = app.test_cli_runner()
    assert runner.invoke(main, ["register", "grant", "nobody", "unmask"]).exit_code == 1
    assert runner.invoke(main, ["register", "grant", "worker", "unmask"]).exit_code == 0
    cats = tmp_path / "cats.csv"
    cats.write_text("代码,名称,低风险走访天数,高风险走访天数\nveteran,退役军人,60,14\n", encoding="utf-8")
    assert runner.invoke(main, ["register", "categories", str(cats)]).exit_code == 0
    r = runner.invoke(main, ["register", "demo"])
    assert r.exit_code == 0, r.output
    with app.app_context(), session_scope() as s:
        assert s.scalar(select(func.count()).select_from(RegisterGrant)) == 2  # worker + the demo's admin grant
        assert s.get(KeyPersonCategory, "veteran").visit_days_high == 14
        assert s.scalar(select(func.count()).select_from(Staff)) > 0
        assert s.scalar(select(func.count()).select_from(Resident)) >= 1
    r = runner.invoke(main, ["register", "grant", "worker", "unmask", "--revoke"])
    assert r.exit_code == 0 and "revoked" in r.output
