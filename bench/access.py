"""Benchmark: the 15-minute service circle, Wangge vs networkx, pandana and cityseer.

Run ``.venv/bin/python bench/access.py [--quick] [--sizes 10000,100000,1000000]``.
Rows: the Shanghai Bund OSM extract (``../shared/datasets``) and synthetic jittered street
lattices (n nodes, n/2 buildings, 6 categories). Every engine runs in its own subprocess,
stopped at 10 minutes. Columns (seconds, wall clock):

* ``prep``: noding the streets layer into a walk graph and snapping doors (Wangge's code:
  none of the peers nodes or snaps), then splicing every door into the graph as a node;
* ``build``: the engine's own graph (networkx ``Graph``, pandana's contraction hierarchy,
  cityseer's ``NetworkStructure``; for Wangge's routing row the CSR matrix);
* ``route``: nearest facility of every category for every building door from that prep.
  ``wangge routing`` is Wangge's own routing stage (``geo.access.nearest_facility_distances``
  on the noded walk graph and the same snaps: one csgraph Dijkstra per category from a
  super-source carrying each facility's snap leg, doors finished from their edge's two
  ends, same-edge pairs walked directly; no splicing needed). The peers route on the
  spliced graph: ``csgraph spliced`` (plain scipy multi-source Dijkstra per category on it,
  non-source leaves i.e. doors pruned and finished from their one neighbour), networkx
  ``multi_source_dijkstra_path_length`` per category, pandana ``nearest_pois``, cityseer
  ``compute_accessibilities`` with only the doors live;
* ``e2e``: from the streets layer to distances (peers: prep + build + route; ``wangge e2e``:
  ``service_circle_analysis``, i.e. graph, snapping, distances, levels, complete circles and
  coverage aggregates, with its own door handling instead of splicing).

Ratios are the engine's route / e2e time over Wangge's. Agreement is max |Δ| per category
against networkx (the reference), on buildings both reach within 1,000 m.
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
LIMIT_M = 1000.0
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


def _problem(size: str) -> dict:
    """The peers' input: Wangge's noded walk graph with every door spliced in (prep timed)."""
    from geo.network import snap_points, walk_graph_from_streets

    streets, buildings, services = layers(size)
    t = time.perf_counter()
    graph = walk_graph_from_streets(streets)
    bs, ss = snap_points(graph, buildings), snap_points(graph, services)
    n, xy, src, dst, w, b_node, s_off = spliced(graph, bs, ss)
    cats = services["category"].to_numpy().astype(str)
    sources = {c: s_off + np.flatnonzero((cats == c) & ss.snapped) for c in sorted(set(cats))}
    return {"prep_s": time.perf_counter() - t, "n": n, "xy": xy, "src": src, "dst": dst, "w": w,
            "b_node": b_node, "sources": sources, "graph": graph, "bsnap": bs, "ssnap": ss,
            "buildings": buildings, "services": services}


def _timed(res: dict, build_s: float, route_s: float, dist: dict) -> dict:
    return {"prep_s": res["prep_s"], "build_s": build_s, "route_s": route_s,
            "seconds": res["prep_s"] + build_s + route_s, "dist": dist}


def run_wangge(size: str) -> dict:
    """End to end from the streets layer; then Wangge's routing stage alone on the same prep."""
    import resource

    from geo.access import nearest_facility_distances, service_circle_analysis

    streets, buildings, services = layers(size)
    t = time.perf_counter()
    res = service_circle_analysis(buildings, streets, services)
    sec = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    d = res.buildings.filter(like="dist_")
    out = {"seconds": sec, "peak_e2e_mb": peak, "nodes": res.summary["network"]["nodes"],
           "dist": {c[5:]: d[c].to_numpy() for c in d.columns}}
    del res
    p = _problem(size)
    t = time.perf_counter()
    routed = nearest_facility_distances(p["graph"], p["buildings"], p["services"],
                                        max_distance_m=LIMIT_M, building_snap=p["bsnap"],
                                        service_snap=p["ssnap"])
    route_s = time.perf_counter() - t
    out.update(route_build_s=0.0, route_s=route_s,
               route_dist={c[5:]: _finite(routed[c].to_numpy()) for c in routed.columns})
    return out


def run_csgraph(size: str) -> dict:
    """Plain scipy csgraph on the peers' spliced graph (door leaves pruned, then finished)."""
    from scipy.sparse.csgraph import dijkstra

    p = _problem(size)
    t = time.perf_counter()
    csr, leaf, parent, leg = _pruned(p)
    build = time.perf_counter() - t
    t = time.perf_counter()
    routed = {}
    for cat, srcs in p["sources"].items():
        # The matrix is symmetric: directed=True spares csgraph building the transpose.
        dist = dijkstra(csr, directed=True, indices=srcs, min_only=True, limit=LIMIT_M)
        dist[leaf] = dist[parent] + leg
        routed[cat] = _finite(dist[p["b_node"]])
    return _timed(p, build, time.perf_counter() - t, routed)


