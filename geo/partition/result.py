"""What a partition returns: the plan, its columns, its report and its grid codes.

Every module of the engine that makes or stitches a plan builds it from here; this module
imports nothing of the engine, so the package has no import cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import pandas as pd

from geo.codes import grid_codes

__all__ = ["PartitionResult", "PLAN_COLUMNS", "CELL_COLUMNS", "plan_report", "numbered_grids"]

PLAN_COLUMNS = ["grid_id", "community_id", "code", "households", "buildings", "area_m2", "polsby_popper",
                "street_share", "exclusive", "locked", "flags", "geometry"]
CELL_COLUMNS = ["cell_id", "community_id", "grid_id", "households", "buildings", "geometry"]


@dataclass(frozen=True)
class PartitionResult:
    """A grid plan.

    Attributes
    ----------
    grids : GeoDataFrame
        One row per grid: grid_id, community_id, code, households, buildings, area_m2,
        polsby_popper, street_share, exclusive, locked, flags, geometry (input CRS).
    assignment : Series
        building_id → grid_id.
    report : dict
        Plan totals, share of grids in range, infeasible communities with reasons.
    cells : GeoDataFrame or None
        The indivisible units the grids are made of (:mod:`geo.partition.cells_out`):
        cell_id, community_id, grid_id, households, buildings, geometry (input CRS).
    building_cell : Series or None
        building_id → cell_id.
    """

    grids: gpd.GeoDataFrame
    assignment: pd.Series
    report: dict[str, Any] = field(default_factory=dict)
    cells: gpd.GeoDataFrame | None = None
    building_cell: pd.Series | None = None


def numbered_grids(grids: gpd.GeoDataFrame, communities: gpd.GeoDataFrame, *, scheme: str,
                   code_options: Mapping[str, Any]) -> gpd.GeoDataFrame:
    """*grids* with their ``code`` (:func:`geo.codes.grid_codes`), in ``PLAN_COLUMNS``, sorted by code.

    Parameters
    ----------
    grids : GeoDataFrame
        Grids in a metric CRS (sequence numbers run west→east, north→south).
    communities : GeoDataFrame
        Every community the grids lie in (their admin codes).
    scheme : str
        Grid code scheme (setting ``grid_code_scheme``).
    code_options : mapping
        The other keyword arguments of :func:`geo.codes.grid_codes`.

    Returns
    -------
    GeoDataFrame
    """
    grids = grids.copy()
    grids["code"] = grid_codes(grids, communities, scheme=scheme, **code_options).to_numpy()
    return grids[PLAN_COLUMNS].sort_values(["community_id", "code"]).reset_index(drop=True)


def plan_report(grids: gpd.GeoDataFrame, infeasible: dict[str, list[str]], *, lo: int, hi: int) -> dict:
    """Plan totals and the share of grids in range, with the infeasible communities' reasons."""
    normal = grids[~grids["exclusive"] & ~grids["locked"] & (grids["households"] > 0)
                   & ~grids["flags"].str.contains("oversize_unit|empty")]
    inr = normal["households"].between(lo, hi)
    return {
        "grids": int(len(grids)),
        "grids_normal": int(len(normal)),
        "grids_exclusive": int(grids["exclusive"].sum()),
        "grids_locked": int(grids["locked"].sum()),
        "households": int(grids["households"].sum()),
        "buildings": int(grids["buildings"].sum()),
        "min_households": lo,
        "max_households": hi,
        "share_in_range": float(inr.mean()) if len(normal) else 1.0,
        "out_of_range": normal.loc[~inr, "grid_id"].tolist(),
        "oversize_units": int(grids["flags"].str.contains("oversize_unit").sum()),
        "mean_polsby_popper": float(normal["polsby_popper"].mean()) if len(normal) else float("nan"),
        "infeasible_communities": infeasible,
    }
