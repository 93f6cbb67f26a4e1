"""Grid sizes from the register: a partition counts register households per building when asked.

Six buildings get register households (two each) far below their imported counts; a
partition with ``register_households`` (the request option, the CLI flag or the setting
``partition_register_households``) must total exactly the register's numbers for them and
the imported numbers elsewhere, and a partition without it must not.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import func, select

from api.cli import main
from api.db import session_scope
from api.models import PlanGrid
from api.register.crypto import cipher_for
from api.register.importer import import_sheet
from api.workspace import load_layer
from geo.register.idnumber import id_check_char
from tests.api.plans_helpers import district_app, login, wait_job

PER_BUILDING = 2


def _seed_register(app) -> tuple[int, int]:
    """Register households for six buildings; (imported households in all, imported of those six)."""
    with app.app_context(), session_scope() as s:
        buildings = load_layer(s, "buildings", columns=["households"])
        pick = buildings[buildings["households"] > 10]["building_id"].astype(str).tolist()[:6]
        bodies = [f"11010519800101{i:03d}" for i in range(len(pick) * PER_BUILDING)]
        sheet = pd.DataFrame({"姓名": [f"居民{i}" for i in range(len(bodies))],
                              "身份证号": [b + id_check_char(b) for b in bodies],
                              "楼栋编号": [b for b in pick for _ in range(PER_BUILDING)],
                              "门牌": [f"{101 + i % PER_BUILDING}" for i in range(len(bodies))]})
        import_sheet(s, "residents", sheet, cipher=cipher_for(app.instance_path, app.config["WANGGE"]),
                     settings=app.config["WANGGE"], user="test")
        total = int(buildings["households"].sum())
        picked = int(buildings.loc[buildings["building_id"].astype(str).isin(pick), "households"].sum())
    return total, picked


def _plan_households(app, plan_id: int) -> int:
    with app.app_context(), session_scope() as s:
        return int(s.scalar(select(func.sum(PlanGrid.households)).where(PlanGrid.plan_version_id == plan_id)))


def test_partition_uses_register_household_counts_when_asked(tmp_path: Path) -> None:
    with district_app(tmp_path, 400) as app:
        total, picked = _seed_register(app)
        planner = login(app, "planner")
        plans = {}
        for flag in (False, True):
            r = planner.post("/api/plans/partition", json={"name": f"register={flag}", "register_households": flag})
            assert r.status_code == 202, r.get_json()
            job = wait_job(planner, r.get_json()["job_id"])
            assert job["state"] == "done", job
            plans[flag] = job["plan_id"]
        assert _plan_households(app, plans[False]) == total
        assert _plan_households(app, plans[True]) == total - picked + 6 * PER_BUILDING
        bad = planner.post("/api/plans/partition", json={"register_households": "yes"})
        assert bad.status_code == 400 and "register_households 须为 true/false" in bad.get_json()["error"]["message"]
        # The CLI flag does the same.
        r = app.test_cli_runner().invoke(main, ["plans", "partition", "--name", "cli", "--register-households"])
        assert r.exit_code == 0, r.output
        with app.app_context(), session_scope() as s:
            newest = s.scalar(select(func.max(PlanGrid.plan_version_id)))
        assert _plan_households(app, newest) == total - picked + 6 * PER_BUILDING


def test_the_setting_makes_register_counts_the_default(tmp_path: Path) -> None:
    with district_app(tmp_path, 400, settings={"partition_register_households": True}) as app:
        total, picked = _seed_register(app)
        planner = login(app, "planner")
        assert 'name="register_households" checked' in planner.get("/plans").get_data(as_text=True)
        job = wait_job(planner, planner.post("/api/plans/partition", json={"name": "default"}).get_json()["job_id"])
        assert job["state"] == "done", job
        assert _plan_households(app, job["plan_id"]) == total - picked + 6 * PER_BUILDING
