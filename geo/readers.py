"""Read one layer from a user's file into a GeoDataFrame in WGS84 (EPSG:4326).

Formats: GeoPackage, GeoJSON, zipped Shapefile, bare Shapefile, CSV with lon/lat (or
WKT) columns, and OSM PBF. :func:`read_layer` renames columns by an explicit
``field_map``, settles the CRS (the file's, or the declared one when the file has none),
converts GCJ-02 / BD-09 coordinates to WGS84 and returns EPSG:4326. It does not check
the schema (required columns, ids, geometry validity): that is :mod:`geo.validate`.

What the reader found out (format, layer, text encoding, source CRS, coordinate
system) is kept in ``gdf.attrs["source"]`` so that an import report can say so, e.g.
that a CSV was decoded as GB18030.
"""

from __future__ import annotations

import codecs
import collections
import contextlib
import importlib.util
import io
import itertools
import logging
import re
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from os import PathLike
from pathlib import Path
from typing import IO, Any

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely

from geo.columns import layer_for_kind
from geo.crs import CRSInput, crs_label
from geo.csvpoints import FALLBACK_ENCODING as _FALLBACK_ENCODING
from geo.csvpoints import (
    LAT_COLUMNS,
    LON_COLUMNS,
    WKT_COLUMNS,
    XY_COLUMNS,
    csv_points,
    decode_text,
)
from geo.errors import CRSError, LayerError, ReadError
from geo.filecrs import (
    COORD_SYSTEM_ALIASES,
    canonical_coord_system,
    check_lon_lat_range,
    settle_crs,
    to_wgs84,
)
from geo.layers import LAYER_NAMES
from geo.osm import read_osm_pbf
from geo.settings import DEFAULTS

_HAS_ARROW = importlib.util.find_spec("pyarrow") is not None

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "COORD_SYSTEM_ALIASES",
    "LON_COLUMNS",
    "LAT_COLUMNS",
    "XY_COLUMNS",
    "WKT_COLUMNS",
    "detect_format",
    "list_file_layers",
    "read_layer",
]

log = logging.getLogger(__name__)

#: File extension -> format. ``.osm.pbf`` is matched before ``.pbf``.
SUPPORTED_EXTENSIONS: dict[str, str] = {
    ".gpkg": "gpkg", ".geojson": "geojson", ".json": "geojson", ".zip": "zip",
    ".shp": "shp", ".csv": "csv", ".osm.pbf": "pbf", ".pbf": "pbf",
}
_MB = 1024 * 1024
_OGR_ERRORS = (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError)


def _error(code: str, message: str, cls: type[ReadError] | type[CRSError] = ReadError) -> ReadError | CRSError:
    """*cls*(message) carrying the catalogue *code* (docs/VALIDATION.md, "Reading files")."""
    return cls(message, code=code)


def detect_format(path: str | PathLike[str]) -> str:
    """Format name of *path* from its extension; ReadError listing the supported ones."""
    name = Path(path).name.lower()
    for ext, fmt in SUPPORTED_EXTENSIONS.items():
        if name.endswith(ext):
            return fmt
    raise ReadError(
        f"{Path(path).name}: unsupported file type; use one of "
        f"{', '.join(SUPPORTED_EXTENSIONS)} (a Shapefile goes in a .zip with its "
        ".shx, .dbf and .prj)"
    )


def _check_file(path: Path, *, max_mb: float) -> None:
    if not path.exists():
        raise ReadError(f"file not found: {path}; check the path")
    if path.is_dir():
        raise _error("not_a_file", f"{path} is a folder, not a file; pass the data file itself")
    if not path.is_file():
        raise _error("not_a_file", f"{path} is not a regular file (a device, pipe or socket); "
                     "pass a data file saved on disk")
    size = path.stat().st_size
    if size == 0:
        raise _error("empty_file", f"{path.name}: the file is empty (0 bytes); export the layer "
                     "from your GIS again")
    size_mb = size / _MB
    if size_mb > max_mb:
        raise ReadError(
            f"{path.name} is {size_mb:.1f} MB, over the import limit of {max_mb:g} MB "
            "(setting max_upload_mb); raise it with WANGGE_MAX_UPLOAD_MB or split the file"
        )


