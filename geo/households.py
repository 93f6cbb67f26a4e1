"""Household estimates for buildings that come without a count.

Real building data rarely carries households. For a residential building the estimate
is ``floors × footprint area ÷ dwelling_area_m2`` (rounded half up), where floors are
given, or derived from the height (``height_m ÷ floor_height_m``), or
``default_floors``. Non-residential buildings get 0. A building of unknown use taller
than ``residential_max_height_m`` (storeys × storey height) counts as non-residential:
in China residential towers above 100 m are rare super-high-rises (GB 50016), while
untagged towers in map data are mostly offices and hotels (on the Shanghai Bund extract
the 632 m Shanghai Tower alone would otherwise be 11,080 households). Every estimated
value is flagged in ``households_estimated`` so that reports and notice boards can say so.
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.crs import require_metric
from geo.settings import DEFAULTS

__all__ = ["estimated_floors", "is_residential", "estimate_households", "households_from_register"]

log = logging.getLogger(__name__)


def _numeric(gdf: pd.DataFrame, column: str) -> pd.Series:
    if column not in gdf.columns:
        return pd.Series(np.nan, index=gdf.index, dtype="float64")
    return pd.to_numeric(gdf[column], errors="coerce").astype("float64")


def _round_half_up(values: pd.Series) -> pd.Series:
    # numpy rounds half to even (2.5 -> 2); people expect 2.5 -> 3
    return np.floor(values + 0.5)


def is_residential(buildings: pd.DataFrame) -> pd.Series:
    """True where ``use`` is missing, empty or ``residential`` (the default use)."""
    if "use" not in buildings.columns:
        return pd.Series(True, index=buildings.index, name="residential")
    use = buildings["use"].astype("string").str.strip().str.lower()
    return (use.isna() | (use == "") | (use == "residential")).fillna(True).astype(bool).rename(
        "residential"
    )


def _unknown_use(buildings: pd.DataFrame) -> pd.Series:
    if "use" not in buildings.columns:
        return pd.Series(True, index=buildings.index)
    use = buildings["use"].astype("string").str.strip()
    return (use.isna() | (use == "")).fillna(True).astype(bool)


def estimated_floors(
    buildings: pd.DataFrame,
    *,
    floor_height_m: float = DEFAULTS["floor_height_m"],
    default_floors: int = DEFAULTS["default_floors"],
) -> pd.Series:
    """Floors per building: given (≥ 1), else ``height_m ÷ floor_height_m`` rounded (≥ 1),
    else *default_floors*.
    """
    floors = _numeric(buildings, "floors")
    floors = floors.where(floors >= 1)
    height = _numeric(buildings, "height_m")
    from_height = _round_half_up(height.where(height > 0) / floor_height_m).clip(lower=1)
    return floors.fillna(from_height).fillna(float(default_floors)).rename("floors")


def estimate_households(
    buildings: gpd.GeoDataFrame,
    *,
    floor_height_m: float = DEFAULTS["floor_height_m"],
    dwelling_area_m2: float = DEFAULTS["dwelling_area_m2"],
    default_floors: int = DEFAULTS["default_floors"],
    min_footprint_m2: float = DEFAULTS["household_min_footprint_m2"],
    residential_max_height_m: float = DEFAULTS["residential_max_height_m"],
) -> gpd.GeoDataFrame:
    """*buildings* with ``households`` filled in and ``households_estimated`` set.

    Parameters
    ----------
    buildings : GeoDataFrame
        Building footprints in a projected CRS in metres (see :func:`geo.crs.to_metric`),
        with optional ``households``, ``use``, ``floors`` and ``height_m`` columns.
    floor_height_m, dwelling_area_m2, default_floors, min_footprint_m2 : float
        Settings of the same names (``min_footprint_m2`` is
        ``household_min_footprint_m2``): a residential footprint larger than it gets
        at least one household.
    residential_max_height_m : float
        Buildings without a use that are taller than this count as non-residential
        (0 switches the rule off); a use of ``residential`` is always residential.

    Returns
    -------
    GeoDataFrame
        A copy; given counts are kept (rows already flagged ``households_estimated``
        are estimated again, so edits to floors take effect). Residential buildings
        get ``floors × area ÷ dwelling_area_m2`` rounded half up, at least 1 above
        *min_footprint_m2*; other uses get 0. ``households`` is int64.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> b = gpd.GeoDataFrame({"floors": [6, None], "use": [None, "school"]},
    ...                      geometry=[box(0, 0, 30, 15), box(0, 20, 30, 50)], crs="EPSG:32651")
    >>> estimate_households(b)[["households", "households_estimated"]]
       households  households_estimated
    0          30                  True
    1           0                  True
    """
    require_metric(buildings, func="estimate_households")
    out = buildings.copy()
    given = _numeric(out, "households")
    if "households_estimated" in out.columns:
        given = given.where(~out["households_estimated"].fillna(False).astype(bool))
    residential = is_residential(out)
    floors = estimated_floors(out, floor_height_m=floor_height_m, default_floors=default_floors)
    if residential_max_height_m > 0:
        tower = _unknown_use(out) & (floors * floor_height_m > residential_max_height_m)
        if tower.any():
            log.info("households: %d buildings of unknown use above %g m counted as non-residential",
                     int(tower.sum()), residential_max_height_m)
        residential &= ~tower
    area = pd.Series(out.geometry.area, index=out.index).fillna(0.0)
    estimate = _round_half_up(floors * area / dwelling_area_m2)
    estimate = estimate.where(~(residential & (area > min_footprint_m2)), estimate.clip(lower=1))
    estimate = estimate.where(residential, 0.0)
    is_given = given.notna()
    out["households"] = _round_half_up(given.fillna(estimate)).astype("int64")
    out["households_estimated"] = ~is_given
    log.info(
        "households: %d given, %d estimated (%d residential, total %d estimated households)",
        int(is_given.sum()), int((~is_given).sum()), int((residential & ~is_given).sum()),
        int(out.loc[~is_given, "households"].sum()),
    )
    return out


def households_from_register(buildings: gpd.GeoDataFrame, counts: pd.Series) -> gpd.GeoDataFrame:
    """*buildings* whose ``households`` come from the register where it has households for them.

    Parameters
    ----------
    buildings
        ``building_id`` and ``households`` (any CRS).
    counts
        Register households per building id (buildings without register records absent).

    Returns
    -------
    geopandas.GeoDataFrame
        A copy; ``households_register`` flags the buildings whose count came from the
        register (their ``households_estimated``, when present, becomes False).

    Examples
    --------
    >>> b = gpd.GeoDataFrame({"building_id": ["a", "b"], "households": [40, 12]}, geometry=[None, None])
    >>> households_from_register(b, pd.Series({"a": 36}))[["households", "households_register"]]
       households  households_register
    0          36                 True
    1          12                False
    """
    out = buildings.copy()
    found = out["building_id"].astype(str).map(counts)
    flag = found.notna().to_numpy()
    out["households"] = np.where(flag, found.fillna(0), out["households"]).astype("int64")
    out["households_register"] = flag
    if "households_estimated" in out.columns:
        out["households_estimated"] = out["households_estimated"].astype(bool) & ~flag
    log.info("households: %d of %d buildings counted from the register (%d households)", int(flag.sum()),
             len(out), int(out.loc[flag, "households"].sum()))
    return out
