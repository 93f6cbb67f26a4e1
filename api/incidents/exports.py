"""Status export back to the 12345 hotline: the cases of one source in the shape its import reads.

Each work order comes back with its 工单编号, the hotline's status word for the workflow state,
the grid it was located to, when it was closed and the latest reason recorded (办理结果).
The file reads back through ``wangge incidents import --format 12345`` (every row then a
duplicate, skipped). Text cells are neutralised against spreadsheet formulas.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.incidents.models import IncidentCase, IncidentEvent
from geo.incidents.workorders import status_export
from geo.spreadsheet import SHEET_TYPES, table_bytes

__all__ = ["EXPORT_TYPES", "latest_reasons", "workorder_status", "export_bytes"]

#: File type -> MIME type of the export.
EXPORT_TYPES: dict[str, str] = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8", "json": "application/json",
}
_COLUMNS = ("id", "external_id", "category", "description", "address", "lon", "lat", "reported_at", "limit_value",
            "limit_unit", "state", "grid_code", "closed_at")


def latest_reasons(session: Session, case_ids: list[int]) -> dict[int, str]:
    """Case id -> reason of its latest event that has one (办理结果 / status notes)."""
    out: dict[int, str] = {}
    for i in range(0, len(case_ids), 900):
        chunk = case_ids[i:i + 900]
        latest = (select(IncidentEvent.case_id, func.max(IncidentEvent.id).label("eid"))
                  .where(IncidentEvent.case_id.in_(chunk), IncidentEvent.reason != "")
                  .group_by(IncidentEvent.case_id).subquery())
        out.update(session.execute(select(IncidentEvent.case_id, IncidentEvent.reason)
                                   .join(latest, IncidentEvent.id == latest.c.eid)).all())
    return out


def workorder_status(session: Session, *, settings: Mapping[str, Any], source: str = "12345",
                     start: datetime | None = None, end: datetime | None = None) -> pd.DataFrame:
    """The status sheet of the cases from *source* reported in ``[start, end)`` (oldest first)."""
    cols = [getattr(IncidentCase, c) for c in _COLUMNS]
    stmt = select(*cols).where(IncidentCase.source == source).order_by(IncidentCase.reported_at, IncidentCase.id)
    if start is not None:
        stmt = stmt.where(IncidentCase.reported_at >= start)
    if end is not None:
        stmt = stmt.where(IncidentCase.reported_at < end)
    frame = pd.DataFrame(session.execute(stmt).all(), columns=list(_COLUMNS))
    notes = latest_reasons(session, frame["id"].astype(int).tolist())
    frame["notes"] = frame["id"].map(notes)
    frame = frame.rename(columns={"id": "case_id"})
    return status_export(frame, timezone=settings["incident_timezone"])


def export_bytes(table: pd.DataFrame, kind: str) -> bytes:
    """*table* as an XLSX, CSV (UTF-8 with BOM, as Excel opens it) or JSON file (a list of rows)."""
    if kind == "json":
        records = table.astype(object).where(table.notna(), None).to_dict("records")
        return json.dumps(records, ensure_ascii=False, indent=1).encode("utf-8")
    if kind in SHEET_TYPES:
        return table_bytes(table, kind, sheet_name="工单办理状态")
    raise ValueError(f"unknown export type {kind!r}; use one of {', '.join(EXPORT_TYPES)}")