def _zip_shapefiles(path: Path, *, max_mb: float) -> tuple[list[str], dict[str, str]]:
    """(.shp members, {lower-cased name: member name}) of a zip; ReadError when unusable."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir()
                     and not i.filename.startswith("__MACOSX/")]
    except (zipfile.BadZipFile, OSError) as exc:
        raise ReadError(f"{path.name} is not a readable zip file ({exc}); zip it again") from None
    if not infos:
        raise ReadError(f"{path.name} is an empty zip; put the .shp, .shx, .dbf and .prj in it")
    unpacked_mb = sum(i.file_size for i in infos) / _MB
    if unpacked_mb > max_mb:
        raise ReadError(
            f"{path.name} unpacks to {unpacked_mb:.1f} MB, over the import limit of "
            f"{max_mb:g} MB (setting max_upload_mb); raise it with WANGGE_MAX_UPLOAD_MB"
        )
    names = [i.filename for i in infos]
    shps = [n for n in names if n.lower().endswith(".shp")]
    if not shps:
        raise ReadError(
            f"{path.name} holds no .shp file (it has {', '.join(names[:10])}); zip the "
            "Shapefile's .shp, .shx, .dbf and .prj together"
        )
    return shps, {n.lower(): n for n in names}


def list_file_layers(path: str | PathLike[str]) -> list[str]:
    """Layer names a file offers: GeoPackage layers, the .shp files of a zip, or its stem."""
    p = Path(path)
    fmt = detect_format(p)
    _check_file(p, max_mb=float("inf"))
    if fmt == "gpkg":
        try:
            return [str(n) for n in pyogrio.list_layers(p)[:, 0]]
        except _OGR_ERRORS as exc:
            raise ReadError(f"cannot read {p.name} as a GeoPackage: {exc}") from None
    if fmt == "zip":
        return [Path(n).stem for n in _zip_shapefiles(p, max_mb=float("inf"))[0]]
    return [_stem(p)]


def _stem(path: Path) -> str:
    name = path.name
    return name[: -len(".osm.pbf")] if name.lower().endswith(".osm.pbf") else path.stem


def _pick(options: list[str], layer: str | None, *, file: str, what: str, kind: str) -> str:
    """The option matching *layer*, or the only option; ReadError listing them otherwise."""
    if layer is None:
        if len(options) == 1:
            return options[0]
        raise _error(
            "ambiguous_layer",
            f"{file} has {len(options)} {what}s: {', '.join(options)}, none named {kind}; choose "
            f"one with --layer {kind}={options[0]}"
        )
    for opt in options:
        if layer in (opt, Path(opt).stem):
            return opt
    raise ReadError(f"{file} has no {what} {layer!r}; it has: {', '.join(options)}")


def _read_ogr(source: str | io.BytesIO, *, file: str, fmt: str, layer: str | None = None,
              encoding: str | None = None) -> gpd.GeoDataFrame:
    """pyogrio read with unreadable-file errors turned into ReadError."""
    try:
        # NaN/infinite vertices are reported per feature by geo.validate, not as a
        # stray RuntimeWarning of the WKB decoder; GDAL's own warnings (unclosed rings,
        # duplicate feature ids, unsupported types) are logged, not printed
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
            # Arrow reads are ~4x faster on large layers (1 M buildings: 3.8 s vs 15.6 s).
            gdf = gpd.read_file(source, layer=layer, encoding=encoding, engine="pyogrio",
                                use_arrow=_HAS_ARROW and encoding in (None, "utf-8", "UTF-8"))
    except _OGR_ERRORS as exc:
        raise ReadError(
            f"cannot read {file} as {fmt}: {exc}; check that the file is complete and "
            "not corrupt (open it in QGIS)"
        ) from None
    except shapely.errors.GEOSException as exc:
        raise _error("undecodable_geometry", f"{file}: a geometry cannot be built ({exc}); a polygon "
                     "ring needs at least 4 points and must end where it starts: fix or delete "
                     "that feature in QGIS (Vector > Geometry Tools > Check Validity)") from None
    _log_gdal_warnings(caught, file=file)
    return gdf


def _log_gdal_warnings(caught: list[warnings.WarningMessage], *, file: str) -> None:
    """Log each distinct GDAL warning of a read once (they are notes, not failures)."""
    for message in dict.fromkeys(str(w.message) for w in caught):
        log.info("%s: GDAL: %s", file, message)


def _read_gpkg(path: Path, *, kind: str, layer: str | None, encoding: str | None) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    try:
        layers = [str(n) for n in pyogrio.list_layers(path)[:, 0]]
    except _OGR_ERRORS as exc:
        raise ReadError(
            f"cannot read {path.name} as a GeoPackage: {exc}; check that the file is "
            "complete and not corrupt"
        ) from None
    if not layers:
        raise _error("empty_file", f"{path.name}: the file is empty (a GeoPackage with no layer); "
                     "export the data into it again")
    if layer is None and len(layers) > 1:
        layer = layer_for_kind(layers, kind)
        if layer is not None:
            log.info("%s: read layer %r as %s", path.name, layer, kind)
    chosen = _pick(layers, layer, file=path.name, what="layer", kind=kind)
    gdf = _read_ogr(str(path), file=path.name, fmt="GeoPackage", layer=chosen, encoding=encoding)
    return gdf, {"layer": chosen}


def _first_decoding(chunks: Iterator[bytes]) -> str | None:
    """UTF-8 or GB18030 (GBK): the first that decodes every chunk (streamed); None if neither."""
    alive = {enc: codecs.getincrementaldecoder(enc)() for enc in ("UTF-8", _FALLBACK_ENCODING)}
    for chunk in itertools.chain(chunks, [b""]):
        for enc, decoder in list(alive.items()):
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError:
                del alive[enc]
        if not alive:
            return None
    return next(iter(alive))


#: a JSON ``\u0000`` escape not itself escaped (an odd number of backslashes before the u)
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def _refusing_nul_escapes(chunks: Iterator[bytes], *, file: str) -> Iterator[bytes]:
    """Pass *chunks* through; a ``\\u0000`` in the JSON text raises ReadError (GDAL cuts strings there)."""
    tail = b""
    for chunk in chunks:
        window = tail + chunk
        # the substring test is ~100x faster than the regex, which runs only on a hit
        if b"u0000" in window and _NUL_ESCAPE.search(window):
            raise _error("nul_character", f"{file} holds a NUL character (\\u0000) in a text value; the "
                         "reader would silently cut the value there (id 'C12\\u0000x' would become 'C12'): "
                         "remove the NUL characters from the file and export it again")
        tail = chunk[-64:]
        yield chunk


def _geojson_text_encoding(path: Path, *, file: str, encoding: str | None = None) -> str:
    """UTF-8 or GB18030 (GBK), whichever decodes the whole file (*encoding* when given);
    the same pass refuses NUL characters."""
    with path.open("rb") as fh:
        chunks = _refusing_nul_escapes(iter(lambda: fh.read(_MB), b""), file=file)
        if encoding is not None:
            collections.deque(chunks, maxlen=0)
            return encoding
        found = _first_decoding(chunks)
    if found is None:
        raise _error("not_utf8", f"{file} is not UTF-8 text (nor GBK/GB18030): re-save it as "
                     "UTF-8, or pass its encoding with --encoding (e.g. --encoding gbk)")
    return found


def _read_geojson(path: Path, *, encoding: str | None) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """GeoJSON; text that is not UTF-8 (GBK from older Chinese tools) is decoded first."""
    encoding = _geojson_text_encoding(path, file=path.name, encoding=encoding)
    try:
        if codecs.lookup(encoding).name == "utf-8":
            return _read_ogr(str(path), file=path.name, fmt="GeoJSON"), {"encoding": "UTF-8"}
        text = path.read_bytes().decode(encoding)
    except LookupError:
        raise _error("not_utf8", f"{path.name}: unknown text encoding {encoding!r}; use e.g. --encoding gbk") from None
    except UnicodeDecodeError as exc:
        raise _error("not_utf8", f"{path.name} is not {encoding} text ({exc.reason} at byte "
                     f"{exc.start}): re-save it as UTF-8 or pass its encoding with --encoding") from None
    log.warning("%s is not UTF-8; decoded it as %s", path.name, encoding)
    gdf = _read_ogr(io.BytesIO(text.encode("utf-8")), file=path.name, fmt="GeoJSON")
    return gdf, {"encoding": encoding}


def _dbf_encoding(dbf: IO[bytes], *, file: str) -> str:
    """UTF-8 or GB18030: the first that decodes every text byte of a .dbf (streamed)."""
    head = dbf.read(32)
    header_len = int.from_bytes(head[8:10], "little")
    fields = dbf.read(max(header_len - 32, 0))
    names = b"".join(fields[i:i + 11].split(b"\0", 1)[0] for i in range(0, len(fields) - 1, 32))
    found = _first_decoding(itertools.chain([names], iter(lambda: dbf.read(_MB), b"")))
    if found is None:
        raise _error("not_utf8", f"{file}: the .dbf text is neither UTF-8 nor {_FALLBACK_ENCODING}; add a "
                     ".cpg file naming its encoding or pass --encoding")
    return found


def _read_shapefile(source: str, *, file: str, has_cpg: bool, encoding: str | None,
                    open_dbf: Callable[[], AbstractContextManager[IO[bytes]]]) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Read a .shp; without a .cpg (or .dbf language id) the text is UTF-8 or GB18030."""
    used = encoding or "from .cpg"
    if encoding is None and not has_cpg:
        try:
            declared = pyogrio.read_info(source).get("encoding")
        except _OGR_ERRORS as exc:
            raise ReadError(f"cannot read {file} as a Shapefile: {exc}") from None
        # GDAL falls back to ISO-8859-1 when neither .cpg nor the .dbf header names an
        # encoding; Chinese data is then UTF-8 or GBK, never Latin-1.
        if declared == "ISO-8859-1":
            with open_dbf() as dbf:
                encoding = used = _dbf_encoding(dbf, file=file)
            if encoding == _FALLBACK_ENCODING:
                log.warning("%s: .dbf text is not UTF-8; decoded it as %s", file, encoding)
        else:
            used = f"{declared} (from .dbf)"
    try:
        gdf = _read_ogr(source, file=file, fmt="Shapefile", encoding=encoding)
    except UnicodeDecodeError as exc:
        raise ReadError(
            f"{file}: the .dbf text is not {encoding or 'in the encoding its .cpg names'} "
            f"({exc.reason}); fix the .cpg or pass --encoding gb18030"
        ) from None
    return gdf, {"encoding": used}


