"""geo.households: floors and household estimates."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import box

from geo.crs import to_metric
from geo.errors import CRSError
from geo.households import estimate_households, estimated_floors, is_residential
from geo.osm import normalise_osm_columns
from geo.readers import read_layer

UTM51 = "EPSG:32651"


def _square(side: float, x: float = 0.0) -> object:
    return box(x, 0.0, x + side, side)


def _buildings(**columns: list) -> gpd.GeoDataFrame:
    n = len(next(iter(columns.values())))
    geoms = columns.pop("geometry", [_square(30.0, 100.0 * i) for i in range(n)])  # 900 m²
    return gpd.GeoDataFrame(columns, geometry=geoms, crs=UTM51)


def test_needs_metric_crs() -> None:
    b = _buildings(floors=[3]).to_crs("EPSG:4326")
    with pytest.raises(CRSError, match=r"estimate_households needs a projected CRS in metres; use to_crs\(\); got EPSG:4326"):
        estimate_households(b)


def test_floors_given_height_or_default() -> None:
    b = _buildings(floors=[6, None, None, 0, None], height_m=[99.0, 31.0, None, None, 1.0])
    floors = estimated_floors(b, floor_height_m=3.0, default_floors=2)
    # given; 31/3 = 10.3 -> 10; neither -> default; 0 floors is not a count; 1 m -> at least 1
    assert floors.tolist() == [6, 10, 2, 2, 1]
    assert estimated_floors(b, floor_height_m=2.0, default_floors=1).tolist()[1] == 16  # 15.5 half up


def test_residential_default_use() -> None:
    b = _buildings(use=[None, "", "residential", " Residential ", "school", "other"])
    assert is_residential(b).tolist() == [True, True, True, True, False, False]
    assert is_residential(_buildings(floors=[1, 2])).all()


def test_estimate_formula_and_flags() -> None:
    b = _buildings(
        households=[120, None, None, None, None],
        use=["residential", None, "residential", "school", None],
        floors=[6, 6, None, 5, None],
        height_m=[None, None, 18.0, None, None],
    )
    out = estimate_households(b, floor_height_m=3.0, dwelling_area_m2=90.0, default_floors=1)
    # 900 m² footprints: 6 floors -> 60; 18 m / 3 -> 6 floors -> 60; default 1 floor -> 10
    assert out["households"].tolist() == [120, 60, 60, 0, 10]
    assert out["households_estimated"].tolist() == [False, True, True, True, True]
    assert out["households"].dtype == np.int64
    assert "households" not in b.columns or b["households"].isna().sum() == 4  # input untouched
    doubled = estimate_households(b, dwelling_area_m2=45.0)
    assert doubled["households"].tolist() == [120, 120, 120, 0, 20]


def test_small_footprints_and_rounding() -> None:
    # 1 floor: 31 m² -> 0.34 dwelling, raised to 1; 25 m² stays 0; 45 m² = 0.5 -> 1 (half up);
    # 40.5 m² = 0.45 -> raised to 1 (above 30 m²); 225 m² = 2.5 -> 3 (numpy's round gives 2)
    areas = [31.0, 25.0, 45.0, 40.5, 225.0]
    b = _buildings(floors=[1] * 5, geometry=[box(100.0 * i, 0, 100.0 * i + a, 1) for i, a in enumerate(areas)])
    out = estimate_households(b, dwelling_area_m2=90.0, min_footprint_m2=30.0)
    assert out["households"].tolist() == [1, 0, 1, 1, 3]
    assert estimate_households(b, min_footprint_m2=35.0)["households"].tolist()[0] == 0


def test_previous_estimates_are_recomputed() -> None:
    b = _buildings(households=[10, 10], households_estimated=[True, False], floors=[6, 6])
    out = estimate_households(b)
    assert out["households"].tolist() == [60, 10]
    assert out["households_estimated"].tolist() == [True, False]


def test_missing_geometry_gets_zero() -> None:
    b = _buildings(floors=[3, 3], geometry=[_square(30.0), None])
    assert estimate_households(b)["households"].tolist() == [30, 0]


def test_suzhou_floors_and_heights_agree(shared_datasets: Path) -> None:
    path = shared_datasets / "suzhou_gusu_buildings.geojson"
    raw = to_metric(read_layer(path, kind="buildings", field_map={"Floor": "floors", "height": "height_m"}))
    by_floors = estimate_households(raw.drop(columns="height_m"))
    by_height = estimate_households(raw.drop(columns="floors"))  # height = 3 x Floor here
    assert by_floors["households"].tolist() == by_height["households"].tolist()
    assert by_floors["households_estimated"].all()
    h = by_floors["households"]
    area = raw.geometry.area
    exact = raw["floors"] * area / 90.0
    assert (abs(h - exact)[area > 30] <= np.maximum(0.5, 1 - exact[area > 30]) + 1e-9).all()
    assert (h[area > 30] >= 1).all()
    assert (h[area <= 30] == np.floor(exact[area <= 30] + 0.5)).all()  # not raised to 1
    assert h.sum() == pytest.approx(exact.sum(), rel=0.02)
    # more floors on the same footprint never means fewer households
    taller = estimate_households(raw.assign(floors=raw["floors"] + 1).drop(columns="height_m"))
    assert (taller["households"] >= h).all() and taller["households"].sum() > h.sum()


def test_shanghai_heights_and_uses(shared_datasets: Path) -> None:
    raw = read_layer(shared_datasets / "shanghai_bund_osm.gpkg", kind="buildings", layer="buildings")
    b = to_metric(normalise_osm_columns(raw, kind="buildings"))
    out = estimate_households(b)
    residential = is_residential(b)
    assert (out.loc[~residential, "households"] == 0).all() and (~residential).sum() > 50
    towers = b["use"].isna() & (np.floor(b["height_m"] / 3.0 + 0.5) * 3.0 > 100)
    assert towers.sum() >= 20 and (out.loc[towers, "households"] == 0).all()  # Lujiazui offices
    big = residential & (b.geometry.area > 30) & ~towers
    assert (out.loc[big, "households"] >= 1).all()
    with_height = big & (b["height_m"] >= 3)
    floors = np.maximum(1, np.floor(b.loc[with_height, "height_m"] / 3.0 + 0.5))
    expected = np.maximum(1, np.floor(floors * b.geometry.area[with_height] / 90.0 + 0.5))
    assert out.loc[with_height, "households"].tolist() == expected.astype(int).tolist()
    no_height = big & b["height_m"].isna()
    one_floor = np.maximum(1, np.floor(b.geometry.area[no_height] / 90.0 + 0.5))
    assert out.loc[no_height, "households"].tolist() == one_floor.astype(int).tolist()


def test_towers_of_unknown_use_count_as_non_residential() -> None:
    # 900 m² footprints: 90 m of storeys -> 30 floors -> 300 households; 120 m -> none
    b = _buildings(height_m=[90.0, 120.0, 120.0, 120.0], use=[None, None, "residential", "office"])
    est = estimate_households(b, floor_height_m=3.0, dwelling_area_m2=90.0)
    assert est["households"].tolist() == [300, 0, 400, 0]
    off = estimate_households(b, floor_height_m=3.0, dwelling_area_m2=90.0, residential_max_height_m=0)
    assert off["households"].tolist() == [300, 400, 400, 0]
