"""Quality measures of a grid plan, the same for Wangge and for its peers (issue 3 bench).

Pure functions on geometries and numbers: compactness (Polsby–Popper), how much of the
grid-to-grid boundary runs along streets, non-contiguous grids and the share of grids
whose households fall in range. The boundary measure works on pieces of the grid
outlines no longer than half the tolerance, so it is exact to within a few metres at the
ends of a street and scales to a million buildings (vectorised shapely 2 + STRtree).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.crs import require_metric
from geo.errors import LayerError

__all__ = ["polsby_popper", "street_boundary_share", "non_contiguous_count", "share_in_range",
           "grid_quality", "footprint_share_inside"]

log = logging.getLogger(__name__)

# Two grid outlines closer than this share the edge (coordinates of shared edges are equal
# up to floating-point noise; a street is never this close to a parallel edge by accident).
_SAME_EDGE_M = 0.01
# Pieces of boundary are processed in chunks of this many, to bound memory at 1 M buildings.
_CHUNK = 2_000_000


def _geoms(grids: gpd.GeoDataFrame | gpd.GeoSeries | Iterable[Any]) -> np.ndarray:
    if isinstance(grids, gpd.GeoDataFrame | gpd.GeoSeries):
        return np.asarray(grids.geometry.values, dtype=object)
    return np.asarray(list(grids), dtype=object)


def polsby_popper(geoms: gpd.GeoDataFrame | gpd.GeoSeries | Iterable[Any]) -> np.ndarray:
    """Polsby–Popper compactness ``4πA / P²`` per geometry (1 for a disc; NaN when empty).

    Examples
    --------
    >>> from shapely.geometry import box
    >>> polsby_popper([box(0, 0, 1, 1)]).round(3)
    array([0.785])
    """
    g = _geoms(geoms)
    area = shapely.area(g)
    perim = shapely.length(shapely.boundary(g)) if len(g) else np.empty(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        pp = 4.0 * np.pi * area / perim**2
    return np.where(perim > 0, pp, np.nan)


def non_contiguous_count(grids: gpd.GeoDataFrame | gpd.GeoSeries | Iterable[Any]) -> int:
    """Number of grids made of more than one polygon.

    Examples
    --------
    >>> from shapely.geometry import MultiPolygon, box
    >>> non_contiguous_count([box(0, 0, 1, 1), MultiPolygon([box(0, 0, 1, 1), box(2, 0, 3, 1)])])
    1
    """
    g = _geoms(grids)
    if len(g) == 0:
        return 0
    parts, idx = shapely.get_parts(g, return_index=True)
    poly = shapely.get_type_id(parts) == 3  # Polygon
    return int((np.bincount(idx[poly], minlength=len(g)) > 1).sum())


def share_in_range(households: Iterable[float], lo: float, hi: float) -> float:
    """Share of values in ``[lo, hi]`` (NaN for none).

    Examples
    --------
    >>> share_in_range([250, 300, 450, 500, 501], 300, 500)
    0.6
    """
    h = np.asarray(list(households) if not isinstance(households, np.ndarray) else households,
                   dtype=float)
    if len(h) == 0:
        return float("nan")
    return float(((h >= lo) & (h <= hi)).mean())


def _segments(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start points, end points and owner index of every straight segment of the outlines."""
    lines = shapely.boundary(geoms) if len(geoms) else np.empty(0, dtype=object)
    parts, owner = shapely.get_parts(lines, return_index=True)
    xy, line = shapely.get_coordinates(parts, return_index=True)
    same = line[1:] == line[:-1]
    return xy[:-1][same], xy[1:][same], owner[line[:-1][same]]