def _read_zip(path: Path, *, kind: str, layer: str | None, encoding: str | None,
              max_mb: float) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    shps, members = _zip_shapefiles(path, max_mb=max_mb)
    if layer is None and len(shps) > 1:
        layer = layer_for_kind([Path(n).stem for n in shps], kind)
    shp = _pick(shps, layer, file=path.name, what="Shapefile", kind=kind)
    base = shp[: -len(".shp")].lower()
    missing = [ext for ext in (".shx", ".dbf") if base + ext not in members]
    if missing:
        raise ReadError(
            f"{path.name}: {shp} comes without its {' and '.join(missing)}; zip all parts "
            "of the Shapefile (.shp, .shx, .dbf, .prj, .cpg) together"
        )

    @contextlib.contextmanager
    def open_dbf() -> Iterator[IO[bytes]]:
        with zipfile.ZipFile(path) as zf, zf.open(members[base + ".dbf"]) as member:
            yield member

    gdf, info = _read_shapefile(
        f"/vsizip/{path.resolve()}/{shp}", file=f"{path.name}/{shp}",
        has_cpg=base + ".cpg" in members, encoding=encoding, open_dbf=open_dbf,
    )
    return gdf, {**info, "layer": Path(shp).stem}


def _read_bare_shp(path: Path, *, encoding: str | None) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    has_cpg = any(path.with_suffix(ext).exists() for ext in (".cpg", ".CPG"))
    dbf = next((path.with_suffix(e) for e in (".dbf", ".DBF") if path.with_suffix(e).exists()),
               None)
    if dbf is None or not path.with_suffix(".shx").exists() and not path.with_suffix(".SHX").exists():
        raise ReadError(
            f"{path.name} comes without its .shx or .dbf; keep all parts of the Shapefile "
            "together (better: zip them)"
        )
    return _read_shapefile(str(path), file=path.name, has_cpg=has_cpg, encoding=encoding,
                           open_dbf=lambda: dbf.open("rb"))


