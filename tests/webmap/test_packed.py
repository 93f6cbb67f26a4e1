"""Packed map features (webmap.packed): integer steps that add back up to the rounded coordinates."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import (
    GeometryCollection,
    LineString,
    MultiLineString,
    MultiPolygon,
    Point,
    Polygon,
)

from webmap.packed import SCALE, pack_features

SQUARE = Polygon([(120.6, 31.3), (120.601, 31.3), (120.601, 31.301), (120.6, 31.301)],
                 [[(120.6004, 31.3004), (120.6006, 31.3004), (120.6006, 31.3006)]])


def _line(steps: list[int], base: list[int]) -> list[tuple[float, float]]:
    """What the page's script does with one packed sequence (the format's definition)."""
    xy = np.cumsum(np.asarray(steps, dtype=np.int64).reshape(-1, 2), axis=0) + np.asarray(base)
    return [(x / SCALE, y / SCALE) for x, y in xy.tolist()]


def _unpacked(kind: str, g: list, base: list[int]) -> shapely.Geometry:
    if kind == "Point":
        return Point(_line(g, base)[0])
    if kind == "LineString":
        return LineString(_line(g, base))
    if kind == "Polygon":
        return Polygon(_line(g[0], base), [_line(r, base) for r in g[1:]])
    if kind == "MultiLineString":
        return MultiLineString([_line(p, base) for p in g])
    if kind == "MultiPolygon":
        return MultiPolygon([_unpacked("Polygon", p, base) for p in g])
    return GeometryCollection([_unpacked(k, p, base) for k, p in g])


GEOMS = [SQUARE, Point(120.6123456, 31.3), LineString([(120.6, 31.3), (120.7, 31.4), (120.65, 31.31)]),
         MultiLineString([[(120.6, 31.3), (120.61, 31.3)], [(120.62, 31.31), (120.63, 31.32)]]),
         MultiPolygon([SQUARE, shapely.affinity.translate(SQUARE, 0.01, 0.0)]),
         GeometryCollection([Point(120.61, 31.31), LineString([(120.6, 31.3), (120.61, 31.305)])])]


@pytest.mark.parametrize("geom", GEOMS, ids=[g.geom_type for g in GEOMS])
def test_steps_add_up_to_the_coordinates_rounded_to_a_millionth(geom: shapely.Geometry) -> None:
    frame = gpd.GeoDataFrame({"name": ["<b>甲</b>"], "s": ["2"]}, geometry=[geom], crs=4326)
    packed = pack_features(frame)
    back = _unpacked(packed["kinds"][packed["types"][0]], packed["geoms"][0], packed["base"])
    rounded = shapely.set_precision(geom, 1 / SCALE, mode="pointwise")
    assert back.geom_type == geom.geom_type and shapely.equals_exact(back, rounded, tolerance=1e-9)
    assert packed["props"] == {"name": ["<b>甲</b>"], "s": ["2"]}


def test_a_packed_layer_is_a_third_of_its_geojson() -> None:
    import json

    rng = np.random.default_rng(3)
    boxes = [shapely.box(x, y, x + 0.0005, y + 0.0002) for x, y in
             zip(120.6 + rng.random(500) * 0.04, 31.28 + rng.random(500) * 0.04, strict=True)]
    frame = gpd.GeoDataFrame({"hh": [str(i) for i in range(500)]}, geometry=boxes, crs=4326)
    frame.geometry = shapely.set_precision(frame.geometry.values, 1e-6, mode="pointwise")
    plain = len(json.dumps(frame.to_geo_dict(show_bbox=False, drop_id=True)))
    assert len(json.dumps(pack_features(frame))) < plain / 2.5


def test_missing_values_are_empty_text_and_unknown_kinds_refused() -> None:
    frame = gpd.GeoDataFrame({"name": [None]}, geometry=[Point(120.6, 31.3)], crs=4326)
    assert pack_features(frame)["props"] == {"name": [""]}
    with pytest.raises(ValueError, match="cannot pack a LinearRing"):
        pack_features(gpd.GeoDataFrame(geometry=[SQUARE.exterior], crs=4326))
