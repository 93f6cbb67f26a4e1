"""The workspace: prepared layers stored in the database, and loaded back as GeoDataFrames.

:func:`import_workspace` writes a :class:`geo.prepare.PreparedWorkspace` in the caller's
transaction (use :func:`api.db.session_scope`): an ``import_runs`` row, the layer rows
and an audit entry commit together or not at all. Rows go in with SQLAlchemy Core
``insert()`` compiled once and executed many times with plain tuples (``COPY`` on PostgreSQL, :mod:`api.bulk`); geometry
is encoded with vectorised ``shapely.to_wkb`` (a million buildings insert in seconds).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, Table, delete, func, select, type_coerce
from sqlalchemy.orm import Session

from api import audit
from api.bbox import bbox_clauses
from api.bulk import insert_columns
from api.models import LAYER_MODELS, WKB, ImportRun, utcnow
from geo.errors import LayerError
from geo.layers import SCHEMAS

__all__ = [
    "ImportSummary",
    "import_workspace",
    "load_layer",
    "workspace_stats",
    "workspace_version",
    "layer_count",
    "INSERT_CHUNK",
    "REBUILD_INDEXES_FROM",
]

log = logging.getLogger(__name__)

#: Rows per ``executemany`` call (or COPY progress step): bounds the memory of one batch of Python tuples.
INSERT_CHUNK = 50_000
#: From this many rows, secondary indexes are dropped and rebuilt after the insert
#: (one sort beats a million random B-tree inserts; it all stays in the transaction).
REBUILD_INDEXES_FROM = 100_000

Progress = Callable[[int], None]


class _Prepared(Protocol):
    layers: Mapping[str, gpd.GeoDataFrame]
    report: Any


@dataclass(frozen=True)
class ImportSummary:
    """What one import stored: rows per layer, warnings and repairs, the ``import_runs`` id."""

    counts: dict[str, int]
    warnings: int
    repaired: int
    import_run_id: int
    seconds: float


# ------------------------------------------------------------------ import


def import_workspace(
    session: Session,
    prepared: _Prepared,
    *,
    user: str,
    sources: Mapping[str, Any],
    replace: bool = True,
    note: str | None = None,
    progress: Progress | None = None,
) -> ImportSummary:
    """Store *prepared* in the workspace within *session*'s transaction (the caller commits).

    Parameters
    ----------
    session
        Session of the transaction; on any exception the caller rolls back and the
        previous workspace, ``import_runs`` and audit log are unchanged.
    prepared
        Output of :func:`geo.prepare.prepare_files` / ``prepare_layers``: canonical layers
        in EPSG:4326 and the validation report.
    user
        Username recorded in ``import_runs`` and the audit log.
    sources
        JSON-serialisable description of the input (paths, layer names, field maps, CRS).
    replace
        True (default) empties every layer table first: the workspace becomes exactly
        *prepared*. False appends; an id already stored raises :class:`LayerError`.
    note
        Free text shown with the import, e.g. ``"synthetic demo data (合成演示数据)"``.
    progress
        Called with the number of rows just inserted (for progress bars).

    Raises
    ------
    LayerError
        A layer is not in EPSG:4326, has missing geometries, or (append) reuses ids.
    """
    started = time.perf_counter()
    layers = {kind: gdf for kind, gdf in prepared.layers.items() if gdf is not None}
    unknown = sorted(set(layers) - set(LAYER_MODELS))
    if unknown:
        raise LayerError(f"import_workspace: unknown layer(s) {unknown}; expected {sorted(LAYER_MODELS)}")
    for kind, gdf in layers.items():
        _check_storable(kind, gdf)
    run = ImportRun(username=user, note=note, sources=dict(sources), status="running",
                    report=_report_json(prepared.report))
    session.add(run)
    session.flush()
    conn = session.connection()
    if replace:
        for model in LAYER_MODELS.values():
            conn.execute(delete(model.__table__))
    else:
        for kind, gdf in layers.items():
            _refuse_existing_ids(conn, kind, gdf)
    counts = {kind: _insert_layer(conn, kind, gdf, progress=progress) for kind, gdf in layers.items()}
    report = prepared.report
    run.counts = counts
    run.status = "success"
    run.finished_at = utcnow()
    audit.record(session, user=user, action="workspace.import", target=",".join(counts),
                 detail={"import_run_id": run.id, "counts": counts, "replace": replace})
    session.flush()
    summary = ImportSummary(counts=counts, warnings=len(getattr(report, "warnings", ())),
                            repaired=len(getattr(report, "repaired", ())), import_run_id=run.id,
                            seconds=time.perf_counter() - started)
    log.info("imported %s in %.1f s (import run %d, %s)",
             ", ".join(f"{n:,} {k}" for k, n in counts.items()), summary.seconds, run.id,
             "replace" if replace else "append")
    return summary


def _report_json(report: Any) -> dict[str, Any]:
    if report is None:
        return {}
    records = report.to_records() if hasattr(report, "to_records") else []
    summary = report.summary() if hasattr(report, "summary") else {}
    return {"summary": summary, "issues": records}


def _check_storable(kind: str, gdf: gpd.GeoDataFrame) -> None:
    schema = SCHEMAS[kind]
    if gdf.crs is None or gdf.crs.to_epsg() != 4326:
        raise LayerError(
            f"layer {kind}: stored layers must be in EPSG:4326; got {gdf.crs}; "
            "pass the layers through geo.prepare (or gdf.to_crs(4326))"
        )
    if schema.id_column not in gdf.columns:
        raise LayerError(f"layer {kind}: id column {schema.id_column!r} missing; run geo.prepare first")
    missing = gdf.geometry.isna().to_numpy() | shapely.is_empty(gdf.geometry.to_numpy())
    if missing.any():
        ids = gdf.loc[missing, schema.id_column].astype(str).head(5).tolist()
        raise LayerError(
            f"layer {kind}: {int(missing.sum())} feature(s) without geometry, e.g. #{', #'.join(ids)}; "
            "drop them or fix their geometry before importing"
        )


def _refuse_existing_ids(conn: Connection, kind: str, gdf: gpd.GeoDataFrame) -> None:
    id_col = SCHEMAS[kind].id_column
    table = LAYER_MODELS[kind].__table__
    stored = pd.Index(conn.execute(select(table.c[id_col])).scalars().all())
    clash = gdf[id_col].astype(str)
    clash = clash[clash.isin(stored)]
    if len(clash):
        raise LayerError(
            f"layer {kind}: {len(clash)} id(s) already in the workspace, e.g. #{', #'.join(clash.head(5))}; "
            "import without --append to replace the workspace, or give the new features other ids"
        )


def _column_values(series: pd.Series | None, dtype: str, n: int) -> list[Any]:
    """Plain Python values (None for missing) that every DB-API driver binds."""
    if series is None:
        return [None] * n
    missing = series.isna().to_numpy()
    if dtype == "float":
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        out = values.tolist()
    elif dtype == "int":
        values = pd.to_numeric(series, errors="coerce")
        out = values.fillna(0).to_numpy(dtype=np.int64).tolist()
    elif dtype == "bool":
        out = series.fillna(False).to_numpy(dtype=bool).tolist()
    elif isinstance(series.dtype, pd.StringDtype):
        return series.to_numpy(dtype=object, na_value=None).tolist()  # already str / None
    else:
        out = series.astype(object).map(str, na_action="ignore").tolist()
    if missing.any():
        for i in np.flatnonzero(missing):
            out[i] = None
    return out


def _layer_rows(kind: str, gdf: gpd.GeoDataFrame) -> tuple[list[str], list[list[Any]]]:
    """Column names and one value list per column, geometry as WKB with its bbox."""
    n = len(gdf)
    names: list[str] = []
    columns: list[list[Any]] = []
    for col in SCHEMAS[kind].columns:
        names.append(col.name)
        columns.append(_column_values(gdf[col.name] if col.name in gdf.columns else None, col.dtype, n))
    geoms = gdf.geometry.to_numpy()
    bounds = shapely.bounds(geoms)
    names += ["geometry", "minx", "miny", "maxx", "maxy"]
    columns.append(shapely.to_wkb(geoms).tolist())
    columns += [bounds[:, i].tolist() for i in range(4)]
    return names, columns


def _insert_layer(conn: Connection, kind: str, gdf: gpd.GeoDataFrame, *,
                  progress: Progress | None) -> int:
    table: Table = LAYER_MODELS[kind].__table__  # type: ignore[assignment]
    n = len(gdf)
    if n == 0:
        return 0
    names, columns = _layer_rows(kind, gdf)
    rebuild = n >= REBUILD_INDEXES_FROM
    indexes = sorted(table.indexes, key=lambda ix: ix.name or "") if rebuild else []
    for index in indexes:
        index.drop(conn)
    _executemany(conn, table, names, columns, progress=progress)
    for index in indexes:
        index.create(conn)
    log.info("inserted %d %s%s", n, kind, " (indexes rebuilt)" if rebuild else "")
    return n


def _executemany(conn: Connection, table: Table, names: Sequence[str], columns: Sequence[list[Any]],
                 *, progress: Progress | None) -> None:
    insert_columns(conn, table, dict(zip(names, columns, strict=True)), chunk=INSERT_CHUNK, progress=progress)


# ------------------------------------------------------------------ load


def load_layer(
    session: Session,
    kind: str,
    *,
    bbox: tuple[float, float, float, float] | None = None,
    community_id: str | Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
) -> gpd.GeoDataFrame:
    """Layer *kind* as a GeoDataFrame in EPSG:4326, in import order.

    Parameters
    ----------
    bbox
        ``(minx, miny, maxx, maxy)`` in degrees: only features whose bounding box
        intersects it.
    community_id
        One id or several: only features of these communities (layers with a
        ``community_id`` column: communities, buildings).
    columns
        Attribute columns to load (the id column and geometry always come); default all.
    """
    if kind not in LAYER_MODELS:
        raise LayerError(f"load_layer: unknown layer {kind!r}; choose one of {', '.join(LAYER_MODELS)}")
    schema = SCHEMAS[kind]
    table: Table = LAYER_MODELS[kind].__table__  # type: ignore[assignment]
    wanted = _wanted_columns(kind, columns)
    stmt = select(*(table.c[c] for c in wanted),
                  type_coerce(table.c.geometry, WKB).label("geometry")).order_by(table.c.fid)
    if bbox is not None:
        stmt = stmt.where(*bbox_clauses(session, table, bbox))
    if community_id is not None:
        if "community_id" not in table.c:
            raise LayerError(f"load_layer: layer {kind} has no community_id; filter by bbox instead")
        ids = [community_id] if isinstance(community_id, str) else list(community_id)
        stmt = stmt.where(table.c.community_id.in_(ids))
    rows = session.connection().execute(stmt).all()
    data = list(zip(*rows, strict=True)) if rows else [[] for _ in range(len(wanted) + 1)]
    dtypes = {c.name: c.dtype for c in schema.columns}
    frame = {name: _as_series(values, dtypes[name]) for name, values in zip(wanted, data, strict=False)}
    geometry = shapely.from_wkb(np.asarray(data[-1], dtype=object)) if rows else []
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geometry, crs=4326), crs=4326)


def _wanted_columns(kind: str, columns: Sequence[str] | None) -> list[str]:
    schema = SCHEMAS[kind]
    if columns is None:
        return schema.column_names
    unknown = sorted(set(columns) - set(schema.column_names))
    if unknown:
        raise LayerError(f"load_layer: layer {kind} has no column(s) {unknown}; "
                         f"columns are {', '.join(schema.column_names)}")
    return [schema.id_column] + [c for c in columns if c != schema.id_column]


def _as_series(values: Sequence[Any], dtype: str) -> pd.Series:
    if dtype == "int":
        return pd.Series(pd.array(list(values), dtype="Int64"))
    if dtype == "float":
        return pd.Series(np.asarray([np.nan if v is None else v for v in values], dtype=float))
    if dtype == "bool":
        return pd.Series(pd.array([None if v is None else bool(v) for v in values], dtype="boolean"))
    return pd.Series(list(values), dtype="str")


# ------------------------------------------------------------------ stats


def layer_count(session: Session, kind: str) -> int:
    """Number of stored features of layer *kind*."""
    table = LAYER_MODELS[kind].__table__
    return int(session.connection().execute(select(func.count()).select_from(table)).scalar_one())


def workspace_version(session: Session) -> int | None:
    """The version of the workspace: the id of its newest successful import (``None``: never imported).

    Every import (replace or append) makes a new version; plans record the version they
    were made from (``PlanVersion.workspace_version``) and are stale once it moves on.
    """
    return session.scalar(select(func.max(ImportRun.id)).where(ImportRun.status == "success"))


def workspace_stats(session: Session) -> dict[str, Any]:
    """Counts per layer, total households, bounding box and the last successful import."""
    conn = session.connection()
    counts = {kind: layer_count(session, kind) for kind in LAYER_MODELS}
    b = LAYER_MODELS["buildings"].__table__
    households, minx, miny, maxx, maxy = conn.execute(
        select(func.coalesce(func.sum(b.c.households), 0), func.min(b.c.minx), func.min(b.c.miny),
               func.max(b.c.maxx), func.max(b.c.maxy))
    ).one()
    last = session.scalars(select(ImportRun).where(ImportRun.status == "success")
                           .order_by(ImportRun.id.desc()).limit(1)).one_or_none()
    return {
        "counts": counts,
        "households": int(households),
        "bbox": None if minx is None else (minx, miny, maxx, maxy),
        "empty": counts["buildings"] == 0,
        "last_import": None if last is None else {
            "id": last.id, "at": last.finished_at.isoformat() if last.finished_at else None,
            "user": last.username, "note": last.note, "counts": last.counts,
        },
    }