def _pruned(p: dict):
    """The spliced graph without its non-source leaves (doors hang off one edge: no path
    passes through them), plus each leaf's neighbour and edge weight to finish it exactly."""
    from geo.network import _symmetric_matrix

    full = _symmetric_matrix(p["src"], p["dst"], p["w"], p["n"])  # shortest of parallel edges
    degree = np.diff(full.indptr)
    is_source = np.zeros(p["n"], dtype=bool)
    is_source[np.concatenate(list(p["sources"].values()))] = True
    leaf = np.flatnonzero((degree == 1) & ~is_source)
    parent, leg = full.indices[full.indptr[leaf]], full.data[full.indptr[leaf]]
    keep = np.ones(p["n"], dtype=bool)
    keep[leaf] = False
    coo = full.tocoo()
    ok = keep[coo.row] & keep[coo.col]
    pruned = _symmetric_matrix(coo.row[ok], coo.col[ok], coo.data[ok], p["n"])
    return pruned, leaf, parent, leg


def _finite(d: np.ndarray) -> np.ndarray:
    d = np.asarray(d, dtype=float)
    return np.where(np.isfinite(d) & (d <= LIMIT_M), d, np.nan)


def run_networkx(size: str) -> dict:
    import networkx as nx

    p = _problem(size)
    t = time.perf_counter()
    g = nx.Graph()
    g.add_weighted_edges_from(zip(p["src"].tolist(), p["dst"].tolist(), p["w"].tolist(),
                                  strict=True))
    build = time.perf_counter() - t
    t = time.perf_counter()
    out = {}
    for cat, srcs in p["sources"].items():
        found = nx.multi_source_dijkstra_path_length(g, srcs.tolist(), cutoff=LIMIT_M)
        out[cat] = _finite([found.get(int(i), np.nan) for i in p["b_node"]])
    return _timed(p, build, time.perf_counter() - t, out)


def run_pandana(size: str) -> dict:
    import pandana
    import pandas as pd

    p = _problem(size)
    xy, n_b = p["xy"], len(p["b_node"])
    t = time.perf_counter()
    net = pandana.Network(pd.Series(xy[:, 0]), pd.Series(xy[:, 1]), pd.Series(p["src"]),
                          pd.Series(p["dst"]), pd.DataFrame({"w": p["w"]}), twoway=True)
    build = time.perf_counter() - t
    t = time.perf_counter()
    out = {}
    for cat, srcs in p["sources"].items():
        net.set_pois(cat, LIMIT_M, 1, pd.Series(xy[srcs, 0]), pd.Series(xy[srcs, 1]))
        d = net.nearest_pois(LIMIT_M, cat, num_pois=1).iloc[:, 0].to_numpy()
        out[cat] = _finite(np.where(d[p["b_node"]] < LIMIT_M, d[p["b_node"]], np.nan))
    assert len(out[next(iter(out))]) == n_b
    return _timed(p, build, time.perf_counter() - t, out)


def run_cityseer(size: str) -> dict:
    """cityseer on the same spliced graph; only building doors are live (computed) nodes."""
    import os

    os.environ.setdefault("CITYSEER_QUIET_MODE", "true")
    import networkx as nx
    from cityseer.metrics import layers as cs_layers
    from cityseer.tools import io as cs_io

    p = _problem(size)
    xy, src, dst = p["xy"], p["src"], p["dst"]
    t = time.perf_counter()
    live = np.zeros(p["n"], dtype=bool)
    live[p["b_node"]] = True
    g = nx.MultiGraph()
    g.graph["crs"] = CRS
    keys = np.arange(p["n"]).astype(str)
    g.add_nodes_from((keys[i], {"x": xy[i, 0], "y": xy[i, 1], "live": bool(live[i])})
                     for i in range(p["n"]))
    ends = np.stack([xy[src], xy[dst]], 1)
    # cityseer refuses zero-length edges (doors on the street line): a 1 mm detour instead.
    zero = np.all(ends[:, 0] == ends[:, 1], axis=1)
    geoms = shapely.linestrings(ends)
    geoms[zero] = shapely.linestrings(np.stack([ends[zero, 0], ends[zero, 0] + (5e-4, 0.0),
                                                ends[zero, 1]], 1))
    g.add_edges_from((keys[a], keys[b], {"geom": gm}) for a, b, gm in zip(src, dst, geoms,
                                                                          strict=True))
    nodes_gdf, _, structure = cs_io.network_structure_from_nx(g)
    build = time.perf_counter() - t
    t = time.perf_counter()
    nodes = np.concatenate(list(p["sources"].values()))
    data = gpd.GeoDataFrame(
        {"category": np.repeat(list(p["sources"]), [len(v) for v in p["sources"].values()])},
        geometry=shapely.points(xy[nodes]), crs=CRS)
    cats = list(p["sources"])
    nodes_gdf = cs_layers.compute_accessibilities(
        data, "category", cats, nodes_gdf, structure, distances=[int(LIMIT_M)], decay_fn="1")
    out = {}
    for cat in cats:
        col = f"cc_{cat}_nearest_max_{int(LIMIT_M)}"
        out[cat] = _finite(nodes_gdf.loc[keys[p["b_node"]], col].to_numpy(dtype=float))
    return _timed(p, build, time.perf_counter() - t, out)


