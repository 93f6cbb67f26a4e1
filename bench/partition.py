"""Benchmark of the grid partition engine against its peers (issue 3): prints a table.

    .venv/bin/python bench/partition.py                     # real data + 5 k … 1 M
    .venv/bin/python bench/partition.py --quick             # real data + 5 k + 20 k, 120 s cap
    .venv/bin/python bench/partition.py --sizes 5000 100000 --methods wangge pymetis

Datasets: Suzhou Gusu (3,076 footprints, households from ``Floor``), Shanghai Bund (OSM
buildings, roads as streets, residential land use as compounds, households estimated)
and synthetic districts (``geo.synthetic``, seed 42, cached in ``bench/out/``). Real data
have no communities: one community = the buildings' extent + 25 m, the same for every
method. Every method runs in its own process (``bench/partition_peers.py``), stopped at
``--timeout``; peak memory is that process tree's RSS, polled. Wall time is the method's
own work (inputs already in memory; the peer pipeline counts tessellation + contiguity +
pymetis). The peers share the units of the pipeline's momepy tessellation; Wangge builds
its own street-bounded cells from the same buildings. A method that timed out on a
synthetic size is skipped for larger ones. Writes ``bench/out/partition.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import psutil
import shapely

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from geo.crs import local_metric_crs  # noqa: E402
from geo.households import estimate_households  # noqa: E402
from geo.osm import read_osm_extract  # noqa: E402
from geo.partition.quality import grid_quality, share_in_range  # noqa: E402
from geo.settings import DEFAULTS  # noqa: E402

OUT = ROOT / "bench" / "out"
DATASETS = ROOT.parent / "shared" / "datasets"
PEERS = ROOT / "bench" / "partition_peers.py"
METHODS = ("wangge", "pipeline", "pymetis", "maxp", "skater", "gerrychain")
LABELS = {"wangge": "Wangge", "pipeline": "peer pipeline (momepy+libpysal+pymetis)",
          "pymetis": "pymetis (contig)", "maxp": "spopt MaxPHeuristic", "skater": "spopt Skater",
          "gerrychain": "GerryChain recursive_tree_part"}
EXTENT_MARGIN_M = 25.0


# --- datasets -------------------------------------------------------------------------------


def _extent_community(b: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    minx, miny, maxx, maxy = b.total_bounds
    m = EXTENT_MARGIN_M
    return gpd.GeoDataFrame({"community_id": ["ALL"]},
                            geometry=[shapely.box(minx - m, miny - m, maxx + m, maxy + m)], crs=b.crs)


def _suzhou() -> dict[str, gpd.GeoDataFrame | None]:
    b = gpd.read_file(DATASETS / "suzhou_gusu_buildings.geojson").explode(ignore_index=True)
    b = b[b.is_valid & ~b.is_empty].reset_index(drop=True)
    b = b.to_crs(local_metric_crs(b))
    b = b.assign(building_id=[f"sz{i}" for i in range(len(b))], floors=b["Floor"])
    b = estimate_households(b)
    return {"buildings": b, "communities": _extent_community(b), "streets": None, "compounds": None}


def _bund() -> dict[str, gpd.GeoDataFrame | None]:
    path = DATASETS / "shanghai_bund_osm.gpkg"
    layers = read_osm_extract(path)
    crs = local_metric_crs(layers["buildings"])
    layers = {name: gdf.to_crs(crs) for name, gdf in layers.items()}
    b = layers["buildings"]
    b = estimate_households(b.assign(building_id=[f"sh{i}" for i in range(len(b))]))
    return {"buildings": b, "communities": _extent_community(b), "streets": layers["streets"],
            "compounds": layers["compounds"]}


def _synthetic(n: int, seed: int = 42) -> dict[str, gpd.GeoDataFrame | None]:
    path = OUT / f"synthetic_{n}_seed{seed}.gpkg"  # the same cache as bench/import.py
    if not path.exists():
        from geo.synthetic import synthetic_district, write_district

        OUT.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".partial.gpkg")
        write_district(synthetic_district(n, seed=seed), tmp)
        tmp.rename(path)
    layers = {name: gpd.read_file(path, layer=name, use_arrow=True)
              for name in ("buildings", "communities", "streets", "compounds")}
    crs = local_metric_crs(layers["buildings"])
    return {name: g.to_crs(crs) for name, g in layers.items()}


def prepare(name: str, layers: dict[str, gpd.GeoDataFrame | None], *, lo: int, hi: int, target: int,
            seed: int) -> Path:
    """Write one dataset's inputs (metric CRS, parquet) for the method processes."""
    d = OUT / "partition" / name
    d.mkdir(parents=True, exist_ok=True)
    for stale in d.glob("*"):
        stale.unlink()
    c = layers["communities"].reset_index(drop=True)
    c = c[[x for x in ("community_id", "admin_code", "street_id", "name") if x in c.columns]
          + ["geometry"]]  # admin_code / street_id feed the grid codes
    c["community_id"] = c["community_id"].astype(str)
    b = layers["buildings"].reset_index(drop=True)
    cid = {x: i for i, x in enumerate(c["community_id"])}
    comm = (b["community_id"].astype(str).map(cid) if "community_id" in b.columns
            else pd.Series(np.nan, index=b.index))
    if comm.isna().any():
        pts = shapely.point_on_surface(b.geometry.values[comm.isna().to_numpy()])
        qi, qj = shapely.STRtree(c.geometry.values).query_nearest(pts)
        fill = np.zeros(len(pts), dtype=np.int64)
        fill[qi] = qj
        comm[comm.isna()] = fill
    b = b.assign(comm=comm.astype(np.int64).to_numpy(), community_id=c["community_id"].to_numpy()[comm.astype(int)])
    keep = [x for x in ("building_id", "households", "community_id", "compound_id", "use", "comm")
            if x in b.columns]
    b[keep + ["geometry"]].to_parquet(d / "buildings.parquet")
    c.to_parquet(d / "communities.parquet")
    if layers.get("streets") is not None:
        layers["streets"][["street_id", "road_class", "geometry"]].to_parquet(d / "streets.parquet")
    if layers.get("compounds") is not None:
        layers["compounds"][["compound_id", "geometry"]].to_parquet(d / "compounds.parquet")
    (d / "params.json").write_text(json.dumps({"lo": lo, "hi": hi, "target": target, "seed": seed}))
    return d


