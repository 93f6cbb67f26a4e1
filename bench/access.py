"""Benchmark: the 15-minute service circle, Wangge vs networkx, pandana and cityseer.

Run ``.venv/bin/python bench/access.py [--quick] [--sizes 10000,100000,1000000]``.
Rows: the Shanghai Bund OSM extract (``../shared/datasets``) and synthetic jittered street
lattices. Wangge runs end to end (walk graph from the streets layer, snapping, every
category and level, coverage aggregates); each peer computes the same nearest-facility
distances on the same walk graph and snapped points, in a subprocess stopped at 10 minutes.
Prints time, peak memory and the largest distance disagreement with Wangge per peer.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

REPO = Path(__file__).resolve().parents[1]
BUND = REPO.parent / "shared" / "datasets" / "shanghai_bund_osm.gpkg"
CATEGORIES = ("kindergarten", "convenience_store", "bus_stop", "primary_school",
              "food_market", "community_health_centre")
PEER_TIMEOUT_S = 600
CRS = "EPSG:32651"


def lattice(n_nodes: int, n_buildings: int, *, seed: int = 42, spacing: float = 80.0):
    """Jittered grid streets (one line per block side), square buildings, 6 service categories."""
    rng = np.random.default_rng(seed)
    side = int(round(np.sqrt(n_nodes)))
    gx, gy = np.meshgrid(np.arange(side) * spacing, np.arange(side) * spacing)
    xy = np.stack([gx.ravel(), gy.ravel()], 1) + rng.uniform(-0.2, 0.2, (side * side, 2)) * spacing
    xy += (350_000.0, 3_450_000.0)
    idx = np.arange(side * side).reshape(side, side)
    ends = np.vstack([np.stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()], 1),
                      np.stack([idx[:-1, :].ravel(), idx[1:, :].ravel()], 1)])
    ends = ends[rng.random(len(ends)) > 0.05]  # a few missing links, like real blocks
    streets = gpd.GeoDataFrame(
        {"street_id": np.arange(len(ends)).astype(str),
         "road_class": rng.choice(["major", "minor", "lane"], len(ends), p=[0.1, 0.6, 0.3])},
        geometry=shapely.linestrings(np.stack([xy[ends[:, 0]], xy[ends[:, 1]]], 1)), crs=CRS)
    lo, hi = xy.min(0), xy.max(0)
    c = rng.uniform(lo, hi, (n_buildings, 2))
    size = rng.uniform(8, 20, n_buildings)
    buildings = gpd.GeoDataFrame(
        {"building_id": np.arange(n_buildings).astype(str),
         "households": rng.integers(1, 120, n_buildings)},
        geometry=shapely.box(c[:, 0] - size, c[:, 1] - size, c[:, 0] + size, c[:, 1] + size),
        crs=CRS)
    per_cat = max(3, n_nodes // 400)
    p = rng.uniform(lo, hi, (per_cat * len(CATEGORIES), 2))
    services = gpd.GeoDataFrame(
        {"point_id": np.arange(len(p)).astype(str), "category": np.repeat(CATEGORIES, per_cat)},
        geometry=shapely.points(p), crs=CRS)
    return streets, buildings, services


def bund():
    """Shanghai Bund OSM extract as canonical layers (households 1 per building)."""
    from geo.lifecircle import categorise_points

    roads = gpd.read_file(BUND, layer="roads")
    roads["street_id"] = roads["id"].astype(str)
    roads["road_class"] = roads["kind"].map({"rail": "rail", "ferry": "water"}).fillna("minor")
    pois = gpd.read_file(BUND, layer="pois")
    pois["category"] = categorise_points(pois)
    pois = pois[pois["category"].notna()].assign(point_id=lambda d: d["id"].astype(str))
    b = gpd.read_file(BUND, layer="buildings")
    b["building_id"] = b["id"].astype(str)
    b["households"] = 1
    return roads, b, pois


def layers(size: str):
    if size == "bund":
        return bund()
    n = int(size)
    return lattice(n, n // 2)


def spliced(graph, bsnap, ssnap):
    """Edge list with every door spliced in: (n_nodes, xy, src, dst, w, b_node, s_node)."""
    import pandas as pd

    nb = len(bsnap.edge)
    att = pd.DataFrame({"edge": np.concatenate([bsnap.edge, ssnap.edge]),
                        "t": np.concatenate([bsnap.t, ssnap.t]),
                        "leg": np.concatenate([bsnap.leg, ssnap.leg]),
                        "pt": np.arange(nb + len(ssnap.edge))})
    att = att[att.edge >= 0].sort_values(["edge", "t"], kind="stable")
    n0 = graph.n_nodes
    xy_all = np.vstack([bsnap.xy, ssnap.xy])
    k = len(att)
    proj = n0 + np.arange(k)
    door = n0 + k + att.pt.to_numpy()
    e, t = att.edge.to_numpy(), att.t.to_numpy()
    u, v, ln = graph.edge_u[e], graph.edge_v[e], graph.edge_length[e]
    first = np.r_[True, e[1:] != e[:-1]]
    last = np.r_[e[1:] != e[:-1], True]
    prev_node = np.where(first, u, np.r_[0, proj[:-1]])
    prev_t = np.where(first, 0.0, np.r_[0.0, t[:-1]])
    src = [prev_node, proj[last], proj]
    dst = [proj, v[last], door]
    w = [(t - prev_t) * ln, (1 - t[last]) * ln[last], att.leg.to_numpy()]
    keep = np.ones(len(graph.edge_u), bool)
    keep[np.unique(e)] = False
    src.append(graph.edge_u[keep])
    dst.append(graph.edge_v[keep])
    w.append(graph.edge_length[keep])
    pxy = graph.node_xy[u] + t[:, None] * (graph.node_xy[v] - graph.node_xy[u])
    xy = np.vstack([graph.node_xy, pxy, xy_all])
    return (len(xy), xy, np.concatenate(src), np.concatenate(dst),
            np.maximum(np.concatenate(w), 1e-6), n0 + k + np.arange(nb), n0 + k + nb)


def _problem(size: str):
    from geo.network import snap_points, walk_graph_from_streets

    streets, buildings, services = layers(size)
    graph = walk_graph_from_streets(streets)
    bs, ss = snap_points(graph, buildings), snap_points(graph, services)
    return graph, bs, ss, services["category"].to_numpy()


def run_wangge(size: str) -> dict:
    from geo.access import service_circle_analysis

    streets, buildings, services = layers(size)
    t = time.perf_counter()
    res = service_circle_analysis(buildings, streets, services)
    sec = time.perf_counter() - t
    d = res.buildings.filter(like="dist_")
    return {"seconds": sec, "dist": {c[5:]: d[c].to_numpy() for c in d.columns},
            "nodes": res.summary["network"]["nodes"]}


def run_networkx(size: str) -> dict:
    import networkx as nx

    graph, bs, ss, cats = _problem(size)
    n, xy, src, dst, w, b_node, s_off = spliced(graph, bs, ss)
    t = time.perf_counter()
    g = nx.Graph()
    g.add_weighted_edges_from(zip(src.tolist(), dst.tolist(), w.tolist(), strict=True))
    out = {}
    for cat in sorted(set(cats)):
        srcs = [int(s_off + j) for j in np.flatnonzero((cats == cat) & ss.snapped)]
        found = nx.multi_source_dijkstra_path_length(g, srcs, cutoff=1000.0)
        out[cat] = np.array([found.get(int(i), np.nan) for i in b_node])
    return {"seconds": time.perf_counter() - t, "dist": out}


def run_pandana(size: str) -> dict:
    import pandana
    import pandas as pd

    graph, bs, ss, cats = _problem(size)
    n, xy, src, dst, w, b_node, s_off = spliced(graph, bs, ss)
    t = time.perf_counter()
    net = pandana.Network(pd.Series(xy[:, 0]), pd.Series(xy[:, 1]), pd.Series(src),
                          pd.Series(dst), pd.DataFrame({"w": w}), twoway=True)
    out = {}
    for cat in sorted(set(cats)):
        m = (cats == cat) & ss.snapped
        net.set_pois(cat, 1000, 1, pd.Series(ss.xy[m, 0]), pd.Series(ss.xy[m, 1]))
        d = net.nearest_pois(1000, cat, num_pois=1).iloc[:, 0].to_numpy()
        d = d[b_node]
        out[cat] = np.where(d < 1000, d, np.nan)
    return {"seconds": time.perf_counter() - t, "dist": out}


ENGINES = {"wangge": run_wangge, "networkx": run_networkx, "pandana": run_pandana}


def worker(engine: str, size: str, out: Path) -> None:
    import resource

    res = ENGINES[engine](size)
    res["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    np.savez(out, **{f"d_{k}": v for k, v in res.pop("dist").items()})
    out.with_suffix(".json").write_text(json.dumps(res))


def _run(engine: str, size: str, tmp: Path) -> dict:
    out = tmp / f"{engine}_{size}.npz"
    cmd = [sys.executable, __file__, "--worker", engine, "--size", size, "--out", str(out)]
    try:
        subprocess.run(cmd, check=True, timeout=PEER_TIMEOUT_S, capture_output=True)
    except subprocess.TimeoutExpired:
        return {"status": f"stopped at {PEER_TIMEOUT_S} s"}
    except subprocess.CalledProcessError as exc:
        return {"status": "failed: " + exc.stderr.decode()[-300:].replace("\n", " ")}
    info = json.loads(out.with_suffix(".json").read_text())
    info["dist"] = {k[2:]: v for k, v in np.load(out).items()}
    info["status"] = "ok"
    return info


def _agreement(ours: dict, theirs: dict) -> str:
    worst = 0.0
    for cat, d in ours.items():
        o = theirs.get(cat)
        if o is None:
            return "n/a"
        both = np.isfinite(d) & np.isfinite(o)
        reach_mismatch = int(np.count_nonzero(np.isfinite(d) != np.isfinite(o)))
        if both.any():
            worst = max(worst, float(np.abs(d[both] - o[both]).max()))
        if reach_mismatch:
            return f"{worst:.3f} m (+{reach_mismatch} reach differ)"
    return f"{worst:.3f} m"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="Bund and the 10 k lattice only.")
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--engines", default="wangge,networkx,pandana")
    ap.add_argument("--worker")
    ap.add_argument("--size")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    if a.worker:
        worker(a.worker, a.size, a.out)
        return
    sizes = ["bund", *(["10000"] if a.quick else a.sizes.split(","))]
    engines = a.engines.split(",")
    print(f"{'data':>8} {'engine':>9} {'seconds':>9} {'peak MB':>8} {'x slower':>8}  "
          "max |Δ| vs Wangge / status")
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            ours = _run("wangge", size, Path(tmp))
            if ours["status"] != "ok":
                print(f"{size:>8} {'wangge':>9} {ours['status']}")
                continue
            print(f"{size:>8} {'wangge':>9} {ours['seconds']:9.2f} {ours['peak_mb']:8.0f} "
                  f"{1.0:8.1f}  nodes {ours['nodes']}", flush=True)
            for eng in engines:
                if eng == "wangge":
                    continue
                r = _run(eng, size, Path(tmp))
                if r["status"] != "ok":
                    print(f"{size:>8} {eng:>9} {r['status']}", flush=True)
                    continue
                print(f"{size:>8} {eng:>9} {r['seconds']:9.2f} {r['peak_mb']:8.0f} "
                      f"{r['seconds'] / ours['seconds']:8.1f}  {_agreement(ours['dist'], r['dist'])}",
                      flush=True)


if __name__ == "__main__":
    main()
