"""The party map's layers: what a supervisor sees first at district zoom."""

from __future__ import annotations

import folium
import geopandas as gpd
from shapely.geometry import LineString, Point, box

from webmap.party_map import party_map


def _layers(m: folium.Map) -> dict[str, bool]:
    """Overlay name -> shown when the map opens."""
    return {child.layer_name: child.show for child in m._children.values()
            if isinstance(child, folium.map.Layer) and getattr(child, "overlay", False)}


def test_centre_households_and_links_start_hidden_but_stay_in_the_layer_control() -> None:
    grids = gpd.GeoDataFrame({"key": ["G1"], "name": ["一网格"], "cells": ["一支部"], "coverage": [0.5],
                              "coverage_label": ["50%"]}, geometry=[box(120.0, 31.0, 120.01, 31.01)], crs=4326)
    cells = gpd.GeoDataFrame({"label": ["一支部 书记"]}, geometry=[Point(120.005, 31.005)], crs=4326)
    centres = gpd.GeoDataFrame({"label": ["中心户"] * 3},
                               geometry=[Point(120.001 * k, 31.002) for k in (1, 1.00001, 1.00002)], crs=4326)
    spokes = gpd.GeoDataFrame(geometry=[LineString([(120.001, 31.002), (120.002, 31.003)])], crs=4326)
    layers = _layers(party_map(grids, cells, centres, spokes))
    assert layers == {"网格覆盖": True, "网格党支部/党小组": True, "党员中心户": False, "结对连线": False}
