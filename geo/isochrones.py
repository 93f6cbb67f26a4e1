"""Service circles: network isochrone polygons per service point and level (not buffers).

For every service point and level the walk reaches edges fully or partly (an edge
entered from both ends is reached where either remaining distance lasts). The reached
pieces, the service point's own door leg and its own edge are drawn as a band of
``isochrone_width_m`` around the streets: the area a planner can honestly shade.
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.access import AccessResult, per_source_distances
from geo.errors import LayerError
from geo.network import SnappedPoints, WalkGraph, snap_points
from geo.settings import DEFAULTS

__all__ = ["reached_segments", "band_polygon", "service_isochrones", "access_map_layers",
           "zone_coverage"]

log = logging.getLogger(__name__)

_CELLS_PER_BATCH = 20_000_000  # sources x edges held in memory at once
_QUAD_SEGS = 3  # arc segments per quarter circle of a band's round ends (display geometry)


def reached_segments(graph: WalkGraph, dist: np.ndarray, level_m: float, *,
                     skip_edge: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Reached pieces of every edge for each source row of *dist* (shape ``(k, n)``).

    *skip_edge* gives per source row an edge to leave out (the source's own edge).
    Returns ``(source_row, segments)`` with segments as an ``(s, 2, 2)`` coordinate array.
    """
    du, dv = dist[:, graph.edge_u], dist[:, graph.edge_v]
    src, edge = np.nonzero(np.minimum(du, dv) <= level_m)
    if skip_edge is not None:
        keep = edge != skip_edge[src]
        src, edge = src[keep], edge[keep]
    a, b = level_m - du[src, edge], level_m - dv[src, edge]
    length = graph.edge_length[edge]
    pu, pv = graph.node_xy[graph.edge_u[edge]], graph.node_xy[graph.edge_v[edge]]
    whole = a + b >= length  # inf - inf cannot occur: one end is within the level
    frac_u = np.clip(np.where(whole, 1.0, a / length), 0.0, 1.0)
    frac_v = np.clip(np.where(whole, 0.0, b / length), 0.0, 1.0)
    from_u = frac_u > 0
    from_v = ~whole & (frac_v > 0)
    seg_u = np.stack([pu, pu + frac_u[:, None] * (pv - pu)], axis=1)[from_u]
    seg_v = np.stack([pv, pv + frac_v[:, None] * (pu - pv)], axis=1)[from_v]
    return np.concatenate([src[from_u], src[from_v]]), np.concatenate([seg_u, seg_v])


