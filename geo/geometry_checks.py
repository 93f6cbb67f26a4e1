"""Geometry checks of one layer: missing, coordinates, type, validity (vectorised shapely 2).

Used by :func:`geo.validate.validate_layer`; each check appends :class:`~geo.issues.Issue`
objects and repairs geometry arrays in place where it can.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from geo.issues import Issue
from geo.layers import LayerSchema

__all__ = ["CHINA_BOUNDS", "check_geometries", "explode_multiparts", "keep_dimension"]

#: Rough extent of China (lon 73–136 °E, lat 3–54 °N): features outside get a warning.
CHINA_BOUNDS: tuple[float, float, float, float] = (73.0, 3.0, 136.0, 54.0)
_DIMENSION = {"Point": 0, "LineString": 1, "Polygon": 2}


def check_geometries(df: gpd.GeoDataFrame, schema: LayerSchema, labels: np.ndarray,
                     issues: list[Issue], *, repair: bool) -> gpd.GeoDataFrame:
    """Null/empty, coordinates, type and validity checks; repairs in place."""
    layer = schema.name
    geoms = df.geometry.to_numpy().copy()
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    for lab in labels[missing]:
        issues.append(Issue(layer, lab, "empty_geometry", "the feature has no geometry",
                            "draw its outline or remove the feature"))
    _drop_z(geoms, ~missing, layer, labels, issues)
    bad_coords = _check_coordinates(geoms, ~missing, layer, labels, issues)
    usable = ~missing & ~bad_coords
    usable &= _check_types(geoms, usable, schema, labels, issues)
    _check_validity(geoms, usable, schema, labels, issues, repair=repair)
    df = df.copy()
    df[df.geometry.name] = gpd.GeoSeries(geoms, index=df.index, crs=df.crs)
    return df


def _drop_z(geoms: np.ndarray, present: np.ndarray, layer: str, labels: np.ndarray, issues: list[Issue]) -> None:
    """Flatten 3-D geometries in place (one issue per layer): storage is 2-D, and PostGIS refused a Z
    geometry in its 2-D column mid-import ("Geometry has Z dimension but column does not")."""
    z = present & shapely.has_z(geoms)
    if not z.any():
        return
    geoms[z] = shapely.force_2d(geoms[z])
    where = labels[z][:3]
    issues.append(Issue(layer, None, "z_dropped",
                        f"{int(z.sum())} feature(s) have 3-D coordinates (e.g. #{', #'.join(map(str, where))}): "
                        "their Z values (heights) were dropped",
                        "nothing to do; give building heights in a floors or height column"
                        if layer == "buildings" else "nothing to do", "repaired"))


def _check_coordinates(geoms: np.ndarray, present: np.ndarray, layer: str, labels: np.ndarray,
                       issues: list[Issue]) -> np.ndarray:
    """Mask of features with NaN or out-of-range lon/lat; warns once for outside China."""
    coords, index = shapely.get_coordinates(geoms, return_index=True)
    nonfinite = np.bincount(index, weights=~np.isfinite(coords).all(axis=1), minlength=len(geoms)) > 0
    infinite = np.bincount(index, weights=np.isinf(coords).any(axis=1), minlength=len(geoms)) > 0
    for lab, inf in zip(labels[nonfinite], infinite[nonfinite], strict=True):
        what = "a vertex has an infinite coordinate" if inf else "a vertex has a NaN (not a number) coordinate"
        issues.append(Issue(layer, lab, "absurd_coordinates", what,
                            "fix or remove the feature's broken vertices"))
    with np.errstate(invalid="ignore"):
        b = shapely.bounds(geoms)
        out_of_range = present & ~nonfinite & ((b[:, 0] < -180) | (b[:, 2] > 180) | (b[:, 1] < -90) | (b[:, 3] > 90))
    for lab, (x, y) in zip(labels[out_of_range], b[out_of_range][:, :2], strict=True):
        issues.append(Issue(layer, lab, "absurd_coordinates",
                            f"coordinates ({x:.1f}, {y:.1f}) are outside lon -180..180 / lat -90..90; "
                            "they look like projected metres labelled as degrees",
                            "declare the real CRS, e.g. `--crs EPSG:32651` (UTM 51N) or `--crs EPSG:4547` "
                            "(CGCS2000 3-degree zone 114E)"))
    ok = present & ~nonfinite & ~out_of_range
    minx, miny, maxx, maxy = CHINA_BOUNDS
    with np.errstate(invalid="ignore"):
        far = ok & ((b[:, 2] < minx) | (b[:, 0] > maxx) | (b[:, 3] < miny) | (b[:, 1] > maxy))
    if far.any():
        where = labels[far][:3]
        issues.append(Issue(layer, str(where[0]), "outside_china",
                            f"{far.sum()} feature(s) lie outside China (e.g. #{', #'.join(where)})",
                            "check the CRS and the lon/lat order; ignore if the data really are abroad",
                            "warning"))
    return nonfinite | out_of_range


def _check_types(geoms: np.ndarray, usable: np.ndarray, schema: LayerSchema, labels: np.ndarray,
                 issues: list[Issue]) -> np.ndarray:
    """Mask of features of an accepted type; polygonal parts of collections are kept."""
    layer = schema.name
    base = schema.geometry_types[0].removeprefix("Multi")
    dim = _DIMENSION[base]
    collection = usable & (shapely.get_type_id(geoms) == shapely.GeometryType.GEOMETRYCOLLECTION)
    if collection.any():
        geoms[collection] = keep_dimension(geoms[collection], dim)
        kept = collection & ~shapely.is_empty(geoms)
        for lab in labels[kept]:
            issues.append(Issue(layer, lab, "wrong_geometry_type", "geometry collection",
                                f"kept its {base} parts", "repaired"))
    good = (shapely.get_dimensions(geoms) == dim) & ~shapely.is_empty(geoms)
    wrong = usable & ~good
    for lab, geom in zip(labels[wrong], geoms[wrong], strict=True):
        issues.append(Issue(layer, lab, "wrong_geometry_type",
                            f"{geom.geom_type} in a {' or '.join(schema.geometry_types)} layer",
                            _type_fix(schema, base)))
    return good


def _type_fix(schema: LayerSchema, base: str) -> str:
    if base == "Polygon":
        return (f"{schema.name} need outlines (polygons): import points as service_points, "
                "or draw the footprints")
    if base == "LineString":
        return "streets need centre lines: convert areas to lines (e.g. QGIS Polygons to Lines)"
    return "service points need points: use their centroids (e.g. QGIS Centroids)"


def _check_validity(geoms: np.ndarray, usable: np.ndarray, schema: LayerSchema, labels: np.ndarray,
                    issues: list[Issue], *, repair: bool) -> None:
    """Invalid geometries: repaired with make_valid (in place) or reported as errors."""
    layer = schema.name
    invalid = usable.copy()
    invalid[usable] = ~shapely.is_valid(geoms[usable])
    if not invalid.any():
        return
    reasons = shapely.is_valid_reason(geoms[invalid])
    dim = _DIMENSION[schema.geometry_types[0].removeprefix("Multi")]
    fixed = keep_dimension(_make_valid(geoms[invalid], dim), dim) if repair else None
    for k, (lab, reason) in enumerate(zip(labels[invalid], reasons, strict=True)):
        if fixed is None:
            fix = ("fix it in your GIS (QGIS: Fix geometries) or import with the setting "
                   "repair_invalid_geometry on")
            issues.append(Issue(layer, lab, "invalid_geometry", f"invalid geometry ({reason})", fix))
        elif shapely.is_empty(fixed[k]):
            issues.append(Issue(layer, lab, "invalid_geometry", f"invalid geometry ({reason})",
                                "make_valid left no area: redraw the outline"))
        else:
            issues.append(Issue(layer, lab, "invalid_geometry", f"invalid geometry ({reason})",
                                "repaired with make_valid", "repaired"))
    if fixed is not None:
        idx = np.flatnonzero(invalid)
        keep = ~shapely.is_empty(fixed)
        geoms[idx[keep]] = fixed[keep]


def _make_valid(geoms: np.ndarray, dim: int) -> np.ndarray:
    """Polygons: the 'structure' method (shells bound area, holes cut it), so overlapping
    parts merge instead of cancelling out as with 'linework'; collapsed parts dropped."""
    if dim == 2:
        return shapely.make_valid(geoms, method="structure", keep_collapsed=False)
    return shapely.make_valid(geoms)


def keep_dimension(geoms: np.ndarray, dim: int) -> np.ndarray:
    """The parts of each geometry of dimension *dim*, one (multi)geometry each; empty if none."""
    parts, index = shapely.get_parts(geoms, return_index=True)
    parts, sub = shapely.get_parts(parts, return_index=True)  # flatten multis inside collections
    index = index[sub]
    keep = shapely.get_dimensions(parts) == dim
    parts, index = parts[keep], index[keep]
    out = np.array([shapely.GeometryCollection()] * len(geoms), dtype=object)
    if len(parts):
        present, dense = np.unique(index, return_inverse=True)
        build = {0: shapely.multipoints, 1: shapely.multilinestrings, 2: shapely.multipolygons}[dim]
        grouped = build(parts, indices=dense)
        single = np.bincount(dense) == 1
        first = np.unique(dense, return_index=True)[1]
        grouped[single] = parts[first[single]]
        out[present] = grouped
    return out


def explode_multiparts(df: gpd.GeoDataFrame, schema: LayerSchema, issues: list[Issue]) -> gpd.GeoDataFrame:
    """Streets and service points are single parts: split multi-parts, suffixing ids -1, -2 …"""
    parts_per = shapely.get_num_geometries(df.geometry.to_numpy())
    multi = parts_per > 1
    out = df.explode(index_parts=False, ignore_index=True)
    if multi.any():
        idc = schema.id_column
        rank = out.groupby(np.repeat(np.arange(len(df)), np.maximum(parts_per, 1))).cumcount() + 1
        split = np.repeat(multi, np.maximum(parts_per, 1))
        out.loc[split, idc] = out.loc[split, idc] + "-" + rank[split].astype("str")
        issues.append(Issue(schema.name, str(df.loc[multi, idc].iloc[0]), "multipart_exploded",
                            f"{multi.sum()} multi-part feature(s) split into {parts_per[multi].sum()} parts",
                            f"ids suffixed -1, -2 …; {schema.name} are stored as single parts", "repaired"))
    return out
