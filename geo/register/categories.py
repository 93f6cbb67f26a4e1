"""Key-person categories (重点人员 / 特殊群体) in the spirit of GB/T 31000's "9+X".

Each category has a code, a Chinese name and the visit interval in days for low (0–2) and
high (3–5) risk levels *(practice, DOMAIN.md §3)*. The default table is below; a street
office loads its own with :func:`read_categories` (CSV: 代码, 名称, 低风险走访天数, 高风险走访天数).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from geo.errors import LayerError

__all__ = ["Category", "DEFAULT_CATEGORIES", "read_categories", "visit_days"]


@dataclass(frozen=True)
class Category:
    """One key-person category and its visit intervals (days) by risk band."""

    code: str
    name: str
    visit_days_low: int
    visit_days_high: int


DEFAULT_CATEGORIES: tuple[Category, ...] = (
    Category("elderly_alone", "独居老人", 30, 7),
    Category("disabled", "残疾人", 30, 7),
    Category("community_correction", "社区矫正人员", 30, 7),
    Category("mental_illness", "严重精神障碍患者", 30, 7),
    Category("released", "刑满释放人员", 90, 30),
    Category("drug_user", "社区戒毒康复人员", 30, 7),
    Category("left_behind_child", "留守儿童", 30, 7),
    Category("low_income", "低保对象", 90, 30),
    Category("petitioner", "重点信访人员", 30, 7),
    Category("other", "其他重点人员", 90, 30),
)

_COLUMNS = {"代码": "code", "名称": "name", "低风险走访天数": "visit_days_low", "高风险走访天数": "visit_days_high"}


def read_categories(path: str | Path) -> tuple[Category, ...]:
    """Read a category table (CSV, UTF-8 or GB18030; Chinese or English headers)."""
    try:
        frame = pd.read_csv(path, dtype=str, encoding="utf-8-sig")
    except UnicodeDecodeError:
        frame = pd.read_csv(path, dtype=str, encoding="gb18030")
    frame = frame.rename(columns=_COLUMNS)
    missing = sorted(set(_COLUMNS.values()) - set(frame.columns))
    if missing:
        raise LayerError(f"{path}: category table lacks columns {', '.join(missing)}; "
                         f"use headers {', '.join(_COLUMNS)}")
    out = []
    for i, r in enumerate(frame.itertuples(index=False), start=2):
        try:
            out.append(Category(str(r.code).strip(), str(r.name).strip(), int(str(r.visit_days_low)), int(str(r.visit_days_high))))
        except ValueError:
            raise LayerError(f"{path} row {i}: visit days must be whole numbers; got {r.visit_days_low!r}, "
                             f"{r.visit_days_high!r}") from None
    return tuple(out)


def visit_days(category: Category, risk_level: int) -> int:
    """Days between visits for *risk_level* (3–5 high, 0–2 low)."""
    return category.visit_days_high if risk_level >= 3 else category.visit_days_low
