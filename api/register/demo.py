"""A synthetic register for the demo: households, residents, key persons, party organisation, staff.

Everything is marked synthetic (``synthetic`` columns; ID numbers of region 99). Staff need
active grids: without a published plan only the people are made, and
``wangge register demo`` adds staff once a plan is published.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.grids.service import active_grids, grids_of_buildings
from api.models import Building, Community, User
from api.register.crypto import RegisterCipher
from api.register.importer import import_sheet
from api.register.models import KeyPersonCategory, PartyOrg, Resident, Staff
from api.register.writers import ensure_categories
from geo.register.synthetic import synthetic_names, synthetic_phones, synthetic_residents

__all__ = ["demo_people", "demo_staff"]

log = logging.getLogger(__name__)


def _party_sheet(session: Session) -> pd.DataFrame:
    comms = session.execute(select(Community.community_id, Community.name)).all()
    return pd.DataFrame({"组织类型": "社区党委", "组织名称": [f"{n or c}党委" for c, n in comms],
                         "社区编号": [c for c, _ in comms], "书记": synthetic_names(np.random.default_rng(7), len(comms))})


def demo_people(session: Session, *, cipher: RegisterCipher, settings: Mapping[str, Any], seed: int = 42,
                max_residents: int = 20_000) -> dict[str, int]:
    """Households, residents (≤ *max_residents*), key persons (~2 %) and community party committees."""
    if session.scalar(select(func.count()).select_from(Resident)):
        return {}
    rng = np.random.default_rng(seed)
    buildings = pd.DataFrame(session.execute(select(Building.building_id, Building.households)).all(),
                             columns=["building_id", "households"])
    party = _party_sheet(session)
    counts: dict[str, int] = {}
    if len(party):
        counts["party"] = import_sheet(session, "party", party, cipher=cipher, settings=settings, user="demo",
                                       source="demo", synthetic=True).inserted
    people = synthetic_residents(buildings, seed=seed, max_rows=max_residents)
    members = rng.random(len(people)) < 0.08
    people["是否党员"] = np.where(members, "是", "否")
    # about a third of the party members' households are 党员中心户 (`wangge party link` pairs them)
    people["党员中心户"] = np.where(members & (rng.random(len(people)) < 0.35), "是", "否")
    counts["residents"] = import_sheet(session, "residents", people, cipher=cipher, settings=settings, user="demo",
                                       source="demo", synthetic=True).inserted
    pick = rng.choice(len(people), size=max(1, len(people) // 50), replace=False)
    ensure_categories(session)
    cats = np.array(sorted(session.scalars(select(KeyPersonCategory.name))))
    keys = pd.DataFrame({"姓名": people["姓名"].to_numpy()[pick], "身份证号": people["身份证号"].to_numpy()[pick],
                         "类别": cats[rng.integers(0, len(cats), pick.size)],
                         "风险等级": rng.integers(0, 6, pick.size).astype(str)})
    counts["keypersons"] = import_sheet(session, "keypersons", keys, cipher=cipher, settings=settings, user="demo",
                                        source="demo", synthetic=True).inserted
    log.info("demo register: %s", counts)
    return counts


def _demo_grid_branches(session: Session, active: pd.DataFrame, rng: np.random.Generator, *,
                        cipher: RegisterCipher, settings: Mapping[str, Any]) -> int:
    """A 网格党支部 under its community's 党委 for most active grids; about one in twenty is left
    without one, so the party coverage check has something to report in the demo."""
    names = dict(session.execute(select(Community.community_id, Community.name)).all())
    orgs = set(session.scalars(select(PartyOrg.name)))
    keep = active[rng.random(len(active)) >= 0.05]
    parents = pd.Series([f"{names.get(c) or c}党委" for c in keep["community_id"].astype(str)], index=keep.index)
    keep, parents = keep[parents.isin(orgs)], parents[parents.isin(orgs)]  # a branch needs its 党委
    if keep.empty:
        return 0
    sheet = pd.DataFrame({
        "组织类型": "网格党支部", "组织名称": [f"{k}网格党支部" for k in keep["key"].astype(str)],
        "上级组织": parents.to_numpy(),
        "网格编码": keep["key"].astype(str).to_numpy(), "社区编号": keep["community_id"].astype(str).to_numpy(),
        "书记": synthetic_names(rng, len(keep)), "书记电话": synthetic_phones(rng, len(keep))})
    return import_sheet(session, "party", sheet, cipher=cipher, settings=settings, user="demo", source="demo",
                        synthetic=True).inserted


def demo_staff(session: Session, *, cipher: RegisterCipher, settings: Mapping[str, Any], seed: int = 42,
               worker_username: str = "worker") -> int:
    """A 网格长 and two 网格员 per active grid, a 楼栋长 per ten buildings; *worker_username* serves the first grid."""
    active = active_grids(session)
    grids = active["key"].astype(str).tolist()
    if not grids or session.scalar(select(func.count()).select_from(Staff)):
        return 0
    rng = np.random.default_rng(seed)
    _demo_grid_branches(session, active, rng, cipher=cipher, settings=settings)
    roles = ["网格长", "网格员", "网格员"]
    n = len(grids) * len(roles)
    sheet = pd.DataFrame({"姓名": synthetic_names(rng, n), "联系电话": synthetic_phones(rng, n),
                          "角色": roles * len(grids), "网格编码": np.repeat(grids, len(roles)),
                          "职责": "信息采集、日常巡查、矛盾调解、安全隐患排查（合成数据）"})
    if session.scalar(select(User.id).where(User.username == worker_username)) is not None:
        sheet["账号"] = [worker_username if i == 1 else "" for i in range(n)]
    in_grids = grids_of_buildings(session).index.to_numpy()[::10]
    heads = pd.DataFrame({"姓名": synthetic_names(rng, in_grids.size), "联系电话": synthetic_phones(rng, in_grids.size),
                          "角色": "楼栋长", "楼栋编号": in_grids})
    result = import_sheet(session, "staff", pd.concat([sheet, heads], ignore_index=True).fillna(""), cipher=cipher,
                          settings=settings, user="demo", source="demo", synthetic=True)
    return result.inserted
