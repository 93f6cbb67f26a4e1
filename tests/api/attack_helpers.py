"""A register, incidents, patrol and party world seeded with hostile text and known secrets.

Shared by the attack tests (privacy walk, exports, hostile names): one published district,
residents of grid A and B with known ID numbers and phones, key persons, staff linked to a
worker account per grid, party organisations, incidents (worker, public and Open311 channels)
with hostile descriptions, a bound tracker device and a recorded visit. Every free-text field
a person types or imports carries a payload from :data:`tests.webmap.hostile.PAYLOADS`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from api.db import session_scope
from tests.api.plans_helpers import login
from tests.api.register_helpers import published_app
from tests.webmap.hostile import PAYLOADS

__all__ = ["ATTACK_ROLES", "ID_RE", "PHONE_RE", "World", "attack_world", "grid_point", "hostile_text", "http_session", "ids_with_check"]

#: Any 18-character resident ID number in the GB 11643 shape (region, birth date 18xx-20xx, sequence,
#: check character) and any mainland mobile number. The birth date matters: a bare 18-digit run
#: also matches random numbers a page may carry (one failed a CI run on the plan page), no ID.
ID_RE = re.compile(rb"(?<![0-9.])[1-9][0-9]{5}(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
                   rb"[0-9]{3}[0-9Xx](?![0-9])")
PHONE_RE = re.compile(rb"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")
#: Logins of the walk: the worker of grid A (``worker``) and of grid B (``worker_b``).
ATTACK_ROLES = ("anonymous", "viewer", "worker", "worker_b", "planner", "admin")
#: Other hostile shapes than markup: RTL override, NUL-free control text, very long, formula.
EXTRA = ("\u202egnp.exe", "=HYPERLINK(\"http://x\",\"点\")", "长" * 3000, "+SUM(1)", "@cmd", "-2+3")


def hostile_text(prefix: str, i: int) -> str:
    """*prefix*, a number and the *i*-th payload (markup and formula shapes in turn)."""
    pool = (*PAYLOADS, *EXTRA[:2], EXTRA[3], EXTRA[4], EXTRA[5])
    return f"{prefix}{i}{pool[i % len(pool)]}"


def http_session(url: str, username: str) -> Any:
    """A ``requests`` session logged in as *username* on the app served at *url* (tests.live.serving)."""
    import requests

    s = requests.Session()
    r = s.post(f"{url}/login", data={"username": username, "password": "grid2026plan"}, allow_redirects=False,
               timeout=60)
    assert r.status_code == 302, r.text[:300]
    return s


def ids_with_check(bodies: list[str]) -> list[str]:
    """17-digit bodies completed with their GB 11643 check character."""
    from geo.register.idnumber import id_check_char

    return [b + id_check_char(b) for b in bodies]


@dataclass
class World:
    """The seeded app and what the tests need to find in it."""

    app: Flask
    A: str
    B: str
    plan: int
    ids: dict[str, list[str]]  # grid letter -> clear ID numbers of its residents
    phones: dict[str, list[str]]  # grid letter -> clear resident phones
    names: dict[str, list[str]]  # grid letter -> resident names (markers of a resident record)
    keyperson_names: dict[str, str]  # grid letter -> name of its key person
    residents: dict[str, int]  # grid letter -> one resident id
    keypersons: dict[str, int]
    cases: dict[str, int]  # channel -> case id (in grid A)
    reporter_phone: str  # the phone a member of the public left with a report
    device: str
    token: str  # Open311 token of a case
    api_key: str
    clients: dict[str, FlaskClient] = field(default_factory=dict)

    def secrets(self) -> list[bytes]:
        """Every clear number that only the ``unmask`` grant may see (UTF-8)."""
        values = [*self.ids["A"], *self.ids["B"], *self.phones["A"], *self.phones["B"], self.reporter_phone]
        return [v.encode() for v in values]


def _people(a_building: str, b_building: str) -> tuple[pd.DataFrame, dict[str, list[str]], dict[str, list[str]],
                                                      dict[str, list[str]]]:
    ids = {"A": ids_with_check([f"3201022000010110{i}" for i in range(3)]),
           "B": ids_with_check([f"3201022000010120{i}" for i in range(3)])}
    phones = {"A": ["13811112201", "13811112202", "13811112203"], "B": ["13922223301", "13922223302", "13922223303"]}
    names = {"A": ["隐私甲一", hostile_text("甲", 1), hostile_text("甲", 2)],
             "B": ["隐私乙一", hostile_text("乙", 1), hostile_text("乙", 5)]}
    frame = pd.DataFrame({"姓名": [*names["A"], *names["B"]], "身份证号": [*ids["A"], *ids["B"]],
                          "联系电话": [*phones["A"], *phones["B"]],
                          "楼栋编号": [a_building] * 3 + [b_building] * 3, "单元": "1",
                          "门牌": [hostile_text("室", i) for i in range(6)],
                          "与户主关系": [hostile_text("", i)[:32] for i in range(6)],  # the column holds 32
                          "户籍地": [hostile_text("户籍", i) for i in range(6)],
                          "是否党员": ["是", "否", "否", "是", "否", "否"], "党员中心户": ["是", "否", "否", "是", "否", "否"]})
    return frame, ids, phones, names


def _seed_register(app: Flask, s: Any, a: str, b: str, ba: str, bb: str) -> dict[str, Any]:
    from api.models import User
    from api.register.crypto import cipher_for
    from api.register.importer import import_sheet
    from api.register.models import KeyPerson, KeyPersonCategory, RegisterGrant, Resident
    from api.register.writers import ensure_categories

    c, settings = cipher_for(app.instance_path, app.config["WANGGE"]), app.config["WANGGE"]
    frame, ids, phones, names = _people(ba, bb)
    import_sheet(s, "residents", frame, cipher=c, settings=settings, user="test")
    ensure_categories(s)
    category = hostile_text("类别", 1)[:100]  # a key-person category table with a hostile name
    s.execute(update(KeyPersonCategory).where(KeyPersonCategory.name == sorted(s.scalars(select(KeyPersonCategory.name)))[0])
              .values(name=category))
    import_sheet(s, "keypersons", pd.DataFrame({"姓名": [names["A"][0], names["B"][0]],
                                                "身份证号": [ids["A"][0], ids["B"][0]], "类别": category,
                                                "风险等级": ["4", "1"],
                                                "备注": [hostile_text("备注", 0), hostile_text("备注", 1)]}),
                 cipher=c, settings=settings, user="test")
    import_sheet(s, "staff", pd.DataFrame({"姓名": [hostile_text("网格员", 0), hostile_text("网格员", 1),
                                                    hostile_text("网格长", 2)],
                                           "联系电话": ["13700000001", "13700000002", "13700000003"],
                                           "角色": ["网格员", "网格员", "网格长"], "网格编码": [a, b, a],
                                           "职责": [hostile_text("职责", 3), "巡查", hostile_text("职责", 4)],
                                           "账号": ["worker", "worker_b", ""]}),
                 cipher=c, settings=settings, user="test")
    import_sheet(s, "party", pd.DataFrame({"组织类型": ["社区党委", "网格党支部"],
                                           "组织名称": [hostile_text("党委", 0), hostile_text("支部", 1)],
                                           "上级组织": ["", hostile_text("党委", 0)], "网格编码": ["", a],
                                           "书记": ["", hostile_text("书记", 2)]}),
                 cipher=c, settings=settings, user="test")
    admin = s.scalar(select(User).where(User.username == "admin"))
    s.add(RegisterGrant(user_id=admin.id, permission="unmask", granted_by="test"))
    res = dict(s.execute(select(Resident.name, Resident.id)).all())
    kps = {s.get(Resident, k.resident_id).name: k.id for k in s.scalars(select(KeyPerson))}
    return {"ids": ids, "phones": phones, "names": names,
            "keyperson_names": {"A": names["A"][0], "B": names["B"][0]},
            "residents": {"A": res[names["A"][0]], "B": res[names["B"][0]]},
            "keypersons": {"A": kps[names["A"][0]], "B": kps[names["B"][0]]}}


def _point_in(s: Any, key: str) -> tuple[float, float]:
    from api.grids.service import active_grids

    grids = active_grids(s)
    p = grids.loc[grids["key"] == key].geometry.iloc[0].representative_point()
    return float(p.x), float(p.y)


def _seed_cases(app: Flask, s: Any, a: str) -> dict[str, Any]:
    from api.incidents.intake import Intake, report_case
    from api.incidents.keys import create_key
    from api.incidents.models import IncidentCategory
    from api.incidents.tables import load_categories

    settings = app.config["WANGGE"]
    lon, lat = _point_in(s, a)
    cats = load_categories(s)
    code = next(k for k in sorted(cats) if "photos" not in cats[k].required and "photo" not in cats[k].required)
    # a category table with hostile names, as a loaded CSV/XLSX could bring
    s.execute(update(IncidentCategory).where(IncidentCategory.code == code)
              .values(minor_name=hostile_text("类", 0)[:64], department=hostile_text("部门", 1)[:64]))
    out: dict[str, int] = {}
    phone = "13655556666"
    for i, (channel, contact) in enumerate((("worker", None), ("public", phone), ("open311", "someone@example.org"),
                                            ("12345", phone))):
        case, _ = report_case(s, Intake(category=code, description=hostile_text("描述", i), lon=lon, lat=lat,
                                        address=hostile_text("地址", i + 1), source=channel,
                                        reporter="worker" if channel == "worker" else hostile_text("报告人", i),
                                        contact=contact, external_id=hostile_text("工单", i) if channel == "12345"
                                        else None), settings=settings)
        out[channel] = case.id
        token = case.token
    return {"cases": out, "reporter_phone": phone, "token": token, "api_key": create_key(s, "attack"),
            "category": code, "lonlat": (lon, lat)}


def _seed_patrol(s: Any) -> str:
    from api.patrol.store import bind_device

    device = hostile_text("设备", 1)[:60]
    bind_device(s, device, "worker", by="admin", label=hostile_text("标签", 0))
    return device


def grid_point(world: World, key: str | None = None) -> tuple[float, float]:
    """(lon, lat) of a point inside grid *key* (default: grid A)."""
    with world.app.app_context(), session_scope() as s:
        return _point_in(s, key or world.A)


@contextmanager
def attack_world(tmp: Path, n_buildings: int = 400) -> Iterator[World]:
    """The seeded world (see the module docstring), clients logged in per :data:`ATTACK_ROLES`."""
    from api.grids.service import active_grids, buildings_of_grid
    from api.models import PlanVersion

    with published_app(tmp, n_buildings, settings={"login_rate_limit": "100000 per minute",
                                                   "public_rate_limit": "100000 per minute",
                                                   "public_report_max_per_day": 100000}) as app:
        clients = {"anonymous": app.test_client(), **{r: login(app, r) for r in ("viewer", "planner", "admin")}}
        with app.app_context(), session_scope() as s:
            from api.users import create_user

            create_user(s, "worker", "grid2026plan", role="worker")
            create_user(s, "worker_b", "grid2026plan", role="worker")
        for r in ("worker", "worker_b"):
            clients[r] = app.test_client()
            assert clients[r].post("/login", data={"username": r, "password": "grid2026plan"}).status_code == 302
        with app.app_context(), session_scope() as s:
            keys = active_grids(s)["key"].tolist()
            a, b = keys[0], keys[1]
            reg = _seed_register(app, s, a, b, buildings_of_grid(s, a)[0], buildings_of_grid(s, b)[0])
            plan = int(s.scalar(select(PlanVersion.id).where(PlanVersion.status == "published")))
        with app.app_context(), session_scope() as s:
            cases = _seed_cases(app, s, a)
            device = _seed_patrol(s)
        yield World(app=app, A=a, B=b, plan=plan, device=device, clients=clients, cases=cases["cases"],
                    reporter_phone=cases["reporter_phone"], token=cases["token"], api_key=cases["api_key"], **reg)
