"""The role × record matrix on every register route and export, the masking scan and the audit trail.

Roles: anonymous, viewer, worker of grid A (asking for A and for B), planner, admin (who
alone holds the ``unmask`` grant). Every response body (JSON, HTML, CSV, XLSX) is scanned
for clear ID numbers and phones.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from api.db import session_scope
from api.models import AuditEntry, User
from api.register.crypto import cipher_for
from api.register.importer import import_sheet
from api.register.models import KeyPerson, RegisterGrant, Resident
from geo.register.idnumber import id_check_char
from tests.api.attack_helpers import ID_RE
from tests.api.plans_helpers import login
from tests.api.register_helpers import published_app

PHONE_RE = re.compile(rb"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")
ROLES = ("anonymous", "viewer", "worker", "planner", "admin")


def _ids(n: int) -> list[str]:
    bodies = [f"32010220000101{i:03d}" for i in range(n)]
    return [b + id_check_char(b) for b in bodies]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with published_app(tmp_path_factory.mktemp("register_roles"), 600) as app:
        yield _seed(app)


def _seed(app: Flask) -> dict[str, Any]:
    from api.grids.service import active_grids, buildings_of_grid

    clients = {"anonymous": app.test_client(), **{r: login(app, r) for r in ROLES[1:]}}
    ids = _ids(4)
    with app.app_context(), session_scope() as s:
        grids = active_grids(s)["key"].tolist()
        a, b = grids[0], grids[1]
        ba, bb = buildings_of_grid(s, a)[0], buildings_of_grid(s, b)[0]
        c, settings = cipher_for(app.instance_path, app.config["WANGGE"]), app.config["WANGGE"]
        people = pd.DataFrame({"姓名": ["甲一", "甲二", "乙一", "乙二"], "身份证号": ids,
                               "联系电话": ["13811112222", "13833334444", "13955556666", "13977778888"],
                               "楼栋编号": [ba, ba, bb, bb], "单元": "1", "门牌": ["101", "102", "101", "102"]})
        import_sheet(s, "residents", people, cipher=c, settings=settings, user="test")
        import_sheet(s, "keypersons", pd.DataFrame({"姓名": ["甲一", "乙一"], "身份证号": [ids[0], ids[2]],
                                                    "类别": ["独居老人", "残疾人"], "风险等级": ["4", "1"]}),
                     cipher=c, settings=settings, user="test")
        import_sheet(s, "staff", pd.DataFrame({"姓名": ["王网格"], "联系电话": ["13700000000"], "角色": ["网格员"],
                                               "网格编码": [a], "账号": ["worker"]}), cipher=c, settings=settings,
                     user="test")
        admin = s.scalar(select(User).where(User.username == "admin"))
        s.add(RegisterGrant(user_id=admin.id, permission="unmask", granted_by="test"))
        res = dict(s.execute(select(Resident.name, Resident.id)).all())
        kps = {s.get(Resident, k.resident_id).name: k.id for k in s.scalars(select(KeyPerson))}
    return {"app": app, "clients": clients, "A": a, "B": b, "ids": ids,
            "res": {"A": res["甲一"], "B": res["乙一"]}, "kp": {"A": kps["甲一"], "B": kps["乙一"]}}


PEOPLE = {"anonymous": 401, "viewer": 403, "worker": 200, "planner": 200, "admin": 200}
STAFF_ONLY = {"anonymous": 401, "viewer": 403, "worker": 403, "planner": 200, "admin": 200}
ANY_USER = {"anonymous": 401, "viewer": 200, "worker": 200, "planner": 200, "admin": 200}
UNMASK = {"anonymous": 401, "viewer": 403, "worker": 403, "planner": 403, "admin": 200}
ADMIN = {"anonymous": 401, "viewer": 403, "worker": 403, "planner": 403, "admin": 200}

#: name, method, url (``{grid}``, ``{res}``, ``{kp}`` filled per grid A/B), expected per role, audit action.
ROUTES: list[tuple[str, str, str, dict[str, int], str | None]] = [
    ("residents", "GET", "/api/register/grids/{grid}/residents", PEOPLE, "register.view_residents"),
    ("search", "GET", "/api/register/grids/{grid}/residents?q={tail}", PEOPLE, "register.view_residents"),
    ("resident", "GET", "/api/register/residents/{res}", PEOPLE, "register.view_resident"),
    ("edit", "POST", "/api/register/residents/{res}", PEOPLE, "register.edit"),
    ("unmask", "POST", "/api/register/residents/{res}/unmask", UNMASK, "register.unmask"),
    ("keypersons", "GET", "/api/register/grids/{grid}/keypersons", PEOPLE, "register.view_keypersons"),
    ("keyperson", "GET", "/api/register/keypersons/{kp}", PEOPLE, "register.view_keyperson"),
    ("export_csv", "GET", "/api/register/grids/{grid}/export?format=csv", PEOPLE, "register.export"),
    ("export_xlsx", "GET", "/api/register/grids/{grid}/export?format=xlsx", PEOPLE, "register.export"),
    ("summary", "GET", "/api/register/grids/{grid}/summary", ANY_USER, None),
    ("my", "GET", "/api/register/my", ANY_USER, None),
    ("checks", "GET", "/api/register/checks", STAFF_ONLY, None),
    ("rebinding", "GET", "/api/register/rebinding/1", STAFF_ONLY, None),
    ("audit", "GET", "/api/register/audit?action=register.", ADMIN, None),
    ("page_list", "GET", "/register?grid={grid}", PEOPLE, "register.view_residents"),
    ("page_resident", "GET", "/register/residents/{res}", PEOPLE, "register.view_resident"),
    ("page_my", "GET", "/register/my", ANY_USER, None),
    ("page_audit", "GET", "/register/audit", ADMIN, None),
    ("page_import", "GET", "/register/import", STAFF_ONLY, None),
    ("page_rebinding", "GET", "/register/rebinding/1", STAFF_ONLY, None),
    ("staff_list", "GET", "/api/register/grids/{grid}/staff", STAFF_ONLY, None),
    ("page_staff", "GET", "/register/staff?grid={grid}", STAFF_ONLY, None),
]


def _bodies(response: Any) -> list[bytes]:
    """The response body, and for XLSX every file inside the zip."""
    data = response.get_data()
    if data[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return [z.read(n) for n in z.namelist()]
    return [data]


def _audit_count(app: Flask, action: str) -> int:
    with app.app_context(), session_scope() as s:
        return int(s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action)) or 0)


def _call(client: FlaskClient, method: str, url: str) -> Any:
    if method == "GET":
        return client.get(url)
    body = {"reason": "核实低保申请"} if url.endswith("/unmask") else {"relation": "户主"}
    return client.post(url, json=body)


def _cases() -> list[tuple[str, str, str]]:
    return [(name, role, grid) for name, *_ in ROUTES for role in ROLES for grid in ("A", "B")]


@pytest.mark.parametrize(("name", "role", "grid"), _cases())
def test_role_matrix(world: dict[str, Any], name: str, role: str, grid: str) -> None:
    _, method, url, expected, action = next(r for r in ROUTES if r[0] == name)
    app = world["app"]
    per_grid = any(t in url for t in ("{grid}", "{res}", "{kp}"))
    url = url.format(grid=world[grid], res=world["res"][grid], kp=world["kp"][grid], tail=world["ids"][0][-4:])
    status = expected[role]
    if role == "worker" and grid == "B" and status == 200 and action is not None and per_grid:
        status = 403  # a worker of grid A asking for grid B
    before = _audit_count(app, action) if action else 0
    r = _call(world["clients"][role], method, url)
    if status == 401 and not url.startswith("/api/"):
        assert r.status_code == 302 and "/login" in r.headers["Location"]
    else:
        assert r.status_code == status, (r.status_code, r.get_data()[:300])
    for body in _bodies(r):
        if name == "unmask" and r.status_code == 200:
            continue  # the one response allowed to carry clear numbers (checked below)
        assert not ID_RE.search(body), f"clear ID number in {name} as {role}"
        assert not PHONE_RE.search(body), f"clear phone in {name} as {role}"
    if action:
        assert _audit_count(app, action) == before + (1 if r.status_code == 200 else 0)


def test_unmask_returns_clear_numbers_and_audits_the_reason(world: dict[str, Any]) -> None:
    app, admin = world["app"], world["clients"]["admin"]
    r = admin.post(f"/api/register/residents/{world['res']['A']}/unmask", json={"reason": "核实低保申请"})
    assert r.get_json()["id_number"] == world["ids"][0] and r.get_json()["phone"] == "13811112222"
    assert admin.post(f"/api/register/residents/{world['res']['A']}/unmask", json={}).status_code == 400
    with app.app_context(), session_scope() as s:
        e = s.scalars(select(AuditEntry).where(AuditEntry.action == "register.unmask")
                      .order_by(AuditEntry.id.desc())).first()
    assert (e.username, e.target, e.detail["reason"]) == ("admin", f"resident:{world['res']['A']}", "核实低保申请")


def test_lists_are_masked_and_scoped(world: dict[str, Any]) -> None:
    worker = world["clients"]["worker"]
    rows = worker.get(f"/api/register/grids/{world['A']}/residents").get_json()["residents"]
    assert {r["name"] for r in rows} == {"甲一", "甲二"}
    assert rows[0]["id_masked"] == world["ids"][0][:3] + "*" * 11 + world["ids"][0][-4:]
    assert rows[0]["phone_masked"] == "138****2222"
    tail = worker.get(f"/api/register/grids/{world['A']}/residents?q={world['ids'][1][-4:]}").get_json()
    assert [r["name"] for r in tail["residents"]] == ["甲二"]
    my = worker.get("/api/register/my").get_json()["grids"]
    assert [g["key"] for g in my] == [world["A"]] and my[0]["residents"] == 2 and my[0]["keypersons"] == 1
    csv_text = worker.get(f"/api/register/grids/{world['A']}/export?format=csv").get_data().decode("utf-8-sig")
    assert "身份证号" in csv_text and "138****2222" in csv_text


def test_edit_validates_and_public_pages_show_no_residents(world: dict[str, Any]) -> None:
    planner = world["clients"]["planner"]
    bad = planner.post(f"/api/register/residents/{world['res']['A']}", json={"phone": "12"})
    assert bad.status_code == 400 and "电话格式不对" in bad.get_json()["error"]["message"]
    assert planner.post(f"/api/register/residents/{world['res']['A']}", json={"name": ""}).status_code == 400
    ok = planner.post(f"/api/register/residents/{world['res']['A']}", json={"phone": "13811112222", "relation": "户主"})
    assert ok.status_code == 200 and ok.get_json()["relation"] == "户主"
    anon = world["app"].test_client()
    for url in ("/login", f"/api/grids/{world['A']}"):
        assert "甲一".encode() not in anon.get(url).get_data()


def test_checks_and_rebinding_report(world: dict[str, Any]) -> None:
    planner = world["clients"]["planner"]
    checks = planner.get("/api/register/checks").get_json()
    assert world["A"] in checks["without_leader"] and world["A"] not in checks["without_worker"]
    assert world["B"] in checks["without_worker"]
    report = planner.get("/api/register/rebinding/1").get_json()
    assert report["staff_whose_grid_vanishes"] == []
    assert {r["status"] for r in report["succession"]} == {"kept"}
    assert planner.get("/api/register/rebinding/999").status_code == 404
    page = planner.get("/register/rebinding/1").get_data(as_text=True)
    assert "没有网格长的网格" in page and world["A"] in page


def test_pages_unmask_with_reason_and_edit(world: dict[str, Any]) -> None:
    admin, rid = world["clients"]["admin"], world["res"]["A"]
    page = admin.get(f"/register/residents/{rid}").get_data(as_text=True)
    assert "查看完整号码" in page and world["ids"][0] not in page
    shown = admin.post(f"/register/residents/{rid}", data={"action": "unmask", "reason": "入户核查"})
    assert shown.status_code == 200 and world["ids"][0] in shown.get_data(as_text=True)
    assert admin.post(f"/register/residents/{rid}", data={"action": "unmask", "reason": ""}).status_code == 400
    planner = world["clients"]["planner"]
    assert "查看完整号码" not in planner.get(f"/register/residents/{rid}").get_data(as_text=True)
    edited = planner.post(f"/register/residents/{rid}", data={"name": "甲一", "relation": "本人", "lives_here": "1"})
    assert edited.status_code == 200 and "本人" in edited.get_data(as_text=True)
    audit = admin.get("/register/audit?action=register.unmask&user=admin").get_data(as_text=True)
    assert "入户核查" in audit and f"resident:{rid}" in audit


def test_upload_import_lists_problems_and_writes_nothing(world: dict[str, Any]) -> None:
    planner = world["clients"]["planner"]
    bad = "姓名,身份证号,楼栋编号,门牌\n丙,123,nope,1\n".encode("gbk")
    r = planner.post("/register/import", data={"kind": "residents", "file": (io.BytesIO(bad), "bad.csv")},
                     content_type="multipart/form-data")
    text = r.get_data(as_text=True)
    assert r.status_code == 422 and "未写入任何数据" in text and "楼栋编号在工作区中不存在" in text
    api = planner.post("/api/register/import", data={"kind": "residents", "file": (io.BytesIO(bad), "bad.csv")},
                       content_type="multipart/form-data")
    assert api.status_code == 422 and {p["row"] for p in api.get_json()["problems"]} == {2}
    good = pd.DataFrame({"组织类型": ["社区党委"], "组织名称": ["上传党委"]}).to_csv(index=False).encode("utf-8-sig")
    ok = planner.post("/api/register/import", data={"kind": "party", "file": (io.BytesIO(good), "p.csv")},
                      content_type="multipart/form-data")
    assert ok.status_code == 200 and ok.get_json()["inserted"] == 1
    unmapped = planner.post("/api/register/import", data={"kind": "staff", "file": (io.BytesIO(good), "p.csv")},
                            content_type="multipart/form-data")
    error = unmapped.get_json()["error"]
    assert unmapped.status_code == 400 and "表格缺少必需的列" in error["message"] and "字段对应" in error["fix"]
    assert error["code"] == "missing_columns" and "--field" not in unmapped.get_data(as_text=True)


def _staff_count(app: Flask) -> int:
    from api.register.models import Staff

    with app.app_context(), session_scope() as s:
        return int(s.scalar(select(func.count()).select_from(Staff)))


#: A bad staff form each, with (part of) the message it must get; nothing is written.
BAD_STAFF: list[tuple[dict[str, str], str]] = [
    ({"phone": "12"}, "电话：号码 ** 格式不对；填写 11 位手机号"),
    ({"name": ""}, "姓名：必填项为空；填写姓名"),
    ({"role": "组长"}, "角色：未知角色；角色须为 网格长、网格员"),
    ({"grid_code": "nope"}, "网格编码：网格编码不是生效网格"),
    ({"role": "楼栋长", "grid_code": ""}, "楼栋编号：楼栋长/单元长须填写楼栋编号"),
    ({"role": "楼栋长", "building_id": "no-such-building"}, "楼栋编号：楼栋编号在工作区中不存在"),
    ({"username": "nobody"}, "登录账号：账号不存在"),
    ({"start_date": "2026-13-01"}, "上岗日期 '2026-13-01' 不是日期"),
    ({"start_date": "2026-03-01", "end_date": "2026-02-01"}, "离任日期早于上岗日期"),
    ({"name": "王网格", "phone": "13700000000", "role": "网格员"}, "重复（姓名、电话、角色、网格、楼栋、单元都相同）"),
]


def test_staff_edits_need_planner_or_admin(world: dict[str, Any]) -> None:
    clients, app = world["clients"], world["app"]
    body = {"name": "赵网格员", "phone": "13711110000", "role": "网格员", "grid_code": world["B"]}
    before = _staff_count(app)
    for role, status in (("anonymous", 401), ("viewer", 403), ("worker", 403)):
        c = clients[role]
        assert c.post("/api/register/staff", json=body).status_code == status, role
        assert c.post("/api/register/staff/1", json=body).status_code == status, role
        assert c.delete("/api/register/staff/1").status_code == status, role
        page = c.post("/register/staff", data={**body, "action": "add"})
        assert page.status_code == (302 if role == "anonymous" else 403), role
    assert _staff_count(app) == before


def test_staff_form_catalogue_each_refused_with_its_message(world: dict[str, Any]) -> None:
    app, planner = world["app"], world["clients"]["planner"]
    good = {"name": "孙网格员", "phone": "13722220000", "role": "网格员", "grid_code": world["A"]}
    before = _staff_count(app)
    for change, message in BAD_STAFF:
        r = planner.post("/api/register/staff", json={**good, **change})
        assert r.status_code == 400, (change, r.get_json())
        assert message in r.get_json()["error"]["message"], (change, r.get_json()["error"]["message"])
    assert _staff_count(app) == before
    page = planner.post("/register/staff", data={**good, "phone": "12", "action": "add", "grid": world["A"]})
    assert page.status_code == 400 and "格式不对；填写 11 位手机号" in page.get_data(as_text=True)
    assert _staff_count(app) == before


def test_staff_add_edit_remove_one_leader_masked_and_audited(world: dict[str, Any]) -> None:
    from api.register.models import Staff

    app, planner, admin, a = world["app"], world["clients"]["planner"], world["clients"]["admin"], world["A"]
    leader = {"name": "赵网格长", "phone": "13733330000", "role": "网格长", "grid_code": a, "duties": "统筹"}
    r = planner.post("/api/register/staff", json=leader)
    assert r.status_code == 201, r.get_json()
    added = r.get_json()
    assert added["phone_masked"] == "137****0000" and not PHONE_RE.search(r.get_data())
    second = planner.post("/api/register/staff", json={**leader, "name": "钱网格长", "phone": "13744440000"})
    assert second.status_code == 400 and f"网格 {a} 已有网格长 赵网格长" in second.get_json()["error"]["message"]
    # The leader leaves (blank phone: unchanged; the stored role code is accepted too): a new one may come.
    edit = admin.post(f"/api/register/staff/{added['id']}",
                      json={**leader, "phone": "", "role": "grid_leader", "start_date": "2025-01-01",
                            "end_date": "2025-12-31"})
    assert edit.status_code == 200 and edit.get_json()["end_date"] == "2025-12-31", edit.get_json()
    with app.app_context(), session_scope() as s:
        assert s.get(Staff, added["id"]).phone == "13733330000"
    assert planner.post("/api/register/staff", json={**leader, "name": "钱网格长", "phone": "13744440000"}) \
        .status_code == 201
    listing = planner.get(f"/api/register/grids/{a}/staff").get_json()["staff"]
    assert {(s["name"], s["role_label"]) for s in listing} >= {("赵网格长", "网格长"), ("钱网格长", "网格长")}
    assert admin.delete(f"/api/register/staff/{added['id']}").status_code == 200
    assert admin.delete(f"/api/register/staff/{added['id']}").status_code == 404
    with app.app_context(), session_scope() as s:
        rows = s.scalars(select(AuditEntry).where(AuditEntry.target == f"staff:{added['id']}")
                         .order_by(AuditEntry.id)).all()
    assert [(e.action, e.username) for e in rows] == [("register.staff_add", "planner"),
                                                       ("register.staff_edit", "admin"),
                                                       ("register.staff_remove", "admin")]
    assert rows[1].detail["fields"] == ["end_date", "start_date"]  # what changed; the phone was kept
    assert not any(PHONE_RE.search(repr(e.detail).encode()) for e in rows)


def test_staff_page_lists_masked_and_a_linked_account_follows_its_grid(world: dict[str, Any]) -> None:
    planner, worker, b = world["clients"]["planner"], world["clients"]["worker"], world["B"]
    page = planner.get(f"/register/staff?grid={world['A']}").get_data(as_text=True)
    assert "王网格" in page and "137****0000" in page and "13700000000" not in page
    form = {"action": "add", "grid": b, "name": "李网格员", "phone": "13755550000", "role": "网格员",
            "grid_code": b, "username": "worker"}
    done = planner.post("/register/staff", data=form)
    assert done.status_code == 200 and "已添加：网格员 李网格员" in done.get_data(as_text=True)
    assert b in [g["key"] for g in worker.get("/api/register/my").get_json()["grids"]]
    assert worker.get(f"/api/register/grids/{b}/residents").status_code == 200  # the worker now serves B
    staff_id = next(s["id"] for s in planner.get(f"/api/register/grids/{b}/staff").get_json()["staff"]
                    if s["name"] == "李网格员")
    removed = planner.post("/register/staff", data={"action": "remove", "staff_id": str(staff_id), "grid": b})
    assert removed.status_code == 200 and "已删除：网格员 李网格员" in removed.get_data(as_text=True)
    assert worker.get(f"/api/register/grids/{b}/residents").status_code == 403


def test_register_before_any_plan_says_what_to_do_for_the_role(tmp_path) -> None:
    """With no published plan the register told an admin that *workers* must be linked to grids, under
    an empty grid list and a search button that could find nothing: now it says to publish a plan."""
    from tests.api.plans_helpers import district_app

    with district_app(tmp_path, 100) as app:
        for role, says, not_says in (("admin", "先在“网格方案”中发布一个方案", "网格员须由规划员"),
                                     ("planner", "先在“网格方案”中发布一个方案", "网格员须由规划员"),
                                     ("worker", "网格员须由规划员在登记册中关联到网格", "发布一个方案")):
            page = login(app, role).get("/register").get_data(as_text=True)
            assert says in page and not_says not in page, role
            assert 'name="q"' not in page and "wg-reg-filter" not in page, role
