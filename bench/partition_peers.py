"""One partition method in its own process, for ``bench/partition.py`` (which polls its memory).

    .venv/bin/python bench/partition_peers.py METHOD --dir bench/out/partition/<dataset>

Inputs in ``--dir`` (written by ``bench/partition.py``, metric CRS): ``buildings.parquet``
(building_id, households, community_id, compound_id, use), ``communities.parquet``,
``streets.parquet``, ``compounds.parquet``, ``params.json`` (lo, hi, target, seed). The
peers share one set of units, the cells of the peer pipeline's momepy tessellation
(``units.parquet``: households, comm) and their contiguity graph (``graph.npz``: u, v,
shared length), so they differ only in the solver.

Methods (output ``<method>.labels.npy`` = grid label per unit, or ``wangge.grids.parquet``,
plus ``<method>.json`` with the seconds of the timed part, excluding imports and reading):

``pipeline``  momepy enclosures + enclosed_tessellation (streets and community outlines as
              barriers) → libpysal Rook contiguity + shared lengths → pymetis per community.
              Writes ``units.parquet`` and ``graph.npz`` on the way.
``graph``     the contiguity graph of ``units.parquet`` with vectorised shapely (used only
              when the pipeline ran out of time after tessellating).
``pymetis``   METIS k-way, contiguous (``contig=1``, ``recursive=False``), vertex weight =
              households, edge weight = shared length (m), k = round(H / target) per community.
``maxp``      spopt ``MaxPHeuristic``, threshold = min households, attributes = cell centre.
``skater``    spopt ``Skater`` with n_clusters = k, attributes = cell centre.
``gerrychain`` ``recursive_tree_part``, pop_target = H / k, epsilon so that the window
              ``pop_target × (1 ± ε)`` lies inside ``[lo, hi]``.
``wangge``    ``geo.partition.partition_grids`` on the buildings (its own street-bounded cells).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

# this checkout's geo, not whichever one the environment has installed (a worktree's bench
# measured the main checkout's engine otherwise)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

__all__ = ["METHODS", "k_for", "units_from_tessellation", "graph_from_units", "communities_of",
           "run"]

log = logging.getLogger("bench.partition_peers")

METHODS = ("pipeline", "graph", "pymetis", "maxp", "skater", "gerrychain", "wangge")


def k_for(households: float, target: float) -> int:
    """Grids for a community of *households*: ``round(H / target)``, at least 1."""
    return max(1, int(round(households / target)))


# --- units and graph ------------------------------------------------------------------------


def units_from_tessellation(buildings: gpd.GeoDataFrame, streets: gpd.GeoDataFrame | None,
                            communities: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """momepy enclosed tessellation cells with households and community index (``comm``)."""
    import momepy

    barriers = [communities.boundary]
    if streets is not None and len(streets):
        barriers.append(streets.geometry)
    lines = gpd.GeoSeries(pd.concat(barriers, ignore_index=True), crs=communities.crs)
    enclosures = momepy.enclosures(lines, limit=communities.geometry)
    b = buildings.reset_index(drop=True)
    cells = momepy.enclosed_tessellation(b.geometry, enclosures, n_jobs=1)
    cells = cells[~cells.geometry.is_empty].copy()
    building = cells.index.to_numpy()
    # a building cut by a barrier gets a cell in each enclosure: its households go to the
    # first, the other pieces are units without households (their cells still tile)
    first = (building >= 0) & ~pd.Index(building).duplicated()
    hh = np.zeros(len(cells))
    hh[first] = b["households"].to_numpy(dtype=float)[building[first]]
    comm_of_b = b["comm"].to_numpy()
    pts = shapely.point_on_surface(cells.geometry.values)
    ci, ui = shapely.STRtree(communities.geometry.values).query(pts, predicate="within")
    comm = np.full(len(cells), -1)
    comm[ci[::-1]] = ui[::-1]
    comm = np.where(comm < 0, comm_of_b[np.maximum(building, 0)], comm)
    comm = np.where(first, comm_of_b[np.maximum(building, 0)], comm)
    lost = len(b) - int(first.sum())
    if lost:
        log.warning("momepy tessellation gave no cell to %d building(s)", lost)
    return gpd.GeoDataFrame({"building": building, "households": hh, "comm": comm},
                            geometry=cells.geometry.values, crs=communities.crs)


def _shared_lengths(geoms: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return shapely.length(shapely.intersection(shapely.boundary(geoms[u]), shapely.boundary(geoms[v])))


def graph_from_units(units: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rook edges (u < v, same community) and shared boundary lengths, vectorised shapely."""
    g = units.geometry.values
    u, v = shapely.STRtree(g).query(g, predicate="intersects")
    keep = (u < v) & (units["comm"].to_numpy()[u] == units["comm"].to_numpy()[v])
    u, v = u[keep], v[keep]
    length = _shared_lengths(np.asarray(g, dtype=object), u, v)
    ok = length > 0
    return u[ok], v[ok], length[ok]


