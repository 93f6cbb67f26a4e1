"""Work orders from outside: 12345 hotline sheets, our case CSV and Open311 JSON, checked row by row.

Every format is read into one table (:data:`COLUMNS`); :func:`check_workorders` then lists
every bad row (spreadsheet row, column, problem, fix) and returns the good rows with the time
limit resolved. Nothing is located here: the service matches addresses through the register
and coordinates through the active grids.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from geo.errors import ReadError
from geo.incidents.categories import Category
from geo.register.rows import RowProblem
from geo.register.sheets import read_sheet_rows

__all__ = ["FORMATS", "COLUMNS", "SOURCE_STATUS", "EXPORT_STATUS", "EXPORT_HEADERS", "read_workorders",
           "check_workorders", "parse_limits", "limit_text", "status_export"]

#: Import formats.
FORMATS: tuple[str, ...] = ("12345", "csv", "open311")
#: Columns of the common table (all strings).
COLUMNS: tuple[str, ...] = ("external_id", "category", "description", "address", "lon", "lat", "reported_at",
                            "limit", "status")
#: Status words of 12345 sheets -> workflow state they correspond to (recorded on the event).
SOURCE_STATUS: dict[str, str] = {"": "reported", "待受理": "reported", "新建": "reported", "已受理": "accepted",
                                 "已派单": "dispatched", "已派遣": "dispatched", "处理中": "handling",
                                 "办理中": "handling", "已办结": "closed", "已结案": "closed", "已完成": "closed",
                                 "不予受理": "rejected", "已注销": "cancelled",
                                 "open": "reported", "closed": "closed"}
#: Workflow state -> the status word a 12345 sheet carries (every word reads back through SOURCE_STATUS).
EXPORT_STATUS: dict[str, str] = {"reported": "待受理", "accepted": "已受理", "dispatched": "已派遣", "handling": "处理中",
                                 "feedback": "处理中", "closed": "已办结", "evaluated": "已办结", "visited": "已办结",
                                 "rejected": "不予受理", "cancelled": "已注销"}
#: Columns of the status export: the import's headers first (so the file reads back), then the result.
EXPORT_HEADERS: dict[str, str] = {"external_id": "工单编号", "category": "类别", "description": "诉求内容",
                                  "address": "地址", "lon": "经度", "lat": "纬度", "reported_at": "受理时间",
                                  "limit": "时限", "status": "状态", "grid_code": "所属网格", "case_id": "案件编号",
                                  "closed_at": "办结时间", "notes": "办理结果"}
_HEADERS: dict[str, str] = {
    "工单编号": "external_id", "工单号": "external_id", "编号": "external_id", "external_id": "external_id",
    "类别": "category", "事件类别": "category", "诉求类别": "category", "category": "category",
    "诉求内容": "description", "问题描述": "description", "description": "description",
    "地址": "address", "事发地址": "address", "address": "address",
    "经度": "lon", "lon": "lon", "纬度": "lat", "lat": "lat", "坐标": "coords",
    "受理时间": "reported_at", "来电时间": "reported_at", "reported_at": "reported_at",
    "时限": "limit", "办理时限": "limit", "limit": "limit", "状态": "status", "工单状态": "status", "status": "status",
}
_OPEN311 = {"service_request_id": "external_id", "service_code": "category", "description": "description",
            "address": "address", "long": "lon", "lat": "lat", "requested_datetime": "reported_at", "status": "status"}
_LIMIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(个)?\s*(工作日|小时|天|日|h|hours|workdays|wd)\s*$", re.IGNORECASE)


def _frame(raw: pd.DataFrame, headers: Mapping[str, str], label: str) -> pd.DataFrame:
    frame = raw.rename(columns={c: headers[c] for c in raw.columns if c in headers})
    if "coords" in frame.columns:
        parts = frame["coords"].astype(str).str.replace("，", ",").str.split(",", n=1, expand=True)
        parts = parts.reindex(columns=[0, 1]).fillna("")
        for i, col in enumerate(("lon", "lat")):
            cur = frame[col].astype(str).str.strip() if col in frame.columns else pd.Series("", index=frame.index)
            frame[col] = cur.where(cur != "", parts[i].str.strip())
    for col in COLUMNS:
        if col not in frame.columns:
            frame[col] = ""
    out = frame[list(COLUMNS)].fillna("").astype(str).apply(lambda s: s.str.strip())
    out["_row"] = frame["_row"].to_numpy() if "_row" in frame.columns else np.arange(len(out)) + 2
    if out.empty:
        raise ReadError(f"{label}: no work orders (a header and no data rows); export the work orders again "
                        "with at least one row", code="no_data_rows")
    return out.reset_index(drop=True)


def read_workorders(source: str | Path | bytes, fmt: str, *, name: str | None = None) -> pd.DataFrame:
    """Read a work-order file of format *fmt* (``12345``/``csv``: XLSX, CSV or JSON; ``open311``: JSON)."""
    if fmt not in FORMATS:
        raise ReadError(f"unknown work-order format {fmt!r}; use one of {', '.join(FORMATS)}")
    label = name or (str(source) if not isinstance(source, bytes) else "upload")
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    if fmt == "open311" or label.lower().endswith(".json"):
        try:
            records = json.loads(data.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ReadError(f"{label}: not valid UTF-8 JSON ({exc}); export the work orders as a JSON list") from None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise ReadError(f"{label}: expected a JSON list of objects, one per work order")
        raw = pd.DataFrame(records).astype(object).where(lambda d: d.notna(), "").astype(str)
        return _frame(raw, _OPEN311 if fmt == "open311" else _HEADERS, label)
    # hotline exports put a merged title row above the header and leave blank rows: find the header
    return _frame(read_sheet_rows(data, known=_HEADERS, name=label), _HEADERS, label)


def parse_limits(text: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(value, unit, ok) of 时限 texts like ``3个工作日``, ``24小时``, ``2天`` (days = 24 h each); blank is ok."""
    m = text.str.extract(_LIMIT)
    value = pd.to_numeric(m[0], errors="coerce")
    word = m[2].str.lower()
    unit = word.map({"工作日": "workdays", "workdays": "workdays", "wd": "workdays", "小时": "hours", "h": "hours",
                     "hours": "hours", "天": "hours", "日": "hours"})
    value = value.where(~word.isin(["天", "日"]), value * 24)
    ok = (text == "") | (value.notna() & (value > 0))
    return value, unit, ok


