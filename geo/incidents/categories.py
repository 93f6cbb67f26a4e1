"""Incident categories: 部件 (public facilities), 事件 (events) and social-governance categories.

Codes follow the major/minor class idea of CJ/T 214 and GB/T 30428.2 (digital city
management): ``<kind>-<major 2 digits><minor 2 digits>`` with kind ``BJ`` (部件), ``SJ``
(事件) or ``SH`` (grid-governance social affairs, DOMAIN.md §3 duty list). Each category
carries a grade (1 urgent … 3 ordinary), a time limit in ``hours`` or ``workdays``, the
responsible department and the fields a report must fill. The default table below is
*(practice)*; a city loads its own with :func:`read_categories` (CSV/XLSX, Chinese headers).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from geo.errors import LayerError
from geo.register.sheets import read_sheet_rows

__all__ = ["KINDS", "LIMIT_UNITS", "FIELDS", "Category", "DEFAULT_CATEGORIES", "categories_from_frame",
           "read_categories", "category_frame", "search_categories"]

#: Kind code -> Chinese name.
KINDS: dict[str, str] = {"BJ": "部件", "SJ": "事件", "SH": "社会治理"}
#: Time-limit units: clock hours, or working days of the calendar.
LIMIT_UNITS: dict[str, str] = {"hours": "小时", "workdays": "工作日"}
#: Report fields a category may require (beyond location and category).
FIELDS: dict[str, str] = {"description": "问题描述", "photos": "现场照片", "address": "地址",
                          "reporter_phone": "联系电话"}

_HEADERS = {"代码": "code", "类型": "kind", "大类代码": "major_code", "大类名称": "major_name",
            "小类代码": "minor_code", "小类名称": "minor_name", "等级": "grade", "时限": "limit_value",
            "时限单位": "limit_unit", "责任部门": "department", "必填项": "required"}
_UNIT_ALIASES = {"小时": "hours", "hours": "hours", "h": "hours", "工作日": "workdays", "workdays": "workdays",
                 "wd": "workdays"}


@dataclass(frozen=True)
class Category:
    """One incident category with its grade, time limit, department and required fields."""

    code: str
    kind: str
    major_name: str
    minor_name: str
    grade: int
    limit_value: float
    limit_unit: str
    department: str
    required: tuple[str, ...] = ("description",)

    @property
    def name(self) -> str:
        """``大类/小类`` as shown to users."""
        return f"{self.major_name}/{self.minor_name}"


def _c(code: str, major: str, minor: str, grade: int, value: float, unit: str, dept: str,
       required: tuple[str, ...] = ("description",)) -> Category:
    return Category(code, code[:2], major, minor, grade, value, unit, dept, required)


_PHOTO = ("description", "photos")

DEFAULT_CATEGORIES: tuple[Category, ...] = (
    # 部件 (CJ/T 214 major classes)
    _c("BJ-0101", "公用设施", "井盖", 1, 4, "hours", "市政管理", _PHOTO),
    _c("BJ-0102", "公用设施", "路灯", 2, 2, "workdays", "市政管理", _PHOTO),
    _c("BJ-0103", "公用设施", "报刊亭", 3, 5, "workdays", "城管执法"),
    _c("BJ-0104", "公用设施", "变压器箱", 1, 8, "hours", "供电公司", _PHOTO),
    _c("BJ-0201", "道路交通", "桥梁", 2, 3, "workdays", "市政管理", _PHOTO),
    _c("BJ-0202", "道路交通", "地下通道", 2, 3, "workdays", "市政管理"),
    _c("BJ-0203", "道路交通", "交通标志牌", 2, 3, "workdays", "交警支队"),
    _c("BJ-0204", "道路交通", "护栏", 2, 3, "workdays", "市政管理", _PHOTO),
    _c("BJ-0205", "道路交通", "公交站亭", 3, 5, "workdays", "公交公司"),
    _c("BJ-0206", "道路交通", "停车设施", 3, 5, "workdays", "交警支队"),
    _c("BJ-0301", "市容环境", "垃圾房", 2, 2, "workdays", "环卫所"),
    _c("BJ-0302", "市容环境", "公共厕所", 2, 1, "workdays", "环卫所"),
    _c("BJ-0303", "市容环境", "广告牌匾", 3, 5, "workdays", "城管执法"),
    _c("BJ-0304", "市容环境", "垃圾箱", 3, 2, "workdays", "环卫所"),
    _c("BJ-0401", "园林绿化", "古树名木", 2, 3, "workdays", "绿化所", _PHOTO),
    _c("BJ-0402", "园林绿化", "绿地", 3, 5, "workdays", "绿化所"),
    _c("BJ-0403", "园林绿化", "行道树", 2, 3, "workdays", "绿化所"),
    _c("BJ-0404", "园林绿化", "雕塑", 3, 7, "workdays", "绿化所"),
    _c("BJ-0405", "园林绿化", "座椅", 3, 5, "workdays", "绿化所"),
    _c("BJ-0501", "房屋土地", "房屋", 2, 5, "workdays", "住建部门"),
    _c("BJ-0601", "其他设施", "其他部件", 3, 7, "workdays", "街道城管科"),
    # 事件 (GB/T 30428.2 major classes)
    _c("SJ-0101", "市容环境", "违法建设", 2, 7, "workdays", "城管执法", _PHOTO),
    _c("SJ-0102", "市容环境", "暴露垃圾", 2, 1, "workdays", "环卫所", _PHOTO),
    _c("SJ-0103", "市容环境", "道路不洁", 3, 1, "workdays", "环卫所"),
    _c("SJ-0104", "市容环境", "水域不洁", 3, 2, "workdays", "水务部门"),
    _c("SJ-0201", "宣传广告", "非法小广告", 3, 2, "workdays", "城管执法"),
    _c("SJ-0202", "宣传广告", "散发广告", 3, 1, "workdays", "城管执法"),
    _c("SJ-0203", "宣传广告", "违规户外广告", 3, 5, "workdays", "城管执法"),
    _c("SJ-0301", "施工管理", "施工噪声", 2, 1, "workdays", "生态环境", ("description", "address")),
    _c("SJ-0302", "施工管理", "占道施工", 2, 2, "workdays", "城管执法"),
    _c("SJ-0303", "施工管理", "施工扬尘", 2, 1, "workdays", "生态环境"),
    _c("SJ-0304", "施工管理", "施工废弃物", 2, 2, "workdays", "城管执法"),
    _c("SJ-0401", "街面秩序", "无照经营游商", 3, 1, "workdays", "城管执法"),
    _c("SJ-0402", "街面秩序", "占道经营", 3, 1, "workdays", "城管执法"),
    _c("SJ-0403", "街面秩序", "非法拉客", 3, 1, "workdays", "公安派出所"),
    _c("SJ-0404", "街面秩序", "乞讨卖艺", 3, 2, "workdays", "民政部门"),
    _c("SJ-0501", "突发事件", "爆管", 1, 2, "hours", "自来水公司", _PHOTO),
    _c("SJ-0502", "突发事件", "路面塌陷", 1, 2, "hours", "市政管理", _PHOTO),
    _c("SJ-0503", "突发事件", "积水", 1, 4, "hours", "排水公司", _PHOTO),
    _c("SJ-0504", "突发事件", "火灾", 1, 1, "hours", "消防救援"),
    _c("SJ-0601", "其他事件", "其他事件", 3, 7, "workdays", "街道城管科"),
    # Grid governance social affairs (DOMAIN.md §3 duties)
    _c("SH-0101", "矛盾纠纷", "邻里纠纷", 2, 5, "workdays", "社区调委会"),
    _c("SH-0102", "矛盾纠纷", "物业纠纷", 2, 7, "workdays", "住建部门"),
    _c("SH-0201", "安全隐患", "消防隐患", 1, 1, "workdays", "消防救援", _PHOTO),
    _c("SH-0202", "安全隐患", "燃气隐患", 1, 8, "hours", "燃气公司", _PHOTO),
    _c("SH-0203", "安全隐患", "房屋安全隐患", 1, 1, "workdays", "住建部门", _PHOTO),
    _c("SH-0301", "特殊群体服务", "独居老人求助", 1, 1, "workdays", "民政部门"),
    _c("SH-0302", "特殊群体服务", "困难群众帮扶", 2, 5, "workdays", "民政部门"),
    _c("SH-0401", "政策宣传", "政策咨询", 3, 5, "workdays", "社区居委会"),
)


def _required(value: str, row: int, label: str) -> tuple[str, ...]:
    names = tuple(s.strip() for s in str(value).replace("；", ";").replace("、", ";").split(";") if s.strip())
    back = {v: k for k, v in FIELDS.items()}
    out = tuple(back.get(n, n) for n in names)
    bad = [n for n in out if n not in FIELDS]
    if bad:
        raise LayerError(f"{label} row {row}: unknown required field(s) {', '.join(bad)}; "
                         f"use some of {'、'.join(FIELDS.values())}")
    return out or ("description",)


def _row_category(r: dict[str, str], row: int, label: str) -> Category:
    code = r["code"].strip()
    kind = code[:2]
    if kind not in KINDS or len(code) != 7 or code[2] != "-" or not code[3:].isdigit():
        raise LayerError(f"{label} row {row}: category code {code!r} is not <BJ|SJ|SH>-<4 digits>; e.g. BJ-0101")
    unit = _UNIT_ALIASES.get(r["limit_unit"].strip().lower())
    if unit is None:
        raise LayerError(f"{label} row {row}: time-limit unit {r['limit_unit']!r} unknown; use 小时 or 工作日")
    try:
        grade, value = int(r["grade"]), float(r["limit_value"])
    except ValueError:
        raise LayerError(f"{label} row {row}: grade and time limit must be numbers; "
                         f"got {r['grade']!r}, {r['limit_value']!r}") from None
    if not 1 <= grade <= 3 or value <= 0:
        raise LayerError(f"{label} row {row}: grade must be 1–3 and the time limit > 0; "
                         f"got {grade}, {value}")
    return Category(code, kind, r["major_name"].strip(), r["minor_name"].strip(), grade, value, unit,
                    r["department"].strip(), _required(r.get("required", ""), row, label))


def _row_numbers(frame: pd.DataFrame) -> list[int]:
    """The spreadsheet row of each row: its ``_row`` (read under a found header), else header row 1."""
    return frame["_row"].astype(int).tolist() if "_row" in frame.columns else list(range(2, len(frame) + 2))


def categories_from_frame(frame: pd.DataFrame, *, label: str = "categories") -> tuple[Category, ...]:
    """Categories from a table with the Chinese headers of :func:`category_frame` (or English names).

    Raises :class:`~geo.errors.LayerError` naming the row and the fix on a bad value, a missing
    column or a duplicate code.
    """
    frame = frame.rename(columns=_HEADERS)
    needed = {"code", "major_name", "minor_name", "grade", "limit_value", "limit_unit", "department"}
    missing = sorted(needed - set(frame.columns))
    if missing:
        names = {v: k for k, v in _HEADERS.items()}
        raise LayerError(f"{label}: category table lacks column(s) {'、'.join(names[m] for m in missing)}; "
                         f"use headers {'、'.join(_HEADERS)}")
    if frame.empty:  # loading it would delete every category: intake and Open311 would refuse all reports
        raise LayerError(f"{label}: the category table has a header but no rows; fill in the categories "
                         "(wangge incidents categories --export OUT writes the current table to start from)")
    rows = [{str(k): str(v) for k, v in r.items()} for r in frame.fillna("").astype(str).to_dict("records")]
    numbers = _row_numbers(frame)
    out = tuple(_row_category(r, i, label) for i, r in zip(numbers, rows, strict=True))
    seen: set[str] = set()
    for i, c in zip(numbers, out, strict=True):
        if c.code in seen:
            raise LayerError(f"{label} row {i}: category code {c.code} appears twice; keep one row per code")
        seen.add(c.code)
    return out


def read_categories(path: str | Path) -> tuple[Category, ...]:
    """Read a category table from CSV (UTF-8/GBK/GB18030) or XLSX.

    Examples
    --------
    >>> import io, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "c.csv")
    >>> category_frame(DEFAULT_CATEGORIES[:2]).to_csv(p, index=False)
    >>> read_categories(p) == DEFAULT_CATEGORIES[:2]
    True
    """
    return categories_from_frame(read_sheet_rows(path, known={*_HEADERS, *_HEADERS.values()}), label=str(path))


def category_frame(categories: tuple[Category, ...] = DEFAULT_CATEGORIES) -> pd.DataFrame:
    """The categories as a table with Chinese headers (the format :func:`read_categories` reads)."""
    rows = [{"代码": c.code, "类型": KINDS[c.kind], "大类代码": c.code[3:5], "大类名称": c.major_name,
             "小类代码": c.code[5:], "小类名称": c.minor_name, "等级": c.grade,
             "时限": f"{c.limit_value:g}", "时限单位": LIMIT_UNITS[c.limit_unit], "责任部门": c.department,
             "必填项": "、".join(FIELDS[f] for f in c.required)} for c in categories]
    return pd.DataFrame(rows, columns=list(_HEADERS))


def search_categories(categories: tuple[Category, ...], text: str) -> tuple[Category, ...]:
    """Categories whose code, kind, major or minor name contains *text* (all when blank)."""
    q = text.strip()
    if not q:
        return categories
    return tuple(c for c in categories
                 if q in c.code or q in KINDS[c.kind] or q in c.major_name or q in c.minor_name)
