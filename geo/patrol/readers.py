"""Read patrol tracks from files: GPX, CSV/XLSX lon/lat/time, GeoJSON/GeoPackage points, GeoLife .plt.

Every reader returns the fix frame :func:`geo.patrol.clean.clean_fixes` takes: ``t``
(tz-aware UTC), ``lon``, ``lat`` (WGS84), ``accuracy`` (m, NaN when unknown) and, when the
file says, ``worker``. Times without a zone are read in *naive_tz* (sheets from Chinese
apps are in Beijing time); GPX and GeoLife times are UTC by their definitions. Coordinates
declared GCJ-02 or BD-09 are converted to WGS84 (``geo.chinacoords``).
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Literal

import geopandas as gpd
import gpxpy
import gpxpy.gpx
import numpy as np
import pandas as pd

from geo.chinacoords import transform_coords
from geo.errors import ReadError
from geo.register.sheets import read_sheet
from geo.settings import DEFAULTS

__all__ = ["TRACK_FORMATS", "read_track", "fixes_from_table"]

log = logging.getLogger(__name__)

#: File suffixes read by :func:`read_track`.
TRACK_FORMATS: tuple[str, ...] = (".gpx", ".csv", ".xlsx", ".geojson", ".json", ".gpkg", ".plt")

_ALIASES: dict[str, tuple[str, ...]] = {
    "lon": ("lon", "lng", "longitude", "x", "经度"),
    "lat": ("lat", "latitude", "y", "纬度"),
    "t": ("t", "time", "timestamp", "datetime", "date_time", "fix_time", "时间", "定位时间", "采集时间"),
    "accuracy": ("accuracy", "acc", "hdop_m", "精度", "定位精度"),
    "worker": ("worker", "username", "user", "user_id", "device", "网格员", "账号"),
}


def _column(columns: list[str], field: str) -> str | None:
    lower = {c.strip().lower(): c for c in columns}
    for alias in _ALIASES[field]:
        if alias in lower:
            return lower[alias]
    return None


def _times(values: pd.Series, *, naive_tz: str, label: str) -> pd.Series:
    """UTC datetimes from strings, datetimes or epoch seconds / milliseconds."""
    if pd.api.types.is_datetime64_any_dtype(values):
        t = values
    else:
        num = pd.to_numeric(values, errors="coerce")
        if num.notna().all() and len(num):
            unit: Literal["ms", "s"] = "ms" if num.abs().max() > 1e11 else "s"
            return pd.to_datetime(num, unit=unit, utc=True)
        try:
            t = pd.to_datetime(values, errors="raise", format="mixed")
        except (ValueError, TypeError) as exc:
            raise ReadError(f"{label}: time column holds a value that is not a time ({exc}); "
                            "write times as 2024-05-06 08:30:00 or epoch seconds") from None
    if getattr(t.dt, "tz", None) is None:
        t = t.dt.tz_localize(naive_tz, ambiguous="NaT", nonexistent="NaT")
    return t.dt.tz_convert("UTC")


def _wgs84(lon: np.ndarray, lat: np.ndarray, coords: str) -> tuple[np.ndarray, np.ndarray]:
    if coords == "wgs84":
        return lon, lat
    return transform_coords(lon, lat, source=coords, target="wgs84")  # type: ignore[arg-type]


def fixes_from_table(table: pd.DataFrame, *, label: str, coords: str = "wgs84",
                     naive_tz: str = DEFAULTS["patrol_timezone"]) -> pd.DataFrame:
    """Fix frame from a table with lon/lat/time columns (Chinese or English headers)."""
    cols = [str(c) for c in table.columns]
    found = {f: _column(cols, f) for f in _ALIASES}
    missing = [f for f in ("lon", "lat", "t") if found[f] is None]
    if missing:
        raise ReadError(f"{label}: no {'/'.join(missing)} column (have {', '.join(cols)}); "
                        f"name them lon, lat, time (or 经度, 纬度, 时间)")
    lon = pd.to_numeric(table[found["lon"]], errors="coerce").to_numpy(float)
    lat = pd.to_numeric(table[found["lat"]], errors="coerce").to_numpy(float)
    lon, lat = _wgs84(lon, lat, coords)
    out = pd.DataFrame({"t": _times(table[found["t"]].reset_index(drop=True), naive_tz=naive_tz, label=label),
                        "lon": lon, "lat": lat})
    acc = found["accuracy"]
    out["accuracy"] = pd.to_numeric(table[acc], errors="coerce").to_numpy(float) if acc else np.nan
    if found["worker"]:
        out["worker"] = table[found["worker"]].astype(str).to_numpy()
    return out


def _read_gpx(data: bytes, label: str) -> pd.DataFrame:
    try:
        gpx = gpxpy.parse(data)  # gpxpy decodes bytes as UTF-8, like the BytesIO it was given before
    except (gpxpy.gpx.GPXException, UnicodeDecodeError) as exc:  # GPX is UTF-8 XML: other bytes are no GPX
        raise ReadError(f"{label}: not a valid GPX file ({exc}); export the track again as GPX 1.1") from None
    pts: list[gpxpy.gpx.GPXTrackPoint | gpxpy.gpx.GPXRoutePoint] = [
        p for trk in gpx.tracks for seg in trk.segments for p in seg.points]
    pts += [p for rte in gpx.routes for p in rte.points]
    rows = [(p.time, p.longitude, p.latitude, p.horizontal_dilution) for p in pts]
    frame = pd.DataFrame(rows, columns=["t", "lon", "lat", "hdop"])
    if frame["t"].isna().any():
        raise ReadError(f"{label}: {int(frame['t'].isna().sum())} GPX point(s) have no <time>; "
                        "a patrol track needs a time on every point")
    t = pd.to_datetime(frame["t"], utc=True)
    # GPX carries no accuracy radius; HDOP x 5 m is the usual rough equivalent.
    return pd.DataFrame({"t": t, "lon": frame["lon"].astype(float), "lat": frame["lat"].astype(float),
                         "accuracy": frame["hdop"].astype(float) * 5.0})


def _read_plt(data: bytes, label: str) -> pd.DataFrame:
    """GeoLife PLT: 6 header lines, then lat, lon, 0, altitude (ft), days, date, time (GMT)."""
    try:
        frame = pd.read_csv(io.BytesIO(data), skiprows=6, header=None,
                            names=["lat", "lon", "zero", "alt_ft", "days", "date", "time"])
    except (ValueError, pd.errors.ParserError) as exc:
        raise ReadError(f"{label}: not a GeoLife .plt file ({exc}); expected 6 header lines "
                        "then lat,lon,0,altitude,days,date,time") from None
    t = pd.to_datetime(frame["date"] + " " + frame["time"], errors="coerce", utc=True)
    return pd.DataFrame({"t": t, "lon": frame["lon"].astype(float), "lat": frame["lat"].astype(float),
                         "accuracy": np.nan})


def _read_points(path: Path, label: str, naive_tz: str, coords: str) -> pd.DataFrame:
    try:
        gdf = gpd.read_file(path)
    except Exception as exc:  # noqa: BLE001 - pyogrio raises many types; all mean "unreadable"
        raise ReadError(f"{label}: cannot read ({exc}); check the file opens in QGIS") from None
    if gdf.crs is not None and not gdf.crs.equals("EPSG:4326"):
        gdf = gdf.to_crs(4326)
    kinds = set(gdf.geometry.geom_type.dropna())
    if kinds - {"Point"}:
        raise ReadError(f"{label}: holds {', '.join(sorted(kinds))}; a track file needs one Point per fix with a time")
    table = pd.DataFrame(gdf.drop(columns="geometry"))
    table["lon"], table["lat"] = gdf.geometry.x.to_numpy(), gdf.geometry.y.to_numpy()
    return fixes_from_table(table, label=label, coords=coords, naive_tz=naive_tz)


def read_track(
    path: str | Path,
    *,
    coords: str = "wgs84",
    naive_tz: str = DEFAULTS["patrol_timezone"],
) -> pd.DataFrame:
    """Fixes of a track file as ``t``, ``lon``, ``lat``, ``accuracy`` (and ``worker`` if given).

    Parameters
    ----------
    path
        ``.gpx``, ``.csv``, ``.xlsx``, ``.geojson``/``.json``, ``.gpkg`` or GeoLife ``.plt``.
    coords
        Coordinate system of CSV/XLSX/GeoJSON lon/lat: ``wgs84``, ``gcj02`` or ``bd09``.
    naive_tz
        Time zone of times written without one (CSV/XLSX/GeoJSON).
    """
    p = Path(path)
    label = p.name
    suffix = p.suffix.lower()
    if not p.is_file():
        raise ReadError(f"{label}: no such file; check the path")
    if suffix not in TRACK_FORMATS:
        raise ReadError(f"{label}: unknown track format {suffix!r}; use one of {', '.join(TRACK_FORMATS)}")
    if suffix == ".gpx":
        out = _read_gpx(p.read_bytes(), label)
    elif suffix == ".plt":
        out = _read_plt(p.read_bytes(), label)
    elif suffix in (".csv", ".xlsx"):
        out = fixes_from_table(read_sheet(p), label=label, coords=coords, naive_tz=naive_tz)
    else:
        out = _read_points(p, label, naive_tz, coords)
    log.info("read_track: %s -> %d fixes", label, len(out))
    return out
