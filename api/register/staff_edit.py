"""Editing grid staff one by one (网格长 / 网格员 / 指导员 / 楼栋长 / 单元长): add, edit, remove.

A form is checked by the same row checks as a staff sheet import (required fields, phone
format, role, active grid code, building, account), plus what only a single edit can
break: dates, a second current 网格长 of one grid, and a duplicate of another staff row.
Every change is audited (who, what, which grid), without phone numbers in the log.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import geopandas as gpd
import pandas as pd
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from api import audit
from api.db import lock_for_transaction
from api.grids.service import active_grids
from api.localtime import local_today
from api.models import Building, User
from api.register.models import Staff
from api.register.queries import RecordNotFound
from geo.register.idnumber import mask_phone, normalise_phone
from geo.register.rows import STAFF_ROLES, BuildingMatcher, check_rows

__all__ = ["FORM_FIELDS", "ROLE_LABELS", "StaffInvalid", "staff_of_grid", "add_staff", "edit_staff", "remove_staff"]

#: Fields of the staff form (canonical names of the staff sheet; ``username`` links an account).
FORM_FIELDS: tuple[str, ...] = ("name", "phone", "role", "grid_code", "building_id", "unit", "duties", "photo",
                                "start_date", "end_date", "username")
#: Stored role -> the Chinese label forms and lists show.
ROLE_LABELS: dict[str, str] = {"grid_leader": "网格长", "grid_worker": "网格员", "instructor": "网格指导员",
                               "building_head": "楼栋长", "unit_head": "单元长"}


_LABELS = {"name": "姓名", "phone": "电话", "role": "角色", "grid_code": "网格编码", "building_id": "楼栋编号",
           "unit": "单元", "username": "登录账号"}


class StaffInvalid(ValueError):
    """The form has problems; ``problems`` lists each (Chinese, naming the field and the fix)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("；".join(problems))
        self.problems = problems


def _row(staff: Staff, usernames: Mapping[int, str]) -> dict[str, Any]:
    return {"id": staff.id, "name": staff.name, "phone_masked": mask_phone(pd.Series([staff.phone]))[0],
            "role": staff.role, "role_label": ROLE_LABELS.get(staff.role, staff.role), "grid_code": staff.grid_code,
            "building_id": staff.building_id, "unit": staff.unit, "duties": staff.duties, "photo": staff.photo,
            "start_date": staff.start_date.isoformat() if staff.start_date else None,
            "end_date": staff.end_date.isoformat() if staff.end_date else None,
            "username": usernames.get(staff.user_id) if staff.user_id else None}


def staff_of_grid(session: Session, grid: str) -> list[dict[str, Any]]:
    """Staff of grid code *grid* and of its buildings' heads listed under it, phones masked."""
    rows = session.scalars(select(Staff).where(Staff.grid_code == grid).order_by(Staff.role, Staff.name, Staff.id))
    usernames = dict(session.execute(select(User.id, User.username)).all())
    return [_row(s, usernames) for s in rows]


def _form(body: Mapping[str, Any], current: Staff | None) -> dict[str, str]:
    """The form as strings; a blank phone keeps the current one, a stored role may be given as its code."""
    form = {k: str(body.get(k) or "").strip() for k in FORM_FIELDS}
    form["role"] = ROLE_LABELS.get(form["role"], form["role"])
    if current is not None and not form["phone"]:
        form["phone"] = current.phone
    return form


def _dates(form: Mapping[str, str]) -> tuple[dict[str, date | None], list[str]]:
    out: dict[str, date | None] = {}
    problems = []
    for key, label in (("start_date", "上岗日期"), ("end_date", "离任日期")):
        try:
            out[key] = date.fromisoformat(form[key]) if form[key] else None
        except ValueError:
            problems.append(f"{label} {form[key]!r} 不是日期：按 2026-01-31 的格式填写")
            out[key] = None
    if out["start_date"] and out["end_date"] and out["end_date"] < out["start_date"]:
        problems.append("离任日期早于上岗日期：检查两个日期")
    return out, problems


def _matcher(session: Session, building_id: str) -> BuildingMatcher:
    """Only the one building the form names (the row check asks whether it exists)."""
    found = building_id and session.scalar(select(Building.building_id).where(Building.building_id == building_id))
    return BuildingMatcher(frozenset([building_id] if found else []), {},
                           gpd.GeoDataFrame({"building_id": []}, geometry=[], crs=4326))


