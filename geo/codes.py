"""Grid codes: Beijing DB11 (15 digits) and CJ/T 349-2010 style (20 digits).

DB11:    6 county (GB/T 2260) + 3 street + 3 community + 3 grid sequence (001–999).
CJ/T 349: 6 object class + 6 county + 3 street + 3 community + 2 sequence (01–99;
"00" when the community is a single grid).

Sequence order within a community ("west→east, north→south"): grids are cut into rows
of height *band* (the ``grid_code_row_band_m`` setting; 0 means √(median grid area) of
the community) counted from the community's northern edge; rows are numbered north to
south and, within a row, grids west to east by the x of their representative point
(ties: the northern one first, then grid_id). Coordinates are metric (the grids' CRS or
the local metric CRS when the grids are in lon/lat).

The county/street/community digits come from ``communities.admin_code`` (12-digit
statistical code: 6 county + 3 street + 3 community). Without it, the county is the
``grid_code_county`` setting and streets/communities are numbered 001… in id order.
"""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.errors import LayerError
from geo.settings import DEFAULTS

__all__ = ["SCHEMES", "grid_codes", "grid_sequence", "validate_grid_code"]

SCHEMES = {"db11": 15, "cjt349": 20}


def _admin_parts(communities: gpd.GeoDataFrame, county: str) -> dict[str, tuple[str, str, str]]:
    out: dict[str, tuple[str, str, str]] = {}
    cm = communities.sort_values("community_id")
    streets = cm["street_id"].astype(str) if "street_id" in cm else pd.Series("", index=cm.index)
    street_no = {s: f"{i + 1:03d}" for i, s in enumerate(sorted(set(streets)))}
    per_street: dict[str, int] = {}
    for cid, st, code in zip(cm["community_id"].astype(str), streets,
                             cm["admin_code"] if "admin_code" in cm else [None] * len(cm), strict=True):
        code = "" if code is None or code != code else str(code).strip()
        if re.fullmatch(r"\d{12}", code):
            out[cid] = (code[:6], code[6:9], code[9:12])
            continue
        per_street[st] = per_street.get(st, 0) + 1
        if per_street[st] > 999 or len(street_no) > 999:
            raise LayerError(
                f"grid_codes: community {cid!r} needs a 3-digit number but street {st or '(none)'!r} "
                f"has {per_street[st]} communities and there are {len(street_no)} streets without "
                "admin codes; give communities a 12-digit admin_code (GB/T 2260 county + street + "
                "community) or a street_id so that each street holds at most 999")
        out[cid] = (county, street_no[st], f"{per_street[st]:03d}")
    return out


def grid_sequence(grids: gpd.GeoDataFrame, *, band_m: float = DEFAULTS["grid_code_row_band_m"]) -> pd.Series:
    """1-based sequence of every grid within its community (west→east, north→south rows)."""
    g = grids
    if g.crs is not None and not g.crs.is_projected:
        g = g.to_crs(g.estimate_utm_crs())
    pts = shapely.get_coordinates(shapely.point_on_surface(g.geometry.values))
    df = pd.DataFrame({"c": g["community_id"].astype(str).to_numpy(), "x": pts[:, 0], "y": pts[:, 1],
                       "a": g.geometry.area.to_numpy(), "id": g["grid_id"].astype(str).to_numpy()},
                      index=g.index)
    top = g.geometry.bounds["maxy"].groupby(df["c"]).transform("max")
    band = df.groupby("c")["a"].transform(lambda a: np.sqrt(np.median(a))) if band_m <= 0 else band_m
    df["row"] = np.floor((top - df["y"]) / np.maximum(band, 1e-9)).astype(int)
    df = df.sort_values(["c", "row", "x", "y", "id"], ascending=[True, True, True, False, True])
    df["seq"] = df.groupby("c").cumcount() + 1
    return df["seq"].reindex(grids.index)


def grid_codes(grids: gpd.GeoDataFrame, communities: gpd.GeoDataFrame | None = None, *,
               scheme: str = DEFAULTS["grid_code_scheme"], county: str = DEFAULTS["grid_code_county"],
               object_class: str = DEFAULTS["grid_code_object_class"],
               band_m: float = DEFAULTS["grid_code_row_band_m"]) -> pd.Series:
    """Code of every grid (Series aligned with *grids*), unique and validated."""
    if scheme not in SCHEMES:
        raise LayerError(f"grid_codes: unknown scheme {scheme!r}; use one of {', '.join(SCHEMES)}")
    if grids.empty:
        return pd.Series([], dtype=object, index=grids.index, name="code")
    if communities is None or communities.empty:
        communities = pd.DataFrame({"community_id": sorted(grids["community_id"].astype(str).unique())})
    parts = _admin_parts(pd.DataFrame(communities.drop(columns="geometry", errors="ignore")), county)
    seq = grid_sequence(grids, band_m=band_m)
    count = grids.groupby(grids["community_id"].astype(str))["grid_id"].transform("size")
    codes = []
    for cid, s, n in zip(grids["community_id"].astype(str), seq, count, strict=True):
        if cid not in parts:
            raise LayerError(f"grid_codes: grid of community {cid!r} but no such community; "
                             "pass the communities the grids were made from")
        c6, s3, m3 = parts[cid]
        if scheme == "db11":
            if s > 999:
                raise LayerError(f"grid_codes: community {cid!r} has {n} grids; DB11 allows 999")
            code = f"{c6}{s3}{m3}{s:03d}"
        else:
            if s > 99:
                raise LayerError(f"grid_codes: community {cid!r} has {n} grids; CJ/T 349 allows 99")
            code = f"{object_class}{c6}{s3}{m3}{'00' if n == 1 else f'{s:02d}'}"
        validate_grid_code(code, scheme)
        codes.append(code)
    out = pd.Series(codes, index=grids.index, name="code")
    if out.duplicated().any():
        raise LayerError(f"grid_codes: duplicate code {out[out.duplicated()].iloc[0]}; "
                         "two communities share an admin_code — fix the communities layer")
    return out


def validate_grid_code(code: str, scheme: str = DEFAULTS["grid_code_scheme"]) -> dict[str, str]:
    """Parts of a valid grid code; raises ``LayerError`` naming the problem otherwise.

    Examples
    --------
    >>> validate_grid_code("320508001001003", "db11")["sequence"]
    '003'
    """
    if scheme not in SCHEMES:
        raise LayerError(f"validate_grid_code: unknown scheme {scheme!r}; use one of {', '.join(SCHEMES)}")
    n = SCHEMES[scheme]
    if not isinstance(code, str) or not code.isdigit() or not code.isascii():
        raise LayerError(f"validate_grid_code: {code!r} must be {n} ASCII digits ({scheme})")
    if len(code) != n:
        raise LayerError(f"validate_grid_code: {code!r} has {len(code)} digits; {scheme} codes have {n}")
    if scheme == "db11":
        parts = {"county": code[:6], "street": code[6:9], "community": code[9:12], "sequence": code[12:]}
        if parts["sequence"] == "000":
            raise LayerError(f"validate_grid_code: {code!r} has sequence 000; sequences start at 001")
    else:
        parts = {"object_class": code[:6], "county": code[6:12], "street": code[12:15],
                 "community": code[15:18], "sequence": code[18:]}
    return parts
