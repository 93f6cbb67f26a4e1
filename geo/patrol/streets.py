"""Street length walked: how much of a grid's streets a patrol track ran along.

**Rule** (track-to-street buffer overlap, not map matching): a stretch of street counts as
walked when it lies within ``patrol_street_match_m`` of a cleaned track piece (a segment
between two fixes of one session). The walked length of a grid is the length of its
streets (clipped to the grid) inside the union of those track buffers, so walking a street
twice counts once, and a street is credited only along the part the worker came near.
A worker walking beside a street closer than the tolerance is credited with it: the
tolerance should stay below the usual distance between parallel streets.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.crs import require_metric
from geo.errors import LayerError
from geo.patrol.coverage import track_segments
from geo.settings import DEFAULTS

__all__ = ["street_pieces", "street_length_walked"]


def street_pieces(streets: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, *, key: str = "key") -> gpd.GeoDataFrame:
    """Streets clipped to each grid, as straight pieces: ``grid``, the segment and its ``length_m``."""
    require_metric(streets, func="street_pieces")
    if grids.crs != streets.crs:
        raise LayerError("street_pieces: grids and streets are in different CRS; pass both in one metric CRS (to_crs)")
    lines = np.asarray(streets.geometry.values, dtype=object)
    polys = np.asarray(grids.geometry.values, dtype=object)
    g, s = shapely.STRtree(lines).query(polys, predicate="intersects")
    clipped = shapely.intersection(lines[s], polys[g])
    # Straight two-point pieces: a stretch along one is exact by linear referencing, also where a
    # street line crosses itself (a point there would be two places along the whole line).
    parts, owner = shapely.get_parts(clipped, return_index=True)
    xy, part = shapely.get_coordinates(parts[shapely.get_type_id(parts) == 1], return_index=True)
    keep_owner = owner[shapely.get_type_id(parts) == 1]
    e = np.flatnonzero(part[1:] == part[:-1])
    segs = shapely.linestrings(np.stack([xy[e], xy[e + 1]], axis=1)) if len(e) else np.zeros(0, dtype=object)
    out = gpd.GeoDataFrame({"grid": grids[key].to_numpy()[g[keep_owner[part[e]]]]}, geometry=segs, crs=streets.crs)
    out["length_m"] = out.geometry.length
    return out.loc[out["length_m"] > 0].reset_index(drop=True)


def street_length_walked(
    fixes: pd.DataFrame,
    pieces: gpd.GeoDataFrame,
    *,
    match_m: float = DEFAULTS["patrol_street_match_m"],
    by_session: bool = False,
) -> pd.DataFrame:
    """Street length of each grid and the part of it the tracks walked.

    Parameters
    ----------
    fixes
        Cleaned fixes (``session``, ``worker``, metric ``x``/``y`` in the CRS of *pieces*).
    pieces
        :func:`street_pieces` of the grids to report.
    match_m
        Tolerance between track and street (m).
    by_session
        One row per grid and session instead of per grid (a session's own walk).

    Returns
    -------
    pandas.DataFrame
        ``grid`` (and ``session``, ``worker``), ``street_total_m``, ``street_walked_m`` and
        ``street_share`` (0-1); grids with no street have no row, and per session only
        grids the session walked some of.
    """
    if match_m <= 0:
        raise LayerError(f"street_length_walked: match_m={match_m} must be > 0; set patrol_street_match_m")
    total = pieces.groupby("grid", sort=True)["length_m"].sum().rename("street_total_m")
    geoms, start, _ = track_segments(fixes)
    zones = shapely.buffer(geoms, match_m, quad_segs=4)
    street = np.asarray(pieces.geometry.values, dtype=object)
    p, z = shapely.STRtree(zones).query(street, predicate="intersects") if len(zones) else (np.zeros(0, int),) * 2
    session = fixes["session"].to_numpy()[start][z] if by_session else np.zeros(len(z), dtype=np.int64)
    worker = fixes["worker"].to_numpy()[start][z]
    lo, hi, row = _intervals(street, p, zones[z])
    hit = _union_length(pd.DataFrame({"piece": p[row], "session": session[row], "worker": worker[row],
                                      "lo": lo, "hi": hi}))
    hit["grid"] = pieces["grid"].to_numpy()[hit["piece"].to_numpy(dtype=np.int64)]
    if not by_session:
        out = total.reset_index().merge(hit.groupby("grid", as_index=False)["street_walked_m"].sum(), on="grid",
                                        how="left").fillna({"street_walked_m": 0.0})
        return _share(out)
    walked = hit.groupby(["grid", "session", "worker"], as_index=False)["street_walked_m"].sum()
    walked = walked.loc[walked["street_walked_m"] > 0]  # a buffer only touching a grid's street at a point
    return _share(walked.merge(total.reset_index(), on="grid", how="left"))


def _intervals(street: np.ndarray, p: np.ndarray, zones: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stretches (from, to, along the street piece) of street piece p[i] inside zones[i]; and i of each."""
    parts, row = shapely.get_parts(shapely.intersection(street[p], zones), return_index=True)
    line = shapely.get_type_id(parts) == 1  # touching at a point walks nothing
    parts, row = parts[line], row[line]
    a = shapely.line_locate_point(street[p[row]], shapely.get_point(parts, 0))
    b = shapely.line_locate_point(street[p[row]], shapely.get_point(parts, -1))
    return np.minimum(a, b), np.maximum(a, b), row


def _union_length(df: pd.DataFrame) -> pd.DataFrame:
    """Per (piece, session): the length of the union of its [lo, hi] stretches (overlaps counted once)."""
    if df.empty:
        return pd.DataFrame(columns=["piece", "session", "worker", "street_walked_m"])
    df = df.sort_values(["piece", "session", "lo"], ignore_index=True)
    keys = ["piece", "session"]
    reach = df.groupby(keys)["hi"].cummax()
    before = reach.groupby([df["piece"], df["session"]]).shift()
    df["block"] = (before.isna() | (df["lo"] > before)).cumsum()
    blocks = df.assign(hi=reach).groupby("block").agg(piece=("piece", "first"), session=("session", "first"),
                                                       worker=("worker", "first"), lo=("lo", "min"), hi=("hi", "max"))
    blocks["street_walked_m"] = blocks["hi"] - blocks["lo"]
    return blocks.groupby(keys, as_index=False).agg(worker=("worker", "first"), street_walked_m=("street_walked_m", "sum"))


def _share(out: pd.DataFrame) -> pd.DataFrame:
    out["street_share"] = out["street_walked_m"] / out["street_total_m"].where(out["street_total_m"] > 0)
    return out
