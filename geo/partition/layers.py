"""The inputs of a partition, checked and in metres, and the per-building arrays cells are built from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from geo.crs import local_metric_crs
from geo.errors import CRSError, LayerError
from geo.partition.cells import Barriers, BuildingArrays

__all__ = ["ALL_COMMUNITY", "MetricLayers", "LockedPart", "PlanInputs", "check_buildings", "metric_crs",
           "metric_layers", "locate", "anchor_points", "building_communities", "building_arrays",
           "barriers_of"]

#: community_id of the one community made from the buildings' extent when none are given.
ALL_COMMUNITY = "ALL"


@dataclass(frozen=True)
class MetricLayers:
    """The layers of one run in a metric CRS.

    Attributes
    ----------
    buildings : GeoDataFrame
        building_id (str), households, optional use, compound_id, community_id, exclusive;
        index 0..n-1.
    communities : GeoDataFrame
        community_id (str), valid outlines (the buildings' extent when none were given).
    streets, compounds : GeoDataFrame or None
        None when not given or empty.
    crs : CRS
        The metric CRS of every layer.
    communities_given : bool
        Whether communities were given, so a building's own ``community_id`` names one.
    """

    buildings: gpd.GeoDataFrame
    communities: gpd.GeoDataFrame
    streets: gpd.GeoDataFrame | None
    compounds: gpd.GeoDataFrame | None
    crs: Any
    communities_given: bool


@dataclass(frozen=True)
class LockedPart:
    """Locked grids of a previous plan (metric) and their buildings (building_id → grid_id)."""

    grids: gpd.GeoDataFrame
    assignment: pd.Series


@dataclass(frozen=True)
class PlanInputs:
    """One run's layers with the locked grids set aside: what is left to plan."""

    layers: MetricLayers
    free_buildings: gpd.GeoDataFrame
    free_communities: gpd.GeoDataFrame
    locked: LockedPart


def check_buildings(buildings: gpd.GeoDataFrame) -> None:
    """Raise :class:`~geo.errors.LayerError` naming the fix when *buildings* cannot be partitioned."""
    for col in ("building_id", "households"):
        if col not in buildings.columns:
            raise LayerError(f"partition_grids: layer 'buildings' has no column {col!r}; "
                             f"map your column with field_map={{'your_column': '{col}'}}")
    if buildings.empty:
        raise LayerError("partition_grids: layer 'buildings' is empty; import buildings first")
    if buildings["building_id"].duplicated().any():
        dup = buildings.loc[buildings["building_id"].duplicated(), "building_id"].iloc[0]
        raise LayerError(f"partition_grids: layer 'buildings' repeats building_id {dup!r}; ids must be unique")
    h = pd.to_numeric(buildings["households"], errors="coerce")
    if h.isna().any() or (h < 0).any():
        bad = buildings.loc[h.isna() | (h < 0), "building_id"].iloc[0]
        raise LayerError(f"partition_grids: building {bad!r} has households "
                         f"{buildings.set_index('building_id').at[bad, 'households']!r}; "
                         "give a non-negative number (or estimate with geo.households)")


def metric_crs(buildings: gpd.GeoDataFrame, local_crs: str) -> CRS:
    """The CRS to plan in: the buildings' own when projected, else the local metric CRS."""
    if buildings.crs is None:
        raise CRSError("partition_grids: layer 'buildings' has no CRS; use set_crs() (e.g. 'EPSG:4326')")
    if buildings.crs.is_projected:
        return buildings.crs
    return local_metric_crs(buildings, configured=local_crs)


def _community_layer(communities: gpd.GeoDataFrame | None, buildings: gpd.GeoDataFrame, crs: Any,
                     margin: float) -> gpd.GeoDataFrame:
    if communities is None or communities.empty:
        minx, miny, maxx, maxy = buildings.total_bounds
        geom = shapely.box(minx - margin, miny - margin, maxx + margin, maxy + margin)
        return gpd.GeoDataFrame({"community_id": [ALL_COMMUNITY]}, geometry=[geom], crs=crs)
    if "community_id" not in communities.columns:
        raise LayerError("partition_grids: layer 'communities' has no column 'community_id'")
    layer = communities.to_crs(crs).reset_index(drop=True)
    layer["community_id"] = layer["community_id"].astype(str)
    layer["geometry"] = shapely.make_valid(layer.geometry.values)
    return layer


def _metric_or_none(layer: gpd.GeoDataFrame | None, crs: Any) -> gpd.GeoDataFrame | None:
    return layer.to_crs(crs) if layer is not None and not layer.empty else None


def metric_layers(buildings: gpd.GeoDataFrame, communities: gpd.GeoDataFrame | None,
                  streets: gpd.GeoDataFrame | None, compounds: gpd.GeoDataFrame | None, *, crs: Any,
                  margin: float) -> MetricLayers:
    """Every layer in *crs*; without communities, the buildings' extent plus *margin* is one.

    *buildings* must already be in *crs* with string ids and a 0..n-1 index.
    """
    return MetricLayers(buildings, _community_layer(communities, buildings, crs, margin),
                        _metric_or_none(streets, crs), _metric_or_none(compounds, crs), crs,
                        communities is not None)


def locate(points: np.ndarray, polygons: np.ndarray, given: np.ndarray | None) -> np.ndarray:
    """Index of the polygon holding every point (the given index when valid, else nearest)."""
    out = np.full(len(points), -1)
    if given is not None:
        out = given.copy()
    todo = np.flatnonzero(out < 0)
    if len(todo):
        tree = shapely.STRtree(polygons)
        pts = shapely.points(points[todo])
        qi, qj = tree.query(pts, predicate="within")
        out[todo[qi[::-1]]] = qj[::-1]
        rest = todo[out[todo] < 0]
        if len(rest):
            qi, qj = tree.query_nearest(shapely.points(points[rest]))
            out[rest[qi[::-1]]] = qj[::-1]
    return out


def anchor_points(buildings: gpd.GeoDataFrame) -> np.ndarray:
    """(N, 2) a point on the surface of every footprint."""
    return shapely.get_coordinates(shapely.point_on_surface(buildings.geometry.values))


def building_communities(buildings: gpd.GeoDataFrame, communities: gpd.GeoDataFrame, anchors: np.ndarray, *,
                         use_given: bool) -> np.ndarray:
    """Row of *communities* every building lies in: its own ``community_id`` when *use_given*
    and known, else the community holding (or nearest to) its anchor."""
    given = None
    if use_given and "community_id" in buildings.columns:
        row = {c: i for i, c in enumerate(communities["community_id"])}
        given = buildings["community_id"].astype(str).map(row).fillna(-1).astype(np.int64).to_numpy()
    return locate(anchors, communities.geometry.values, given)


def _compound_codes(buildings: gpd.GeoDataFrame, compounds: gpd.GeoDataFrame | None,
                    anchors: np.ndarray) -> np.ndarray:
    """Integer compound code per building (-1 none), from ``compound_id`` or by location."""
    vals = buildings["compound_id"] if "compound_id" in buildings.columns else \
        pd.Series([None] * len(buildings), index=buildings.index)
    vals = vals.astype(object).where(vals.notna() & (vals.astype(str) != ""), None)
    if compounds is not None and vals.isna().all():
        qi, qj = shapely.STRtree(compounds.geometry.values).query(shapely.points(anchors), predicate="within")
        got = np.full(len(buildings), None, dtype=object)
        got[qi[::-1]] = compounds["compound_id"].astype(str).to_numpy()[qj[::-1]]
        vals = pd.Series(got, index=buildings.index)
    codes, _ = pd.factorize(vals.astype(object).where(vals.notna(), None), use_na_sentinel=True)
    return codes.astype(np.int64)


def _exclusive_codes(buildings: gpd.GeoDataFrame, uses: Sequence[str]) -> np.ndarray:
    """Use code of every building of an exclusive use (or flagged ``exclusive``), -1 otherwise."""
    use = buildings["use"].astype(str) if "use" in buildings.columns else \
        pd.Series("residential", index=buildings.index)
    flag = use.isin(list(uses)).to_numpy()
    if "exclusive" in buildings.columns:
        flag |= buildings["exclusive"].fillna(False).astype(bool).to_numpy()
    codes, _ = pd.factorize(use)
    return np.where(flag, codes, -1).astype(np.int64)


def building_arrays(buildings: gpd.GeoDataFrame, community: np.ndarray, anchors: np.ndarray,
                    compounds: gpd.GeoDataFrame | None, exclusive_uses: Sequence[str]) -> BuildingArrays:
    """The per-building arrays :func:`~geo.partition.cells.tessellate` builds cells from."""
    return BuildingArrays(footprints=buildings.geometry.values, anchors=anchors, community=community,
                          households=pd.to_numeric(buildings["households"]).to_numpy(dtype=np.float64),
                          compound=_compound_codes(buildings, compounds, anchors),
                          exclusive=_exclusive_codes(buildings, exclusive_uses))


def barriers_of(communities: gpd.GeoDataFrame, streets: gpd.GeoDataFrame | None,
                compounds: gpd.GeoDataFrame | None) -> Barriers:
    """Community outlines, streets (``road_class == 'major'`` marked) and compound walls as arrays."""
    lines = streets.geometry.values if streets is not None else np.empty(0, dtype=object)
    major = (streets["road_class"].astype(str) == "major").to_numpy() \
        if streets is not None and "road_class" in streets else np.zeros(len(lines), dtype=bool)
    walls = compounds.geometry.values if compounds is not None else np.empty(0, dtype=object)
    return Barriers(communities.geometry.values, lines, major, walls)
