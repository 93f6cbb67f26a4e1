"""Recognise the columns of real map data: ids, floors, heights, road classes, POI kinds.

Files people bring rarely use the canonical names of :mod:`geo.layers`. This module
maps the common ones (``Floor``, ``层数``, ``building:levels``, ``height``, ``kind``
…) and chooses each layer's id: the canonical id column when present, else the first
unique ``id`` / ``fid`` / ``osm_id`` column, else the feature id. OSM-derived tile
layers (columns ``id``, ``kind``, ``kind_detail``, as in ``shanghai_bund_osm.gpkg``) go
through :func:`geo.osm.normalise_osm_columns`. Explicit renames (``--field``) always
win: a column already mapped is never touched.

Every choice is returned as an :class:`~geo.issues.Issue` (code ``columns_recognised``)
so that the import report and the console say which column became what.

Examples
--------
>>> import geopandas as gpd, shapely
>>> gdf = gpd.GeoDataFrame({"Id": [0, 0], "Floor": [3, 5]},
...                        geometry=[shapely.box(0, 0, 1, 1), shapely.box(2, 0, 3, 1)], crs=4326)
>>> out, notes = recognise_columns(gdf, kind="buildings")
>>> list(out["building_id"]), list(out["floors"])
(['1', '2'], [3, 5])
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import geopandas as gpd
import pandas as pd

from geo.issues import Issue
from geo.layers import SCHEMAS
from geo.osm import normalise_osm_columns

__all__ = ["ID_CANDIDATES", "COLUMN_ALIASES", "LAYER_ALIASES", "recognise_columns", "layer_for_kind"]

log = logging.getLogger(__name__)

#: Columns tried, in order (case-insensitive), as a layer's id when its canonical id is missing.
ID_CANDIDATES: tuple[str, ...] = ("id", "fid", "osm_id", "objectid", "编号")

#: Canonical column -> common source names (case-insensitive), per layer, first match wins.
COLUMN_ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "buildings": {
        "floors": ("floors", "floor", "building:levels", "building_levels", "levels", "层数", "楼层数"),
        "height_m": ("height", "height_m", "高度"),
        "households": ("户数", "households_count"),
        "use": ("building_use", "用途"),
        "name": ("名称", "楼栋名称"),
    },
    "streets": {
        "road_class": ("kind", "highway", "fclass", "道路等级"),
        "name": ("名称", "道路名称"),
    },
    "service_points": {
        "category": ("kind", "amenity", "fclass", "type", "类型", "类别"),
        "name": ("名称",),
    },
    "compounds": {"name": ("名称", "小区名称")},
    "communities": {"name": ("名称", "社区名称")},
}

#: Layer names of a multi-layer file that mean a kind (after the kind's own name).
LAYER_ALIASES: dict[str, tuple[str, ...]] = {
    "communities": ("communities", "community", "社区"),
    "buildings": ("buildings", "building", "楼栋", "建筑"),
    "streets": ("streets", "street", "roads", "road", "道路"),
    "compounds": ("compounds", "compound", "小区", "landuse"),
    "service_points": ("service_points", "services", "pois", "poi", "服务点", "设施"),
}

# Values of a tile-schema ``kind`` column that mark an OSM-derived layer.
_OSM_KINDS: dict[str, frozenset[str]] = {
    "buildings": frozenset({"building", "building_part"}),
    "streets": frozenset({"major_road", "minor_road", "highway", "path", "rail", "ferry"}),
    "compounds": frozenset({"residential", "park", "school", "hospital", "industrial", "commercial"}),
}


def layer_for_kind(layers: list[str], kind: str) -> str | None:
    """The layer of *layers* named after *kind* (see :data:`LAYER_ALIASES`), or None."""
    lower = {name.lower(): name for name in layers}
    return next((lower[a] for a in LAYER_ALIASES.get(kind, (kind,)) if a in lower), None)


def _find(columns: list[str], names: tuple[str, ...]) -> str | None:
    lower: dict[str, str] = {}
    for c in columns:
        lower.setdefault(c.lower(), c)
    return next((lower[n.lower()] for n in names if n.lower() in lower), None)


def _is_osm_tile_layer(gdf: pd.DataFrame, kind: str) -> bool:
    if not {"id", "kind"} <= set(gdf.columns) or SCHEMAS[kind].id_column in gdf.columns:
        return False
    if kind == "service_points":
        return True
    values = set(gdf["kind"].dropna().astype(str).unique())
    return bool(values) and bool(values & _OSM_KINDS.get(kind, frozenset()))


def _note(kind: str, problem: str, fix: str, severity: str = "repaired") -> Issue:
    log.info("%s: %s", kind, problem)
    return Issue(kind, None, "columns_recognised", problem, fix, severity)


def _choose_id(gdf: gpd.GeoDataFrame, kind: str) -> tuple[gpd.GeoDataFrame, Issue]:
    idc = SCHEMAS[kind].id_column
    cols = [str(c) for c in gdf.columns if c != gdf.geometry.name]
    tried: list[str] = []
    for name in ID_CANDIDATES:
        col = _find(cols, (name,))
        if col is None or col in tried:
            continue
        tried.append(col)
        values = gdf[col]
        if values.notna().all() and not values.astype(str).duplicated().any():
            out = gdf.rename(columns={col: idc})
            return out, _note(kind, f"no {idc} column: used the unique column {col!r} as {idc}",
                              f"to use another column pass --field {kind}:<column>={idc}")
    why = (f"column(s) {', '.join(map(repr, tried))} are not unique" if tried
           else "no id/fid/osm_id column")
    fids = pd.Series(gdf.index, index=gdf.index)
    if not (pd.api.types.is_integer_dtype(fids) and fids.is_unique and (fids >= 0).all()):
        fids = pd.Series(range(len(gdf)), index=gdf.index)
    out = gdf.copy()
    out[idc] = (fids + (1 if fids.min() == 0 else 0) if len(fids) else fids).astype(str)
    return out, _note(kind, f"no {idc} column and {why}: used the feature id (1, 2, …) as {idc}",
                      f"ids change when the file is re-exported; give a unique {idc} or pass "
                      f"--field {kind}:<column>={idc}", "warning")


def _alias_columns(gdf: gpd.GeoDataFrame, kind: str) -> tuple[gpd.GeoDataFrame, list[Issue]]:
    renames: dict[str, str] = {}
    cols = [str(c) for c in gdf.columns if c != gdf.geometry.name]
    for canonical, names in COLUMN_ALIASES.get(kind, {}).items():
        if canonical in gdf.columns:
            continue
        src = _find([c for c in cols if c not in renames], names)
        if src is not None and src != canonical:
            renames[src] = canonical
    if not renames:
        return gdf, []
    text = ", ".join(f"{s!r} as {d}" for s, d in renames.items())
    return gdf.rename(columns=renames), [_note(kind, f"read column(s) {text}",
                                               f"to map them otherwise pass --field {kind}:<column>=<name>")]


def recognise_columns(gdf: gpd.GeoDataFrame, *, kind: str,
                      mapped: Mapping[str, str] | None = None) -> tuple[gpd.GeoDataFrame, list[Issue]]:
    """*gdf* with common column names mapped to the canonical ones of layer *kind*.

    Parameters
    ----------
    gdf : GeoDataFrame
        A layer as read (after explicit renames); not modified.
    kind : str
        Canonical layer name (:data:`geo.layers.LAYER_NAMES`).
    mapped : mapping, optional
        The explicit renames already applied (``{source: canonical}``); their targets are
        left alone.

    Returns
    -------
    (GeoDataFrame, list of Issue)
        The layer with an id column always present, and one ``columns_recognised`` issue
        per choice made (``repaired``; ``warning`` when the feature id had to be used).
    """
    if kind not in SCHEMAS:
        raise ValueError(f"recognise_columns: unknown layer kind {kind!r}; use one of {', '.join(SCHEMAS)}")
    notes: list[Issue] = []
    explicit = set((mapped or {}).values())
    if not explicit and _is_osm_tile_layer(gdf, kind):
        n = len(gdf)
        gdf = normalise_osm_columns(gdf, kind=kind)
        notes.append(_note(kind, f"OpenStreetMap tile layer (id, kind, kind_detail): mapped to the "
                                 f"canonical columns, kept {len(gdf)} of {n} features",
                           "map columns yourself with --field to read it otherwise"))
    else:
        gdf, found = _alias_columns(gdf, kind)
        notes += found
    if SCHEMAS[kind].id_column not in gdf.columns:
        gdf, note = _choose_id(gdf, kind)
        notes.append(note)
    return gdf, notes
