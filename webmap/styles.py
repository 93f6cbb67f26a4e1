"""Colours and style tables of the maps: road classes, household classes, service points, legend swatches.

One place for what a feature looks like, so the workspace, planner and access maps and their
legends draw a class the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from geo.lifecircle import CATEGORY_LABELS_ZH

__all__ = [
    "CATEGORY_LABELS",
    "COMMUNITY_COLOR",
    "COMPOUND_COLOR",
    "GRID_COLOR",
    "HOUSEHOLD_COLORS",
    "NO_HOUSEHOLDS_COLOR",
    "POINT_COLORS",
    "ROAD_STYLES",
    "household_class",
    "household_class_labels",
    "road_class",
    "swatch",
]

#: Chinese names of service-point categories: the life-circle catalogue's, plus a few
#: codes other sources use (unknown codes are shown as given).
CATEGORY_LABELS: dict[str, str] = {
    "school": "学校", "hospital": "医院", "pharmacy": "药店", "library": "图书馆",
    "supermarket": "超市", "sports_ground": "运动场地", "party_centre": "党群服务中心",
    **CATEGORY_LABELS_ZH,
}

#: Line style per ``road_class`` (geo.layers.ROAD_CLASSES) and its Chinese legend name.
ROAD_STYLES: dict[str, dict[str, Any]] = {
    "major": {"color": "#7f2704", "weight": 4.0, "label": "主干道"},
    "secondary": {"color": "#a63603", "weight": 3.0, "label": "次干道"},
    "minor": {"color": "#636363", "weight": 2.0, "label": "支路"},
    "lane": {"color": "#969696", "weight": 1.2, "label": "巷道", "dashArray": "4 3"},
    "path": {"color": "#bdbdbd", "weight": 1.0, "label": "步行道", "dashArray": "2 3"},
    "rail": {"color": "#252525", "weight": 2.5, "label": "铁路", "dashArray": "8 4"},
    "water": {"color": "#3182bd", "weight": 3.0, "label": "河道"},
}

HOUSEHOLD_COLORS = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")
NO_HOUSEHOLDS_COLOR = "#c8c8c8"
COMMUNITY_COLOR = "#1f4e9c"
COMPOUND_COLOR = "#2ca25f"
GRID_COLOR = "#6a3d9a"
#: Service-point colours (d3 category20 order, strong shades first): 20 before repeating.
POINT_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896",
                "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5")


def household_class(households: pd.Series, *, breaks: tuple[int, ...]) -> pd.Series:
    """Class index per building: -1 for none/unknown, else 0..len(breaks) by *breaks*."""
    values = pd.to_numeric(households, errors="coerce")
    idx = np.searchsorted(np.asarray(breaks, dtype=float), values.fillna(0).to_numpy(), side="right")
    out = pd.Series(idx, index=households.index, dtype="int64")
    return out.where(values.fillna(0) > 0, -1)


def household_class_labels(breaks: tuple[int, ...]) -> list[str]:
    """Legend text of each class of :func:`household_class` from 0 up ("1–49 户" … "≥ 300 户")."""
    edges = [1, *breaks]
    labels = [f"{lo}–{hi - 1} 户" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    return [*labels, f"≥ {breaks[-1]} 户"]


def road_class(values: pd.Series) -> pd.Series:
    """``road_class`` with missing or unknown values shown as ``minor`` (the schema default)."""
    return values.where(values.isin(list(ROAD_STYLES)), "minor")


def swatch(color: str, *, kind: str = "box", dash: bool = False, weight: float = 2.0) -> str:
    """A legend sample of *color*: a filled ``box``, a ``line``, a ``dot`` or an ``outline``."""
    if kind == "line":
        style = f"border-top:{max(weight, 1.0):.1f}px {'dashed' if dash else 'solid'} {color};height:0;margin-top:7px"
    elif kind == "dot":
        style = f"background:{color};border-radius:50%;width:10px;height:10px;margin:3px"
    elif kind == "outline":
        style = f"border:2px {'dashed' if dash else 'solid'} {color}"
    else:
        style = f"background:{color};border:1px solid #555"
    return f'<i class="wg-swatch" style="{style}"></i>'
