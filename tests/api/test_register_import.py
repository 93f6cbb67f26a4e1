"""Register imports: the bad-row catalogue (each with its message, nothing written), re-import, matching."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from flask import Flask
from sqlalchemy import func, select

from api.db import session_scope
from api.register.crypto import cipher_for
from api.register.importer import import_sheet
from api.register.models import REGISTER_MODELS, Household, KeyPerson, PartyOrg, Resident, Staff
from geo.errors import ValidationFailed
from geo.register.idnumber import id_check_char
from tests.api.register_helpers import published_app


def _valid(body: str) -> str:
    return body + id_check_char(body)


ID1, ID2, ID3 = _valid("11010519491231002"), _valid("11010519491231001"), _valid("44030119900101123")
NEW1, NEW2, NEW3 = _valid("31011520001231456"), _valid("31011520001231457"), _valid("31011520001231458")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    with published_app(tmp_path_factory.mktemp("register_import"), 600) as app:
        _run(app, "party", pd.DataFrame({"组织类型": ["社区党委"], "组织名称": ["测试社区党委"]}))
        yield app


def _run(app: Flask, kind: str, sheet: pd.DataFrame, **kw: Any) -> Any:
    with app.app_context(), session_scope() as s:
        return import_sheet(s, kind, sheet, cipher=cipher_for(app.instance_path, app.config["WANGGE"]),
                            settings=app.config["WANGGE"], user="test", **kw)


def _facts(app: Flask) -> dict[str, Any]:
    from api.grids.service import active_grids
    from api.workspace import load_layer

    with app.app_context(), session_scope() as s:
        b = load_layer(s, "buildings", columns=["building_id", "name"])
        return {"buildings": b["building_id"].tolist(), "names": b["name"].tolist(),
                "grids": active_grids(s)["key"].tolist(), "geometry": b.geometry.tolist()}


def _counts(app: Flask) -> dict[str, int]:
    with app.app_context(), session_scope() as s:
        return {m.__tablename__: s.scalar(select(func.count()).select_from(m)) for m in REGISTER_MODELS}


def _residents(f: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame({"姓名": ["张三", "李四", "王五"], "身份证号": [ID1, ID2, ID3],
                         "联系电话": ["13812345678", "", "021-12345678"], "楼栋编号": f["buildings"][:3],
                         "单元": ["1", "1", "2"], "门牌": ["101", "102", "201"], "所属党组织": ["测试社区党委", "", ""]})


def _staff(f: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame({"姓名": ["赵网格", "钱网格", "孙楼长"], "联系电话": ["13900000001", "13900000002", "13900000003"],
                         "角色": ["网格长", "网格员", "楼栋长"], "网格编码": [f["grids"][0], f["grids"][0], ""],
                         "楼栋编号": ["", "", f["buildings"][0]], "账号": ["", "", ""]})


def _keypersons() -> pd.DataFrame:
    return pd.DataFrame({"姓名": ["张三"], "身份证号": [ID1], "类别": ["独居老人"], "风险等级": ["3"]})


def _party(f: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame({"组织类型": ["网格党支部"], "组织名称": ["第一网格党支部"], "上级组织": ["测试社区党委"],
                         "网格编码": [f["grids"][0]]})


Edit = Callable[[pd.DataFrame], None]


def _set(col: str, row: int, value: str) -> Edit:
    def edit(df: pd.DataFrame) -> None:
        df.loc[row, col] = value
    return edit


#: kind, edit, expected problem (spreadsheet row = index + 2).
CATALOGUE: list[tuple[str, Edit, str]] = [
    ("residents", _set("姓名", 0, ""), r"第 2 行 \[name\]：必填项为空"),
    ("residents", _set("身份证号", 1, ""), r"第 3 行 \[id_number\]：必填项为空"),
    ("residents", _set("身份证号", 0, ID1[:17] + "1"), r"第 2 行 \[id_number\]：校验位错误（应为 X，实为 1）"),
    ("residents", _set("身份证号", 2, "4403011990"), r"第 4 行 \[id_number\]：应为 18 位.*实为 10 位"),
    ("residents", _set("身份证号", 2, "44030119900101123A"), r"第 4 行 \[id_number\]：含有非法字符"),
    ("residents", _set("身份证号", 1, "110105194913310011"), r"第 3 行 \[id_number\]：出生日期 19491331 不是有效日期"),
    ("residents", lambda df: _set("身份证号", 2, df.loc[0, "身份证号"])(df), r"第 4 行 \[id_number\]：与第 2 行身份证号重复"),
    ("residents", _set("联系电话", 0, "1381234567"), r"第 2 行 \[phone\]：号码 .* 格式不对"),
    ("residents", _set("楼栋编号", 1, "no-such-building"), r"第 3 行 \[building_id\]：楼栋编号在工作区中不存在"),
    ("residents", _set("门牌", 2, ""), r"第 4 行 \[room\]：必填项为空"),
    ("residents", _set("所属党组织", 0, "不存在的支部"), r"第 2 行 \[party_org\]：党组织不存在"),
    ("residents", lambda df: df.__setitem__("地址", ["无此地址路 1 号", "", ""]) or _set("楼栋编号", 0, "")(df),
     r"第 2 行 \[address\]：地址无法匹配到楼栋"),
    ("residents", lambda df: df.__setitem__("经度", ["100.0", "", ""]) or df.__setitem__("纬度", ["20.0", "", ""])
     or _set("楼栋编号", 0, "")(df),
     r"第 2 行 \[lon/lat\]：30 米内没有楼栋"),
    ("staff", _set("角色", 0, "队长"), r"第 2 行 \[role\]：未知角色"),
    ("staff", _set("网格编码", 1, ""), r"第 3 行 \[grid_code\]：网格长/网格员/指导员须填写网格编码"),
    ("staff", _set("网格编码", 0, "999999999999999"), r"第 2 行 \[grid_code\]：网格编码不是生效网格"),
    ("staff", _set("楼栋编号", 2, ""), r"第 4 行 \[building_id\]：楼栋长/单元长须填写楼栋编号"),
    ("staff", _set("账号", 1, "nobody"), r"第 3 行 \[username\]：账号不存在"),
    ("staff", _set("联系电话", 2, "abc"), r"第 4 行 \[phone\]：号码 .* 格式不对"),
    ("staff", lambda df: df.loc.__setitem__(1, df.loc[0].tolist()), r"第 3 行 \[name\]：与第 2 行.*重复"),
    ("keypersons", _set("类别", 0, "外星人"), r"第 2 行 \[category\]：未知人员类别"),
    ("keypersons", _set("风险等级", 0, "9"), r"第 2 行 \[risk_level\]：风险等级须为 0–5 的整数"),
    ("keypersons", _set("身份证号", 0, NEW1), r"第 2 行 \[id_number\]：登记册中没有此身份证号的居民"),
    ("party", _set("组织类型", 0, "协会"), r"第 2 行 \[kind\]：未知组织类型"),
    ("party", _set("上级组织", 0, "无名党委"), r"第 2 行 \[parent\]：上级组织不存在"),
    ("party", _set("上级组织", 0, ""), r"第 2 行 \[parent\]：党支部/党小组须填写上级组织"),
    ("party", _set("网格编码", 0, "123"), r"第 2 行 \[grid_code\]：网格编码不是生效网格"),
]


def _sheet(kind: str, f: dict[str, Any]) -> pd.DataFrame:
    return {"residents": lambda: _residents(f), "staff": lambda: _staff(f), "keypersons": _keypersons,
            "party": lambda: _party(f)}[kind]()


@pytest.fixture(scope="module")
def seeded(app: Flask) -> dict[str, Any]:
    """The residents sheet imported once (key persons refer to it)."""
    f = _facts(app)
    _run(app, "residents", _residents(f))
    return f


@pytest.mark.parametrize(("kind", "edit", "expected"), CATALOGUE, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(CATALOGUE)])
def test_bad_row_is_listed_and_nothing_is_written(app: Flask, seeded: dict[str, Any], kind: str, edit: Edit,
                                                  expected: str) -> None:
    sheet = _sheet(kind, seeded)
    if kind == "residents":  # fresh people, so a write would show in the counts
        sheet["身份证号"] = sheet["身份证号"].replace({ID1: NEW1, ID2: NEW2, ID3: NEW3})
    edit(sheet)
    before = _counts(app)
    with pytest.raises(ValidationFailed, match=expected) as info:
        _run(app, kind, sheet)
    assert all(p.fix for p in info.value.issues)
    assert _counts(app) == before


def test_catalogue_is_big_enough() -> None:
    assert len(CATALOGUE) >= 20


def test_reimport_updates_by_stable_keys(app: Flask, seeded: dict[str, Any]) -> None:
    sheet = _residents(seeded)
    sheet.loc[1, "联系电话"] = "13700001111"
    sheet["党员中心户"] = ["", "是", ""]
    before = _counts(app)
    result = _run(app, "residents", sheet)
    assert (result.inserted, result.updated) == (0, 3)
    assert _counts(app) == before
    for kind in ("staff", "party", "keypersons"):
        first = _run(app, kind, _sheet(kind, seeded))
        again = _run(app, kind, _sheet(kind, seeded))
        assert (again.inserted, again.updated) == (0, first.inserted + first.updated)
    with app.app_context(), session_scope() as s:
        kp = s.scalars(select(KeyPerson)).one()
        assert (kp.category, kp.risk_level, kp.visit_days) == ("elderly_alone", 3, 7)
        branch = s.scalars(select(PartyOrg).where(PartyOrg.name == "第一网格党支部")).one()
        assert s.get(PartyOrg, branch.parent_id).name == "测试社区党委"
        assert s.scalar(select(func.count()).select_from(Staff)) == 3
        centres = s.execute(select(Resident.name).join(Household).where(Household.party_center.is_(True))).scalars()
        assert list(centres) == ["李四"]
        assert s.scalar(select(func.count()).select_from(Resident).where(Resident.party_org_id.is_not(None))) == 1


def test_rows_match_by_address_and_gcj02_lonlat(app: Flask, seeded: dict[str, Any]) -> None:
    from geo.chinacoords import wgs84_to_gcj02

    names = pd.Series(seeded["names"], index=seeded["buildings"]).dropna()
    unique = names[~names.duplicated(keep=False)]
    named = (unique.index[0], unique.iloc[0])
    twice = names[names.duplicated()].iloc[0]
    p = seeded["geometry"][8].representative_point()
    lon, lat = wgs84_to_gcj02(p.x, p.y)
    sheet = pd.DataFrame({"姓名": ["甲", "乙"], "身份证号": [NEW1, NEW2],
                          "地址": [named[1], ""], "经度": ["", str(float(lon))], "纬度": ["", str(float(lat))],
                          "门牌": ["1", "2"]})
    _run(app, "residents", sheet, coords="gcj02")
    with app.app_context(), session_scope() as s:
        got = s.execute(select(Resident.name, Household.building_id).join(Household)
                        .where(Resident.name.in_(["甲", "乙"])).order_by(Resident.name)).all()
    assert dict(got) == {"甲": named[0], "乙": seeded["buildings"][8]}
    ambiguous = sheet.iloc[:1].assign(地址=twice, 身份证号=NEW3)
    with pytest.raises(ValidationFailed, match=r"第 2 行 \[address\]：地址对应多个楼栋"):
        _run(app, "residents", ambiguous)


def _stored_bytes(app: Flask) -> bytes:
    """What the database holds: the SQLite file and its WAL, or on PostgreSQL every table as COPY text."""
    from api.db import get_db

    engine = get_db(app).engine
    if engine.dialect.name == "sqlite":
        engine.dispose()  # checkpoint nothing: read the WAL too
        db_path = Path(app.config["DATABASE_URL"].removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))
    out = bytearray()
    raw = engine.raw_connection()
    try:
        cursor = raw.driver_connection.cursor()
        tables = [r[0] for r in cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        for table in tables:
            with cursor.copy(f'COPY "{table}" TO STDOUT') as copy:
                for block in copy:
                    out += bytes(block)
    finally:
        raw.close()
    return bytes(out)


def test_id_numbers_and_phones_are_encrypted_at_rest(app: Flask, seeded: dict[str, Any], tmp_path: Path) -> None:
    raw = _stored_bytes(app)
    for secret in (ID1, ID2, ID3, "13812345678", "021-12345678"):
        assert secret.encode() not in raw
    assert "张三".encode() in raw  # names are stored in clear; the scan can see the file
    with app.app_context(), session_scope() as s:
        r = s.scalars(select(Resident).where(Resident.name == "张三")).one()
        c = cipher_for(app.instance_path, app.config["WANGGE"])
        assert c.decrypt(r.id_enc, "id_number") == ID1
        assert (r.id_masked, r.phone_masked) == ("110***********002X", "138****5678")
        from api.register.crypto import RegisterKeyError

        with pytest.raises(RegisterKeyError, match="wrong key or altered data"):
            c.decrypt(r.id_enc, "phone")
    assert (Path(app.instance_path) / "register.key").read_text() not in raw.decode("latin-1")


def test_household_counts_come_from_the_register(app: Flask, seeded: dict[str, Any]) -> None:
    from api.register.queries import household_counts

    with app.app_context(), session_scope() as s:
        counts = household_counts(s)
        expected = dict(s.execute(select(Household.building_id, func.count()).group_by(Household.building_id)).all())
    assert counts.to_dict() == expected and counts.name == "households_register"
    assert counts[seeded["buildings"][0]] >= 1


def test_staff_checks_report_people_over_the_grid_limit(app: Flask, seeded: dict[str, Any]) -> None:
    from api.register.checks import staff_checks

    grids = seeded["grids"][:5]
    sheet = pd.DataFrame({"姓名": "周多格", "联系电话": "13900000099", "角色": "网格员", "网格编码": grids})
    _run(app, "staff", sheet)
    with app.app_context(), session_scope() as s:
        report = staff_checks(s, settings={**app.config["WANGGE"], "register_max_grids_per_person": 4})
        relaxed = staff_checks(s, settings={**app.config["WANGGE"], "register_max_grids_per_person": 5})
    assert {"name": "周多格", "grids": len(grids)} in report["over_limit"]
    assert all(p["name"] != "周多格" for p in relaxed["over_limit"])
    assert not set(grids) & set(report["without_worker"])
