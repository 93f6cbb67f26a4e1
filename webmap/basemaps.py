"""Base maps: the blank offline base, OpenStreetMap, Tianditu and Gaode tiles, and their checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import folium
import geopandas as gpd

from geo.chinacoords import transform_geoseries
from geo.errors import WanggeError
from webmap.controls import MAP_CSS, MetricScale

__all__ = ["BASEMAPS", "BasemapError", "add_basemaps", "base_map", "check_basemap", "to_gcj02"]

#: Base maps the builder knows, with their Chinese names.
BASEMAPS: dict[str, str] = {"none": "无底图", "osm": "OpenStreetMap", "tianditu": "天地图", "gaode": "高德地图"}

_BLANK_TILE = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mP8"
    "/x8AAwMCAO+ip1sAAAAASUVORK5CYII="
)
_TIANDITU = (
    "https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={{z}}&TILEROW={{y}}"
    "&TILECOL={{x}}&tk={tk}"
)
_GAODE = "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}"


class BasemapError(WanggeError, ValueError):
    """A base map cannot be shown as configured (unknown name, missing key)."""


def _tile(m: folium.Map, url: str, *, name: str, attr: str, show: bool, overlay: bool = False,
          **options: Any) -> None:
    folium.TileLayer(tiles=url, name=name, attr=attr, overlay=overlay, control=True, show=show,
                     max_zoom=20, max_native_zoom=18, **options).add_to(m)


def add_basemaps(m: folium.Map, basemap: str, *, tianditu_tk: str, osm_tile_url: str) -> None:
    """The blank base is always offered; online bases only when one is chosen (offline stays clean)."""
    _tile(m, _BLANK_TILE, name=BASEMAPS["none"], attr="网格", show=basemap == "none")
    if basemap == "gaode":  # GCJ-02 tiles: only GCJ-02-shifted data aligns, so no WGS84 bases
        _tile(m, _GAODE, name=BASEMAPS["gaode"], attr="© 高德地图", show=True, subdomains="1234")
        return
    if basemap in ("osm", "tianditu") and osm_tile_url:
        _tile(m, osm_tile_url, name=BASEMAPS["osm"], attr="© OpenStreetMap contributors",
              show=basemap == "osm")
    if tianditu_tk and basemap in ("osm", "tianditu"):
        for layer, name, overlay in (("vec", "天地图矢量", False), ("cva", "天地图注记", True)):
            _tile(m, _TIANDITU.format(layer=layer, tk=tianditu_tk), name=name, attr="© 天地图",
                  show=basemap == "tianditu", overlay=overlay, subdomains="01234567")


def check_basemap(basemap: str, *, tianditu_tk: str, osm_tile_url: str) -> None:
    """Raise :class:`BasemapError` if *basemap* is unknown or lacks its key or tile URL."""
    if basemap not in BASEMAPS:
        raise BasemapError(f"basemap {basemap!r} is unknown; use one of {', '.join(BASEMAPS)} "
                           "(setting `basemap`)", code="unknown_basemap",
                           params={"basemap": basemap, "choices": "、".join(BASEMAPS)})
    if basemap == "tianditu" and not tianditu_tk:
        raise BasemapError("basemap 'tianditu' needs a Tianditu key: set the setting `tianditu_tk` "
                           "(WANGGE_TIANDITU_TK) or use basemap 'none'", code="tianditu_key_missing")
    if basemap == "osm" and not osm_tile_url:
        raise BasemapError("basemap 'osm' needs a tile URL: set the setting `osm_tile_url`", code="osm_url_missing")


def to_gcj02(layers: Mapping[str, gpd.GeoDataFrame]) -> dict[str, gpd.GeoDataFrame]:
    """*layers* shifted from WGS84 to GCJ-02, to lie on Gaode's tiles."""
    return {k: g.set_geometry(transform_geoseries(g.geometry, source="wgs84", target="gcj02"))
            for k, g in layers.items()}


def base_map(basemap: str, *, tianditu_tk: str, osm_tile_url: str, **options: Any) -> folium.Map:
    """The map every builder starts from: China in view, canvas rendering, a metric scale, the
    maps' CSS and the base maps of *basemap* (checked first); *options* go to :class:`folium.Map`.

    Raises
    ------
    BasemapError
        Unknown *basemap*, Tianditu without key, OSM without tile URL.
    """
    check_basemap(basemap, tianditu_tk=tianditu_tk, osm_tile_url=osm_tile_url)
    m = folium.Map(tiles=None, prefer_canvas=True, zoom_start=4, location=[35.0, 105.0], max_zoom=20, **options)
    MetricScale().add_to(m)  # metres only: Leaflet's default scale also shows feet and miles
    m.get_root().header.add_child(folium.Element(MAP_CSS), name="wangge_map_css")
    add_basemaps(m, basemap, tianditu_tk=tianditu_tk, osm_tile_url=osm_tile_url)
    return m
