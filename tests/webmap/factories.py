"""Small canonical layers made in code (seeded, no files) for map and page tests."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
from shapely.geometry import LineString, Point, box

__all__ = ["make_layers"]

X0, Y0, STEP = 120.60, 31.30, 0.0004


def _buildings(n: int, rng: np.random.Generator) -> gpd.GeoDataFrame:
    side = int(np.ceil(np.sqrt(n)))
    geoms = []
    for i in range(n):
        r, c = divmod(i, side)
        x, y = X0 + c * STEP, Y0 + r * STEP
        geoms.append(box(x, y, x + STEP * 0.6, y + STEP * 0.5))
    households = rng.integers(0, 300, n).astype(float)
    households[rng.random(n) < 0.05] = np.nan
    return gpd.GeoDataFrame(
        {
            "building_id": [f"B{i:05d}" for i in range(n)],
            "name": [f"{i}号楼" for i in range(n)],
            "use": "residential",
            "floors": rng.integers(1, 30, n),
            "height_m": 3.0,
            "households": households,
            "households_estimated": rng.random(n) < 0.5,
            "compound_id": "K1",
            "community_id": "C1",
        },
        geometry=geoms,
        crs="EPSG:4326",
    )


def make_layers(n_buildings: int, *, seed: int = 42) -> dict[str, gpd.GeoDataFrame]:
    """Two communities side by side, one compound, three streets, three service points."""
    rng = np.random.default_rng(seed)
    buildings = _buildings(n_buildings, rng)
    w = int(np.ceil(np.sqrt(n_buildings))) * STEP
    communities = gpd.GeoDataFrame(
        {"community_id": ["C1", "C2"], "name": ["梅园社区", "桃源社区"]},
        geometry=[box(X0 - STEP, Y0 - STEP, X0 + w / 2, Y0 + w), box(X0 + w / 2, Y0 - STEP, X0 + w, Y0 + w)],
        crs="EPSG:4326",
    )
    streets = gpd.GeoDataFrame(
        {"street_id": ["S1", "S2", "S3"], "name": ["人民路", "小巷", "沪宁铁路"],
         "road_class": ["major", "lane", "rail"]},
        geometry=[LineString([(X0, Y0 + w / 2), (X0 + w, Y0 + w / 2)]),
                  LineString([(X0 + w / 3, Y0), (X0 + w / 3, Y0 + w)]),
                  LineString([(X0, Y0 - STEP / 2), (X0 + w, Y0 - STEP / 2)])],
        crs="EPSG:4326",
    )
    compounds = gpd.GeoDataFrame(
        {"compound_id": ["K1"], "name": ["梅一小区"]},
        geometry=[box(X0, Y0, X0 + w / 4, Y0 + w / 4)], crs="EPSG:4326",
    )
    points = gpd.GeoDataFrame(
        {"point_id": ["P1", "P2", "P3"], "name": ["阳光幼儿园", "梅园卫生站", "好邻居便利店"],
         "category": ["kindergarten", "health_station", "laundry"]},
        geometry=[Point(X0 + w / 5, Y0 + w / 5), Point(X0 + w / 2, Y0 + w / 3), Point(X0 + w * 0.7, Y0 + w * 0.8)],
        crs="EPSG:4326",
    )
    return {"communities": communities, "buildings": buildings, "streets": streets,
            "compounds": compounds, "service_points": points}
