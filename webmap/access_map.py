"""The 15-minute service circle map: isochrones, coverage choropleth, uncovered buildings.

Renders what :func:`geo.isochrones.access_map_layers` produced (WGS84 layers for one
category and level) plus the streets and the category's service points; no SQL, no
request handling. Every asset is served locally (:func:`webmap.offline.localize`).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from folium.elements import MacroElement

from geo.settings import DEFAULTS
from webmap.basemaps import base_map
from webmap.controls import LayerRegistry, MapControl, collapsible_html
from webmap.features import (
    class_styled,
    display_frame,
    feature_collection,
    layers_bounds,
    merged_lines,
)
from webmap.offline import VENDOR_URL, localize
from webmap.styles import swatch
from webmap.tooltips import text_tooltip

__all__ = ["SHARE_BREAKS", "SHARE_COLORS", "share_class", "access_map"]

log = logging.getLogger(__name__)

#: Coverage share classes (share of households covered, 0-1) and their colours (yellow to
#: green, so that red stays the colour of uncovered buildings).
SHARE_BREAKS: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)
SHARE_COLORS: tuple[str, ...] = ("#ffffcc", "#d9f0a3", "#addd8e", "#78c679", "#31a354")
NO_SHARE_COLOR = "#c8c8c8"
ISOCHRONE_COLOR = "#2b6cb0"
SCREENING_COLOR = "#b7791f"
UNCOVERED_COLOR = "#c0152f"
COVERED_COLOR = "#9aa5b1"
SERVICE_COLOR = "#1a202c"
SUGGESTED_COLOR = "#6b46c1"


def share_class(share: pd.Series) -> pd.Series:
    """Class index per polygon: -1 for no households (NaN share), else 0..len(SHARE_BREAKS)."""
    values = pd.to_numeric(share, errors="coerce")
    idx = np.searchsorted(np.asarray(SHARE_BREAKS), values.fillna(0).to_numpy(), side="right")
    return pd.Series(idx, index=share.index, dtype="int64").where(values.notna(), -1)


def _share_labels() -> list[str]:
    edges = [0, *(int(b * 100) for b in SHARE_BREAKS), 100]
    return [f"{lo}–{hi} %" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]


def _zones(gdf: gpd.GeoDataFrame, *, name_label: str, simplify_m: float) -> folium.GeoJson:
    frame = display_frame(gdf, ["name", "share", "households"], simplify_m=simplify_m)
    frame["c"] = share_class(frame["share"])
    frame["pct"] = frame["share"].map(lambda s: "无住户" if pd.isna(s) else f"{100 * s:.0f} %")
    frame["hh"] = pd.to_numeric(frame["households"], errors="coerce").fillna(0).astype(int)
    fills = {-1: NO_SHARE_COLOR} | dict(enumerate(SHARE_COLORS))
    table = {c: {"color": "#4a5568", "weight": 1.2, "fillColor": f, "fillOpacity": 0.45}
             for c, f in fills.items()}
    return class_styled(
        frame[["name", "pct", "hh", "geometry"]], frame["c"], table, name=f"覆盖率（按{html.escape(name_label)}）",
        tooltip=text_tooltip(["name", "pct", "hh"], [name_label, "覆盖住户比例", "户数"]),
    )


def _isochrones(gdf: gpd.GeoDataFrame, *, screening: bool, simplify_m: float) -> folium.GeoJson:
    frame = display_frame(gdf, ["name", "level_m", "reached_m"], simplify_m=simplify_m)
    frame["walk"] = frame["level_m"].map(lambda v: f"{v:.0f} 米")
    color = SCREENING_COLOR if screening else ISOCHRONE_COLOR
    style = {"color": color, "weight": 1, "fillColor": color, "fillOpacity": 0.22}
    return folium.GeoJson(
        feature_collection(frame[["name", "walk", "geometry"]]),
        name="直线距离圆（筛查）" if screening else "步行服务圈",
        style_function=lambda f: dict(style),
        tooltip=text_tooltip(["name", "walk"], ["服务点", "直线距离" if screening else "步行距离"]),
    )


def _buildings(gdf: gpd.GeoDataFrame, *, simplify_m: float) -> folium.GeoJson:
    frame = display_frame(gdf, ["building_id", "households", "dist_m", "covered"],
                           simplify_m=simplify_m)
    covered = frame["covered"].fillna(False).astype(bool)
    frame["d"] = pd.to_numeric(frame["dist_m"], errors="coerce").map(
        lambda v: "超出最大距离" if pd.isna(v) else f"{v:.0f} 米")
    frame["state"] = np.where(covered, "已覆盖", "未覆盖")
    table = {True: {"color": "#718096", "weight": 0.4, "fillColor": COVERED_COLOR, "fillOpacity": 0.6},
             False: {"color": "#7b0d1e", "weight": 0.8, "fillColor": UNCOVERED_COLOR,
                     "fillOpacity": 0.9}}
    return class_styled(
        frame[["building_id", "d", "state", "geometry"]], covered, table, name="楼栋（未覆盖为红色）",
        tooltip=text_tooltip(["building_id", "d", "state"], ["楼栋", "到最近设施", "状态"]),
    )


def _streets(gdf: gpd.GeoDataFrame, *, simplify_m: float) -> folium.GeoJson:
    frame = merged_lines(display_frame(gdf, ["name"], simplify_m=simplify_m), ["name"])
    return folium.GeoJson(feature_collection(frame[["geometry"]]), name="道路",
                          style_function=lambda f: {"color": "#a0aec0", "weight": 1.2, "opacity": 0.9})


def _services(gdf: gpd.GeoDataFrame, *, category_label: str) -> folium.GeoJson:
    frame = display_frame(gdf, ["name"], simplify_m=0.0)
    frame["name"] = frame["name"].fillna(category_label)
    return folium.GeoJson(
        feature_collection(frame[["name", "geometry"]]), name=f"服务点：{html.escape(category_label)}",
        marker=folium.CircleMarker(radius=6, weight=2, color="#ffffff", fill=True,
                                   fill_color=SERVICE_COLOR, fill_opacity=1.0),
        tooltip=text_tooltip(["name"], [category_label]),
    )


def _suggested(gdf: gpd.GeoDataFrame, *, category_label: str) -> folium.GeoJson:
    """Suggested new sites: numbered by rank, tooltip with the households each adds."""
    frame = display_frame(gdf, ["rank", "households_added", "households_in_reach"], simplify_m=0.0)
    frame["name"] = frame["rank"].map(lambda r: f"建议新址 {int(r)}（{category_label}）")
    frame["adds"] = pd.to_numeric(frame["households_added"], errors="coerce").fillna(0).map(
        lambda v: f"{v:,.0f} 户")
    frame["reach"] = pd.to_numeric(frame["households_in_reach"], errors="coerce").fillna(0).map(
        lambda v: f"{v:,.0f} 户")
    return folium.GeoJson(
        feature_collection(frame[["name", "adds", "reach", "geometry"]]), name="建议新址",
        marker=folium.CircleMarker(radius=9, weight=3, color="#ffffff", fill=True,
                                   fill_color=SUGGESTED_COLOR, fill_opacity=1.0),
        tooltip=text_tooltip(["name", "adds", "reach"], ["名称", "新增覆盖", "步行范围内未覆盖"]),
    )


def _legend(*, title: str, zone_label: str | None, screening: bool, suggested: bool = False) -> str:
    rows: list[str] = []
    if screening:
        rows.append(f"<div>{swatch(SCREENING_COLOR)}直线距离圆（仅供筛查）</div>")
    else:
        rows.append(f"<div>{swatch(ISOCHRONE_COLOR)}步行服务圈（沿道路）</div>")
    rows += [f"<div>{swatch(SERVICE_COLOR, kind='dot')}服务点</div>",
             f"<div>{swatch(UNCOVERED_COLOR)}未覆盖楼栋</div>",
             f"<div>{swatch(COVERED_COLOR)}已覆盖楼栋</div>"]
    if suggested:
        rows.append(f"<div>{swatch(SUGGESTED_COLOR, kind='dot')}建议新址</div>")
    if zone_label:
        rows.append(f'<div class="wg-legend-sub">覆盖住户比例（按{html.escape(zone_label)}）</div>')
        rows += [f"<div>{swatch(c)}{t}</div>"
                 for c, t in zip(SHARE_COLORS, _share_labels(), strict=True)]
        rows.append(f"<div>{swatch(NO_SHARE_COLOR)}无住户</div>")
    return collapsible_html(title, "".join(rows))


def access_map(
    layers: Mapping[str, gpd.GeoDataFrame | None],
    *,
    title: str,
    zone_label: str | None = None,
    screening: bool = False,
    label: str | None = None,
    basemap: str = DEFAULTS["basemap"],
    tianditu_tk: str = DEFAULTS["tianditu_tk"],
    osm_tile_url: str = DEFAULTS["osm_tile_url"],
    simplify_m: float = DEFAULTS["map_simplify_m"],
    vendor_url: str = VENDOR_URL,
) -> folium.Map:
    """The service-circle map of one category and level.

    Parameters
    ----------
    layers
        WGS84 layers, any may be missing: ``zones`` (grid or community polygons with
        ``name``, ``share``, ``households``), ``isochrones`` (``name``, ``level_m``),
        ``buildings`` (``building_id``, ``dist_m``, ``covered``), ``streets``, ``services``,
        ``suggested`` (new sites with ``rank``, ``households_added``, ``households_in_reach``).
    title
        Legend title, e.g. "幼儿园 · 5分钟生活圈（300 米）".
    zone_label
        What the zones are ("网格" or "社区"), shown in the legend and tooltips.
    screening
        The isochrones are straight-line circles: drawn in the screening colour and named so.
    label
        Banner text (e.g. the screening warning or the data label).

    Raises
    ------
    webmap.basemaps.BasemapError
        Unknown *basemap*, Tianditu without key, OSM without tile URL.
    """
    m = base_map(basemap, tianditu_tk=tianditu_tk, osm_tile_url=osm_tile_url)
    data = {k: g for k, g in layers.items() if g is not None and len(g)}
    added: dict[str, MacroElement] = {}
    if "zones" in data:
        added["zones"] = _zones(data["zones"], name_label=zone_label or "区域", simplify_m=simplify_m)
    if "streets" in data:
        added["streets"] = _streets(data["streets"], simplify_m=simplify_m)
    if "isochrones" in data:
        added["isochrones"] = _isochrones(data["isochrones"], screening=screening,
                                          simplify_m=simplify_m)
    if "buildings" in data:
        added["buildings"] = _buildings(data["buildings"], simplify_m=simplify_m)
    if "services" in data:
        added["services"] = _services(data["services"], category_label=title.split(" · ")[0])
    if "suggested" in data:
        added["suggested"] = _suggested(data["suggested"], category_label=title.split(" · ")[0])
    for layer in added.values():
        layer.add_to(m)
    MapControl(_legend(title=title, zone_label=zone_label if "zones" in data else None,
                       screening=screening, suggested="suggested" in data),
               position="bottomright", css_class="wg-legend wg-access-legend", fold_on_phone=True).add_to(m)
    if label:
        MapControl(html.escape(label), position="bottomleft", css_class="wg-label").add_to(m)
    folium.LayerControl(collapsed=True, position="topright").add_to(m)
    LayerRegistry(added).add_to(m)
    bounds = layers_bounds({k: g for k, g in data.items() if k in ("zones", "buildings", "isochrones")})
    if bounds is not None:
        m.fit_bounds(bounds)
    log.info("access map: %s", ", ".join(f"{k} {len(g)}" for k, g in data.items()) or "empty")
    return localize(m, vendor_url=vendor_url)