def _pieces(a: np.ndarray, b: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Midpoints and lengths of equal pieces (≤ *step*) of the segments a→b."""
    seg_len = np.hypot(*(b - a).T)
    n = np.maximum(1, np.ceil(seg_len / step)).astype(np.int64)
    seg = np.repeat(np.arange(len(a)), n)
    k = np.arange(len(seg)) - np.repeat(np.cumsum(n) - n, n)
    t = ((k + 0.5) / n[seg])[:, None]
    return a[seg] + t * (b[seg] - a[seg]), (seg_len / n)[seg]


def _street_tree(streets: gpd.GeoDataFrame | gpd.GeoSeries) -> shapely.STRtree:
    lines = np.asarray(streets.geometry.values, dtype=object)
    parts = shapely.get_parts(lines[~shapely.is_empty(lines)])
    xy, line = shapely.get_coordinates(parts, return_index=True)
    same = line[1:] == line[:-1]
    a, b = xy[:-1][same], xy[1:][same]
    return shapely.STRtree(shapely.linestrings(np.stack([a, b], axis=1)))


def street_boundary_share(grids: gpd.GeoDataFrame | gpd.GeoSeries,
                          streets: gpd.GeoDataFrame | gpd.GeoSeries, *,
                          tolerance_m: float = 5.0) -> float:
    """Share of grid-to-grid boundary length lying within *tolerance_m* of a street line.

    Grid-to-grid boundary is where two grids share an edge; the outer boundary of the
    plan (the community outline, or the edge of a gap) is left out. Both layers must be in
    the same metric CRS.

    Parameters
    ----------
    grids : GeoDataFrame or GeoSeries
        Grid polygons (a tiling; MultiPolygons allowed).
    streets : GeoDataFrame or GeoSeries
        Street centre lines.
    tolerance_m : float
        Distance from a street line within which boundary counts as "on the street".

    Returns
    -------
    float
        In ``[0, 1]``; NaN when no two grids share an edge.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import LineString, box
    >>> g = gpd.GeoSeries([box(0, 0, 100, 100), box(100, 0, 200, 100)], crs="EPSG:32651")
    >>> s = gpd.GeoSeries([LineString([(102, -10), (102, 110)])], crs="EPSG:32651")
    >>> street_boundary_share(g, s)
    1.0
    """
    require_metric(grids, func="street_boundary_share")
    if tolerance_m <= 0:
        raise LayerError(f"street_boundary_share: tolerance_m must be > 0; got {tolerance_m!r}")
    if streets is not None and streets.crs != grids.crs:
        raise LayerError(f"street_boundary_share: layer 'streets' is in {streets.crs}, grids in "
                         f"{grids.crs}; use streets.to_crs(grids.crs)")
    a, b, owner = _segments(np.asarray(grids.geometry.values, dtype=object))
    seg_tree = shapely.STRtree(shapely.linestrings(np.stack([a, b], axis=1)))
    st_tree = _street_tree(streets) if streets is not None and len(streets) else None
    inner = near = 0.0
    step = tolerance_m / 2.0
    cum = np.cumsum(np.maximum(1, np.ceil(np.hypot(*(b - a).T) / step)))
    cuts = np.searchsorted(cum, np.arange(_CHUNK, cum[-1] if len(cum) else 0, _CHUNK))
    edges = np.unique(np.r_[0, cuts, len(a)])
    for lo_i, hi_i in zip(edges[:-1], edges[1:], strict=True):
        mid, plen = _pieces(a[lo_i:hi_i], b[lo_i:hi_i], step)
        pts = shapely.points(mid)
        pi, sj = seg_tree.query(pts, predicate="dwithin", distance=_SAME_EDGE_M)
        width = np.int64(owner.max() + 1)
        grid_of_piece = np.unique(pi.astype(np.int64) * width + owner[sj]) // width
        shared = np.bincount(grid_of_piece, minlength=len(pts)) >= 2
        inner += float(plen[shared].sum())
        if st_tree is not None and shared.any():
            idx = np.flatnonzero(shared)
            qi, _ = st_tree.query(pts[idx], predicate="dwithin", distance=tolerance_m)
            near += float(plen[idx[np.unique(qi)]].sum())
    return near / inner if inner > 0 else float("nan")


def grid_quality(grids: gpd.GeoDataFrame, streets: gpd.GeoDataFrame | None, *, lo: float,
                 hi: float) -> dict[str, float]:
    """The bench's quality columns for one plan.

    Parameters
    ----------
    grids : GeoDataFrame
        Grid polygons with a ``households`` column, in a metric CRS.
    streets : GeoDataFrame, optional
        Street lines (same CRS); without them ``street_share`` is NaN.
    lo, hi : float
        Household bounds of a grid.

    Returns
    -------
    dict
        ``grids`` (count), ``share_in_range``, ``non_contiguous``, ``mean_polsby_popper``,
        ``street_share`` (see :func:`street_boundary_share`, 5 m).
    """
    require_metric(grids, func="grid_quality")
    if "households" not in grids.columns:
        raise LayerError("grid_quality: layer 'grids' has no column 'households'; "
                         "sum the households of each grid's buildings first")
    pp = polsby_popper(grids)
    out = {
        "grids": int(len(grids)),
        "share_in_range": share_in_range(grids["households"].to_numpy(dtype=float), lo, hi),
        "non_contiguous": non_contiguous_count(grids),
        "mean_polsby_popper": float(np.nanmean(pp)) if np.isfinite(pp).any() else float("nan"),
        "street_share": (street_boundary_share(grids, streets)
                         if streets is not None and len(grids) > 1 else float("nan")),
    }
    log.info("quality of %d grids: %.3f in range, %d non-contiguous", out["grids"],
             out["share_in_range"], out["non_contiguous"])
    return out


def footprint_share_inside(buildings: gpd.GeoDataFrame, grids: gpd.GeoDataFrame,
                           assignment: pd.Series) -> pd.Series:
    """Share of every building's footprint area that lies inside its own grid.

    Parameters
    ----------
    buildings : GeoDataFrame
        Footprints with ``building_id``, in a metric CRS.
    grids : GeoDataFrame
        Grid polygons with ``grid_id`` (any CRS; brought to the buildings' CRS).
    assignment : Series
        building_id → grid_id of the plan.

    Returns
    -------
    Series
        ``footprint_share_inside`` indexed by building_id (1.0 = whole footprint in its
        grid; NaN for footprints without area; 0.0 for buildings without a grid).

    Examples
    --------
    >>> import geopandas as gpd, pandas as pd
    >>> from shapely.geometry import box
    >>> b = gpd.GeoDataFrame({"building_id": ["a"]}, geometry=[box(8, 0, 12, 1)], crs="EPSG:32651")
    >>> g = gpd.GeoDataFrame({"grid_id": ["G"]}, geometry=[box(0, 0, 10, 10)], crs="EPSG:32651")
    >>> footprint_share_inside(b, g, pd.Series({"a": "G"})).round(2).tolist()
    [0.5]
    """
    require_metric(buildings, func="footprint_share_inside")
    own = grids.to_crs(buildings.crs).set_index("grid_id").geometry
    gid = pd.Series(buildings["building_id"].astype(str).to_numpy()).map(assignment)
    fp = np.asarray(buildings.geometry.values, dtype=object)
    area = shapely.area(fp)
    has = gid.isin(own.index).to_numpy()
    inside = np.zeros(len(fp))
    if has.any():
        inside[has] = shapely.area(shapely.intersection(fp[has], own.loc[gid[has]].to_numpy()))
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(area > 0, inside / area, np.nan)
    return pd.Series(share, index=buildings["building_id"].astype(str).to_numpy(), name="footprint_share_inside")