def _read_csv(path: Path, *, encoding: str | None,
              field_map: Mapping[str, str] | None) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    text, used = decode_text(path.read_bytes(), file=path.name, encoding=encoding)
    header = text.split("\n", 1)[0]
    sep = next((s for s in ("\t", ";") if s in header and "," not in header), ",")
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False,
                         na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ReadError(f"cannot read {path.name} as CSV: {exc}; check quoting and separators") from None
    df.columns = [str(c).strip() for c in df.columns]
    df = _apply_field_map(df, field_map, file=path.name)  # before: it may name lon/lat
    gdf, implied = csv_points(df, file=path.name)
    return gdf, {"encoding": used, "implied_crs": implied}


def _apply_field_map(df: pd.DataFrame, field_map: Mapping[str, str] | None, *, file: str) -> Any:
    if not field_map:
        return df
    missing = [src for src in field_map if src not in df.columns]
    if missing:
        raise LayerError(
            f"{file}: --field names column(s) {', '.join(map(repr, missing))} that the file "
            f"lacks; its columns are {', '.join(map(str, df.columns))}"
        )
    geom = df.geometry.name if isinstance(df, gpd.GeoDataFrame) else None
    kept = set(df.columns) - set(field_map)
    clash = [dst for dst in field_map.values() if dst in kept or dst == geom]
    if clash or len(set(field_map.values())) < len(field_map):
        raise LayerError(
            f"{file}: --field {dict(field_map)} would give two columns the same name "
            f"({', '.join(map(repr, clash)) or 'repeated target'}); drop or rename the other column"
        )
    return df.rename(columns=dict(field_map))


