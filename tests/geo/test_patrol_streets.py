"""Street length walked: street within patrol_street_match_m of the track, per grid (and session)."""

from __future__ import annotations

import math

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from shapely.geometry import LineString

from geo.errors import LayerError
from geo.patrol.streets import street_length_walked, street_pieces

CRS = "EPSG:32650"
T0 = pd.Timestamp("2024-05-06 01:00", tz="UTC")


def world() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    grids = gpd.GeoDataFrame({"key": ["G1", "G2"]}, geometry=[shapely.box(0, -50, 200, 100), shapely.box(200, -50, 400, 100)],
                             crs=CRS)
    streets = gpd.GeoDataFrame({"street_id": ["main", "back", "cross"]}, geometry=[
        LineString([(0, 0), (400, 0)]),      # 200 m in each grid
        LineString([(0, 30), (200, 30)]),    # 30 m north, G1 only
        LineString([(100, -50), (100, 100)]),  # 150 m, G1
    ], crs=CRS)
    return grids, streets


def walk(points: list[tuple[float, float]], session: int = 1, worker: str = "w") -> pd.DataFrame:
    return pd.DataFrame({"worker": worker, "session": session, "x": [p[0] for p in points],
                         "y": [p[1] for p in points], "t": [T0 + pd.Timedelta(seconds=10 * i) for i in range(len(points))]})


def test_pieces_are_clipped_to_each_grid() -> None:
    grids, streets = world()
    pieces = street_pieces(streets, grids)
    assert pieces.groupby("grid")["length_m"].sum().to_dict() == pytest.approx({"G1": 550.0, "G2": 200.0})


def test_walked_length_is_the_street_inside_the_track_buffer() -> None:
    grids, streets = world()
    pieces = street_pieces(streets, grids)
    fixes = walk([(50, 3), (100, 3), (150, 3)])  # along main at 3 m, crossing 'cross' at x=100
    out = street_length_walked(fixes, pieces, match_m=10.0).set_index("grid")
    cap = math.sqrt(10**2 - 3**2)  # the buffer's round ends reach past the last fixes along the street
    # main: 100 m + two caps; cross: the 20 m band around y = 3; back (27 m away) not walked.
    assert out.loc["G1", "street_walked_m"] == pytest.approx(100 + 2 * cap + 20, abs=0.5)
    assert out.loc["G1", "street_total_m"] == pytest.approx(550.0)
    assert out.loc["G2", "street_walked_m"] == 0.0
    assert out.loc["G1", "street_share"] == pytest.approx(out.loc["G1", "street_walked_m"] / 550)


def test_walking_twice_counts_once_and_sessions_apart() -> None:
    grids, streets = world()
    pieces = street_pieces(streets, grids)
    there = walk([(210, 0), (390, 0)], session=1)
    back = walk([(390, 1), (210, 1)], session=2)
    both = pd.concat([there, back], ignore_index=True)
    once = street_length_walked(there, pieces).set_index("grid").loc["G2", "street_walked_m"]
    twice = street_length_walked(both, pieces).set_index("grid").loc["G2", "street_walked_m"]
    assert twice == pytest.approx(once, abs=0.5) and once == pytest.approx(200.0)  # caps clipped by the grid
    per = street_length_walked(both, pieces, by_session=True)
    assert sorted(per["session"]) == [1, 2]
    assert per["street_walked_m"].to_numpy() == pytest.approx([once, once], abs=0.5)


def test_no_fixes_and_errors() -> None:
    grids, streets = world()
    pieces = street_pieces(streets, grids)
    empty = street_length_walked(walk([])[:0], pieces)
    assert empty["street_walked_m"].tolist() == [0.0, 0.0]
    with pytest.raises(LayerError, match="match_m=0 must be > 0; set patrol_street_match_m"):
        street_length_walked(walk([(0, 0)]), pieces, match_m=0)
    with pytest.raises(LayerError, match="different CRS"):
        street_pieces(streets, grids.to_crs(32651))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_walks_equal_a_union_of_buffers_reference(seed: int) -> None:
    import numpy as np

    rng = np.random.default_rng(seed)
    grids, streets = world()
    bends = gpd.GeoDataFrame({"street_id": ["zig"]}, geometry=[LineString(rng.uniform([0, -40], [400, 90], (8, 2)))],
                             crs=CRS)
    streets = pd.concat([streets, bends], ignore_index=True)
    pieces = street_pieces(streets, grids)
    xy = rng.uniform([0, -40], [400, 90]) + np.cumsum(rng.normal(0, 12, (120, 2)), axis=0)
    fixes = walk([tuple(p) for p in xy]).assign(session=np.repeat([1, 2, 3], 40))
    got = street_length_walked(fixes, pieces, match_m=8.0).set_index("grid")["street_walked_m"]
    for g in ("G1", "G2"):
        # the same polygons the rule uses: one buffer per segment between two fixes of a session
        segs = [LineString(pts[i:i + 2]) for k in (1, 2, 3)
                for pts in [fixes.loc[fixes["session"] == k, ["x", "y"]].to_numpy()] for i in range(len(pts) - 1)]
        zone = shapely.union_all([shapely.buffer(ln, 8.0, quad_segs=4) for ln in segs])
        ref = sum(shapely.intersection(p, zone).length for p in pieces.loc[pieces["grid"] == g].geometry)
        assert got[g] == pytest.approx(ref, rel=1e-3, abs=0.05)
