"""geo.chinacoords: WGS84 / GCJ-02 / BD-09 transforms."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from pyproj import Geod
from shapely.geometry import LineString, Point, Polygon

from geo.chinacoords import (
    bd09_to_gcj02,
    bd09_to_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    out_of_china,
    transform_coords,
    transform_geoseries,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from geo.errors import CRSError, LayerError

GEOD = Geod(ellps="WGS84")
Transform = Callable[..., tuple[np.ndarray, np.ndarray]]

# Reference values published with open-source implementations of the same algorithm.
# googollee/eviltransform python/test.py, TESTS (wgsLat, wgsLng, gcjLat, gcjLng),
# checked there to 6 decimal places:
EVILTRANSFORM_WGS_GCJ = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),  # Shanghai
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),  # Shenzhen
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),  # Beijing
]
# hujiulong/gcoord test/unit/crs/{WGS84,GCJ02}.spec.js at (123, 45), checked there with
# toBeCloseTo(..., 5), i.e. |error| < 5e-6 degrees:
GCOORD_AT_123_45 = {
    ("wgs84", "gcj02"): (123.00607541, 45.00197815),
    ("wgs84", "bd09"): (123.0124491, 45.0083293),
    ("gcj02", "wgs84"): (122.99395597, 44.99804071),
    ("gcj02", "bd09"): (123.00636499, 45.00636899),
}


def _metres(lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray) -> np.ndarray:
    return GEOD.inv(lon1, lat1, lon2, lat2)[2]


@pytest.mark.parametrize(("wlat", "wlon", "glat", "glon"), EVILTRANSFORM_WGS_GCJ)
def test_wgs84_to_gcj02_matches_eviltransform(wlat: float, wlon: float, glat: float, glon: float) -> None:
    lon, lat = wgs84_to_gcj02(wlon, wlat)
    assert lon == pytest.approx(glon, abs=1e-6)
    assert lat == pytest.approx(glat, abs=1e-6)
    back_lon, back_lat = gcj02_to_wgs84(glon, glat)
    assert _metres(back_lon, back_lat, wlon, wlat) < 0.05


@pytest.mark.parametrize(("pair", "expected"), list(GCOORD_AT_123_45.items()))
def test_transforms_match_gcoord(pair: tuple[str, str], expected: tuple[float, float]) -> None:
    lon, lat = transform_coords(123.0, 45.0, source=pair[0], target=pair[1])  # type: ignore[arg-type]
    assert lon == pytest.approx(expected[0], abs=5e-6)
    assert lat == pytest.approx(expected[1], abs=5e-6)


def _random_china(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(74.0, 135.0, n), rng.uniform(18.0, 53.0, n)


@pytest.mark.parametrize(
    ("forward", "inverse"),
    [(wgs84_to_gcj02, gcj02_to_wgs84), (gcj02_to_bd09, bd09_to_gcj02), (wgs84_to_bd09, bd09_to_wgs84)],
)
def test_round_trip_under_half_a_metre(forward: Transform, inverse: Transform) -> None:
    lon, lat = _random_china(20_000, seed=42)
    back_lon, back_lat = inverse(*forward(lon, lat))
    err = _metres(lon, lat, back_lon, back_lat)
    assert err.max() < 0.5
    # and the forward transform really moved the points (not a silent identity)
    moved = _metres(lon, lat, *forward(lon, lat))
    assert moved.min() > 1.0


def test_outside_china_unchanged() -> None:
    lon = np.array([2.35, -74.0, 139.69, 183.0, 100.0])
    lat = np.array([48.85, 40.7, 35.68, 45.0, 60.0])
    assert out_of_china(lon, lat).all()
    for func in (wgs84_to_gcj02, gcj02_to_wgs84, gcj02_to_bd09, bd09_to_gcj02, bd09_to_wgs84):
        out_lon, out_lat = func(lon, lat)
        np.testing.assert_array_equal(out_lon, lon)
        np.testing.assert_array_equal(out_lat, lat)


def test_nan_and_scalar_inputs() -> None:
    lon, lat = gcj02_to_wgs84(np.array([np.nan, 121.49]), np.array([31.24, 31.24]))
    assert np.isnan(lon[0]) and lat[0] == 31.24
    assert abs(lon[1] - 121.49) > 1e-3
    assert np.ndim(wgs84_to_gcj02(121.49, 31.24)[0]) == 0


def test_gcj_offset_in_shanghai_is_400_to_600_m() -> None:
    rng = np.random.default_rng(7)
    lon, lat = rng.uniform(121.2, 121.8, 500), rng.uniform(30.9, 31.5, 500)
    d = _metres(lon, lat, *wgs84_to_gcj02(lon, lat))
    assert 400 < d.min() and d.max() < 600


def test_unknown_system_rejected() -> None:
    with pytest.raises(LayerError, match="unknown coordinate system 'baidu'; use one of wgs84, gcj02, bd09"):
        transform_coords(1.0, 2.0, source="baidu", target="wgs84")  # type: ignore[arg-type]


def test_transform_geoseries_all_geometry_types_and_index() -> None:
    poly = Polygon([(121.49, 31.24), (121.50, 31.24), (121.50, 31.25), (121.49, 31.24)])
    gs = gpd.GeoSeries(
        [Point(121.49, 31.24), LineString([(121.49, 31.24), (121.5, 31.25)]), poly, Point(2.35, 48.85), None],
        index=["p", "l", "a", "paris", "none"],
        crs="EPSG:4326",
        name="geometry",
    )
    out = transform_geoseries(gs, source="gcj02", target="wgs84")
    assert list(out.index) == list(gs.index)
    assert out.crs == gs.crs
    assert out.geom_type.tolist()[:4] == gs.geom_type.tolist()[:4]
    assert out["none"] is None
    assert out["paris"].equals(gs["paris"])
    expected = gcj02_to_wgs84(121.49, 31.24)
    assert out["p"].x == pytest.approx(float(expected[0]), abs=1e-12)
    assert out["a"].exterior.coords[1][0] == pytest.approx(float(gcj02_to_wgs84(121.50, 31.24)[0]))


def test_transform_geoseries_keeps_z() -> None:
    gs = gpd.GeoSeries([Point(121.49, 31.24, 12.5)], crs="EPSG:4326")
    out = transform_geoseries(gs, source="wgs84", target="bd09")
    assert out.iloc[0].has_z and out.iloc[0].z == 12.5


def test_transform_geoseries_needs_lon_lat() -> None:
    gs = gpd.GeoSeries([Point(121.49, 31.24)], crs="EPSG:4326").to_crs(32651)
    with pytest.raises(CRSError, match=r"needs lon/lat coordinates; got EPSG:32651; use to_crs\('EPSG:4326'\)"):
        transform_geoseries(gs, source="gcj02", target="wgs84")


def test_real_gcj02_units_shift_400_to_600_m(shared_datasets: Path) -> None:
    units = gpd.read_file(shared_datasets / "china_admin_codes.gpkg", layer="units_gcj02")
    shanghai = units[(units["province"] == "上海市") & ~units.geometry.is_empty]
    assert len(shanghai) > 100
    wgs = transform_geoseries(shanghai.geometry, source="gcj02", target="wgs84")
    d = _metres(shanghai.geometry.x.values, shanghai.geometry.y.values, wgs.x.values, wgs.y.values)
    assert 400 < d.min() and d.max() < 600
    # GCJ-02 pushes Shanghai positions east-south-east (as in eviltransform's Shanghai
    # reference pair above); the conversion moves them back west and north.
    assert (wgs.x.values < shanghai.geometry.x.values).all()
    assert (wgs.y.values > shanghai.geometry.y.values).all()
    # the empty units (no centre point) stay empty
    all_wgs = transform_geoseries(units.geometry, source="gcj02", target="wgs84")
    assert all_wgs.is_empty.sum() == units.geometry.is_empty.sum()
