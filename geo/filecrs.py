"""The CRS of a layer read from a file: declared or implied, checked against lon/lat ranges, and
coordinates in China's offset systems (GCJ-02, BD-09) converted to WGS84.

Steps of :func:`geo.readers.read_layer`; errors carry the catalogue codes of docs/VALIDATION.md.
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS

from geo.chinacoords import transform_geoseries
from geo.crs import CRSInput, as_wgs84, crs_label
from geo.errors import CRSError, LayerError, ReadError

__all__ = ["COORD_SYSTEM_ALIASES", "settle_crs", "check_lon_lat_range", "canonical_coord_system", "to_wgs84"]

log = logging.getLogger("geo.readers")

#: Accepted spellings of ``coord_system`` -> canonical name. CGCS2000 needs no
#: conversion (equal to WGS84 at map scale, see :mod:`geo.crs`).
COORD_SYSTEM_ALIASES: dict[str, str] = {
    "wgs84": "wgs84", "cgcs2000": "wgs84", "gcj02": "gcj02", "bd09": "bd09",
}


def _error(code: str, message: str, cls: type[ReadError] | type[CRSError] = ReadError) -> ReadError | CRSError:
    """*cls*(message) carrying the catalogue *code*."""
    return cls(message, code=code)


def settle_crs(gdf: gpd.GeoDataFrame, *, file: str, declared_crs: CRSInput | None,
                implied: str | None) -> gpd.GeoDataFrame:
    """The layer with its CRS set: declared > file's own > implied by CSV column names."""
    if declared_crs:
        try:
            declared = CRS.from_user_input(declared_crs)
        except Exception as exc:  # pyproj raises its own CRSError subclasses
            raise _error("unknown_crs", f"{file}: unknown CRS {declared_crs!r} ({exc}); use e.g. --crs EPSG:4326",
                         CRSError) from None
        if gdf.crs is not None and not CRS.from_user_input(gdf.crs).equals(declared):
            # files with a wrong .prj, or GeoJSON without a crs member (read as WGS84)
            log.warning("%s: file says %s, declared %s; using the declared CRS (relabelled)",
                        file, crs_label(gdf.crs), crs_label(declared))
        return gdf.set_crs(declared, allow_override=True)
    if gdf.crs is not None:
        return gdf
    if implied is not None:
        return gdf.set_crs(implied)
    raise _error(
        "missing_crs",
        f"{file} has no CRS (no .prj or crs information); pass the CRS its coordinates "
        "are in, e.g. --crs EPSG:4326, or EPSG:4547 for "
        "CGCS2000 3-degree zone 39",
        CRSError,
    )


def _finite_bounds(gdf: gpd.GeoDataFrame) -> np.ndarray | None:
    """Bounds of the features whose every coordinate is finite (NaN/inf are reported per
    feature by :mod:`geo.validate`); None when there are none."""
    geoms = gdf.geometry.to_numpy()
    coords, index = shapely.get_coordinates(geoms, return_index=True)
    broken = np.bincount(index, weights=~np.isfinite(coords).all(axis=1), minlength=len(geoms)) > 0
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms) | broken)
    if not present.any():
        return None
    return shapely.total_bounds(geoms[present])


def check_lon_lat_range(gdf: gpd.GeoDataFrame, *, file: str) -> None:
    """CRSError when a geographic CRS labels coordinates that cannot be degrees, or a
    projected CRS labels coordinates that are plainly lon/lat degrees."""
    bounds = _finite_bounds(gdf)
    if bounds is None:
        return
    minx, miny, maxx, maxy = bounds
    degrees = -180.0 <= minx and maxx <= 180.0 and -90.0 <= miny and maxy <= 90.0
    if not CRS.from_user_input(gdf.crs).is_geographic:
        # a district spans well under 10 degrees; metres of a real survey are not all
        # within 180 of the origin
        if degrees and maxx - minx <= 10 and maxy - miny <= 10 and max(abs(minx), abs(maxx)) > 1:
            raise _error("absurd_coordinates",
                         f"{file}: coordinates x {minx:.4f}..{maxx:.4f}, y {miny:.4f}..{maxy:.4f} are "
                         f"lon/lat degrees labelled as a projected CRS ({crs_label(gdf.crs)}, metres); "
                         "declare the real CRS with --crs EPSG:4326", CRSError)
        return
    if degrees:
        return
    hint = (
        "longitude and latitude look swapped; map them with --field (e.g. --field buildings:x=lat)"
        if abs(miny) > 90 >= max(abs(minx), abs(maxx))
        else "pass the projected CRS they are in, e.g. --crs EPSG:4547"
    )
    raise _error("absurd_coordinates",
                 f"{file}: coordinates reach x={maxx:.6g}, y={maxy:.6g}, which are not lon/lat, but "
                 f"the CRS is {crs_label(gdf.crs)}; {hint}", CRSError)


def canonical_coord_system(value: str) -> str:
    key = value.strip().lower().replace("-", "").replace("_", "")
    if key not in COORD_SYSTEM_ALIASES:
        raise LayerError(
            f"unknown coordinate system {value!r}; use one of wgs84, cgcs2000, gcj02 "
            "(Amap/Gaode, Tencent) or bd09 (Baidu)"
        )
    return COORD_SYSTEM_ALIASES[key]


def to_wgs84(gdf: gpd.GeoDataFrame, *, file: str, system: str) -> gpd.GeoDataFrame:
    """EPSG:4326 layer, with GCJ-02 / BD-09 lon/lat converted to WGS84."""
    if system != "wgs84" and not CRS.from_user_input(gdf.crs).is_geographic:
        raise CRSError(
            f"{file}: {system} coordinates are lon/lat, but the CRS is {crs_label(gdf.crs)}; "
            "declare --crs EPSG:4326 or drop the coordinate system option"
        )
    gdf = as_wgs84(gdf)
    if system != "wgs84":
        gdf = gdf.set_geometry(transform_geoseries(gdf.geometry, source=system, target="wgs84"))  # type: ignore[arg-type]
    return gdf
