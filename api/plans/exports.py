"""Exports of a plan version: grids (with codes) and building assignments, per-grid statistics.

Formats: GeoPackage (layers ``grids`` and ``buildings``), GeoJSON (one layer), zipped
Shapefile (both layers, 10-character field names, UTF-8 ``.cpg``), KML (both layers as
folders, GDAL's LIBKML driver), CSV and XLSX statistics (XLSX adds the building sheet).
"""

from __future__ import annotations

import io
import logging
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import select, type_coerce
from sqlalchemy.orm import Session

from api.errors import RequestError
from api.models import WKB, Building, PlanAssignment, PlanGrid
from api.plans.state import table_of
from geo.spreadsheet import formula_safe, neutralise_formula, xlsx_cell

__all__ = ["EXPORT_FORMATS", "HEADER_STYLES", "Export", "grids_frame", "buildings_frame", "grid_statistics",
           "buildings_table", "neutralise_formula", "formula_safe", "export_plan"]

log = logging.getLogger(__name__)

#: format → (file suffix, MIME type)
EXPORT_FORMATS: dict[str, tuple[str, str]] = {
    "gpkg": (".gpkg", "application/geopackage+sqlite3"),
    "geojson": (".geojson", "application/geo+json"),
    "shp": (".zip", "application/zip"),
    "kml": (".kml", "application/vnd.google-earth.kml+xml"),
    "csv": (".csv", "text/csv; charset=utf-8"),
    "xlsx": (".xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
}
GRID_COLUMNS = ["grid_id", "code", "name", "community_id", "households", "buildings", "area_m2",
                "polsby_popper", "street_share", "locked", "exclusive", "status", "flags"]
STAT_HEADERS = {"grid_id": "网格ID", "code": "网格编码", "name": "名称", "community_id": "社区ID",
                "households": "户数", "buildings": "楼栋数", "area_m2": "面积(平方米)",
                "polsby_popper": "紧凑度(Polsby-Popper)", "street_share": "沿街边界占比", "locked": "锁定",
                "exclusive": "专属网格", "status": "户数状态", "flags": "标记"}
_SHP_NAMES = {"community_id": "comm_id", "polsby_popper": "polsby", "street_share": "street_shr",
              "building_id": "build_id", "grid_code": "grid_code"}
BUILDING_COLUMNS = ["building_id", "grid_id", "grid_code", "cell_id", "households", "name"]
BUILDING_HEADERS = {"building_id": "楼栋ID", "grid_id": "网格ID", "grid_code": "网格编码", "cell_id": "单元ID",
                    "households": "户数", "name": "名称"}
#: Chinese values of the statistics table (the canonical ones on request).
STATUS_ZH = {"in": "达标", "under": "低于下限", "over": "超过上限", "exclusive": "专属网格"}
FLAGS_ZH = {"over_max": "超过上限", "under_min": "低于下限", "compound_split": "小区被分割",
            "exclusive": "专属网格", "oversize_unit": "单元超过上限", "empty": "无住户", "locked": "锁定",
            "approximate": "社区边界为近似"}
#: Header styles of CSV/XLSX exports: Chinese for people (default), canonical names for programs.
HEADER_STYLES = ("zh", "canonical")


@dataclass(frozen=True)
class Export:
    """One exported file: its bytes, a file name and a MIME type."""

    data: bytes
    filename: str
    mimetype: str


def grids_frame(session: Session, plan_id: int, *, bounds: tuple[int, int] | None = None) -> gpd.GeoDataFrame:
    """The plan's grids (EPSG:4326) with statistics; ``status`` (under/in/over/exclusive) when *bounds* given."""
    t = table_of(PlanGrid)
    cols = [t.c[c] for c in ("grid_id", "code", "name", "community_id", "households", "buildings", "area_m2",
                             "polsby_popper", "street_share", "locked", "exclusive", "flags")]
    rows = session.connection().execute(select(*cols, type_coerce(t.c.geometry, WKB))
                                        .where(t.c.plan_version_id == plan_id).order_by(t.c.community_id,
                                                                                        t.c.code, t.c.grid_id)).all()
    names = [c.name for c in cols]
    df = pd.DataFrame([r[:-1] for r in rows], columns=names)
    geom = shapely.from_wkb(np.asarray([None if r[-1] is None else bytes(r[-1]) for r in rows], dtype=object))
    gdf = gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geom, crs=4326), crs=4326)
    for c in ("households", "buildings"):
        gdf[c] = gdf[c].astype(np.int64)
    for c in ("locked", "exclusive"):
        gdf[c] = gdf[c].astype(bool)
    gdf["flags"] = gdf["flags"].fillna("").astype(str)
    if bounds is not None:
        lo, hi = bounds
        h = gdf["households"]
        gdf["status"] = np.where(gdf["exclusive"], "exclusive",
                                 np.where(h < lo, "under", np.where(h > hi, "over", "in")))
    return gdf