def _second_leader(session: Session, values: Mapping[str, Any], staff_id: int | None) -> str | None:
    """Name of another current 网格长 of the same grid, if *values* make a second one."""
    today = local_today()
    if values["role"] != "grid_leader" or (values["end_date"] and values["end_date"] < today):
        return None
    # two planners adding a leader at once both saw none on PostgreSQL (found by the concurrency test)
    lock_for_transaction(session, f"register.grid_leader:{values['grid_code']}")
    other = session.scalar(select(Staff.name).where(
        Staff.role == "grid_leader", Staff.grid_code == values["grid_code"], Staff.id != (staff_id or -1),
        or_(Staff.end_date.is_(None), Staff.end_date >= today)))
    return other


def _checked(session: Session, body: Mapping[str, Any], staff_id: int | None, current: Staff | None) -> dict[str, Any]:
    """The stored values of a valid form; raises :class:`StaffInvalid` listing every problem."""
    form = _form(body, current)
    grid_codes = frozenset(str(c) for c in active_grids(session)["key"])
    usernames = frozenset(session.scalars(select(User.username)))
    checked = check_rows("staff", pd.DataFrame([form]), matcher=_matcher(session, form["building_id"]),
                         grid_codes=grid_codes, usernames=usernames)
    problems = [f"{_LABELS.get(p.column, p.column)}：{p.problem}；"
                f"{('填写' + _LABELS.get(p.column, p.column)) if p.problem == '必填项为空' else p.fix}"
                for p in checked.problems]
    dates, date_problems = _dates(form)
    problems += date_problems
    if problems:
        raise StaffInvalid(problems)
    users = dict(session.execute(select(User.username, User.id)).all())
    values = {"name": form["name"], "phone": normalise_phone(pd.Series([form["phone"]]))[0],
              "role": STAFF_ROLES[form["role"]], "grid_code": form["grid_code"] or None,
              "building_id": form["building_id"] or None, "unit": form["unit"] or None,
              "duties": form["duties"] or None, "photo": form["photo"] or None, **dates,
              "user_id": users.get(form["username"]) if form["username"] else None}
    leader = _second_leader(session, values, staff_id)
    if leader:
        problems.append(f"网格 {values['grid_code']} 已有网格长 {leader}：每个网格只有一名网格长，先给其填写离任日期或删除")
    key = {k: values[k] for k in ("name", "phone", "role", "grid_code", "building_id", "unit")}
    # the same person added twice at once (a double click, two planners) both saw no twin on PostgreSQL
    lock_for_transaction(session, f"register.staff:{values['name']}:{values['phone']}")
    twin = session.scalar(select(Staff.id).filter_by(**key).where(Staff.id != (staff_id or -1)))
    if twin is not None:
        problems.append(f"与工作人员 #{twin} 重复（姓名、电话、角色、网格、楼栋、单元都相同）：修改那一条即可")
    if problems:
        raise StaffInvalid(problems)
    return values


def _audit(session: Session, user: User | str, action: str, staff: Staff, fields: list[str]) -> None:
    audit.record(session, user=user, action=action, target=f"staff:{staff.id}",
                 detail={"grid": staff.grid_code, "role": staff.role, "fields": fields})


def _get(session: Session, staff_id: int) -> Staff:
    # the row locked to the commit (PostgreSQL; SQLite runs one writer): two removals of one row at once both
    # found it, both answered "removed" and audited it twice, the second deleting nothing
    staff = session.get(Staff, staff_id, with_for_update=True)
    if staff is None:
        raise RecordNotFound(f"没有编号为 {staff_id} 的网格工作人员；刷新列表后重试")
    return staff


def add_staff(session: Session, body: Mapping[str, Any], *, user: User | str) -> dict[str, Any]:
    """Add one staff member from a form (checked; audited ``register.staff_add``)."""
    staff = Staff(**_checked(session, body, None, None))
    session.add(staff)
    session.flush()
    _audit(session, user, "register.staff_add", staff, sorted(k for k in FORM_FIELDS if body.get(k)))
    return _row(staff, dict(session.execute(select(User.id, User.username)).all()))


def edit_staff(session: Session, staff_id: int, body: Mapping[str, Any], *, user: User | str) -> dict[str, Any]:
    """Replace staff member *staff_id*'s fields by the form's (blank phone: unchanged); audited."""
    staff = _get(session, staff_id)
    values = _checked(session, body, staff_id, staff)
    changed = sorted(k for k, v in values.items() if getattr(staff, k) != v)
    for k, v in values.items():
        setattr(staff, k, v)
    session.flush()
    _audit(session, user, "register.staff_edit", staff, changed)
    return _row(staff, dict(session.execute(select(User.id, User.username)).all()))


def remove_staff(session: Session, staff_id: int, *, user: User | str) -> dict[str, Any]:
    """Delete staff member *staff_id* (audited ``register.staff_remove``); the removed row, masked."""
    staff = _get(session, staff_id)
    row = _row(staff, {})
    _audit(session, user, "register.staff_remove", staff, [])
    session.delete(staff)
    return row
