"""Benchmark: the ``wangge import`` pipeline end to end on synthetic districts.

For each size, a synthetic GeoPackage (``geo.synthetic``) is generated once and cached
in ``bench/out/``; then a fresh child process runs read -> prepare (validate, households,
community assignment) -> insert into a new SQLite file -> load back, and reports wall
time per stage and peak RSS (``ru_maxrss`` of that child alone). Goal at 1 M buildings:
< 60 s and < 4 GB.

Usage::

    .venv/bin/python bench/import.py                      # 100 k and 1 M
    .venv/bin/python bench/import.py --sizes 100000 --profile insert
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "out"
LAYERS = ("communities", "buildings", "streets", "compounds", "service_points")
STAGES = ("read", "prepare", "insert", "load")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def district_file(n: int, *, seed: int = 42) -> tuple[Path, float | None]:
    """The cached synthetic GeoPackage of *n* buildings, and the seconds spent making it (None if cached)."""
    path = OUT / f"synthetic_{n}_seed{seed}.gpkg"
    if path.exists():
        return path, None
    from geo.synthetic import synthetic_district, write_district

    OUT.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    tmp = path.with_suffix(".partial.gpkg")
    write_district(synthetic_district(n, seed=seed), tmp)
    tmp.rename(path)
    return path, time.perf_counter() - started


def _timed(stages: dict[str, dict[str, float]], name: str, work: Callable[[], Any],
           profile: str | None) -> Any:
    profiler = cProfile.Profile() if profile == name else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    result = work()
    if profiler:
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(30)
    stages[name] = {"seconds": time.perf_counter() - started, "peak_mb": _peak_mb()}
    return result


def run_child(gpkg: Path, db_path: Path, *, profile: str | None) -> dict[str, Any]:
    """One import of *gpkg* into a fresh SQLite *db_path*; returns stage timings and counts."""
    from sqlalchemy.orm import Session

    from api.db import make_engine, upgrade
    from api.workspace import import_workspace, load_layer
    from geo.prepare import prepare_layers
    from geo.readers import read_layer

    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{db_path}")
    upgrade(engine)
    stages: dict[str, dict[str, float]] = {}
    # Each stage pops its input from *state* so the previous stage's data can be freed.
    state: dict[str, Any] = {}
    state["sources"] = _timed(stages, "read", lambda: {
        kind: read_layer(gpkg, kind=kind, layer=kind, max_mb=1e9) for kind in LAYERS}, profile)
    state["prepared"] = _timed(stages, "prepare", lambda: prepare_layers(state.pop("sources")), profile)

    def insert() -> dict[str, int]:
        with Session(engine) as session, session.begin():
            return import_workspace(session, state.pop("prepared"), user="bench",
                                    sources={"kind": "bench", "file": str(gpkg)}).counts

    counts = _timed(stages, "insert", insert, profile)

    def load() -> int:
        with Session(engine) as session:
            return len(load_layer(session, "buildings"))

    loaded = _timed(stages, "load", load, profile)
    engine.dispose()
    return {"stages": stages, "counts": counts, "loaded": loaded,
            "db_mb": db_path.stat().st_size / 2**20}


def _print_table(n: int, result: dict[str, Any], generated: float | None) -> None:
    stages = result["stages"]
    total = sum(stages[s]["seconds"] for s in STAGES if s != "load")
    print(f"\n== {n:,} buildings ({', '.join(f'{v:,} {k}' for k, v in result['counts'].items())})")
    if generated is not None:
        print(f"   (synthetic GeoPackage generated in {generated:.1f} s, not counted)")
    print(f"{'stage':<28}{'wall s':>10}{'peak RSS MB':>14}")
    for name, label in (("read", "read (pyogrio)"), ("prepare", "prepare (validate+assign)"),
                        ("insert", "insert (SQLite, commit)")):
        print(f"{label:<28}{stages[name]['seconds']:>10.1f}{stages[name]['peak_mb']:>14.0f}")
    print(f"{'= import total':<28}{total:>10.1f}{stages['insert']['peak_mb']:>14.0f}"
          f"   goal < 60 s, < 4096 MB: {'OK' if total < 60 and stages['insert']['peak_mb'] < 4096 else 'MISSED'}")
    print(f"{'load_layer(buildings)':<28}{stages['load']['seconds']:>10.1f}{stages['load']['peak_mb']:>14.0f}"
          f"   ({result['loaded']:,} rows; database {result['db_mb']:.0f} MB)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="Comma-separated building counts.")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--profile", choices=STAGES, help="cProfile one stage (printed to stderr).")
    parser.add_argument("--child", nargs=2, metavar=("GPKG", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = run_child(Path(args.child[0]), Path(args.child[1]), profile=args.profile)
        print(json.dumps(result))
        return 0
    for n in (int(s) for s in args.sizes.split(",")):
        gpkg, generated = district_file(n, seed=args.seed)
        cmd = [sys.executable, __file__, "--child", str(gpkg), str(OUT / f"bench_{n}.db")]
        if args.profile:
            cmd += ["--profile", args.profile]
        proc = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True)
        _print_table(n, json.loads(proc.stdout.strip().splitlines()[-1]), generated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
