"""Benchmark: the grid register at street-office scale.

1. ``prepare`` (not timed as a bar): a synthetic district of N buildings is imported into a
   fresh workspace, partitioned, the plan published, a worker linked to one grid; a residents
   sheet of R rows (``geo.register.synthetic``) is written as CSV (UTF-8) and XLSX.
2. ``import`` in a fresh child process per format, on a copy of the prepared database:
   read the sheet, check every row, encrypt, write (one transaction). Wall time and peak
   RSS (``ru_maxrss`` of that child alone). Bars: < 120 s and < 4 GB at 1 M rows.
3. ``list``: the worker's own-grid resident list (``GET /api/register/grids/<code>/residents``,
   in-process test client, i.e. server time) repeated; bar: < 200 ms.

Usage::

    .venv/bin/python bench/register.py --buildings 10000 --rows 100000   # quick
    .venv/bin/python bench/register.py                                   # 100 k buildings, 1 M rows
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "out" / "register"
REPO = Path(__file__).resolve().parents[1]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _app(folder: Path) -> Any:
    os.environ.setdefault("WANGGE_SECRET_KEY", "bench")
    os.environ.pop("WANGGE_DATABASE_URL", None)
    from api import create_app

    return create_app({"INSTANCE_PATH": str(folder / "instance"), "DATABASE_URL": f"sqlite:///{folder / 'wangge.db'}",
                       "WTF_CSRF_ENABLED": False})


def _write_xlsx(frame: Any, path: Path) -> None:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("居民")
    ws.append(list(frame.columns))
    for row in frame.itertuples(index=False):
        ws.append(list(row))
    wb.save(path)


def prepare(n_buildings: int, n_rows: int, folder: Path) -> dict[str, Any]:
    """Workspace + published plan + worker; residents sheets as CSV and XLSX."""
    import pandas as pd
    from sqlalchemy import select

    from api.db import dispose, session_scope
    from api.models import Building, PlanVersion
    from api.plans.store import publish, save_partition
    from api.register.models import Staff
    from api.users import create_user
    from api.workspace import import_workspace, load_layer
    from geo.partition import partition_grids
    from geo.prepare import prepare_layers
    from geo.register.synthetic import synthetic_residents
    from geo.synthetic import synthetic_district

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    t0 = time.perf_counter()
    app = _app(folder)
    district = synthetic_district(n_buildings, seed=42)
    prepared = prepare_layers(district.layers, settings=app.config["WANGGE"])
    with app.app_context(), session_scope() as s:
        import_workspace(s, prepared, user="bench", sources={"kind": "synthetic"}, note="bench")
        layers = {k: load_layer(s, k) for k in ("buildings", "communities", "streets", "compounds")}
    result = partition_grids(layers["buildings"], layers["communities"], streets=layers["streets"],
                             compounds=layers["compounds"], seed=42)
    with app.app_context(), session_scope() as s:
        plan = save_partition(s, result, name="bench", author="bench", settings={})
        publish(s, s.get(PlanVersion, plan.id), user="bench")
        user = create_user(s, "bench_worker", "bench-password-1", role="worker")
        biggest = result.grids.sort_values("households").iloc[-1]
        s.add(Staff(name="测试网格员", phone="19900000000", role="grid_worker", grid_code=str(biggest["code"]),
                    user_id=user.id))
        buildings = pd.DataFrame(s.execute(select(Building.building_id, Building.households)).all(),
                                 columns=["building_id", "households"])
        from api.grids.service import buildings_of_grid

        mine = set(buildings_of_grid(s, str(biggest["code"])))
    setup_s = time.perf_counter() - t0
    # The worker's grid fully registered (every household, ~2.5 residents each) and first in the
    # sheet; the remaining rows spread over the rest of the district, a little more than needed
    # so the sheet is cut at exactly n_rows.
    buildings["households"] = buildings["households"].fillna(0)
    own = buildings["building_id"].isin(mine)
    need = n_rows / 2.4 - buildings.loc[own, "households"].sum()
    have = max(1, int(buildings.loc[~own, "households"].sum()))
    buildings.loc[~own, "households"] = (buildings.loc[~own, "households"] * max(0.0, need / have)).round()
    buildings["households"] = buildings["households"].astype(int)
    buildings = pd.concat([buildings[own], buildings[~own]], ignore_index=True)
    sheet = synthetic_residents(buildings, seed=42, max_rows=n_rows)
    sheet.to_csv(folder / "residents.csv", index=False, encoding="utf-8")
    t1 = time.perf_counter()
    _write_xlsx(sheet, folder / "residents.xlsx")
    xlsx_write_s = time.perf_counter() - t1
    dispose(app)
    return {"setup_s": round(setup_s, 1), "rows": len(sheet), "grid": str(biggest["code"]),
            "grid_households": int(biggest["households"]), "xlsx_write_s": round(xlsx_write_s, 1)}


def import_child(folder: Path, fmt: str) -> dict[str, Any]:
    """In a fresh child: import the sheet of *fmt* into a copy of the prepared database."""
    work = folder / f"work_{fmt}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    shutil.copy(folder / "wangge.db", work / "wangge.db")
    if (folder / "instance").exists():
        shutil.copytree(folder / "instance", work / "instance")
    t0 = time.perf_counter()
    from api.db import dispose, session_scope
    from api.register.crypto import cipher_for
    from api.register.importer import import_sheet
    from geo.register.sheets import read_sheet

    app = _app(work)
    started = time.perf_counter()
    sheet = read_sheet(folder / f"residents.{fmt}")
    read_s = time.perf_counter() - started
    with app.app_context(), session_scope() as s:
        result = import_sheet(s, "residents", sheet, cipher=cipher_for(app.instance_path, app.config["WANGGE"]),
                              settings=app.config["WANGGE"], user="bench", source=f"bench.{fmt}")
    total = time.perf_counter() - started
    dispose(app)
    use = resource.getrusage(resource.RUSAGE_SELF)
    return {"format": fmt, "rows": result.rows, "inserted": result.inserted, "read_s": round(read_s, 1),
            "import_s": round(total, 1), "startup_s": round(started - t0, 1), "peak_mb": round(_peak_mb()),
            "cpu_s": round(use.ru_utime + use.ru_stime, 1), "load": round(os.getloadavg()[0], 1)}


def list_child(folder: Path, grid: str, repeats: int) -> dict[str, Any]:
    """Server time of the worker's own-grid list on the imported database."""
    app = _app(folder / "work_csv")
    client = app.test_client()
    r = client.post("/login", data={"username": "bench_worker", "password": "bench-password-1"})
    assert r.status_code == 302, r.data[:200]
    times, total = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        r = client.get(f"/api/register/grids/{grid}/residents")
        times.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, r.data[:300]
        total = r.get_json()["total"]
    return {"residents_in_grid": total, "median_ms": round(statistics.median(times), 1),
            "max_ms": round(max(times), 1), "first_ms": round(times[0], 1)}


