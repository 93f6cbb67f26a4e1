"""The audit log page: a Chinese label for every action code the app writes, filters and pages."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask

from api import audit
from api.admin_users import ACTIONS
from api.audit_labels import ACTION_LABELS, action_label, detail_text
from api.db import session_scope
from api.localtime import local_zone
from api.models import AuditEntry
from api.plans.edits import OPS
from tests.api.plans_helpers import district_app, login

API = Path(__file__).resolve().parents[2] / "api"
#: Dotted action codes: area, dot, verb (file names such as plan.html or boards.zip are not actions).
CODE = re.compile(r"^(auth|user|workspace|plan|register|patrol|incidents|boards|party|access|jobs)\.[a-z_]*[a-z](\.[a-z_]*[a-z])?$")
FILES = re.compile(r"\.(html|zip|pdf|png|key|id)$")


def _codes_in_source() -> set[str]:
    """Every action-code literal in api/, plus the codes built in f-strings from known parts."""
    codes: set[str] = set()
    for path in API.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and CODE.match(node.value) \
                    and not FILES.search(node.value):
                codes.add(node.value)
    codes |= {f"plan.edit.{op}" for op in OPS}  # f"plan.edit.{body['op']}"
    codes |= {"auth.login_locked", "auth.login_delay"}  # f"auth.login_{kind}", kinds of users.login_wait
    codes |= {f"user.{name}" for name in ACTIONS if name in ("disable", "enable", "unlock")}  # f"user.{action}"
    return codes


def test_every_action_code_in_the_source_has_a_chinese_label() -> None:
    codes = _codes_in_source()
    assert {"auth.login", "plan.publish", "register.unmask", "patrol.track_view", "boards.batch"} <= codes
    assert sorted(c for c in codes if c not in ACTION_LABELS) == []
    assert all(re.search(r"[\u4e00-\u9fff]", label) for label in ACTION_LABELS.values())
    assert action_label("made.up") == "其他操作（made.up）"
    assert detail_text({"count": 2, "masked": True, "fields": ["name", "phone"]}) == "条数：2；已脱敏：是；字段：姓名、联系电话"


def test_audit_details_read_in_chinese() -> None:
    """The details `wangge demo` writes once showed keys and Python values ("source：demo", "base：None",
    "counts：{'communities': 20…}") on the audit page: every key is labelled, nothing reads None."""
    partition = {"job": "0379bffbfa64", "grids": 185, "base": None, "locked": [], "micro": False, "min_households": 300,
                 "max_households": 500, "target_households": 400, "seed": 42, "register_households": False}
    imported = {"import_run_id": 1, "counts": {"communities": 20, "buildings": 1500, "streets": 1233, "compounds": 114,
                                               "service_points": 90}, "replace": True}
    for detail in (partition, imported, {"kind": "party", "rows": 20, "source": "xlsx"}, {"q": None, "count": 50},
                   {"created": ["admin"], "communities": ["C0001"], "archived": []}):
        text = detail_text(detail)
        assert "None" not in text and "{" not in text, text
        assert not [k for k in detail if k in text], text
    assert detail_text(partition).startswith("任务：0379bffbfa64；网格数：185；基于方案：无；锁定网格：无；微网格：否")
    assert detail_text(imported) == "导入批次：1；数量：社区 20，楼栋数 1500，道路 1233，小区 114，服务点 90；替换原数据：是"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    with district_app(tmp_path_factory.mktemp("audit"), 120) as app:
        now = datetime.now(UTC)
        with app.app_context(), session_scope() as s:
            for i in range(7):
                audit.record(s, user="planner", action="plan.publish", target=f"plan:{i}", detail={"grids": i})
            audit.record(s, user="admin", action="register.unmask", target="resident:5", detail={"reason": "走访核实"})
            old = audit.record(s, user="admin", action="user.set_role", target="user:viewer", detail={"role": "planner"})
            old.at = now - timedelta(days=40)
        yield app


def _actions_on(html: str) -> list[str]:
    return re.findall(r'data-action="([^"]+)"', html)


def test_audit_page_shows_labels_filters_and_pages(app: Flask) -> None:
    admin = login(app, "admin")
    app.config["WANGGE"]["list_page_size"] = 4
    try:
        first = admin.get("/register/audit").get_data(as_text=True)
        assert "发布方案" in first and "查看明文身份证号/电话" in first and "理由：走访核实" in first
        assert ">plan.publish<" not in first and ">register.unmask<" not in first  # codes only in attributes
        assert len(_actions_on(first)) == 4 and 'rel="next"' in first
        total = int(re.search(r"共 (\d+) 条", first).group(1))
        last = admin.get(f"/register/audit?page={-(-total // 4)}").get_data(as_text=True)
        assert len(_actions_on(last)) == total - 4 * (-(-total // 4) - 1)
        by_action = admin.get("/register/audit?action=plan.publish").get_data(as_text=True)
        assert "共 7 条" in by_action and set(_actions_on(by_action)) == {"plan.publish"}
        assert "page=2&amp;action=plan.publish" in by_action or "action=plan.publish&amp;page=2" in by_action
        by_user = admin.get("/register/audit?user=admin&action=register.").get_data(as_text=True)
        assert _actions_on(by_user) == ["register.unmask"]
        # the filter's days are local days (display_timezone)
        day = (datetime.now(UTC) - timedelta(days=40)).astimezone(local_zone(app.config["WANGGE"])).date().isoformat()
        dated = admin.get(f"/register/audit?since={day}&until={day}").get_data(as_text=True)
        assert _actions_on(dated) == ["user.set_role"] and "角色：planner" in dated
        empty = admin.get("/register/audit?user=nobody").get_data(as_text=True)
        assert "没有符合条件的审计记录" in empty and "放宽筛选条件" in empty
    finally:
        app.config["WANGGE"]["list_page_size"] = 50
    r = admin.get("/register/audit?until=31.12.")
    assert r.status_code == 400 and "until 须为日期" in r.get_data(as_text=True)
    assert admin.get("/register/audit?page=0").status_code == 400
    assert login(app, "planner").get("/register/audit").status_code == 403
    api = admin.get("/api/register/audit?action=user.&until=" + day).get_json()
    assert [e["action"] for e in api["entries"]] == ["user.set_role"]
    with app.app_context(), session_scope() as s:
        assert s.query(AuditEntry).count() >= 9
