"""The tunables of the partition engine as one frozen object, built from the settings table.

``partition_grids(..., options=PartitionOptions.from_settings(app.config["WANGGE"]))``
is how ``api`` hands its configured values to the engine: nothing in
:mod:`geo.partition` reads :data:`geo.settings.DEFAULTS` for these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from geo.errors import LayerError
from geo.partition.cells import CellOptions, Costs
from geo.settings import DEFAULTS

__all__ = ["PartitionOptions", "OPTION_SETTINGS", "HouseholdBounds", "PlanSpec"]

#: PartitionOptions field -> setting name.
OPTION_SETTINGS: dict[str, str] = {
    "cost_inside_block": "partition_cost_inside_block",
    "cost_inside_compound": "partition_cost_inside_compound",
    "cost_street": "partition_cost_street",
    "cost_major_road": "partition_cost_major_road",
    "cost_compound_wall": "partition_cost_compound_wall",
    "street_near_m": "partition_street_near_m",
    "whole_block_share": "partition_whole_block_share",
    "balance_budget": "partition_balance_budget",
    "street_snap_m": "street_snap_m",
    "local_crs": "local_crs",
    "code_county": "grid_code_county",
    "code_object_class": "grid_code_object_class",
    "code_row_band_m": "grid_code_row_band_m",
    "footprint_overlap_share": "partition_footprint_overlap_share",
    "redraw_cost_street": "partition_redraw_cost_street",
    "redraw_mesh_m": "partition_redraw_mesh_m",
}


@dataclass(frozen=True)
class PartitionOptions:
    """Cut costs, cell and repair tunables and the metric CRS of one partition run.

    Every field is the setting of the name in :data:`OPTION_SETTINGS` (see the README
    settings table); the defaults are the settings' defaults.
    """

    cost_inside_block: float = DEFAULTS["partition_cost_inside_block"]
    cost_inside_compound: float = DEFAULTS["partition_cost_inside_compound"]
    cost_street: float = DEFAULTS["partition_cost_street"]
    cost_major_road: float = DEFAULTS["partition_cost_major_road"]
    cost_compound_wall: float = DEFAULTS["partition_cost_compound_wall"]
    street_near_m: float = DEFAULTS["partition_street_near_m"]
    whole_block_share: float = DEFAULTS["partition_whole_block_share"]
    balance_budget: int = DEFAULTS["partition_balance_budget"]
    street_snap_m: float = DEFAULTS["street_snap_m"]
    local_crs: str = DEFAULTS["local_crs"]
    code_county: str = DEFAULTS["grid_code_county"]
    code_object_class: str = DEFAULTS["grid_code_object_class"]
    code_row_band_m: float = DEFAULTS["grid_code_row_band_m"]
    footprint_overlap_share: float = DEFAULTS["partition_footprint_overlap_share"]
    redraw_cost_street: float = DEFAULTS["partition_redraw_cost_street"]
    redraw_mesh_m: float = DEFAULTS["partition_redraw_mesh_m"]

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> PartitionOptions:
        """Options from a settings mapping (e.g. ``app.config["WANGGE"]``); missing keys
        take the defaults."""
        return cls(**{f: settings[s] for f, s in OPTION_SETTINGS.items() if s in settings})

    @property
    def code_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`geo.codes.grid_codes` besides the scheme."""
        return {"county": self.code_county, "object_class": self.code_object_class,
                "band_m": self.code_row_band_m}

    @property
    def costs(self) -> Costs:
        """Cut costs per metre of boundary for the cell graph."""
        return Costs(major=self.cost_major_road, street=self.cost_street, wall=self.cost_compound_wall,
                     block=self.cost_inside_block, compound=self.cost_inside_compound)


@dataclass(frozen=True)
class HouseholdBounds:
    """Households a grid may hold (``low``–``high``) and aims at (``target``)."""

    low: int
    high: int
    target: int

    @classmethod
    def resolve(cls, *, micro: bool, low: int | None, high: int | None, target: int | None) -> HouseholdBounds:
        """The given bounds, the others from the grid (or micro-grid) settings' defaults; checked."""
        pre = "micro_grid" if micro else "grid"
        lo = int(low if low is not None else DEFAULTS[f"{pre}_min_households"])
        hi = int(high if high is not None else DEFAULTS[f"{pre}_max_households"])
        aim = int(target if target is not None else DEFAULTS[f"{pre}_target_households"])
        if not 0 < lo <= aim <= hi:
            raise LayerError(f"partition_grids: bounds must satisfy 0 < min ≤ target ≤ max; "
                             f"got min={lo}, target={aim}, max={hi}")
        return cls(lo, hi, aim)


@dataclass(frozen=True)
class PlanSpec:
    """Everything one run of the pipeline needs besides its layers and a previous plan.

    Attributes
    ----------
    bounds : HouseholdBounds
    seed : int
        Random seed; the same inputs and seed give the same plan.
    exclusive_uses : tuple of str
        Building uses that make exclusive grids (setting ``exclusive_uses``).
    code_scheme : str
        Grid code scheme (setting ``grid_code_scheme``).
    tunables : PartitionOptions
    """

    bounds: HouseholdBounds
    seed: int = DEFAULTS["partition_seed"]
    exclusive_uses: tuple[str, ...] = tuple(DEFAULTS["exclusive_uses"])
    code_scheme: str = DEFAULTS["grid_code_scheme"]
    tunables: PartitionOptions = PartitionOptions()

    @property
    def cell_options(self) -> CellOptions:
        """How :func:`geo.partition.cells.tessellate` draws the cells of this plan."""
        t = self.tunables
        return CellOptions(whole_block=t.whole_block_share * self.bounds.target, compound_max=self.bounds.high,
                           costs=t.costs, snap_m=t.street_snap_m, near_m=t.street_near_m,
                           overlap_share=t.footprint_overlap_share)