def _libpysal_graph(units: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from libpysal.weights import Rook

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = Rook.from_dataframe(units, use_index=False, silence_warnings=True)
    u, v = w.to_adjlist(remove_symmetric=True, drop_islands=True)[["focal", "neighbor"]].to_numpy().T
    u, v = u.astype(np.int64), v.astype(np.int64)
    same = units["comm"].to_numpy()[u] == units["comm"].to_numpy()[v]
    u, v = u[same], v[same]
    length = _shared_lengths(np.asarray(units.geometry.values, dtype=object), u, v)
    return u, v, np.maximum(length, 0.0)


def _components(comm: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """A sub-problem id per unit: its community and connected component within it."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(comm)
    graph = coo_matrix((np.ones(len(u)), (u, v)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    _, sub = np.unique(np.stack([comm, comp], axis=1), axis=0, return_inverse=True)
    return sub.ravel()


def communities_of(comm: np.ndarray, u: np.ndarray, v: np.ndarray
                   ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Per connected part of a community: unit indices, local edge ends (lu, lv), edge indices.

    The solvers need a connected graph (METIS ``contig``, GerryChain, spopt), so each
    connected part of a community is its own problem with k from its own households.
    """
    comm = _components(comm, u, v)
    order = np.argsort(comm, kind="stable")
    starts = np.flatnonzero(np.r_[True, comm[order][1:] != comm[order][:-1]])
    local = np.empty(len(comm), dtype=np.int64)
    ecomm = comm[u]
    eorder = np.argsort(ecomm, kind="stable")
    keys = ecomm[eorder]
    for s, e in zip(starts, np.r_[starts[1:], len(order)], strict=True):
        nodes = order[s:e]
        local[nodes] = np.arange(len(nodes))
        lo, hi = np.searchsorted(keys, [comm[nodes[0]], comm[nodes[0]] + 1])
        eidx = eorder[lo:hi]
        yield nodes, local[u[eidx]], local[v[eidx]], eidx


# --- solvers (one community at a time; labels local, 0..k-1) --------------------------------


def _pymetis(n: int, lu: np.ndarray, lv: np.ndarray, w: np.ndarray, hh: np.ndarray, k: int,
             seed: int) -> np.ndarray:
    import pymetis

    a = np.r_[lu, lv]
    b = np.r_[lv, lu]
    ww = np.r_[w, w]
    order = np.lexsort((b, a))
    xadj = np.r_[0, np.cumsum(np.bincount(a, minlength=n))]
    adj = pymetis.CSRAdjacency(xadj.tolist(), b[order].tolist())
    vw = np.maximum(np.round(hh), 0).astype(int).tolist()
    ew = np.maximum(1, np.round(ww[order])).astype(int).tolist()
    _, parts = pymetis.part_graph(k, adjacency=adj, vweights=vw, eweights=ew,
                                  options=pymetis.Options(contig=1, seed=seed), recursive=False)
    return np.asarray(parts)


def _weights(n: int, lu: np.ndarray, lv: np.ndarray) -> Any:
    from libpysal.weights import W

    nb: dict[int, list[int]] = {i: [] for i in range(n)}
    for a, b in zip(lu.tolist(), lv.tolist(), strict=True):
        nb[a].append(b)
        nb[b].append(a)
    return W(nb, silence_warnings=True)


def _frame(units: gpd.GeoDataFrame, nodes: np.ndarray) -> pd.DataFrame:
    xy = shapely.get_coordinates(shapely.point_on_surface(units.geometry.values[nodes]))
    return pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1],
                         "households": units["households"].to_numpy()[nodes]})