def buildings_frame(session: Session, plan_id: int) -> gpd.GeoDataFrame:
    """Building → grid of the plan with building geometry from the workspace (EPSG:4326)."""
    a, b, g = table_of(PlanAssignment), table_of(Building), table_of(PlanGrid)
    stmt = (select(a.c.building_id, a.c.grid_id, a.c.cell_id, g.c.code.label("grid_code"), b.c.name,
                   b.c.households, b.c.community_id, type_coerce(b.c.geometry, WKB))
            .select_from(a.join(b, b.c.building_id == a.c.building_id)
                         .outerjoin(g, (g.c.plan_version_id == a.c.plan_version_id) & (g.c.grid_id == a.c.grid_id)))
            .where(a.c.plan_version_id == plan_id).order_by(a.c.building_id))
    rows = session.connection().execute(stmt).all()
    names = ["building_id", "grid_id", "cell_id", "grid_code", "name", "households", "community_id"]
    df = pd.DataFrame([r[:-1] for r in rows], columns=names)
    geom = shapely.from_wkb(np.asarray([bytes(r[-1]) for r in rows], dtype=object))
    return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geom, crs=4326), crs=4326)


def grid_statistics(grids: gpd.GeoDataFrame, *, headers: str = "zh") -> pd.DataFrame:
    """Per-grid statistics table (no geometry), columns in ``GRID_COLUMNS`` order.

    Area in whole m², Polsby–Popper and street share to 3 decimals. ``headers="zh"``
    (default) gives Chinese column names and values (达标, 是/否 …) for people opening the
    file in Excel; ``"canonical"`` keeps the canonical names and values for programs.
    """
    cols = [c for c in GRID_COLUMNS if c in grids.columns]
    out = pd.DataFrame(grids[cols]).reset_index(drop=True)
    if "area_m2" in out.columns:
        out["area_m2"] = out["area_m2"].round(0).astype("Int64")
    for c in ("polsby_popper", "street_share"):
        if c in out.columns:
            out[c] = out[c].astype(float).round(3)
    if _header_style(headers) == "canonical":
        return out
    for c in ("locked", "exclusive"):
        if c in out.columns:
            out[c] = np.where(out[c].astype(bool), "是", "否")
    if "status" in out.columns:
        out["status"] = out["status"].map(STATUS_ZH).fillna(out["status"])
    if "flags" in out.columns:
        out["flags"] = out["flags"].fillna("").astype(str).map(_flags_zh)
    return out.rename(columns=STAT_HEADERS)


def _header_style(headers: str) -> str:
    if headers not in HEADER_STYLES:
        raise RequestError(400, "bad_headers", f"未知的表头样式 headers={headers!r}",
                           "headers 取值：zh（中文表头，默认）、canonical（英文字段名）")
    return headers


def _flags_zh(text: str) -> str:
    parts = [p for p in text.replace(";", ",").split(",") if p.strip()]
    return "、".join(FLAGS_ZH.get(p.strip(), p.strip()) for p in parts)


def buildings_table(buildings: gpd.GeoDataFrame, *, headers: str = "zh") -> pd.DataFrame:
    """Building → grid table (no geometry) with Chinese or canonical headers."""
    out = pd.DataFrame(buildings[BUILDING_COLUMNS]).reset_index(drop=True)
    return out if _header_style(headers) == "canonical" else out.rename(columns=BUILDING_HEADERS)


