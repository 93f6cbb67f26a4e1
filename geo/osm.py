"""OpenStreetMap input: read OSM PBF extracts and map OSM tags to canonical layers.

Two sources are handled:

* raw OSM PBF extracts, read with pyosmium (:func:`read_osm_pbf`);
* OSM-derived vector-tile style layers such as ``shanghai_bund_osm.gpkg`` whose columns
  are ``id``, ``kind``, ``kind_detail``, ``name``, ``height`` (:func:`normalise_osm_columns`).

Both produce the canonical columns of :mod:`geo.layers` (ids are strings; OSM PBF ids
are prefixed ``n``/``w``/``r`` by element type). Tag mappings are module-level tables so
that a city can extend them.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable
from os import PathLike
from typing import Any

import geopandas as gpd
import numpy as np
import osmium
import pandas as pd
import shapely

from geo.errors import LayerError, ReadError

__all__ = [
    "OSM_KINDS",
    "BUILDING_USE_BY_OSM",
    "ROAD_CLASS_BY_HIGHWAY",
    "building_use_from_osm",
    "road_class_from_osm",
    "read_osm_pbf",
    "normalise_osm_columns",
    "read_osm_extract",
]

log = logging.getLogger(__name__)

#: Canonical layers an OSM source can provide.
OSM_KINDS: tuple[str, ...] = ("buildings", "streets", "service_points", "compounds")

_USES: dict[str, tuple[str, ...]] = {
    "residential": ("residential", "apartments", "house", "detached", "semidetached_house",
                    "terrace", "dormitory", "bungalow", "farm", "houseboat", "static_caravan"),
    "commercial": ("commercial", "retail", "mall", "supermarket", "hotel", "hostel", "bank",
                   "shop", "restaurant", "kiosk"),
    "office": ("office",),
    "market": ("market", "marketplace"),
    "school": ("school", "kindergarten", "university", "college"),
    "hospital": ("hospital", "clinic"),
    "industrial": ("industrial", "warehouse", "factory", "manufacture"),
    "public": ("public", "civic", "government", "townhall", "train_station", "transportation",
               "place_of_worship", "church", "temple", "mosque", "cathedral", "chapel", "shrine",
               "embassy", "arts_centre", "museum", "library", "community_centre", "fire_station",
               "police", "sports_centre", "stadium", "theatre", "cinema"),
}
#: OSM ``building=*`` (or ``kind_detail``) value -> canonical building use. Values not
#: listed map to ``other``; ``yes`` and missing stay missing (treated as residential).
BUILDING_USE_BY_OSM: dict[str, str] = {v: use for use, vals in _USES.items() for v in vals}

_ROADS: dict[str, tuple[str, ...]] = {
    "major": ("motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link"),
    "secondary": ("secondary", "secondary_link", "tertiary", "tertiary_link"),
    "minor": ("residential", "unclassified", "living_street", "road", "busway"),
    "lane": ("service", "track", "alley"),
    "path": ("footway", "path", "pedestrian", "steps", "cycleway", "bridleway", "corridor",
             "pier", "sidewalk", "crossing"),
}
#: OSM ``highway=*`` value -> road class. Values not listed (proposed, construction,
#: platform, raceway …) are not streets.
ROAD_CLASS_BY_HIGHWAY: dict[str, str] = {v: cls for cls, vals in _ROADS.items() for v in vals}

_RAILWAYS = frozenset({"rail", "light_rail", "narrow_gauge", "monorail", "funicular"})
_WATERWAYS = frozenset({"river", "canal", "stream", "drain", "ditch"})
_NOT_WALKABLE_HIGHWAYS = frozenset({"motorway", "motorway_link"})
_SERVICE_KEYS = ("amenity", "shop", "healthcare", "leisure")
#: Street furniture that is not a service point.
_NOT_SERVICES = frozenset({"bench", "waste_basket", "waste_disposal", "bicycle_parking",
                           "parking", "parking_space", "parking_entrance", "vending_machine",
                           "clock", "grit_bin", "hunting_stand", "yes"})
_KEY_FILTERS: dict[str, tuple[str, ...]] = {
    "buildings": ("building",),
    "streets": ("highway", "railway", "waterway"),
    "service_points": (*_SERVICE_KEYS, "highway"),
    "compounds": ("landuse",),
}
_COLUMNS: dict[str, tuple[str, ...]] = {
    "buildings": ("building_id", "name", "use", "floors", "height_m"),
    "streets": ("street_id", "name", "road_class", "foot"),
    "service_points": ("point_id", "name", "category"),
    "compounds": ("compound_id", "name"),
}
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


def building_use_from_osm(value: object) -> str | None:
    """Canonical use of an OSM building value; ``None`` for missing or ``yes``."""
    if not isinstance(value, str) or value.strip() in ("", "yes"):
        return None
    return BUILDING_USE_BY_OSM.get(value.strip().lower(), "other")


def road_class_from_osm(highway: object) -> str | None:
    """Road class of an OSM highway value; ``None`` when it is not a street."""
    if not isinstance(highway, str):
        return None
    return ROAD_CLASS_BY_HIGHWAY.get(highway.strip().lower())


def _number(value: str | None) -> float:
    """First number in an OSM value ("12", "12 m", "6;7"), else NaN; feet are converted."""
    if not value:
        return math.nan
    match = _NUMBER.search(value)
    if match is None:
        return math.nan
    number = float(match.group())
    return number * 0.3048 if ("ft" in value or "'" in value) else number


def _check_kind(kind: str, *, func: str) -> None:
    if kind not in OSM_KINDS:
        raise LayerError(
            f"{func}: OSM data has no {kind!r} layer; use one of {', '.join(OSM_KINDS)} "
            "(import communities from a GeoPackage, GeoJSON or Shapefile)"
        )


def _osm_id(obj: Any) -> str:
    if isinstance(obj, osmium.osm.Area):
        return f"{'w' if obj.from_way() else 'r'}{obj.orig_id()}"
    return f"{'n' if isinstance(obj, osmium.osm.Node) else 'w'}{obj.id}"


def _building(obj: Any, tags: osmium.osm.TagList) -> dict[str, Any] | None:
    if not isinstance(obj, osmium.osm.Area) or tags.get("building", "no") == "no":
        return None
    use = building_use_from_osm(tags.get("building"))
    if use in (None, "other"):  # building=yes + amenity=school etc.
        use = BUILDING_USE_BY_OSM.get(tags.get("amenity") or "") or use
    return {"name": tags.get("name"), "use": use,
            "floors": _number(tags.get("building:levels")), "height_m": _number(tags.get("height"))}


def _street(obj: Any, tags: osmium.osm.TagList) -> dict[str, Any] | None:
    if not isinstance(obj, osmium.osm.Way) or tags.get("area") == "yes":
        return None
    highway, railway, waterway = tags.get("highway"), tags.get("railway"), tags.get("waterway")
    if (cls := road_class_from_osm(highway)) is not None:
        foot = highway not in _NOT_WALKABLE_HIGHWAYS
        if tags.get("foot") in ("no", "private"):
            foot = False
        elif tags.get("foot") in ("yes", "designated", "permissive"):
            foot = True
    elif railway in _RAILWAYS and tags.get("tunnel", "no") == "no":
        cls, foot = "rail", False
    elif waterway in _WATERWAYS and tags.get("tunnel", "no") == "no":
        cls, foot = "water", False
    else:
        return None
    return {"name": tags.get("name"), "road_class": cls, "foot": foot}


def _service_point(obj: Any, tags: osmium.osm.TagList) -> dict[str, Any] | None:
    if not isinstance(obj, osmium.osm.Node | osmium.osm.Area):
        return None
    category = next((tags[k] for k in _SERVICE_KEYS if tags.get(k) not in (None, *_NOT_SERVICES)),
                    None)
    if category is None and tags.get("highway") == "bus_stop":
        category = "bus_stop"
    return None if category is None else {"name": tags.get("name"), "category": category}


def _compound(obj: Any, tags: osmium.osm.TagList) -> dict[str, Any] | None:
    if not isinstance(obj, osmium.osm.Area) or tags.get("landuse") != "residential":
        return None
    return {"name": tags.get("name")}


_RECORDERS = {"buildings": _building, "streets": _street,
              "service_points": _service_point, "compounds": _compound}


def _wkb(factory: osmium.geom.WKBFactory, obj: Any) -> str:
    if isinstance(obj, osmium.osm.Area):
        return factory.create_multipolygon(obj)
    if isinstance(obj, osmium.osm.Way):
        return factory.create_linestring(obj)
    return factory.create_point(obj)


def _processor(path: str, kind: str) -> osmium.FileProcessor:
    entities = {"streets": osmium.osm.WAY, "service_points": osmium.osm.NODE | osmium.osm.AREA}
    proc = osmium.FileProcessor(path).with_locations()
    if kind != "streets":
        proc = proc.with_areas()
    return (proc.with_filter(osmium.filter.EntityFilter(entities.get(kind, osmium.osm.AREA)))
            .with_filter(osmium.filter.KeyFilter(*_KEY_FILTERS[kind])))


def _collect(path: str, kind: str) -> tuple[list[dict[str, Any]], int]:
    recorder, factory = _RECORDERS[kind], osmium.geom.WKBFactory()
    rows: list[dict[str, Any]] = []
    broken = 0
    for obj in _processor(path, kind):
        record = recorder(obj, obj.tags)  # TagList.get is far cheaper than a dict copy
        if record is None:
            continue
        try:
            record["geometry"] = _wkb(factory, obj)
        except (RuntimeError, osmium.InvalidLocationError):
            broken += 1  # e.g. a way with missing nodes at the edge of an extract
            continue
        record["id"] = _osm_id(obj)
        rows.append(record)
    return rows, broken


def _to_frame(rows: list[dict[str, Any]], kind: str) -> gpd.GeoDataFrame:
    cols = _COLUMNS[kind]
    frame = pd.DataFrame(rows, columns=["id", *cols[1:], "geometry"])
    geoms = shapely.from_wkb(frame["geometry"].to_numpy(dtype=object), on_invalid="ignore")
    single = shapely.get_num_geometries(geoms) == 1
    multi = np.isin(shapely.get_type_id(geoms), (4, 5, 6))  # Multi* collections
    geoms[single & multi] = shapely.get_geometry(geoms[single & multi], 0)
    if kind == "service_points":
        geoms = np.where(shapely.get_type_id(geoms) == 0, geoms, shapely.centroid(geoms))
    frame = frame.rename(columns={"id": cols[0]}).drop(columns="geometry")
    return gpd.GeoDataFrame(frame, geometry=list(geoms), crs="EPSG:4326")


def read_osm_pbf(path: str | PathLike[str], *, kind: str) -> gpd.GeoDataFrame:
    """One canonical layer from an OSM PBF (or .osm/.osc) file, in EPSG:4326.

    Parameters
    ----------
    path : path-like
        The OSM extract.
    kind : {"buildings", "streets", "service_points", "compounds"}
        buildings: closed ways and multipolygons with ``building=*`` (``building:levels``
        → floors, ``height`` → height_m, building value → use); streets: ``highway=*``
        ways → road_class and foot, ``railway`` → rail, ``waterway`` → water; service
        points: amenity/shop/healthcare/leisure nodes and polygon centroids, bus stops,
        with ``category`` = the tag value; compounds: ``landuse=residential`` areas.

    Returns
    -------
    geopandas.GeoDataFrame
        Canonical columns of the layer; ids are ``n``/``w``/``r`` + OSM id.
    """
    _check_kind(kind, func="read_osm_pbf")
    try:
        rows, broken = _collect(str(path), kind)
    except RuntimeError as exc:
        raise ReadError(
            f"cannot read OSM file {path}: {exc}; check that it is a complete .osm.pbf extract"
        ) from None
    gdf = _to_frame(rows, kind)
    log.info("read %d %s from OSM file %s (%d skipped with incomplete geometry)",
             len(gdf), kind, path, broken)
    return gdf


def _require_columns(gdf: pd.DataFrame, columns: Iterable[str], *, kind: str) -> None:
    missing = [c for c in columns if c not in gdf.columns]
    if missing:
        raise LayerError(
            f"normalise_osm_columns(kind={kind!r}): column(s) {', '.join(missing)} missing; "
            f"got {', '.join(map(str, gdf.columns))}; pass the OSM-derived layer for {kind}"
        )


def _road_class_of_row(kind: object, detail: object) -> str | None:
    cls = road_class_from_osm(detail)
    if cls is not None:
        return cls
    fallback = {"major_road": "major", "minor_road": "minor", "path": "path",
                "rail": "rail", "ferry": "water"}
    return fallback.get(kind) if isinstance(kind, str) else None


def _normalise_buildings(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    _require_columns(gdf, ("id",), kind="buildings")
    if "kind" in gdf.columns:
        # building parts sit inside their building outline: keeping both would count
        # the same floor area twice
        gdf = gdf[gdf["kind"].fillna("building") != "building_part"]
    detail = gdf["kind_detail"] if "kind_detail" in gdf.columns else pd.Series(None, index=gdf.index)
    height = gdf["height"] if "height" in gdf.columns else pd.Series(np.nan, index=gdf.index)
    return gdf.assign(
        building_id=gdf["id"].astype(str),
        use=[building_use_from_osm(v) for v in detail],
        height_m=pd.to_numeric(height, errors="coerce"),
    )


def _normalise_streets(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    _require_columns(gdf, ("id", "kind"), kind="streets")
    detail = gdf["kind_detail"] if "kind_detail" in gdf.columns else pd.Series(None, index=gdf.index)
    # subways run underground: neither a barrier nor a walkable surface
    gdf = gdf[detail.fillna("") != "subway"]
    detail = detail.loc[gdf.index]
    classes = [_road_class_of_row(k, d) for k, d in zip(gdf["kind"], detail, strict=True)]
    foot = [c not in ("rail", "water") and d not in _NOT_WALKABLE_HIGHWAYS
            for c, d in zip(classes, detail, strict=True)]
    return gdf.assign(street_id=gdf["id"].astype(str), road_class=classes, foot=foot)


def _normalise_compounds(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    _require_columns(gdf, ("id", "kind"), kind="compounds")
    gdf = gdf[gdf["kind"] == "residential"]
    return gdf.assign(compound_id=gdf["id"].astype(str))


def _normalise_service_points(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    _require_columns(gdf, ("id", "kind"), kind="service_points")
    # tile-cut sources repeat a POI once per tile it touches; keep the first copy
    dup = gdf["id"].duplicated()
    if dup.any():
        log.info("dropped %d repeated POI id(s) (tile copies)", int(dup.sum()))
        gdf = gdf[~dup]
    return gdf.assign(point_id=gdf["id"].astype(str), category=gdf["kind"])


_NORMALISERS = {"buildings": _normalise_buildings, "streets": _normalise_streets,
                "compounds": _normalise_compounds, "service_points": _normalise_service_points}


def normalise_osm_columns(gdf: gpd.GeoDataFrame, *, kind: str) -> gpd.GeoDataFrame:
    """Canonical columns from an OSM-derived layer (``id``, ``kind``, ``kind_detail`` …).

    ========================== ============ ==============================================
    source layer               kind         mapping
    ========================== ============ ==============================================
    buildings                  buildings    id → building_id, kind_detail → use,
                                            height → height_m; building parts dropped
    roads                      streets      id → street_id; kind_detail (primary …
                                            footway) or kind (major_road, minor_road,
                                            path, rail, ferry → water) → road_class;
                                            foot; subways dropped
    landuse                    compounds    residential areas only; id → compound_id
    pois                       service_points id → point_id, kind → category;
                                            repeated ids (tile copies) dropped
    ========================== ============ ==============================================

    ``name`` and the geometry are kept; other source columns are dropped.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import LineString
    >>> roads = gpd.GeoDataFrame({"id": [7], "kind": ["major_road"], "kind_detail": ["primary"],
    ...                           "name": ["中山东一路"]}, geometry=[LineString([(0, 0), (1, 1)])])
    >>> normalise_osm_columns(roads, kind="streets")[["street_id", "road_class", "foot"]]
      street_id road_class  foot
    0         7      major  True
    """
    _check_kind(kind, func="normalise_osm_columns")
    out = _NORMALISERS[kind](gdf)
    cols = [c for c in _COLUMNS[kind] if c in out.columns or c == "name"]
    if "name" not in out.columns:
        out = out.assign(name=None)
    result = out[[*cols, out.geometry.name]].reset_index(drop=True)
    log.info("normalised %d of %d OSM features to %s", len(result), len(gdf), kind)
    return result


def read_osm_extract(path: str | PathLike[str]) -> dict[str, gpd.GeoDataFrame]:
    """Buildings, streets and compounds of an OSM-derived GeoPackage, canonical columns.

    Reads the layers ``buildings``, ``roads`` and ``landuse`` (as in
    ``shanghai_bund_osm.gpkg``) through :func:`normalise_osm_columns`: buildings are the
    valid polygons; streets are single lines without ferry routes (boats cross the water
    there: the route bounds nothing on land); compounds are the residential areas.

    Parameters
    ----------
    path : path-like
        The GeoPackage; the layers keep its CRS.

    Returns
    -------
    dict
        ``{"buildings": …, "streets": …, "compounds": …}``.
    """
    def layer(name: str, kind: str) -> gpd.GeoDataFrame:
        return normalise_osm_columns(gpd.read_file(path, layer=name), kind=kind)

    b = layer("buildings", "buildings")
    b = b[b.geom_type.isin(["Polygon", "MultiPolygon"]) & b.is_valid].reset_index(drop=True)
    s = layer("roads", "streets")
    s = s[s["road_class"].astype(str) != "water"].explode(ignore_index=True)
    return {"buildings": b, "streets": s, "compounds": layer("landuse", "compounds").reset_index(drop=True)}
