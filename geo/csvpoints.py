"""Points from a CSV sheet: text decoding (UTF-8 or the GB18030 family), lon/lat, x/y or WKT
columns, and numeric columns inferred.

:mod:`geo.readers` reads the file and maps its columns; this module turns the table into
a GeoDataFrame and says which CRS its coordinate columns imply.
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.crs import WGS84
from geo.errors import ReadError

__all__ = ["FALLBACK_ENCODING", "LAT_COLUMNS", "LON_COLUMNS", "WKT_COLUMNS", "XY_COLUMNS", "csv_points", "decode_text"]

log = logging.getLogger(__name__)

#: CSV column names recognised as coordinates (case-insensitive).
LON_COLUMNS: tuple[str, ...] = ("lon", "lng", "long", "longitude", "经度")
LAT_COLUMNS: tuple[str, ...] = ("lat", "latitude", "纬度")
#: Projected coordinate columns: they need a declared CRS.
XY_COLUMNS: tuple[str, str] = ("x", "y")
WKT_COLUMNS: tuple[str, ...] = ("geometry", "wkt", "geom")
# GB18030 is a superset of GBK and GB2312, the usual encodings of Chinese Excel/ArcGIS.
FALLBACK_ENCODING = "GB18030"


def decode_text(raw: bytes, *, file: str, encoding: str | None) -> tuple[str, str]:
    """Text of a CSV: the given encoding, else UTF-8 (with or without BOM), else GB18030."""
    candidates = [encoding] if encoding else ["utf-8-sig", FALLBACK_ENCODING]
    first_error: UnicodeDecodeError | None = None
    for enc in candidates:
        try:
            text = raw.decode(enc)
        except (UnicodeDecodeError, LookupError) as exc:
            if isinstance(exc, LookupError):
                raise ReadError(f"{file}: unknown text encoding {enc!r}; use e.g. 'GB18030'") from None
            first_error = first_error or exc
            continue
        if enc == FALLBACK_ENCODING:
            log.warning("%s is not UTF-8; decoded it as %s", file, enc)
        return text, "UTF-8" if enc == "utf-8-sig" else enc
    assert first_error is not None
    tried = " or ".join(c.replace("utf-8-sig", "UTF-8") for c in candidates)
    raise ReadError(
        f"{file} is not {tried} text (bad byte {raw[first_error.start]:#04x} at position "
        f"{first_error.start}); save it as UTF-8 CSV or pass its encoding"
    )


def _find_column(columns: list[str], names: tuple[str, ...]) -> str | None:
    lower = {c.strip().lower(): c for c in columns}
    return next((lower[n] for n in names if n in lower), None)


def _numbers(values: pd.Series, *, file: str, column: str) -> np.ndarray:
    """Floats of a coordinate column; ReadError naming the first non-numeric cell."""
    num = pd.to_numeric(values, errors="coerce")
    bad = num.isna() & values.notna()
    if bad.any():
        row = bad.to_numpy().nonzero()[0][0]
        raise ReadError(
            f"{file} line {row + 2}: {column} {values.iloc[row]!r} is not a number; fix the cell "
            "or leave it empty"
        )
    return num.to_numpy(dtype="float64")


def _csv_geometry(df: pd.DataFrame, *, file: str) -> tuple[gpd.GeoDataFrame, str | None]:
    """GeoDataFrame from lon/lat, x/y or WKT columns; also the CRS the names imply."""
    cols = [str(c) for c in df.columns]
    lon, lat = _find_column(cols, LON_COLUMNS), _find_column(cols, LAT_COLUMNS)
    implied: str | None = WGS84  # columns named lon/lat (经度/纬度) hold degrees
    if lon is None or lat is None:
        lon, lat, implied = _find_column(cols, XY_COLUMNS[:1]), _find_column(cols, XY_COLUMNS[1:]), None
    if lon is not None and lat is not None:
        x = _numbers(df[lon], file=file, column=lon)
        y = _numbers(df[lat], file=file, column=lat)
        ok = ~(np.isnan(x) | np.isnan(y))
        geoms = np.full(len(df), None, dtype=object)
        geoms[ok] = shapely.points(x[ok], y[ok])
        return gpd.GeoDataFrame(df.drop(columns=[lon, lat]), geometry=list(geoms)), implied
    wkt = _find_column(cols, WKT_COLUMNS)
    if wkt is None:
        raise ReadError(
            f"{file}: no coordinate columns; looked for {'/'.join(LON_COLUMNS)} with "
            f"{'/'.join(LAT_COLUMNS)}, x with y, or a WKT column ({'/'.join(WKT_COLUMNS)}); "
            f"columns are {', '.join(cols)}; rename them or map them with --field (e.g. --field service_points:X坐标=x)"
        )
    text = df[wkt]
    geoms = shapely.from_wkt(text.to_numpy(dtype=object), on_invalid="ignore")
    bad = pd.isna(geoms) & text.notna().to_numpy()
    if bad.any():
        row = bad.nonzero()[0][0]
        raise ReadError(f"{file} line {row + 2}: {wkt} {text.iloc[row]!r} is not valid WKT")
    return gpd.GeoDataFrame(df.drop(columns=[wkt]), geometry=list(geoms)), None


def _infer_numbers(df: pd.DataFrame) -> pd.DataFrame:
    """Numeric CSV columns as numbers; codes with leading zeros or > 15 digits stay text."""
    skip = df.geometry.name if isinstance(df, gpd.GeoDataFrame) else None
    for col in df.columns:
        values = df[col].dropna()
        if col == skip or values.empty or not pd.api.types.is_string_dtype(values):
            continue
        if values.str.match(r"^[+-]?0\d").any() or values.str.len().max() > 15:
            continue
        num = pd.to_numeric(values, errors="coerce")
        if not num.isna().any():
            df[col] = pd.to_numeric(df[col])
    return df


def csv_points(df: pd.DataFrame, *, file: str) -> tuple[gpd.GeoDataFrame, str | None]:
    """The sheet *df* as points with numeric columns inferred, and the CRS its columns imply."""
    gdf, implied = _csv_geometry(df, file=file)
    return _infer_numbers(gdf), implied