def _shp_zip(layers: dict[str, gpd.GeoDataFrame], tmp: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, gdf in layers.items():
            out = gdf.rename(columns=_SHP_NAMES)
            out.to_file(tmp / f"{name}.shp", driver="ESRI Shapefile", encoding="UTF-8")
            for f in sorted(tmp.glob(f"{name}.*")):
                zf.write(f, f.name)
    return buf.getvalue()


def _kml(layers: dict[str, gpd.GeoDataFrame], path: Path) -> bytes:
    for i, (name, gdf) in enumerate(layers.items()):
        out = gdf.copy()
        label = out["code"] if "code" in out.columns else out.get("building_id")
        out.insert(0, "Name", label.fillna(out.iloc[:, 0]).astype(str) if label is not None else "")
        out.to_file(path, layer=name, driver="LIBKML", append=i > 0)
    return path.read_bytes()


def _cell(v: object) -> object:
    if v is None or (isinstance(v, float) and v != v) or v is pd.NA:
        return None
    return xlsx_cell(v.item() if hasattr(v, "item") else v)


def _xlsx(stats: pd.DataFrame, buildings: pd.DataFrame) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "网格统计"
    for sheet, table in ((ws, stats), (wb.create_sheet("楼栋归属"), buildings)):
        sheet.append([str(c) for c in table.columns])
        for row in table.itertuples(index=False):
            sheet.append([_cell(v) for v in row])
        for cell in sheet[1]:
            cell.data_type = "s"  # headers are text, never formulas
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def export_plan(session: Session, plan_id: int, fmt: str, *, bounds: tuple[int, int],
                layer: str = "grids", headers: str = "zh") -> Export:
    """Export plan *plan_id* in format *fmt* (see :data:`EXPORT_FORMATS`).

    CSV and XLSX are for people: Chinese headers and values unless ``headers="canonical"``,
    rounded numbers, every text cell safe from formula injection; the CSV is UTF-8 with a
    BOM so that Excel reads the Chinese. Shapefiles come as one zip of both layers.
    """
    if fmt not in EXPORT_FORMATS:
        raise RequestError(400, "bad_format", f"不支持的导出格式 {fmt!r}",
                           f"format 取值：{', '.join(EXPORT_FORMATS)}")
    if layer not in ("grids", "buildings"):
        raise RequestError(400, "bad_layer", f"未知图层 layer={layer!r}", "layer 取值：grids、buildings")
    suffix, mime = EXPORT_FORMATS[fmt]
    _header_style(headers)
    grids = grids_frame(session, plan_id, bounds=bounds)
    name = f"plan_{plan_id}" + (f"_{layer}" if fmt == "geojson" else "")
    if fmt == "csv":
        stats = formula_safe(grid_statistics(grids, headers=headers))
        # RFC 4180 line ends: a cell holding a lone CR is quoted, not split into two rows
        return Export(stats.to_csv(index=False, lineterminator="\r\n").encode("utf-8-sig"), name + suffix, mime)
    buildings = buildings_frame(session, plan_id)
    layers = {"grids": grids[GRID_COLUMNS + ["geometry"]], "buildings": buildings}
    if fmt == "xlsx":
        return Export(_xlsx(grid_statistics(grids, headers=headers), buildings_table(buildings, headers=headers)),
                      name + suffix, mime)
    with tempfile.TemporaryDirectory(prefix="wangge-export-") as d:
        tmp = Path(d)
        path = tmp / (name + suffix)
        if fmt == "gpkg":
            for lname, gdf in layers.items():
                gdf.to_file(path, layer=lname, driver="GPKG")
            data = path.read_bytes()
        elif fmt == "geojson":
            layers[layer].to_file(path, driver="GeoJSON")
            data = path.read_bytes()
        elif fmt == "shp":
            data = _shp_zip(layers, tmp)
        else:
            data = _kml(layers, path)
    log.info("plan %d exported as %s: %d grids, %d buildings, %d bytes", plan_id, fmt, len(grids),
             len(buildings), len(data))
    return Export(data, name + suffix, mime)