def _child(args: list[str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, cwd=REPO, check=False)
    if out.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--buildings", type=int, default=100_000)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--formats", default="csv,xlsx")
    p.add_argument("--reuse", action="store_true", help="Reuse the prepared workspace and sheets of an earlier run.")
    p.add_argument("--child", choices=["prepare", "import", "list"], help=argparse.SUPPRESS)
    p.add_argument("--format", help=argparse.SUPPRESS)
    p.add_argument("--grid", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    sys.path.insert(0, str(REPO))
    folder = OUT / f"b{a.buildings}_r{a.rows}"
    if a.child == "prepare":
        print(json.dumps(prepare(a.buildings, a.rows, folder)))
        return 0
    if a.child == "import":
        print(json.dumps(import_child(folder, a.format)))
        return 0
    if a.child == "list":
        print(json.dumps(list_child(folder, a.grid, a.repeats)))
        return 0
    base = ["--buildings", str(a.buildings), "--rows", str(a.rows)]
    meta = folder / "prepared.json"
    if a.reuse and meta.exists():
        prep = json.loads(meta.read_text())
    else:
        prep = _child([*base, "--child", "prepare"])
        meta.write_text(json.dumps(prep))
    print(f"prepared {a.buildings:,} buildings, {prep['rows']:,} resident rows in {prep['setup_s']} s "
          f"(XLSX written in {prep['xlsx_write_s']} s); worker grid {prep['grid']}")
    print("| format | rows | read s | import s (read+check+encrypt+write) | CPU s (child) | load avg | peak RSS MB | bar |")
    print("|---|---|---|---|---|---|---|---|")
    for fmt in a.formats.split(","):
        r = _child([*base, "--child", "import", "--format", fmt])
        ok = "ok" if r["import_s"] < 120 and r["peak_mb"] < 4096 else "MISSED"
        print(f"| {fmt} | {r['rows']:,} | {r['read_s']} | {r['import_s']} | {r['cpu_s']} | {r['load']} | "
              f"{r['peak_mb']:,} | {ok} |", flush=True)
    lst = _child([*base, "--child", "list", "--grid", prep["grid"], "--repeats", str(a.repeats)])
    ok = "ok" if lst["median_ms"] < 200 else "MISSED"
    print(f"own-grid list: {lst['residents_in_grid']:,} residents in grid, median {lst['median_ms']} ms, "
          f"max {lst['max_ms']} ms, first {lst['first_ms']} ms over {a.repeats} requests ({ok}, bar < 200 ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
