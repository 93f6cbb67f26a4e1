"""Bounds on imported values: absurd household counts and ids too long or holding control characters.

Hostile or broken files must not carry a 10¹² household building or a 5,000-character id with
control characters into the workspace (they end up in pages, exports and logs). The checks
run on the canonical columns of a layer before the rest of the validation catalogue.
"""

from __future__ import annotations

import re

import geopandas as gpd
import pandas as pd

from geo.issues import Issue, ValidationReport
from geo.layers import SCHEMAS
from geo.settings import DEFAULTS

__all__ = ["value_limit_issues"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _label(value: object, max_len: int = 40) -> str:
    text = _CONTROL.sub("?", str(value))
    return text if len(text) <= max_len else text[:max_len] + "…"


def _id_issues(layer: str, ids: pd.Series, max_id_length: int) -> list[Issue]:
    issues = []
    for value in ids.dropna().astype(str):
        if len(value) > max_id_length:
            issues.append(Issue(layer, _label(value), "id_too_long",
                                f"id has {len(value)} characters, more than max_id_length={max_id_length}",
                                f"shorten the ids to at most {max_id_length} characters"))
        elif _CONTROL.search(value):
            issues.append(Issue(layer, _label(value), "id_control_character",
                                "id contains control characters (line breaks, tabs, NUL …)",
                                "remove control characters from the ids"))
    return issues


def _household_issues(layer: str, gdf: gpd.GeoDataFrame, id_column: str, max_households: int) -> list[Issue]:
    values = pd.to_numeric(gdf["households"], errors="coerce")
    ids = gdf[id_column] if id_column in gdf.columns else pd.Series(gdf.index, index=gdf.index)
    return [Issue(layer, _label(ids.loc[i]), "households_too_many",
                  f"households {v:g} is more than max_households_per_building={max_households}",
                  "check the household column (a unit or column mix-up?) or raise the setting")
            for i, v in values[values > max_households].items()]


def value_limit_issues(
    layer: str,
    gdf: gpd.GeoDataFrame,
    *,
    max_households_per_building: int = DEFAULTS["max_households_per_building"],
    max_id_length: int = DEFAULTS["max_id_length"],
) -> ValidationReport:
    """Errors for ids longer than *max_id_length* or holding control characters, and for
    buildings with more than *max_households_per_building* households.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> b = gpd.GeoDataFrame({"building_id": ["B1", "B\\n2"], "households": [40, 10**12]},
    ...                      geometry=[box(0, 0, 1, 1)] * 2, crs=4326)
    >>> sorted(value_limit_issues("buildings", b).codes())
    ['households_too_many', 'id_control_character']
    """
    schema = SCHEMAS[layer]
    issues: list[Issue] = []
    if schema.id_column in gdf.columns:
        issues += _id_issues(layer, gdf[schema.id_column], max_id_length)
    if "households" in gdf.columns:
        issues += _household_issues(layer, gdf, schema.id_column, max_households_per_building)
    return ValidationReport(tuple(issues))
