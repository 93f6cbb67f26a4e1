"""Benchmark: notice boards for 100 grids (A3, PDF + PNG), on ``board_workers`` processes.

A synthetic district is imported, partitioned and published; every grid gets the demo staff
(网格长 + two 网格员) and a 网格党支部 with secretary, so every board is printable. Then
``print_batch`` writes the first N boards as A3 portrait PDF and PNG (plus the merged PDF
and the ZIP). Bar (issue 15): 100 boards < 60 s on the 2-core machine. The table gives the
load average before and after: on a machine shared with other work, wall time follows it.

Usage (from the checkout, so its code is the one measured)::

    PYTHONPATH=. .venv/bin/python bench/boards.py [--buildings 1500] [--boards 100] [--workers 0 1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "out" / "boards"


def prepare(n_buildings: int, folder: Path) -> Any:
    """App with a published plan, demo staff and one party branch per grid."""
    import pandas as pd

    from api import create_app
    from api.db import session_scope
    from api.grids.service import active_grids
    from api.models import PlanVersion
    from api.plans.store import publish, save_partition
    from api.register.crypto import cipher_for
    from api.register.demo import demo_staff
    from api.register.importer import import_sheet
    from api.workspace import import_workspace, load_layer
    from geo.partition import partition_grids
    from geo.prepare import prepare_layers
    from geo.synthetic import synthetic_district

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ.setdefault("WANGGE_SECRET_KEY", "bench")
    os.environ.pop("WANGGE_DATABASE_URL", None)
    app = create_app({"INSTANCE_PATH": str(folder / "instance"), "DATABASE_URL": f"sqlite:///{folder / 'wangge.db'}"})
    settings = app.config["WANGGE"]
    prepared = prepare_layers(synthetic_district(n_buildings, seed=42).layers, settings=settings)
    with app.app_context(), session_scope() as s:
        import_workspace(s, prepared, user="bench", sources={"kind": "synthetic"}, note="bench")
        layers = {k: load_layer(s, k) for k in ("buildings", "communities", "streets", "compounds")}
    result = partition_grids(layers["buildings"], layers["communities"], streets=layers["streets"],
                             compounds=layers["compounds"], seed=42, workers=1)
    with app.app_context(), session_scope() as s:
        plan = save_partition(s, result, name="bench", author="bench", settings={})
        publish(s, s.get(PlanVersion, plan.id), user="bench")
    with app.app_context(), session_scope() as s:
        cipher = cipher_for(app.instance_path, settings)
        demo_staff(s, cipher=cipher, settings=settings)
        keys = active_grids(s)["key"].astype(str).tolist()
        party = pd.DataFrame({"组织类型": ["社区党委", *["网格党支部"] * len(keys)],
                              "组织名称": ["测试社区党委", *[f"{k}网格党支部" for k in keys]],
                              "上级组织": ["", *["测试社区党委"] * len(keys)], "网格编码": ["", *keys],
                              "书记": "测试书记"})
        import_sheet(s, "party", party, cipher=cipher, settings=settings, user="bench", synthetic=True)
    return app


def _cpu_s() -> float:
    """CPU seconds of this process and of its finished children (pdftoppm, pdfunite)."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run(app: Any, n_boards: int, out: Path, *, workers: int | None = None) -> dict[str, Any]:
    from api.boards.jobs import photo_dir
    from api.boards.service import print_batch
    from api.boards.sources import load_sources
    from api.db import session_scope
    from api.grids.service import active_grids

    settings = dict(app.config["WANGGE"])
    if workers is not None:
        settings["board_workers"] = workers
    shutil.rmtree(out, ignore_errors=True)
    load_before = os.getloadavg()[0]
    cpu0 = _cpu_s()
    t0 = time.perf_counter()
    with app.app_context(), session_scope() as s:
        keys = active_grids(s)["key"].astype(str).tolist()[:n_boards]
        src = load_sources(s, keys=keys)
        result = print_batch(src, keys, out, settings=settings, photo_dir=photo_dir(app.instance_path, settings),
                             size="A3", fmt="both")
    seconds = time.perf_counter() - t0
    cpu = _cpu_s() - cpu0
    return {"workers": settings["board_workers"], "grids": len(keys), "printed": len(result.printed),
            "refused": len(result.refused), "files": len(result.files), "seconds": round(seconds, 1),
            "per_board_s": round(seconds / max(1, len(keys)), 2),
            # worker processes are children of the forkserver: their CPU is not seen here
            "cpu_per_board_s": round(cpu / max(1, len(keys)), 2) if settings["board_workers"] == 1 else "–",
            "load": f"{load_before:.1f} → {os.getloadavg()[0]:.1f}"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buildings", type=int, default=1500)
    parser.add_argument("--boards", type=int, default=100)
    parser.add_argument("--workers", type=int, nargs="*", default=[],
                        help="board_workers values to run (0 = every core); default: the setting")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    app = prepare(args.buildings, OUT / "work")
    print(f"prepare: {time.perf_counter() - t0:.1f} s")
    rows = [run(app, args.boards, OUT / "boards", workers=w) for w in (args.workers or [None])]
    print("| board_workers | grids | printed | refused | files | seconds | s/board | CPU s/board | load avg (1 min) "
          "| bar |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['workers']} | {row['grids']} | {row['printed']} | {row['refused']} | {row['files']} | "
              f"{row['seconds']} | {row['per_board_s']} | {row['cpu_per_board_s']} | {row['load']} | < 60 s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
