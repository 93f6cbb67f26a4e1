"""Coordinate reference systems: storage in WGS84, computation in a local metric CRS.

Layers are stored in WGS84 (EPSG:4326). Anything measured in metres (areas, distances,
buffers) happens in a projected CRS: the UTM zone containing the centre of the data,
or the ``local_crs`` setting when a city has its own (e.g. a CGCS2000 3-degree
Gauss-Krüger zone such as EPSG:4547).

CGCS2000 (EPSG:4490), China's official geodetic datum, and WGS84 agree to a few
centimetres today (ITRF-based realisations of both; well under 1 m), far below map
scale and below the accuracy of any building footprint we import. :func:`as_wgs84`
therefore relabels EPSG:4490 input as EPSG:4326 without moving a coordinate.
GCJ-02 and BD-09 are not CRSs but obfuscations of WGS84 lon/lat: see
:mod:`geo.chinacoords`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import TypeAlias

import geopandas as gpd
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError as PyprojCRSError

from geo.errors import CRSError

__all__ = [
    "WGS84",
    "CGCS2000",
    "crs_label",
    "local_metric_crs",
    "utm_crs_for",
    "to_metric",
    "require_metric",
    "as_wgs84",
    "is_wgs84_equivalent",
    "CRSInput",
]

log = logging.getLogger(__name__)

WGS84 = "EPSG:4326"
CGCS2000 = "EPSG:4490"

_GeoData: TypeAlias = gpd.GeoDataFrame | gpd.GeoSeries
#: A CRS as callers give it: a pyproj CRS, ``"EPSG:4547"`` / WKT / PROJ text, or an EPSG number.
CRSInput: TypeAlias = CRS | str | int


def crs_label(crs: CRS | str | None) -> str:
    """Short human label of a CRS: ``"EPSG:4326"`` when it has an EPSG code, else its name."""
    if crs is None:
        return "no CRS"
    crs = CRS.from_user_input(crs)
    code = crs.to_epsg(min_confidence=70)
    return f"EPSG:{code}" if code is not None else crs.name


def _parse_crs(value: CRS | str, *, what: str) -> CRS:
    try:
        return CRS.from_user_input(value)
    except PyprojCRSError as exc:
        raise CRSError(f"{what}: unknown CRS {value!r} ({exc}); use e.g. 'EPSG:4547'") from None


def _is_metric(crs: CRS) -> bool:
    if not crs.is_projected:
        return False
    units = {(axis.unit_name or "").lower() for axis in crs.axis_info[:2]}
    return units <= {"metre", "meter", "m"}


def utm_crs_for(lon: float, lat: float) -> CRS:
    """WGS84 UTM zone containing ``(lon, lat)`` (EPSG:326xx north, 327xx south).

    The Norway/Svalbard zone exceptions are ignored: Wangge works in China.
    """
    if not (math.isfinite(lon) and math.isfinite(lat)) or abs(lat) > 90:
        raise CRSError(f"utm_crs_for: ({lon}, {lat}) is not a lon/lat position; check the CRS")
    zone = int((((lon + 180.0) % 360.0) // 6.0) + 1)
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def _wgs84_bounds(data: _GeoData | Sequence[float]) -> tuple[float, float, float, float]:
    if isinstance(data, gpd.GeoDataFrame | gpd.GeoSeries):
        if data.crs is None:
            raise CRSError(
                "local_metric_crs: the layer has no CRS; use set_crs() with the CRS the "
                "coordinates are in (e.g. 'EPSG:4326')"
            )
        if data.geometry.is_empty.all() or data.geometry.isna().all():
            raise CRSError(
                "local_metric_crs: the layer has no geometry to locate; set the local_crs "
                "setting (e.g. 'EPSG:32651')"
            )
        crs = CRS.from_user_input(data.crs)
        bounds = tuple(float(b) for b in data.total_bounds)
        if not crs.equals(CRS.from_epsg(4326)):
            tr = Transformer.from_crs(crs, WGS84, always_xy=True)
            bounds = tuple(float(b) for b in tr.transform_bounds(bounds[0], bounds[1], bounds[2], bounds[3]))
        return bounds  # type: ignore[return-value]
    values = tuple(float(v) for v in data)
    if len(values) != 4:
        raise CRSError(
            f"local_metric_crs: bounds must be (minx, miny, maxx, maxy) in lon/lat; got {data!r}"
        )
    return values


def local_metric_crs(data: _GeoData | Sequence[float], *, configured: str = "") -> CRS:
    """Metric CRS for computation on *data*.

    Parameters
    ----------
    data : GeoDataFrame, GeoSeries or (minx, miny, maxx, maxy)
        The layer (any CRS, but it must have one) or its bounds in WGS84 lon/lat.
    configured : str
        The ``local_crs`` setting; when non-empty it is used as is (it must be a
        projected CRS in metres, e.g. ``"EPSG:4547"``).

    Returns
    -------
    pyproj.CRS
        *configured*, else the WGS84 UTM zone of the centre of the data.

    Examples
    --------
    >>> local_metric_crs((121.47, 31.22, 121.51, 31.25)).to_epsg()
    32651
    """
    if configured:
        crs = _parse_crs(configured, what="local_crs setting")
        if not _is_metric(crs):
            raise CRSError(
                f"local_crs setting must be a projected CRS in metres; got {crs_label(crs)}; "
                "use e.g. 'EPSG:32651' or leave it empty for the UTM zone of the data"
            )
        return crs
    minx, miny, maxx, maxy = _wgs84_bounds(data)
    return utm_crs_for((minx + maxx) / 2.0, (miny + maxy) / 2.0)


def to_metric(gdf: gpd.GeoDataFrame, *, crs: CRS | str | None = None) -> gpd.GeoDataFrame:
    """*gdf* reprojected to *crs* (default: :func:`local_metric_crs` of the data)."""
    target = local_metric_crs(gdf) if crs is None else _parse_crs(crs, what="to_metric")
    if not _is_metric(target):
        raise CRSError(f"to_metric needs a projected CRS in metres; got {crs_label(target)}")
    return gdf.to_crs(target)


def require_metric(gdf: _GeoData, *, func: str) -> None:
    """Raise :class:`~geo.errors.CRSError` unless *gdf* is in a projected CRS in metres.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import Point
    >>> require_metric(gpd.GeoSeries([Point(0, 0)], crs="EPSG:4326"), func="f")
    Traceback (most recent call last):
    ...
    geo.errors.CRSError: f needs a projected CRS in metres; use to_crs(); got EPSG:4326
    """
    if gdf.crs is None:
        raise CRSError(
            f"{func} needs a projected CRS in metres; the layer has no CRS; "
            "use set_crs() then to_crs()"
        )
    if not _is_metric(CRS.from_user_input(gdf.crs)):
        raise CRSError(
            f"{func} needs a projected CRS in metres; use to_crs(); got {crs_label(gdf.crs)}"
        )


def is_wgs84_equivalent(crs: CRS | str | None) -> bool:
    """True for WGS84 lon/lat and for CGCS2000 (EPSG:4490), equal at map scale."""
    if crs is None:
        return False
    crs = CRS.from_user_input(crs)
    return crs.equals(CRS.from_epsg(4326), ignore_axis_order=True) or crs.equals(
        CRS.from_epsg(4490), ignore_axis_order=True
    )


def as_wgs84(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """*gdf* in EPSG:4326: CGCS2000 (EPSG:4490) relabelled, any other CRS transformed.

    Raises :class:`~geo.errors.CRSError` when *gdf* has no CRS.
    """
    if gdf.crs is None:
        raise CRSError(
            "as_wgs84: the layer has no CRS; use set_crs() with the CRS the coordinates "
            "are in (e.g. 'EPSG:4326')"
        )
    crs = CRS.from_user_input(gdf.crs)
    if crs.equals(CRS.from_epsg(4326)):
        return gdf
    if is_wgs84_equivalent(crs):
        log.info("relabelled %s as %s (equal at map scale), %d features", crs_label(crs),
                 WGS84, len(gdf))
        return gdf.set_crs(WGS84, allow_override=True)
    log.info("transformed %d features from %s to %s", len(gdf), crs_label(crs), WGS84)
    return gdf.to_crs(WGS84)