def _read_any(path: Path, fmt: str, *, kind: str, layer: str | None, encoding: str | None,
              field_map: Mapping[str, str] | None,
              max_mb: float) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    if fmt in ("geojson", "shp", "csv", "pbf") and layer is not None and layer != _stem(path):
        raise ReadError(f"{path.name} holds one layer ({_stem(path)}); drop --layer {layer}")
    if fmt == "gpkg":
        return _read_gpkg(path, kind=kind, layer=layer, encoding=encoding)
    if fmt == "geojson":
        return _read_geojson(path, encoding=encoding)
    if fmt == "zip":
        return _read_zip(path, kind=kind, layer=layer, encoding=encoding, max_mb=max_mb)
    if fmt == "shp":
        return _read_bare_shp(path, encoding=encoding)
    if fmt == "csv":
        return _read_csv(path, encoding=encoding, field_map=field_map)
    try:
        return read_osm_pbf(path, kind=kind), {}
    except LayerError as exc:
        raise ReadError(f"{path.name}: {exc}") from None


def read_layer(
    path: str | PathLike[str],
    *,
    kind: str,
    layer: str | None = None,
    field_map: Mapping[str, str] | None = None,
    declared_crs: CRSInput | None = None,
    coord_system: str = "wgs84",
    max_mb: float = DEFAULTS["max_upload_mb"],
    encoding: str | None = None,
) -> gpd.GeoDataFrame:
    """Read one layer of a user file into EPSG:4326, columns renamed by *field_map*.

    Parameters
    ----------
    path : path-like
        .gpkg, .geojson/.json, .zip (Shapefile inside), .shp, .csv, .osm.pbf/.pbf.
    kind : str
        Canonical layer the file is meant to be (see :data:`geo.layers.LAYER_NAMES`);
        picks the features of an OSM PBF and names the layer in messages.
    layer : str, optional
        GeoPackage layer or the .shp inside a zip; needed when there are several.
    field_map : mapping, optional
        ``{"file column": "canonical column"}`` renames, e.g. ``{"Floor": "floors"}``.
        For CSV it applies before coordinate columns are looked for.
    declared_crs : str, optional
        CRS of the coordinates, e.g. ``"EPSG:4547"``; required when the file has none
        (CSV with x/y or WKT, Shapefile without .prj). When the file names another CRS
        the declared one wins (logged): the fix for a wrong .prj.
    coord_system : {"wgs84", "cgcs2000", "gcj02", "bd09"}
        Datum of lon/lat input. GCJ-02 (Amap/Gaode, Tencent) and BD-09 (Baidu) are
        converted to WGS84; CGCS2000 is taken as WGS84.
    max_mb : float
        Size limit (setting ``max_upload_mb``); a zip's unpacked size counts too.
    encoding : str, optional
        Text encoding; default UTF-8, with GB18030 (GBK) tried next for CSV and for
        Shapefiles without a .cpg.

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326; ``attrs["source"]`` records path, format, layer, encoding, source CRS
        and coordinate system. CSV columns named lon/lat (经度/纬度) imply EPSG:4326.

    Raises
    ------
    ReadError
        Missing, unreadable, unsupported, too large or undecodable files; ambiguous layers.
    CRSError
        No CRS and none declared; lon/lat CRS on coordinates that are not degrees.
    LayerError
        Unknown *kind* or *coord_system*; *field_map* naming absent or clashing columns.
    """
    p = Path(path)
    if kind not in LAYER_NAMES:
        raise LayerError(f"read_layer: unknown layer kind {kind!r}; use one of {', '.join(LAYER_NAMES)}")
    system = canonical_coord_system(coord_system)
    fmt = detect_format(p)
    _check_file(p, max_mb=max_mb)
    gdf, info = _read_any(p, fmt, kind=kind, layer=layer, encoding=encoding,
                          field_map=field_map, max_mb=max_mb)
    if fmt != "csv":
        gdf = _apply_field_map(gdf, field_map, file=p.name)
    gdf = settle_crs(gdf, file=p.name, declared_crs=declared_crs,
                      implied=info.pop("implied_crs", None))
    check_lon_lat_range(gdf, file=p.name)
    source_crs = crs_label(gdf.crs)
    gdf = to_wgs84(gdf, file=p.name, system=system)
    gdf.attrs["source"] = {"path": str(p), "format": fmt, "kind": kind, "layer": None,
                           "encoding": None, "crs": source_crs, "coord_system": system, **info}
    log.info("read %d %s features from %s (%s, CRS %s, %s)", len(gdf), kind, p.name, fmt,
             source_crs, system)
    return gdf
