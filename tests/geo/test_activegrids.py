"""The active-grid index: inside / within tolerance / nearest / none, vectorised; code succession."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from geo.activegrids import GridIndex, code_succession
from geo.errors import LayerError

# Two 100 m squares side by side near Shanghai, built in UTM 51N.
_UTM = "EPSG:32651"


def _grids() -> gpd.GeoDataFrame:
    g = gpd.GeoDataFrame({"grid_id": ["A", "B"]}, geometry=[box(350000, 3455000, 350100, 3455100),
                                                             box(350100, 3455000, 350200, 3455100)], crs=_UTM)
    return g.to_crs(4326)


def _points(xy: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    s = gpd.GeoSeries(gpd.points_from_xy([p[0] for p in xy], [p[1] for p in xy]), crs=_UTM).to_crs(4326)
    return s.x.to_numpy(), s.y.to_numpy()


def test_points_inside_tolerance_nearest_and_none() -> None:
    index = GridIndex.from_grids(_grids())
    xs, ys = _points([(350050, 3455050), (350150, 3455050), (350050, 3455103), (350050, 3455300),
                      (352000, 3455050)])
    out = index.grid_of_points(xs, ys, tolerance_m=5.0, nearest_fallback=True, nearest_max_m=500.0)
    assert out["grid_id"].tolist() == ["A", "B", "A", "A", None]
    assert out["how"].tolist() == ["inside", "inside", "within_tolerance", "nearest", "none"]
    assert out["distance_m"].iloc[2] == pytest.approx(3.0, abs=0.2)
    assert out["distance_m"].iloc[3] == pytest.approx(200.0, abs=0.5)


def test_nearest_fallback_off_says_none() -> None:
    index = GridIndex.from_grids(_grids())
    xs, ys = _points([(350050, 3455300)])
    out = index.grid_of_points(xs, ys, tolerance_m=5.0, nearest_fallback=False)
    assert out["how"].tolist() == ["none"] and out["grid_id"].tolist() == [None]


def test_many_points_match_a_plain_loop() -> None:
    grids = _grids()
    index = GridIndex.from_grids(grids)
    rng = np.random.default_rng(3)
    xy = list(zip(rng.uniform(350000, 350200, 2000), rng.uniform(3455000, 3455100, 2000), strict=True))
    xs, ys = _points(xy)
    got = index.grid_of_points(xs, ys, tolerance_m=0.0, nearest_fallback=False)["grid_id"].tolist()
    expected = ["A" if x < 350100 else "B" for x, _ in xy]
    assert got == expected


def test_grid_of_buildings_keeps_the_index() -> None:
    b = gpd.GeoDataFrame(geometry=[box(350010, 3455010, 350020, 3455020), box(350110, 3455010, 350120, 3455020)],
                         index=["b1", "b2"], crs=_UTM)
    out = GridIndex.from_grids(_grids()).grid_of_buildings(b)
    assert out["grid_id"].to_dict() == {"b1": "A", "b2": "B"}


def test_bad_input_is_named() -> None:
    with pytest.raises(LayerError, match="no CRS"):
        GridIndex.from_grids(gpd.GeoDataFrame({"grid_id": ["A"]}, geometry=[box(0, 0, 1, 1)]))
    with pytest.raises(LayerError, match="no column 'code'"):
        GridIndex.from_grids(_grids(), id_column="code")
    with pytest.raises(LayerError, match="one x per y"):
        GridIndex.from_grids(_grids()).grid_of_points([1.0, 2.0], [1.0])


def test_code_succession_keeps_and_retires() -> None:
    old = pd.Series({"b1": "A", "b2": "A", "b3": "A", "b4": "B", "b5": "C"})
    new = pd.Series({"b1": "A", "b2": "A", "b3": "D", "b4": "D"})
    out = code_succession(old, new).set_index("old_code")
    assert out.loc["A", ["successor", "shared", "buildings", "status"]].tolist() == ["A", 2, 3, "kept"]
    assert out.loc["B", ["successor", "status"]].tolist() == ["D", "retired"]
    assert out.loc["C", "successor"] is None and out.loc["C", "status"] == "retired"


def test_locate_arrays_equal_the_frame_and_reuse_one_transformer() -> None:
    index = GridIndex.from_grids(_grids())
    xs, ys = _points([(350050, 3455050), (350150, 3455050), (350050, 3455103), (350050, 3455300)])
    frame = index.grid_of_points(xs, ys, tolerance_m=5.0, nearest_fallback=False)
    got = index.locate(xs, ys, tolerance_m=5.0, nearest_fallback=False)
    assert got.grid_id.tolist() == frame["grid_id"].tolist() == ["A", "B", "A", None]
    assert got.how.tolist() == frame["how"].tolist()
    np.testing.assert_array_equal(got.distance_m, frame["distance_m"].to_numpy())
    # One point at a time (a request) answers the same as the batch, with the same transformer.
    one = [index.locate([x], [y], tolerance_m=5.0, nearest_fallback=False).grid_id[0] for x, y in zip(xs, ys, strict=True)]
    assert one == ["A", "B", "A", None]
    assert index._from_wgs84 is index._from_wgs84
