"""The party-cell map: coverage per grid (choropleth), branches/groups, centre households and spokes.

Offline (local assets, no tiles). Every tooltip shows values as text (``text_tooltip``), grids and
markers alike. The public variant is given no centre households
and no spokes by its caller; this module draws what it is handed.
"""

from __future__ import annotations

import folium
import geopandas as gpd
import numpy as np

from webmap.maps import text_tooltip
from webmap.offline import VENDOR_URL, localize, offline_map

__all__ = ["COVERAGE_BREAKS", "COVERAGE_COLORS", "party_map"]

#: Share of a grid's households linked to a centre household: class breaks and colours.
COVERAGE_BREAKS: tuple[float, ...] = (0.25, 0.5, 0.75)
COVERAGE_COLORS: tuple[str, ...] = ("#fee5d9", "#fcae91", "#fb6a4a", "#cb181d")
_NO_CELL = "#bdbdbd"


def _grid_layer(grids: gpd.GeoDataFrame) -> folium.GeoJson:
    data = grids[["key", "name", "cells", "coverage_label", "geometry"]].astype(
        {c: str for c in ("key", "name", "cells", "coverage_label")})
    colour = {}
    for key, share, cells in zip(data["key"], grids["coverage"], grids["cells"], strict=True):
        colour[key] = _NO_CELL if not cells else COVERAGE_COLORS[int(np.searchsorted(COVERAGE_BREAKS, share,
                                                                                        side="right"))]
    return folium.GeoJson(
        data.__geo_interface__, name="网格覆盖",
        style_function=lambda f: {"fillColor": colour.get(f["properties"]["key"], _NO_CELL), "color": "#555",
                                  "weight": 1, "fillOpacity": 0.6},
        tooltip=text_tooltip(["key", "name", "cells", "coverage_label"], ["网格编码", "名称", "党组织", "中心户结对"]))


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
              spokes: gpd.GeoDataFrame | None = None, *, vendor_url: str = VENDOR_URL) -> folium.Map:
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
    """
    m = offline_map(vendor_url=vendor_url, prefer_canvas=True, zoom_start=14, max_zoom=20)
    if len(grids):
        _grid_layer(grids).add_to(m)
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