def limit_text(value: pd.Series, unit: pd.Series) -> pd.Series:
    """时限 as a 12345 sheet writes it (``3个工作日``, ``24小时``); :func:`parse_limits` reads it back."""
    words = {"workdays": "个工作日", "hours": "小时"}
    return pd.Series([f"{float(v):g}{words.get(u, '小时')}" for v, u in zip(value, unit, strict=True)],
                     index=value.index, dtype=object)


def _local_text(values: pd.Series, tz: str) -> pd.Series:
    t = pd.to_datetime(values, utc=True).dt.tz_convert(tz)
    return t.dt.strftime("%Y-%m-%d %H:%M").where(t.notna(), "")


def status_export(cases: pd.DataFrame, *, timezone: str) -> pd.DataFrame:
    """Cases as a 12345 status sheet (headers :data:`EXPORT_HEADERS`), in the shape the import reads.

    *cases* has the columns of :data:`EXPORT_HEADERS` with ``state`` instead of ``status``,
    ``limit_value``/``limit_unit`` instead of ``limit`` (times UTC). 状态 is the hotline's word for
    the workflow state (:data:`EXPORT_STATUS`), times are local ``YYYY-MM-DD HH:MM``.

    Examples
    --------
    >>> t = pd.Timestamp("2026-12-01 01:30", tz="UTC")
    >>> df = pd.DataFrame({"external_id": ["GD1"], "category": ["SJ-0102"], "description": ["垃圾"], "address": [""],
    ...     "lon": [121.47], "lat": [31.23], "reported_at": [t], "limit_value": [3.0], "limit_unit": ["workdays"],
    ...     "state": ["closed"], "grid_code": ["G1"], "case_id": [7], "closed_at": [t], "notes": ["已清运"]})
    >>> status_export(df, timezone="Asia/Shanghai").loc[0, ["受理时间", "时限", "状态"]].tolist()
    ['2026-12-01 09:30', '3个工作日', '已办结']
    """
    out = cases.copy()
    out["limit"] = limit_text(out["limit_value"], out["limit_unit"])
    out["status"] = out["state"].map(EXPORT_STATUS)
    for col in ("reported_at", "closed_at"):
        out[col] = _local_text(out[col], timezone)
    for col in ("external_id", "address", "grid_code", "notes"):
        out[col] = out[col].astype(object).where(out[col].notna(), "")
    return out[list(EXPORT_HEADERS)].rename(columns=EXPORT_HEADERS).reset_index(drop=True)


def _add(problems: list[RowProblem], frame: pd.DataFrame, mask: pd.Series, column: str, problem: str | pd.Series,
         fix: str) -> None:
    rows = frame.loc[mask.fillna(False).astype(bool)]
    texts = [problem] * len(rows) if isinstance(problem, str) else problem.loc[rows.index].tolist()
    problems.extend(RowProblem(int(r), column, t, fix) for r, t in zip(rows["_row"], texts, strict=True))


def _id_checks(f: pd.DataFrame, problems: list[RowProblem]) -> None:
    _add(problems, f, f["external_id"] == "", "工单编号", "工单编号为空", "每行须有唯一的工单编号")
    _add(problems, f, f["external_id"].str.len() > 64, "工单编号", "工单编号超过 64 个字符", "检查是否把其他列粘到了编号列")
    dup = f["external_id"].ne("") & f["external_id"].duplicated(keep="first")
    _add(problems, f, dup, "工单编号", "工单编号 " + f["external_id"] + " 在文件中重复", "同一工单只保留一行")