def _maxp(units: gpd.GeoDataFrame, nodes: np.ndarray, lu: np.ndarray, lv: np.ndarray, lo: float,
          seed: int) -> np.ndarray:
    from spopt.region import MaxPHeuristic

    np.random.seed(seed)
    model = MaxPHeuristic(_frame(units, nodes), _weights(len(nodes), lu, lv), ["x", "y"],
                          "households", lo, top_n=2)
    model.solve()
    return np.asarray(model.labels_)


def _skater(units: gpd.GeoDataFrame, nodes: np.ndarray, lu: np.ndarray, lv: np.ndarray, k: int,
            seed: int) -> np.ndarray:
    from spopt.region import Skater

    np.random.seed(seed)
    model = Skater(_frame(units, nodes), _weights(len(nodes), lu, lv), ["x", "y"], n_clusters=k,
                   islands="increase")
    model.solve()
    return np.asarray(model.labels_)


def _gerrychain(n: int, lu: np.ndarray, lv: np.ndarray, hh: np.ndarray, k: int, lo: float,
                hi: float, seed: int) -> np.ndarray:
    import networkx as nx
    from gerrychain.graph import Graph
    from gerrychain.partition import recursive_tree_part

    g = nx.Graph()
    g.add_nodes_from((i, {"households": float(h)}) for i, h in enumerate(hh))
    g.add_edges_from(zip(lu.tolist(), lv.tolist(), strict=True))
    target = float(hh.sum()) / k
    eps = max(0.01, min(hi / target - 1.0, 1.0 - lo / target))
    assign = recursive_tree_part(Graph.from_networkx(g), range(k), target, "households", eps,
                                 rng=seed)
    return np.array([assign[i] for i in range(n)])


def solve_units(method: str, units: gpd.GeoDataFrame, u: np.ndarray, v: np.ndarray,
                length: np.ndarray, *, lo: float, hi: float, target: float,
                seed: int) -> tuple[np.ndarray, dict[str, int]]:
    """Global grid labels per unit for a peer *method*, community by community."""
    hh_all = units["households"].to_numpy(dtype=float)
    labels = np.full(len(units), -1, dtype=np.int64)
    stats = {"communities": 0, "failed": 0}  # communities = connected parts of communities
    base = 0
    for nodes, lu, lv, eidx in communities_of(units["comm"].to_numpy(), u, v):
        hh = hh_all[nodes]
        k = k_for(hh.sum(), target)
        stats["communities"] += 1
        try:
            if k == 1 or len(nodes) == 1:
                local = np.zeros(len(nodes), dtype=np.int64)
            elif method == "pymetis":
                local = _pymetis(len(nodes), lu, lv, length[eidx], hh, k, seed)
            elif method == "maxp":
                local = (np.zeros(len(nodes), dtype=np.int64) if hh.sum() < 2 * lo
                         else _maxp(units, nodes, lu, lv, lo, seed))
            elif method == "skater":
                local = _skater(units, nodes, lu, lv, k, seed)
            else:
                local = _gerrychain(len(nodes), lu, lv, hh, k, lo, hi, seed)
        except Exception as exc:  # a peer giving up on a community is a result, not a crash
            log.warning("%s failed on a community of %d units: %s", method, len(nodes), exc)
            stats["failed"] += 1
            local = np.zeros(len(nodes), dtype=np.int64)
        _, local = np.unique(np.asarray(local), return_inverse=True)
        labels[nodes] = base + local
        base += int(local.max()) + 1
    return labels, stats


# --- the process entry ----------------------------------------------------------------------


