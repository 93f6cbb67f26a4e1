"""The party-cell map: coverage per grid (choropleth), branches/groups, centre households and spokes.

Offline (local assets, no tiles). Every tooltip shows values as text (``text_tooltip``), grids and
markers alike. The public variant is given no centre households
and no spokes by its caller; this module draws what it is handed.
"""

from __future__ import annotations

import folium
import geopandas as gpd
import numpy as np
import pandas as pd

from geo.settings import DEFAULTS
from webmap.features import class_styled, display_frame
from webmap.offline import VENDOR_URL, localize, offline_map
from webmap.tooltips import text_tooltip

__all__ = ["COVERAGE_BREAKS", "COVERAGE_COLORS", "party_map"]

#: Share of a grid's households linked to a centre household: class breaks and colours.
COVERAGE_BREAKS: tuple[float, ...] = (0.25, 0.5, 0.75)
COVERAGE_COLORS: tuple[str, ...] = ("#fee5d9", "#fcae91", "#fb6a4a", "#cb181d")
_NO_CELL = "#bdbdbd"


def _grid_layer(grids: gpd.GeoDataFrame, *, simplify_m: float) -> folium.GeoJson:
    """Grid outlines simplified for display, coordinates rounded, no bounding boxes (a third of the bytes)."""
    data = display_frame(grids, ["key", "name", "cells", "coverage_label", "coverage"], simplify_m=simplify_m)
    share = np.searchsorted(COVERAGE_BREAKS, data["coverage"].astype(float).to_numpy(), side="right")
    classes = pd.Series(np.where(data["cells"].astype(str) == "", -1, share), index=data.index)
    table = {c: {"fillColor": colour, "color": "#555", "weight": 1, "fillOpacity": 0.6}
             for c, colour in [(-1, _NO_CELL), *enumerate(COVERAGE_COLORS)]}
    columns = ["key", "name", "cells", "coverage_label"]
    return class_styled(
        data[columns].astype(str).set_geometry(data.geometry), classes, table, name="网格覆盖",
        tooltip=text_tooltip(columns, ["网格编码", "名称", "党组织", "中心户结对"]))


def _points(points: gpd.GeoDataFrame, *, name: str, colour: str, radius: float, show: bool = True) -> folium.GeoJson:
    """One GeoJSON layer of circle markers with the label as a text tooltip.

    One layer, not a folium marker per point: each folium marker compiles its own Jinja
    template when the page renders (884 markers took 3.9 s of a 5 s party page).
    """
    data = points[["geometry"]].assign(label=points["label"].astype(str))
    return folium.GeoJson(data.__geo_interface__, name=name, show=show,
                          marker=folium.CircleMarker(radius=radius, color=colour, weight=1, fill=True,
                                                     fill_color=colour, fill_opacity=0.85),
                          tooltip=text_tooltip(["label"], [name]))


def party_map(grids: gpd.GeoDataFrame, cells: gpd.GeoDataFrame, centres: gpd.GeoDataFrame | None = None,
              spokes: gpd.GeoDataFrame | None = None, *, vendor_url: str = VENDOR_URL,
              simplify_m: float = DEFAULTS["map_simplify_m"]) -> folium.Map:
    """Map of party cells over the active grids (EPSG:4326 inputs).

    Parameters
    ----------
    grids
        ``key``, ``name``, ``cells`` (branch/group names, "" when none), ``coverage`` (share
        of households linked, 0–1) and ``coverage_label``; polygons.
    cells
        ``label`` (name and secretary); points (a grid's representative point).
    centres, spokes
        Centre households (``label``, points) and lines to the buildings of the households
        they look after; leave out on public maps.
    simplify_m
        Tolerance of the grid outlines' simplification for display (m).
    """
    m = offline_map(vendor_url=vendor_url, prefer_canvas=True, zoom_start=14, max_zoom=20)
    if len(grids):
        _grid_layer(grids, simplify_m=simplify_m).add_to(m)
        minx, miny, maxx, maxy = grids.total_bounds
        m.fit_bounds([[miny, minx], [maxy, maxx]])
    if spokes is not None and len(spokes):
        # Centre households and their links start hidden (layer control): at district zoom
        # thousands of them cover the grids' coverage colours in one red blob.
        folium.GeoJson(spokes[["geometry"]].__geo_interface__, name="结对连线", show=False,
                       style_function=lambda f: {"color": "#d62728", "weight": 1, "opacity": 0.6}).add_to(m)
    if centres is not None and len(centres):
        _points(centres, name="党员中心户", colour="#d62728", radius=4, show=False).add_to(m)
    if len(cells):
        _points(cells, name="网格党支部/党小组", colour="#b71c1c", radius=6).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    return localize(m, vendor_url=vendor_url)