def _text_checks(f: pd.DataFrame, categories: Mapping[str, Category], problems: list[RowProblem]) -> None:
    _add(problems, f, f["description"] == "", "诉求内容", "诉求内容为空", "填写群众反映的问题")
    _add(problems, f, f["description"].str.len() > 4000, "诉求内容", "诉求内容超过 4000 字", "删减或拆分工单")
    _add(problems, f, f["category"] == "", "类别", "类别为空", "填写类别代码（如 SJ-0102）或小类名称")
    names = {c.minor_name: c.code for c in categories.values()}
    unknown = f["category"].ne("") & ~f["category"].isin(list(categories)) & ~f["category"].isin(list(names))
    _add(problems, f, unknown, "类别", "未知的类别 " + f["category"], "使用类别表中的代码或小类名称（wangge incidents categories）")
    f["category"] = f["category"].map(lambda v: names.get(v, v))


def _place_checks(f: pd.DataFrame, problems: list[RowProblem]) -> None:
    lon, lat = pd.to_numeric(f["lon"], errors="coerce"), pd.to_numeric(f["lat"], errors="coerce")
    bad_num = (f["lon"].ne("") & lon.isna()) | (f["lat"].ne("") & lat.isna())
    _add(problems, f, bad_num, "经度/纬度", "坐标不是数字：" + f["lon"] + "," + f["lat"], "经纬度写成小数度，如 121.4737")
    half = ~bad_num & (f["lon"].eq("") ^ f["lat"].eq(""))
    _add(problems, f, half, "经度/纬度", "经度和纬度只填了一个", "同时填写经度和纬度，或都留空只填地址")
    out = lon.notna() & lat.notna() & ~(lon.between(-180, 180) & lat.between(-90, 90))
    _add(problems, f, out, "经度/纬度", "坐标超出范围：" + f["lon"] + "," + f["lat"], "经度 -180~180，纬度 -90~90（WGS84）")
    nowhere = f["address"].eq("") & f["lon"].eq("") & f["lat"].eq("")
    _add(problems, f, nowhere, "地址/坐标", "没有地址也没有坐标", "填写标准地址或经纬度")
    f["lon"], f["lat"] = lon, lat


def _time_checks(f: pd.DataFrame, tz: str, now: pd.Timestamp, problems: list[RowProblem]) -> None:
    at = pd.to_datetime(f["reported_at"], errors="coerce", format="mixed", utc=False)
    bad = f["reported_at"].ne("") & at.isna()
    _add(problems, f, bad, "受理时间", "受理时间无法识别：" + f["reported_at"], "写成 2026-12-01 09:30")
    local = pd.Series([t if pd.isna(t) or t.tzinfo is not None else t.tz_localize(tz) for t in at], index=f.index,
                      dtype=object)
    utc = pd.to_datetime(local.where(local.notna(), None), utc=True)
    _add(problems, f, utc > now, "受理时间", "受理时间晚于当前时间：" + f["reported_at"], "检查日期（年份、月日是否颠倒）")
    f["reported_at"] = utc.where(utc.notna(), now)
    value, unit, ok = parse_limits(f["limit"])
    _add(problems, f, ~ok, "时限", "时限无法识别：" + f["limit"], "写成 3个工作日、24小时 或 2天，或留空用类别时限")
    f["limit_value"], f["limit_unit"] = value, unit
    unknown = ~f["status"].isin(list(SOURCE_STATUS))
    _add(problems, f, unknown, "状态", "未知的状态 " + f["status"], f"使用 {'、'.join(k for k in SOURCE_STATUS if k)} 之一")


def check_workorders(frame: pd.DataFrame, categories: Mapping[str, Category], *, timezone: str,
                     now: pd.Timestamp) -> tuple[pd.DataFrame, list[RowProblem]]:
    """The checked rows (lon/lat floats, UTC ``reported_at``, ``limit_value``/``limit_unit`` from 时限 or the
    category) and every problem found, sorted by row."""
    f = frame.copy()
    problems: list[RowProblem] = []
    _id_checks(f, problems)
    _text_checks(f, categories, problems)
    _place_checks(f, problems)
    _time_checks(f, timezone, now, problems)
    known = f["category"].isin(list(categories))
    default_value = f["category"].map({k: c.limit_value for k, c in categories.items()})
    default_unit = f["category"].map({k: c.limit_unit for k, c in categories.items()})
    f["limit_value"] = f["limit_value"].where(f["limit_value"].notna(), default_value)
    f["limit_unit"] = f["limit_unit"].where(f["limit_unit"].notna(), default_unit)
    partial = known & f["limit_unit"].eq("workdays") & (f["limit_value"] % 1 != 0)
    _add(problems, f, partial, "时限", "工作日时限须为整数天", "写成整数个工作日，或改用小时")
    f["source_status"] = f["status"].map(SOURCE_STATUS)
    return f, sorted(problems, key=lambda p: (p.row, p.column))