# --- running one method ---------------------------------------------------------------------


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_method(method: str, d: Path, *, timeout: float) -> dict[str, Any]:
    """Run *method* in a child process; its result dict plus ``status``, ``peak_mb``, ``load1``."""
    load1 = os.getloadavg()[0]
    with open(d / f"{method}.log", "w") as log:
        child = subprocess.Popen([sys.executable, str(PEERS), method, "--dir", str(d)], cwd=ROOT,
                                 stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        proc, peak, started, status = psutil.Process(child.pid), 0, time.monotonic(), "ok"
        while child.poll() is None:
            peak = max(peak, _tree_rss(proc))
            if time.monotonic() - started > timeout:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
                status = "timeout"
                break
            time.sleep(0.2)
    out: dict[str, Any] = {"status": status, "peak_mb": peak / 2**20, "load1": load1,
                           "elapsed_s": time.monotonic() - started}
    if status == "ok" and child.returncode != 0:
        tail = (d / f"{method}.log").read_text().strip().splitlines()[-1:]
        out["status"] = f"error: {tail[0][:80] if tail else child.returncode}"
    elif status == "ok":
        out.update(json.loads((d / f"{method}.json").read_text()))
    return out


def _grids_of(method: str, d: Path) -> gpd.GeoDataFrame:
    if method == "wangge":
        return gpd.read_parquet(d / "wangge.grids.parquet")
    units = gpd.read_parquet(d / "units.parquet")
    units["grid"] = np.load(d / f"{method}.labels.npy")
    return units[["grid", "households", "geometry"]].dissolve(by="grid", aggfunc="sum")


def evaluate(method: str, d: Path, *, lo: int, hi: int) -> dict[str, Any]:
    """Quality columns of *method*'s plan (share in range over grids with households > 0)."""
    grids = _grids_of(method, d)
    sp = d / "streets.parquet"
    streets = gpd.read_parquet(sp) if sp.exists() else None
    q = grid_quality(grids, streets, lo=lo, hi=hi)
    h = grids["households"].to_numpy(dtype=float)
    q["share_in_range"] = share_in_range(h[h > 0], lo, hi)
    q["empty_grids"] = int((h <= 0).sum())
    return q


# --- the table ------------------------------------------------------------------------------

HEADER = ("| dataset | method | wall s | peak MB | grids | in range | non-contig | mean PP | "
          "street 5 m | load1 | note |")
RULE = "|" + "---|" * (HEADER.count("|") - 1)


def _f(x: Any, fmt: str) -> str:
    return "–" if x is None or (isinstance(x, float) and not np.isfinite(x)) else format(x, fmt)


def row_md(r: dict[str, Any]) -> str:
    note = r.get("note", "")
    return (f"| {r['dataset']} | {LABELS.get(r['method'], r['method'])} | {_f(r.get('seconds'), '.1f')} | "
            f"{_f(r.get('peak_mb'), '.0f')} | {_f(r.get('grids'), 'd')} | "
            f"{_f(r.get('share_in_range'), '.3f')} | {_f(r.get('non_contiguous'), 'd')} | "
            f"{_f(r.get('mean_polsby_popper'), '.3f')} | {_f(r.get('street_share'), '.3f')} | "
            f"{_f(r.get('load1'), '.1f')} | {note} |")


def _note(res: dict[str, Any], q: dict[str, Any]) -> str:
    bits = []
    if res.get("feasible_share_in_range") is not None:
        bits.append(f"in range outside the {res['infeasible_communities']} communities it reports "
                    f"infeasible: {res['feasible_share_in_range']:.3f}")
    if res.get("shards", 1) > 1:
        bits.append(f"{res['shards']} shards")
    if res.get("failed"):
        bits.append(f"gave up on {res['failed']}/{res['communities']} parts")
    if q.get("empty_grids"):
        bits.append(f"{q['empty_grids']} grids without households")
    if "tessellation_s" in res:
        bits.append(f"tess {res['tessellation_s']:.1f} s + contiguity {res['contiguity_s']:.1f} s + "
                    f"pymetis {res['pymetis_s']:.1f} s, {res['units']:,} units")
    return "; ".join(bits)


def bench_dataset(name: str, d: Path, methods: list[str], *, timeout: dict[str, float], lo: int,
                  hi: int, skip: dict[str, str]) -> list[dict[str, Any]]:
    """All rows of one dataset (Wangge first, then the pipeline that makes the peers' units)."""
    rows: list[dict[str, Any]] = []
    for m in methods:
        row: dict[str, Any] = {"dataset": name, "method": m}
        if m in skip and name.startswith("synthetic"):
            rows.append({**row, "note": skip[m]})
            print(row_md(rows[-1]), flush=True)
            continue
        if m not in ("wangge", "pipeline") and not (d / "units.parquet").exists():
            rows.append({**row, "note": "no units: the peer pipeline's tessellation did not finish"})
            print(row_md(rows[-1]), flush=True)
            continue
        if m not in ("wangge", "pipeline") and not (d / "graph.npz").exists():
            g = run_method("graph", d, timeout=timeout["peers"])
            row["note"] = f"graph built by shapely ({g['status']})"
        res = run_method(m, d, timeout=timeout["wangge" if m == "wangge" else "peers"])
        row.update(res)
        if res["status"] != "ok":
            row["seconds"] = None
            row["note"] = (row.get("note", "") + f" {res['status']} after {res['elapsed_s']:.0f} s").strip()
            if name.startswith("synthetic") and res["status"] == "timeout":
                skip[m] = f"skipped: {res['status']} at {name}"
        else:
            q = evaluate(m, d, lo=lo, hi=hi)
            row.update(q)
            row["note"] = "; ".join(x for x in (row.get("note", ""), _note(res, q)) if x)
        rows.append(row)
        print(row_md(row), flush=True)
    return rows


def ratio_row(name: str, rows: list[dict[str, Any]], timeout: float) -> dict[str, Any] | None:
    """Peer pipeline time ÷ Wangge time (a lower bound when the pipeline ran out of time)."""
    mine = {r["method"]: r for r in rows if r["dataset"] == name}
    w, p = mine.get("wangge", {}).get("seconds"), mine.get("pipeline", {})
    if not w:
        return None
    if p.get("seconds"):
        text = f"peer pipeline ÷ Wangge = {p['seconds'] / w:.1f}× ({p['seconds']:.1f} s vs {w:.1f} s)"
    elif p.get("status") == "timeout":
        text = f"peer pipeline ÷ Wangge > {timeout / w:.1f}× (pipeline not done in {timeout:.0f} s)"
    elif "skipped" in p.get("note", ""):
        text = "peer pipeline not run here (it timed out on a smaller district)"
    else:
        return None
    return {"dataset": name, "method": "ratio", "note": text}


def _machine() -> str:
    return (f"{platform.node()}, {os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GB, "
            f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="real data + 5 k + 20 k, shorter timeouts")
    ap.add_argument("--sizes", type=int, nargs="*", default=None)
    ap.add_argument("--methods", nargs="*", default=list(METHODS), choices=METHODS)
    ap.add_argument("--datasets", nargs="*", default=["suzhou_gusu", "shanghai_bund", "synthetic"],
                    choices=["suzhou_gusu", "shanghai_bund", "synthetic"], help="run in this order")
    ap.add_argument("--timeout", type=float, default=None, help="seconds per method (default 600)")
    ap.add_argument("--wangge-timeout", type=float, default=None,
                    help="seconds for the Wangge rows (default: --timeout)")
    ap.add_argument("--out-name", default="partition", help="bench/out/<name>.md and .json")
    ap.add_argument("--seed", type=int, default=DEFAULTS["partition_seed"])
    args = ap.parse_args()
    sizes = args.sizes if args.sizes is not None else (
        [5000, 20000] if args.quick else [5000, 20000, 100000, 1000000])
    timeout = args.timeout or (120.0 if args.quick else 600.0)
    lo, hi = DEFAULTS["grid_min_households"], DEFAULTS["grid_max_households"]
    target = DEFAULTS["grid_target_households"]
    wanted = set(args.methods)
    if wanted - {"wangge"}:
        wanted.add("pipeline")  # it makes the units the other peers share
    methods = [m for m in METHODS if m in wanted]
    started = dt.datetime.now(dt.UTC)
    head = (f"machine: {_machine()}; timeout {timeout:.0f} s (Wangge "
            f"{args.wangge_timeout or timeout:.0f} s); bounds {lo}–{hi}, target {target}")
    print(head)
    print(HEADER)
    print(RULE)
    real = {"suzhou_gusu": _suzhou, "shanghai_bund": _bund}
    datasets: list[tuple[str, Any]] = []
    for which in args.datasets:  # in the order given
        datasets += ([(f"synthetic_{n}", lambda n=n: _synthetic(n)) for n in sizes]
                     if which == "synthetic" else [(which, real[which])])
    rows: list[dict[str, Any]] = []
    skip: dict[str, str] = {}
    caps = {"peers": timeout, "wangge": args.wangge_timeout or timeout}
    for name, load in datasets:
        layers = load()
        d = prepare(name, layers, lo=lo, hi=hi, target=target, seed=args.seed)
        name = f"{name} ({len(layers['buildings']):,} b, {int(layers['buildings']['households'].sum()):,} hh)"
        del layers
        rows += bench_dataset(name, d, methods, timeout=caps, lo=lo, hi=hi, skip=skip)
        r = ratio_row(name, rows, timeout)
        if r:
            rows.append(r)
            print(row_md(r), flush=True)
        write_outputs(args.out_name, rows, head=f"started {started:%Y-%m-%d %H:%M} UTC; {head}")
    print(f"finished {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; machine: {_machine()}")


def write_outputs(stem: str, rows: list[dict[str, Any]], *, head: str) -> None:
    """``bench/out/<stem>.md`` and ``.json`` (rewritten after every dataset)."""
    tail = f"written {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; machine: {_machine()}"
    OUT.mkdir(parents=True, exist_ok=True)
    md = [head, "", HEADER, RULE, *map(row_md, rows), "", tail]
    (OUT / f"{stem}.md").write_text("\n".join(md) + "\n")
    (OUT / f"{stem}.json").write_text(json.dumps({"head": head, "tail": tail, "rows": rows},
                                                 indent=1, default=str))


if __name__ == "__main__":
    main()