ENGINES = {"wangge": run_wangge, "csgraph": run_csgraph, "networkx": run_networkx, "pandana": run_pandana,
           "cityseer": run_cityseer}


def worker(engine: str, size: str, out: Path) -> None:
    import resource

    res = ENGINES[engine](size)
    res["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    arrays = {f"d_{k}": v for k, v in res.pop("dist").items()}
    arrays |= {f"r_{k}": v for k, v in res.pop("route_dist", {}).items()}
    np.savez(out, **arrays)
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
    arrays = dict(np.load(out))
    info["dist"] = {k[2:]: v for k, v in arrays.items() if k.startswith("d_")}
    info["route_dist"] = {k[2:]: v for k, v in arrays.items() if k.startswith("r_")}
    info["status"] = "ok"
    return info


def _deltas(ref: dict, theirs: dict) -> dict[str, str]:
    """Per category: max |Δ| (m) where both reach, and how many buildings only one reaches."""
    out = {}
    for cat, d in ref.items():
        o = theirs.get(cat)
        if o is None:
            out[cat] = "n/a"
            continue
        both = np.isfinite(d) & np.isfinite(o)
        worst = float(np.abs(d[both] - o[both]).max()) if both.any() else 0.0
        # A distance within a centimetre of the limit may fall either side of it.
        differ = int(np.count_nonzero((np.isfinite(d) != np.isfinite(o))
                                      & ~(np.nan_to_num(np.fmax(d, o)) > LIMIT_M - 0.01)))
        out[cat] = f"{worst:.3f}" + (f" (+{differ} reach)" if differ else "")
    return out


def _fmt(x: float | None, spec: str = "9.3f") -> str:
    return format(x, spec) if x is not None else format("-", spec[:-2].split(".")[0] + "s")


def _row(size: str, name: str, r: dict, base: dict, *, route_key: str = "route_s") -> str:
    e2e_x = r["seconds"] / base["seconds"] if "seconds" in r else None
    route_x = r[route_key] / base["route_s"] if r.get(route_key) else None
    return (f"{size:>8} {name:>15} {_fmt(r.get('prep_s'))} {_fmt(r.get('build_s'))} "
            f"{_fmt(r.get(route_key))} {_fmt(r.get('seconds'))} {_fmt(r.get('peak_mb'), '8.0f')} "
            f"{_fmt(route_x, '8.1f')} {_fmt(e2e_x, '8.1f')}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="Bund and the 10 k lattice only.")
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--engines", default="csgraph,networkx,pandana,cityseer")
    ap.add_argument("--worker")
    ap.add_argument("--size")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    if a.worker:
        worker(a.worker, a.size, a.out)
        return
    sizes = ["bund", *(["10000"] if a.quick else a.sizes.split(","))]
    engines = [e for e in a.engines.split(",") if e != "wangge"]
    print(f"{'data':>8} {'engine':>15} {'prep s':>9} {'build s':>9} {'route s':>9} "
          f"{'e2e s':>9} {'peak MB':>8} {'route ×':>8} {'e2e ×':>8}", flush=True)
    deltas: list[tuple[str, str, dict]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            ours = _run("wangge", size, Path(tmp))
            if ours["status"] != "ok":
                print(f"{size:>8} {'wangge':>15} {ours['status']}", flush=True)
                continue
            e2e = {"seconds": ours["seconds"], "peak_mb": ours["peak_e2e_mb"]}
            print(_row(size, "wangge e2e", e2e, ours) + f"  ({ours['nodes']} nodes)", flush=True)
            routing = {"build_s": ours["route_build_s"], "route_s": ours["route_s"]}
            print(_row(size, "wangge routing", routing, ours), flush=True)
            ref, later = None, []
            for eng in engines:
                r = _run(eng, size, Path(tmp))
                if r["status"] != "ok":
                    print(f"{size:>8} {eng:>15} {r['status']}", flush=True)
                    continue
                print(_row(size, eng, r, ours), flush=True)
                if eng == "networkx":
                    ref = r["dist"]
                    deltas.append((size, "wangge e2e", _deltas(ref, ours["dist"])))
                    deltas.append((size, "wangge routing", _deltas(ref, ours["route_dist"])))
                else:
                    later.append((eng, r["dist"]))
            if ref is not None:
                deltas += [(size, eng, _deltas(ref, dist)) for eng, dist in later]
    print("\nmax |Δ| vs networkx per category (m; '+k reach' = buildings reached by one only)")
    for size, eng, per in deltas:
        print(f"{size:>8} {eng:>15}  " + ", ".join(f"{c}: {v}" for c, v in per.items()),
              flush=True)


if __name__ == "__main__":
    main()
