"""Which grid is this point or building in: a vectorised index over the active grids.

Pure geometry: grids and points in, grid ids and *how* each was found out. The service
(``api.grids.service``) loads the published grids and hands them here.

Stable identity of a grid (DOMAIN.md §11): a grid is identified by its **code**. A re-plan
keeps an old code where the old grid's territory survives, judged by shared buildings: the
old code survives when a grid of the new plan carries the same code and holds the largest
share of the old grid's buildings; otherwise the code is retired (never reused) and
:func:`code_succession` says where its buildings went. Records about people hang on
buildings, never on grids, so they follow their building into its new grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from geo.crs import local_metric_crs
from geo.errors import LayerError
from geo.settings import DEFAULTS

__all__ = ["HOW", "GridIndex", "PointGrids", "code_succession"]

#: Values of the ``how`` column: found inside a grid, within the tolerance of one,
#: by the nearest-grid fallback, or not at all.
HOW: tuple[str, ...] = ("inside", "within_tolerance", "nearest", "none")


@dataclass(frozen=True)
class PointGrids:
    """Grid of each point as arrays (no DataFrame: a request locating one point stays cheap)."""

    #: Grid id of each point, ``None`` where none was found.
    grid_id: np.ndarray
    #: How each was found (see :data:`HOW`).
    how: np.ndarray
    #: Distance to the grid in metres (0 inside, NaN for none).
    distance_m: np.ndarray

    def frame(self) -> pd.DataFrame:
        """Columns ``grid_id``, ``how``, ``distance_m``."""
        return _frame(self.grid_id, self.how, self.distance_m)


@dataclass(frozen=True)
class GridIndex:
    """An STRtree over grid polygons in a local metric CRS.

    Build with :meth:`from_grids`; ``ids`` are the values of *id_column* in tree order.
    """

    ids: np.ndarray
    geoms: np.ndarray
    tree: shapely.STRtree
    crs: object

    @classmethod
    def from_grids(cls, grids: gpd.GeoDataFrame, *, id_column: str = "grid_id", configured_crs: str = "") -> GridIndex:
        """Index *grids* (any CRS with a defined ``crs``) by *id_column*.

        Examples
        --------
        >>> from shapely.geometry import box
        >>> g = gpd.GeoDataFrame({"grid_id": ["a"]}, geometry=[box(121.47, 31.23, 121.48, 31.24)], crs=4326)
        >>> GridIndex.from_grids(g).grid_of_points([121.475], [31.235])["grid_id"].tolist()
        ['a']
        """
        if grids.crs is None:
            raise LayerError("GridIndex.from_grids: grids have no CRS; set one with set_crs()")
        if id_column not in grids.columns:
            raise LayerError(f"GridIndex.from_grids: no column {id_column!r} in grids; pass id_column=")
        if len(grids) == 0:
            crs = grids.crs
            return cls(np.array([], dtype=object), np.array([], dtype=object), shapely.STRtree([]), crs)
        crs = local_metric_crs(grids, configured=configured_crs)
        metric = grids.to_crs(crs)
        geoms = np.asarray(metric.geometry.values, dtype=object)
        return cls(grids[id_column].astype(str).to_numpy(dtype=object), geoms, shapely.STRtree(geoms), crs)

    @cached_property
    def _from_wgs84(self) -> pyproj.Transformer:
        return pyproj.Transformer.from_crs(4326, self.crs, always_xy=True)

    def _metric_points(self, xs: np.ndarray, ys: np.ndarray, crs: object) -> np.ndarray:
        # pyproj on the coordinate arrays: a million points in ~0.5 s, against ~1.6 s through GeoSeries.to_crs.
        # Building a Transformer costs ~0.5 ms, more than locating a point (pyproj's are thread-safe).
        transformer = self._from_wgs84 if crs == 4326 else pyproj.Transformer.from_crs(crs, self.crs, always_xy=True)
        mx, my = transformer.transform(xs, ys)
        return shapely.points(np.asarray(mx, dtype=float), np.asarray(my, dtype=float))

    def grid_of_points(self, xs: np.ndarray | list[float], ys: np.ndarray | list[float],
                       **options: Any) -> pd.DataFrame:
        """Grid of every point: columns ``grid_id``, ``how`` (see :data:`HOW`) and ``distance_m``.

        Options as :meth:`locate` (``crs``, ``tolerance_m``, ``nearest_fallback``, ``nearest_max_m``).
        """
        return self.locate(xs, ys, **options).frame()

    def locate(
        self,
        xs: np.ndarray | list[float],
        ys: np.ndarray | list[float],
        *,
        crs: object = 4326,
        tolerance_m: float = DEFAULTS["grid_point_tolerance_m"],
        nearest_fallback: bool = True,
        nearest_max_m: float = DEFAULTS["grid_nearest_max_m"],
    ) -> PointGrids:
        """Grid of every point as arrays (:class:`PointGrids`; :meth:`grid_of_points` as a DataFrame).

        A point inside several grids (a shared edge) takes the first in index order.
        Points farther than *tolerance_m* from every grid get the nearest grid within
        *nearest_max_m* when *nearest_fallback* is on, and ``how == "nearest"`` says so.

        Examples
        --------
        >>> from shapely.geometry import box
        >>> g = gpd.GeoDataFrame({"grid_id": ["a"]}, geometry=[box(121.47, 31.23, 121.48, 31.24)], crs=4326)
        >>> GridIndex.from_grids(g).locate([121.475, 121.6], [31.235, 31.3], nearest_fallback=False).grid_id.tolist()
        ['a', None]
        """
        x = np.asarray(xs, dtype=float)
        y = np.asarray(ys, dtype=float)
        if x.shape != y.shape:
            raise LayerError(f"grid_of_points: {x.size} x values but {y.size} y values; pass one x per y")
        x, y = x.ravel(), y.ravel()
        n = x.size
        grid = np.full(n, None, dtype=object)
        how = np.full(n, "none", dtype=object)
        dist = np.full(n, np.nan)
        if n == 0 or self.ids.size == 0:
            return PointGrids(grid, how, dist)
        pts = self._metric_points(x, y, crs)
        self._assign(pts, self.tree.query(pts, predicate="intersects"), grid, how, dist, "inside")
        rest = np.flatnonzero(how == "none")
        if rest.size and tolerance_m > 0:
            pairs = self.tree.query(pts[rest], predicate="dwithin", distance=tolerance_m)
            self._assign(pts[rest], pairs, grid, how, dist, "within_tolerance", rows=rest)
        rest = np.flatnonzero(how == "none")
        if rest.size and nearest_fallback:
            pairs, d = self.tree.query_nearest(pts[rest], max_distance=nearest_max_m or None,
                                               return_distance=True, all_matches=False)
            grid[rest[pairs[0]]] = self.ids[pairs[1]]
            how[rest[pairs[0]]] = "nearest"
            dist[rest[pairs[0]]] = d
        return PointGrids(grid, how, dist)

    def _assign(self, pts: np.ndarray, pairs: np.ndarray, grid: np.ndarray, how: np.ndarray,
                dist: np.ndarray, label: str, rows: np.ndarray | None = None) -> None:
        if pairs.shape[1] == 0:
            return
        # First match per point (pairs are sorted by input index).
        first = np.unique(pairs[0], return_index=True)[1]
        src, tgt = pairs[0][first], pairs[1][first]
        target = src if rows is None else rows[src]
        grid[target] = self.ids[tgt]
        how[target] = label
        # A point inside its grid is 0 m from it: the distance is only measured for the tolerance matches.
        dist[target] = 0.0 if label == "inside" else shapely.distance(pts[src], self.geoms[tgt])

    def grid_of_buildings(self, buildings: gpd.GeoDataFrame, *, tolerance_m: float = DEFAULTS["grid_point_tolerance_m"],
                          nearest_fallback: bool = True) -> pd.DataFrame:
        """Grid of each building by its representative point; index of *buildings* kept."""
        if buildings.crs is None:
            raise LayerError("grid_of_buildings: buildings have no CRS; set one with set_crs()")
        reps = buildings.geometry.representative_point()
        out = self.grid_of_points(reps.x.to_numpy(), reps.y.to_numpy(), crs=buildings.crs,
                                  tolerance_m=tolerance_m, nearest_fallback=nearest_fallback)
        out.index = buildings.index
        return out


def _frame(grid: np.ndarray, how: np.ndarray, dist: np.ndarray) -> pd.DataFrame:
    # object dtype keeps None for "no grid" (pandas 3 would infer str with NaN).
    return pd.DataFrame({"grid_id": pd.Series(grid, dtype=object), "how": pd.Series(how, dtype=object),
                         "distance_m": dist})


def code_succession(old: pd.Series, new: pd.Series) -> pd.DataFrame:
    """Old grid code → its successor across a re-plan, by shared buildings.

    Parameters
    ----------
    old, new
        Building id → grid code in the old and the new plan.

    Returns
    -------
    DataFrame
        One row per old code: ``old_code``, ``successor`` (the new code holding most of its
        buildings, ``None`` when all are gone), ``shared`` (buildings it holds), ``buildings``
        (of the old grid) and ``status``: ``"kept"`` when the successor carries the same
        code, ``"retired"`` otherwise.

    Examples
    --------
    >>> old = pd.Series({"b1": "A", "b2": "A", "b3": "B"})
    >>> new = pd.Series({"b1": "A", "b2": "C", "b3": "C"})
    >>> code_succession(old, new)[["old_code", "successor", "status"]].values.tolist()
    [['A', 'A', 'kept'], ['B', 'C', 'retired']]
    """
    joined = pd.DataFrame({"old_code": old}).join(pd.DataFrame({"new_code": new}), how="left")
    sizes = joined.groupby("old_code").size().rename("buildings")
    shared = joined.dropna(subset=["new_code"]).groupby(["old_code", "new_code"]).size().rename("shared")
    best = (shared.reset_index().sort_values(["old_code", "shared", "new_code"], ascending=[True, False, True])
            .drop_duplicates("old_code").set_index("old_code"))
    out = pd.DataFrame({"buildings": sizes}).join(best).reset_index()
    out["successor"] = out["new_code"].astype(object).where(out["new_code"].notna(), None)
    out["shared"] = out["shared"].fillna(0).astype(int)
    out["status"] = np.where(out["successor"] == out["old_code"], "kept", "retired")
    return out[["old_code", "successor", "shared", "buildings", "status"]].reset_index(drop=True)