def _union_length(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Length of the union of intervals per row (``lo``/``hi`` shape ``(k, j)``, empty if hi <= lo)."""
    order = np.argsort(lo, axis=1)
    lo, hi = np.take_along_axis(lo, order, 1), np.take_along_axis(hi, order, 1)
    total = np.zeros(len(lo))
    cur_lo, cur_hi = lo[:, 0], hi[:, 0]
    for j in range(1, lo.shape[1]):
        empty = hi[:, j] <= lo[:, j]
        gap = ~empty & (lo[:, j] > cur_hi)
        total += np.where(gap, np.maximum(cur_hi - cur_lo, 0), 0)
        cur_lo = np.where(gap, lo[:, j], cur_lo)
        cur_hi = np.where(gap, hi[:, j], np.where(empty, cur_hi, np.maximum(cur_hi, hi[:, j])))
    return total + np.maximum(cur_hi - cur_lo, 0)


def _own_edge(graph: WalkGraph, snap: SnappedPoints, rows: np.ndarray, dist: np.ndarray,
              level_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Door leg and reached intervals of the service point's own edge.

    On its own edge a point at ``x`` is reached directly (``|x - p| + leg``) or around from
    either end (``du + x``, ``dv + length - x``): up to three intervals, which may overlap.
    Returns ``(row, segments, reached length per row)``.
    """
    e, t, leg = snap.edge[rows], snap.t[rows], snap.leg[rows]
    length = graph.edge_length[e]
    k = np.arange(len(rows))
    du, dv = dist[k, graph.edge_u[e]], dist[k, graph.edge_v[e]]
    pos = t * length
    lo = np.stack([np.zeros_like(pos), length - (level_m - dv), pos - (level_m - leg)], 1)
    hi = np.stack([level_m - du, length, pos + (level_m - leg)], 1)
    lo, hi = np.clip(lo, 0, length[:, None]), np.clip(hi, 0, length[:, None])
    pu, pv = graph.node_xy[graph.edge_u[e]], graph.node_xy[graph.edge_v[e]]
    along = (pv - pu) / length[:, None]
    segs = [np.stack([pu + lo[:, j, None] * along, pu + hi[:, j, None] * along], 1)
            for j in range(3)]
    keep = [hi[:, j] > lo[:, j] for j in range(3)]
    reach = leg <= level_m
    door = np.stack([snap.xy[rows], pu + pos[:, None] * along], 1)
    src = np.concatenate([k[m] for m in keep] + [k[reach]])
    seg = np.concatenate([s_[m] for s_, m in zip(segs, keep, strict=True)] + [door[reach]])
    reached = np.where(reach, _union_length(lo, hi) + leg, 0.0)
    return src, seg, reached


def band_polygon(segments: np.ndarray, *, width_m: float) -> shapely.Geometry:
    """The area within *width_m* of any of *segments* (shape ``(s, 2, 2)``), as one polygon.

    Pieces meeting end to end are merged into chains first (half as many parts on real
    streets) and chains are simplified by ``width_m / 100``; each chain is buffered and the
    bands are unioned in one cascaded union. Buffering the whole multi-line at once is far
    slower in GEOS (its offset curves overlap at every junction).
    """
    lines = shapely.line_merge(shapely.multilinestrings(shapely.linestrings(segments)))
    chains = shapely.simplify(shapely.get_parts(lines), width_m / 100.0)
    return shapely.union_all(shapely.buffer(chains, width_m, quad_segs=_QUAD_SEGS))


def service_isochrones(
    graph: WalkGraph,
    services: gpd.GeoDataFrame,
    *,
    levels_m: tuple[float, ...] = DEFAULTS["walk_levels_m"],
    id_field: str = "point_id",
    category_field: str | None = "category",
    width_m: float = DEFAULTS["isochrone_width_m"],
    max_snap_m: float = DEFAULTS["walk_max_snap_m"],
    walk_speed_mps: float = DEFAULTS["walk_speed_mps"],
) -> gpd.GeoDataFrame:
    """Network isochrone polygon of every service point at every level.

    Parameters
    ----------
    graph : WalkGraph
    services : GeoDataFrame
        Service points (any CRS) with *id_field* and optionally *category_field*.
    levels_m : tuple of float
        Walking distances (m), one polygon per level.
    width_m : float
        Half-width of the band drawn around reached streets (m).

    Returns
    -------
    GeoDataFrame
        One row per reachable service point and level: ``point_id``, ``category``,
        ``level_m``, ``minutes``, ``reached_m`` (street length reached) and the polygon,
        in ``graph.crs``. Points farther than *max_snap_m* from the network are skipped.
    """
    if id_field not in services.columns:
        raise LayerError(f"service_isochrones: the service points have no {id_field!r} column; "
                         "pass id_field=...")
    snap = snap_points(graph, services, max_snap_m=max_snap_m)
    ok = np.flatnonzero(snap.snapped)
    u, v, to_u, to_v = (x[ok] for x in snap.offsets(graph))
    batch = max(1, _CELLS_PER_BATCH // max(len(graph.edge_u), 1))
    parts = []
    for start in range(0, len(ok), batch):
        sl = slice(start, start + batch)
        dist = per_source_distances(graph, u[sl], v[sl], to_u[sl], to_v[sl], limit=max(levels_m))
        for level in levels_m:
            src, segs = reached_segments(graph, dist, level, skip_edge=snap.edge[ok[sl]])
            own_src, own, own_len = _own_edge(graph, snap, ok[sl], dist, level)
            other = np.bincount(src, weights=np.hypot(*(segs[:, 1] - segs[:, 0]).T),
                                minlength=len(own_len))
            src = np.concatenate([src, own_src]) + start
            segs = np.concatenate([segs, own])
            parts.append((float(level), start, src, segs, other + own_len))
    rows = []
    for level, start, src, segs, reached in parts:
        order = np.argsort(src, kind="stable")
        keys, first = np.unique(src[order], return_index=True)
        polys = [band_polygon(group, width_m=width_m)
                 for group in np.split(segs[order], first[1:])]
        rows.append(pd.DataFrame({
            "row": ok[keys], "level_m": level,
            "reached_m": reached[keys - start],
            "geometry": polys}))
    out = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["row", "level_m", "reached_m", "geometry"])
    out.insert(0, id_field, services[id_field].to_numpy()[out["row"].to_numpy(int)])
    if category_field and category_field in services.columns:
        out.insert(1, "category", services[category_field].to_numpy()[out["row"].to_numpy(int)])
    out["minutes"] = out["level_m"] / walk_speed_mps / 60.0
    log.info("isochrones: %d polygons for %d of %d service points at %d levels",
             len(out), len(ok), len(services), len(levels_m))
    return gpd.GeoDataFrame(out.drop(columns="row"), geometry="geometry", crs=graph.crs)


def access_map_layers(result: AccessResult, *, category: str, level_m: float,
                      width_m: float = DEFAULTS["isochrone_width_m"],
                      walk_speed_mps: float = DEFAULTS["walk_speed_mps"],
                      max_snap_m: float = DEFAULTS["walk_max_snap_m"]) -> dict:
    """What a map of one category's service circles needs, in WGS84.

    Returns a dict: ``isochrones`` (network polygons of that category's service points at
    *level_m*; in euclidean mode straight-line circles, labelled), ``buildings`` (id,
    households, ``dist_m``, ``covered``), ``grids`` (grid polygons with ``share`` of
    households covered, or None without grids) and ``label_zh`` (what the distances are).
    """
    col = f"dist_{category}"
    if col not in result.buildings.columns:
        raise LayerError(f"access_map_layers: no facilities of category {category!r}; known: "
                         f"{', '.join(result.summary.get('categories', []))}")
    services = result.services.loc[result.services["category"].astype(str) == category]
    if result.mode == "network" and result.graph is not None:
        iso = service_isochrones(result.graph, services, levels_m=(float(level_m),),
                                 width_m=width_m, walk_speed_mps=walk_speed_mps, max_snap_m=max_snap_m)
    else:
        iso = gpd.GeoDataFrame({"point_id": services.get("point_id", services.index),
                                "level_m": float(level_m)},
                               geometry=services.to_crs(result.buildings.estimate_utm_crs())
                               .geometry.buffer(level_m).to_numpy(),
                               crs=result.buildings.estimate_utm_crs())
    iso["label_zh"] = result.label_zh
    b = result.buildings
    keep = [c for c in ("building_id", "households", "grid_id", "community_id") if c in b]
    buildings = b[keep + ["geometry"]].assign(dist_m=b[col], covered=b[col] <= level_m)
    grids = None
    if result.grids is not None:
        cov = result.coverage
        share = cov[(cov.group_by == "grid_id") & (cov.category == category)
                    & (cov.level_m == float(level_m))][["group", "share"]]
        grids = result.grids.merge(share.rename(columns={"group": "grid_id"}), on="grid_id",
                                   how="left").to_crs(4326)
    return {"isochrones": iso.to_crs(4326), "buildings": buildings.to_crs(4326),
            "grids": grids, "label_zh": result.label_zh}


def zone_coverage(result: AccessResult, zones: gpd.GeoDataFrame, *, key: str, category: str,
                  level_m: float) -> gpd.GeoDataFrame:
    """*zones* (polygons with a *key* column: ``grid_id`` or ``community_id``) in WGS84 with
    ``households``, ``covered_households`` and ``share`` of *category* within *level_m*.

    The shares come from ``result.coverage`` grouped by *key*; a zone without households
    gets NaN share. *category* may be ``"complete"`` (the whole circle of that level).
    """
    if key not in zones.columns:
        raise LayerError(f"zone_coverage: the zones have no {key!r} column; pass key=... "
                         f"(columns: {', '.join(map(str, zones.columns))})")
    cov = result.coverage
    rows = cov[(cov.group_by == key) & (cov.category == category)
               & (cov.level_m == float(level_m))][["group", "households", "covered_households",
                                                  "share"]]
    out = zones.merge(rows.rename(columns={"group": key}), on=key, how="left")
    out["households"] = out["households"].fillna(0.0)
    out["covered_households"] = out["covered_households"].fillna(0.0)
    return out.to_crs(4326)