def _read(d: Path, name: str) -> gpd.GeoDataFrame | None:
    p = d / f"{name}.parquet"
    return gpd.read_parquet(p) if p.exists() else None


def _pipeline(d: Path, p: dict[str, Any]) -> dict[str, Any]:
    b, s, c = _read(d, "buildings"), _read(d, "streets"), _read(d, "communities")
    t0 = time.perf_counter()
    units = units_from_tessellation(b, s, c)
    t_tess = time.perf_counter() - t0
    units.to_parquet(d / "units.parquet")
    t1 = time.perf_counter()
    u, v, length = _libpysal_graph(units)
    t_graph = time.perf_counter() - t1
    np.savez(d / "graph.npz", u=u, v=v, length=length)
    t2 = time.perf_counter()
    labels, stats = solve_units("pymetis", units, u, v, length, lo=p["lo"], hi=p["hi"],
                                target=p["target"], seed=p["seed"])
    t_part = time.perf_counter() - t2
    np.save(d / "pipeline.labels.npy", labels)
    return {"seconds": t_tess + t_graph + t_part, "tessellation_s": t_tess, "contiguity_s": t_graph,
            "pymetis_s": t_part, "units": len(units), **stats}


def _graph(d: Path, p: dict[str, Any]) -> dict[str, Any]:
    units = gpd.read_parquet(d / "units.parquet")
    t0 = time.perf_counter()
    u, v, length = graph_from_units(units)
    np.savez(d / "graph.npz", u=u, v=v, length=length)
    return {"seconds": time.perf_counter() - t0, "edges": len(u)}


def _peer(method: str) -> Callable[[Path, dict[str, Any]], dict[str, Any]]:
    def go(d: Path, p: dict[str, Any]) -> dict[str, Any]:
        units = gpd.read_parquet(d / "units.parquet")
        g = np.load(d / "graph.npz")
        t0 = time.perf_counter()
        labels, stats = solve_units(method, units, g["u"], g["v"], g["length"], lo=p["lo"],
                                    hi=p["hi"], target=p["target"], seed=p["seed"])
        seconds = time.perf_counter() - t0
        np.save(d / f"{method}.labels.npy", labels)
        return {"seconds": seconds, **stats}
    return go


def _wangge(d: Path, p: dict[str, Any]) -> dict[str, Any]:
    from geo.partition import partition_grids

    b, s, c, k = (_read(d, n) for n in ("buildings", "streets", "communities", "compounds"))
    b = b.drop(columns=["comm"], errors="ignore")
    t0 = time.perf_counter()
    res = partition_grids(b, c, streets=s, compounds=k, min_households=p["lo"],
                          max_households=p["hi"], target_households=p["target"], seed=p["seed"])
    seconds = time.perf_counter() - t0
    g = res.grids.to_crs(c.crs)
    g[["households", "exclusive", "flags", "geometry"]].to_parquet(d / "wangge.grids.parquet")
    grids, bad = res.grids, set(res.report["infeasible_communities"])
    feasible = grids[~grids["community_id"].astype(str).isin(bad) & ~grids["exclusive"] & ~grids["locked"]
                     & (grids["households"] > 0)]
    inr = feasible["households"].between(p["lo"], p["hi"])
    return {"seconds": seconds, "report_share_in_range": res.report.get("share_in_range"),
            "feasible_share_in_range": float(inr.mean()) if len(feasible) else None,
            "infeasible_communities": len(bad), "shards": res.report.get("shards", 1)}


def run(method: str, d: Path) -> dict[str, Any]:
    """Run *method* on the inputs in *d*; write its outputs and ``<method>.json``; return it."""
    p = json.loads((d / "params.json").read_text())
    work = {"pipeline": _pipeline, "graph": _graph, "wangge": _wangge}.get(method) or _peer(method)
    out = work(d, p)
    (d / f"{method}.json").write_text(json.dumps(out))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("method", choices=METHODS)
    ap.add_argument("--dir", type=Path, required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.simplefilter("ignore")
    print(json.dumps(run(args.method, args.dir)))


if __name__ == "__main__":
    main()
