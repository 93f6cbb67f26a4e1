"""Plan quality measures (geo.partition.quality) on hand-made geometries with known answers."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box

from geo.errors import CRSError, LayerError
from geo.partition.quality import (
    grid_quality,
    non_contiguous_count,
    polsby_popper,
    share_in_range,
    street_boundary_share,
)

CRS = "EPSG:32651"
X0, Y0 = 300_000.0, 3_460_000.0


def _g(*geoms: Polygon | MultiPolygon) -> gpd.GeoSeries:
    return gpd.GeoSeries(list(geoms), crs=CRS)


def _s(*lines: list[tuple[float, float]]) -> gpd.GeoSeries:
    return gpd.GeoSeries([LineString([(X0 + x, Y0 + y) for x, y in ln]) for ln in lines], crs=CRS)


def _box(x0: float, y0: float, x1: float, y1: float) -> Polygon:
    return box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def test_polsby_popper_known_shapes() -> None:
    disc = Point(0, 0).buffer(10, quad_segs=256)
    pp = polsby_popper([box(0, 0, 1, 1), box(0, 0, 4, 1), disc, Polygon()])
    assert pp[0] == pytest.approx(math.pi / 4)
    assert pp[1] == pytest.approx(4 * math.pi * 4 / 100)
    assert pp[2] == pytest.approx(1.0, abs=1e-4)
    assert np.isnan(pp[3])


def test_polsby_popper_of_multipolygon_uses_total_area_and_perimeter() -> None:
    two = MultiPolygon([box(0, 0, 1, 1), box(5, 0, 6, 1)])
    assert polsby_popper(gpd.GeoSeries([two]))[0] == pytest.approx(4 * math.pi * 2 / 64)


def test_non_contiguous_count() -> None:
    grids = _g(_box(0, 0, 1, 1), MultiPolygon([_box(0, 0, 1, 1), _box(3, 0, 4, 1)]),
               MultiPolygon([_box(0, 0, 1, 1)]), _box(5, 5, 9, 9).difference(_box(6, 6, 7, 7)))
    assert non_contiguous_count(grids) == 1
    assert non_contiguous_count([]) == 0


@pytest.mark.parametrize(("values", "expected"), [([300, 500], 1.0), ([299, 501], 0.0),
                                                   ([100, 350, 400, 600], 0.5)])
def test_share_in_range_counts_bounds_inclusive(values: list[int], expected: float) -> None:
    assert share_in_range(np.array(values), 300, 500) == expected


def test_share_in_range_of_nothing_is_nan() -> None:
    assert np.isnan(share_in_range([], 300, 500))


def test_street_on_the_shared_edge_counts_fully() -> None:
    grids = _g(_box(0, 0, 100, 100), _box(100, 0, 200, 100))
    assert street_boundary_share(grids, _s([(100, -20), (100, 120)])) == pytest.approx(1.0)


@pytest.mark.parametrize(("offset", "expected"), [(3.0, 1.0), (4.9, 1.0), (8.0, 0.0), (20.0, 0.0)])
def test_street_parallel_to_the_edge_counts_within_tolerance(offset: float, expected: float) -> None:
    grids = _g(_box(0, 0, 100, 100), _box(100, 0, 200, 100))
    streets = _s([(100 + offset, -20), (100 + offset, 120)])
    assert street_boundary_share(grids, streets, tolerance_m=5.0) == pytest.approx(expected)


def test_street_along_the_outer_boundary_does_not_count() -> None:
    grids = _g(_box(0, 0, 100, 100), _box(100, 0, 200, 100))
    outer = _s([(0, 120), (200, 120)], [(-20, -50), (-20, 150)], [(220, -50), (220, 150)])
    assert street_boundary_share(grids, outer) == 0.0
    # a street on the outer edge y=0 reaches the first 5 m of the shared edge x=100
    on_edge = _s([(-50, 0), (250, 0)])
    assert street_boundary_share(grids, on_edge) == pytest.approx(0.05)


def test_street_on_half_the_shared_edges() -> None:
    # four 100 m squares: internal boundary is the cross (400 m); a street covers the vertical
    # bar (200 m) and lies within 5 m of 10 m of the horizontal bar where it crosses
    grids = _g(_box(0, 0, 100, 100), _box(100, 0, 200, 100), _box(0, 100, 100, 200),
               _box(100, 100, 200, 200))
    share = street_boundary_share(grids, _s([(100, -10), (100, 210)]))
    assert share == pytest.approx(210 / 400, abs=0.005)


def test_street_covering_part_of_an_edge_counts_up_to_the_tolerance() -> None:
    # the street ends at y=50; points of the edge up to y=55 are within 5 m of it
    grids = _g(_box(0, 0, 100, 100), _box(100, 0, 200, 100))
    share = street_boundary_share(grids, _s([(100, -20), (100, 50)]), tolerance_m=5.0)
    assert share == pytest.approx(0.55, abs=0.03)


def test_t_junction_without_shared_vertices() -> None:
    # the left grid's right edge has no vertex where the two right grids meet
    grids = _g(_box(0, 0, 100, 200), _box(100, 0, 200, 100), _box(100, 100, 200, 200))
    streets = _s([(100, -10), (100, 210)])
    # internal: the vertical edge (200 m) + the horizontal edge between the right grids (100 m),
    # whose first 5 m lie within 5 m of the street
    assert street_boundary_share(grids, streets) == pytest.approx(205 / 300, abs=0.005)


def test_no_shared_edge_gives_nan() -> None:
    grids = _g(_box(0, 0, 100, 100), _box(300, 0, 400, 100))
    assert np.isnan(street_boundary_share(grids, _s([(100, -20), (100, 120)])))


def test_street_boundary_share_refuses_degrees() -> None:
    grids = gpd.GeoSeries([box(121.0, 31.0, 121.001, 31.001)], crs="EPSG:4326")
    with pytest.raises(CRSError, match="street_boundary_share needs a projected CRS.*EPSG:4326"):
        street_boundary_share(grids, grids.boundary)


def test_street_boundary_share_refuses_mixed_crs() -> None:
    grids = _g(_box(0, 0, 100, 100), _box(100, 0, 200, 100))
    streets = _s([(100, -20), (100, 120)]).to_crs("EPSG:4326")
    with pytest.raises(LayerError, match=r"layer 'streets' is in .*use streets.to_crs"):
        street_boundary_share(grids, streets)


def test_street_boundary_share_refuses_bad_tolerance() -> None:
    grids = _g(_box(0, 0, 100, 100), _box(100, 0, 200, 100))
    with pytest.raises(LayerError, match="tolerance_m must be > 0; got -1"):
        street_boundary_share(grids, _s([(100, 0), (100, 100)]), tolerance_m=-1)


def test_grid_quality_on_a_known_plan() -> None:
    grids = gpd.GeoDataFrame(
        {"households": [350, 520, 400]},
        geometry=[_box(0, 0, 100, 100), _box(100, 0, 200, 100),
                  MultiPolygon([_box(0, 100, 100, 200), _box(100, 150, 200, 200)])], crs=CRS)
    streets = gpd.GeoDataFrame(geometry=list(_s([(100, -10), (100, 100)])), crs=CRS)
    q = grid_quality(grids, streets, lo=300, hi=500)
    assert q["grids"] == 3
    assert q["share_in_range"] == pytest.approx(2 / 3)
    assert q["non_contiguous"] == 1
    assert q["mean_polsby_popper"] == pytest.approx(np.mean(polsby_popper(grids)))
    # shared: x=100 (y 0..100) on the street, y=100 (x 0..100) whose last 5 m are within 5 m
    # of the street's end; the gap (x 100..200, y 100..150) is outer boundary → 105 / 200
    assert q["street_share"] == pytest.approx(105 / 200, abs=0.005)


def test_grid_quality_needs_households() -> None:
    grids = gpd.GeoDataFrame(geometry=[_box(0, 0, 1, 1)], crs=CRS)
    with pytest.raises(LayerError, match="layer 'grids' has no column 'households'"):
        grid_quality(grids, None, lo=300, hi=500)


def test_grid_quality_without_streets_has_nan_street_share() -> None:
    grids = gpd.GeoDataFrame({"households": [400, 400]},
                             geometry=[_box(0, 0, 100, 100), _box(100, 0, 200, 100)], crs=CRS)
    q = grid_quality(grids, None, lo=300, hi=500)
    assert np.isnan(q["street_share"])
    assert q["share_in_range"] == 1.0
