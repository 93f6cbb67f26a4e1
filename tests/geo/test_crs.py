"""geo.crs: local metric CRS, to_metric, require_metric, as_wgs84."""

from __future__ import annotations

import geopandas as gpd
import pytest
from pyproj import CRS
from shapely.geometry import Point, box

from geo.crs import (
    WGS84,
    as_wgs84,
    crs_label,
    is_wgs84_equivalent,
    local_metric_crs,
    require_metric,
    to_metric,
    utm_crs_for,
)
from geo.errors import CRSError


def _points(lon: float, lat: float, crs: str | None = WGS84) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"point_id": ["a", "b"]},
        geometry=[Point(lon, lat), Point(lon + 0.01, lat + 0.01)],
        crs=crs,
    )


@pytest.mark.parametrize(
    ("lon", "lat", "epsg"),
    [
        (121.49, 31.24, 32651),  # Shanghai
        (116.39, 39.91, 32650),  # Beijing
        (120.60, 31.31, 32651),  # Suzhou
        (113.26, 23.13, 32649),  # Guangzhou
        (87.62, 43.83, 32645),  # Urumqi
        (151.21, -33.87, 32756),  # Sydney: southern hemisphere
        (-74.0, 40.7, 32618),  # New York
    ],
)
def test_local_metric_crs_is_utm_zone_of_centre(lon: float, lat: float, epsg: int) -> None:
    assert local_metric_crs(_points(lon, lat)).to_epsg() == epsg
    assert utm_crs_for(lon, lat).to_epsg() == epsg


def test_local_metric_crs_from_bounds_and_projected_input() -> None:
    assert local_metric_crs((121.47, 31.22, 121.51, 31.25)).to_epsg() == 32651
    projected = _points(121.49, 31.24).to_crs("EPSG:3857")
    assert local_metric_crs(projected).to_epsg() == 32651


def test_local_metric_crs_configured_overrides() -> None:
    crs = local_metric_crs(_points(121.49, 31.24), configured="EPSG:4547")
    assert crs.to_epsg() == 4547


@pytest.mark.parametrize(
    ("configured", "match"),
    [
        ("EPSG:4326", "projected CRS in metres; got EPSG:4326"),
        ("EPSG:999999", "unknown CRS 'EPSG:999999'"),
    ],
)
def test_local_metric_crs_rejects_bad_configured(configured: str, match: str) -> None:
    with pytest.raises(CRSError, match=match):
        local_metric_crs(_points(121.49, 31.24), configured=configured)


def test_local_metric_crs_needs_a_crs_and_geometry() -> None:
    with pytest.raises(CRSError, match="no CRS; use set_crs"):
        local_metric_crs(_points(121.49, 31.24, crs=None))
    empty = gpd.GeoDataFrame({"a": []}, geometry=[], crs=WGS84)
    with pytest.raises(CRSError, match="no geometry to locate; set the local_crs"):
        local_metric_crs(empty)
    with pytest.raises(CRSError, match=r"bounds must be \(minx, miny, maxx, maxy\)"):
        local_metric_crs((1.0, 2.0))


def test_to_metric_gives_metres() -> None:
    # A 0.001° x 0.001° square in Shanghai is about 95 m x 111 m.
    gdf = gpd.GeoDataFrame(geometry=[box(121.49, 31.24, 121.491, 31.241)], crs=WGS84)
    metric = to_metric(gdf)
    assert metric.crs.to_epsg() == 32651
    assert 10_000 < metric.area.iloc[0] < 11_000
    assert to_metric(gdf, crs="EPSG:4547").crs.to_epsg() == 4547
    with pytest.raises(CRSError, match="to_metric needs a projected CRS in metres; got EPSG:4490"):
        to_metric(gdf, crs="EPSG:4490")


def test_require_metric_wording() -> None:
    with pytest.raises(
        CRSError,
        match=r"partition_grids needs a projected CRS in metres; use to_crs\(\); got EPSG:4326",
    ):
        require_metric(_points(121.49, 31.24), func="partition_grids")
    with pytest.raises(CRSError, match="estimate_households needs .* the layer has no CRS"):
        require_metric(_points(121.49, 31.24, crs=None), func="estimate_households")
    require_metric(_points(121.49, 31.24).to_crs(32651), func="f")  # no error


def test_as_wgs84_relabels_cgcs2000_without_moving() -> None:
    gdf = _points(121.49, 31.24, crs="EPSG:4490")
    out = as_wgs84(gdf)
    assert out.crs.to_epsg() == 4326
    assert out.geometry.iloc[0].equals(gdf.geometry.iloc[0])


def test_as_wgs84_transforms_projected_and_keeps_wgs84() -> None:
    gdf = _points(121.49, 31.24)
    assert as_wgs84(gdf) is gdf
    back = as_wgs84(gdf.to_crs(32651))
    assert back.crs.to_epsg() == 4326
    assert back.geometry.iloc[0].distance(gdf.geometry.iloc[0]) < 1e-9
    with pytest.raises(CRSError, match="as_wgs84: the layer has no CRS"):
        as_wgs84(_points(121.49, 31.24, crs=None))


def test_cgcs2000_and_wgs84_differ_by_less_than_a_metre() -> None:
    # The claim behind relabelling: PROJ's own transformation moves a point < 1 m.
    gdf = _points(121.49, 31.24, crs="EPSG:4490")
    moved = gdf.to_crs(WGS84).to_crs(32651)
    relabelled = as_wgs84(gdf).to_crs(32651)
    assert moved.distance(relabelled).max() < 1.0


def test_is_wgs84_equivalent_and_label() -> None:
    assert is_wgs84_equivalent("EPSG:4326")
    assert is_wgs84_equivalent("OGC:CRS84")
    assert is_wgs84_equivalent(CRS.from_epsg(4490))
    assert not is_wgs84_equivalent("EPSG:32651")
    assert not is_wgs84_equivalent(None)
    assert crs_label("EPSG:32649") == "EPSG:32649"
    assert crs_label(None) == "no CRS"
