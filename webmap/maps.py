"""The workspace map: communities, compounds, streets, buildings and service points on one page.

Renders what it is handed (GeoDataFrames in EPSG:4326, canonical columns of
:mod:`geo.layers`); no SQL, no request handling. Geometry is simplified for display and
only the columns the tooltips need are embedded, so a 5,000-building page stays small.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping

import folium
import geopandas as gpd
import pandas as pd
import shapely
from folium.elements import MacroElement

from geo.settings import DEFAULTS
from webmap.basemaps import BasemapError, base_map, to_gcj02
from webmap.controls import (
    LayerRegistry,
    MapControl,
    PhoneCollapse,
    collapsible_html,
)
from webmap.features import (
    class_styled,
    display_frame,
    feature_collection,
    layers_bounds,
    merged_lines,
)
from webmap.offline import VENDOR_URL, localize
from webmap.styles import (
    CATEGORY_LABELS,
    COMMUNITY_COLOR,
    COMPOUND_COLOR,
    GRID_COLOR,
    HOUSEHOLD_COLORS,
    NO_HOUSEHOLDS_COLOR,
    POINT_COLORS,
    ROAD_STYLES,
    household_class,
    household_class_labels,
    road_class,
    swatch,
)
from webmap.tooltips import text_tooltip

# BasemapError is what workspace_map raises: its callers catch it from here.
__all__ = ["BasemapError", "workspace_map"]

logger = logging.getLogger(__name__)


def _communities(gdf: gpd.GeoDataFrame, *, simplify_m: float) -> folium.GeoJson:
    frame = display_frame(gdf, ["community_id", "name"], simplify_m=simplify_m)
    frame["name"] = frame["name"].where(frame["name"].notna() & (frame["name"] != ""), frame["community_id"])
    return folium.GeoJson(
        feature_collection(frame), name="社区", tooltip=text_tooltip(["name"], ["社区"]),
        style_function=lambda f: {"color": COMMUNITY_COLOR, "weight": 3, "opacity": 0.9, "fillOpacity": 0.0},
    )


def _community_names(gdf: gpd.GeoDataFrame) -> folium.FeatureGroup:
    """Community names at a point inside each community, as text labels."""
    group = folium.FeatureGroup(name="社区名称")
    names = gdf["name"] if "name" in gdf.columns else gdf["community_id"]
    for name, point in zip(names.fillna(gdf["community_id"]), shapely.point_on_surface(gdf.geometry.values),
                           strict=True):
        if point is None or point.is_empty:
            continue
        icon = folium.DivIcon(html=f'<div class="wg-community-name">{html.escape(str(name))}</div>',
                              icon_size=(0, 0), class_name="wg-community-label")
        folium.Marker([point.y, point.x], icon=icon, interactive=False).add_to(group)
    return group


def _compounds(gdf: gpd.GeoDataFrame, *, simplify_m: float) -> folium.GeoJson:
    frame = display_frame(gdf, ["compound_id", "name"], simplify_m=simplify_m)
    frame["name"] = frame["name"].where(frame["name"].notna() & (frame["name"] != ""), frame["compound_id"])
    return folium.GeoJson(
        feature_collection(frame), name="小区", tooltip=text_tooltip(["name"], ["小区"]),
        style_function=lambda f: {"color": COMPOUND_COLOR, "weight": 1.5, "dashArray": "6 4",
                                  "fillColor": COMPOUND_COLOR, "fillOpacity": 0.06},
    )


def _grids(gdf: gpd.GeoDataFrame, *, simplify_m: float) -> folium.GeoJson:
    """The active plan's grids: outlines, tooltip with code, name and households."""
    frame = display_frame(gdf, ["grid_id", "code", "name", "households"], simplify_m=simplify_m)
    frame["code"] = frame["code"].where(frame["code"].notna() & (frame["code"] != ""), frame["grid_id"])
    frame["name"] = frame["name"].where(frame["name"].notna(), "")
    frame["hh"] = pd.to_numeric(frame["households"], errors="coerce").map(
        lambda v: "无" if pd.isna(v) else f"{int(v):,}")
    return folium.GeoJson(
        feature_collection(frame[["code", "name", "hh", "geometry"]]), name="网格（生效方案）",
        tooltip=text_tooltip(["code", "name", "hh"], ["网格编码", "网格名称", "户数"]),
        style_function=lambda f: {"color": GRID_COLOR, "weight": 2.5, "opacity": 0.9,
                                  "fillColor": GRID_COLOR, "fillOpacity": 0.04},
    )


def _streets(gdf: gpd.GeoDataFrame, *, simplify_m: float) -> folium.GeoJson:
    frame = display_frame(gdf, ["name", "road_class"], simplify_m=simplify_m)
    frame["road_class"] = road_class(frame["road_class"])
    frame = merged_lines(frame, ["name", "road_class"])
    frame["kind"] = frame["road_class"].map(lambda c: ROAD_STYLES[c]["label"])

    table = {c: {k: v for k, v in spec.items() if k != "label"} | {"opacity": 0.9}
             for c, spec in ROAD_STYLES.items()}
    return class_styled(
        frame[["name", "kind", "geometry"]], frame["road_class"], table, name="道路",
        tooltip=text_tooltip(["name", "kind"], ["道路", "等级"]),
    )


def _buildings(gdf: gpd.GeoDataFrame, *, simplify_m: float, breaks: tuple[int, ...]) -> folium.GeoJson:
    frame = display_frame(
        gdf, ["building_id", "name", "use", "households", "households_estimated"], simplify_m=simplify_m
    )
    hh = pd.to_numeric(frame["households"], errors="coerce")
    estimated = frame["households_estimated"].fillna(False).astype(bool)
    frame["c"] = household_class(hh, breaks=breaks)
    label = hh.map(lambda v: "无" if pd.isna(v) or v <= 0 else f"{int(v)}")
    frame["hh"] = label.where(~estimated | (frame["c"] < 0), label + "（估算）")
    frame["name"] = frame["name"].where(frame["name"].notna() & (frame["name"] != ""), frame["building_id"])
    fills = {-1: NO_HOUSEHOLDS_COLOR} | {
        i: HOUSEHOLD_COLORS[min(i, len(HOUSEHOLD_COLORS) - 1)] for i in range(len(breaks) + 1)}
    table = {c: {"color": "#555555", "weight": 0.5, "fillColor": f, "fillOpacity": 0.85} for c, f in fills.items()}
    return class_styled(
        frame[["name", "hh", "geometry"]], frame["c"], table, name="楼栋（按户数）", tooltip=text_tooltip(["name", "hh"], ["楼栋", "户数"]),
    )


def _service_points(gdf: gpd.GeoDataFrame) -> tuple[folium.GeoJson, dict[str, str]]:
    frame = display_frame(gdf, ["name", "category"], simplify_m=0.0)
    frame["category"] = frame["category"].fillna("").astype(str)
    cats = sorted(c for c in frame["category"].unique())
    colors = {c: POINT_COLORS[i % len(POINT_COLORS)] for i, c in enumerate(cats)}
    frame["kind"] = frame["category"].map(lambda c: CATEGORY_LABELS.get(c, c or "未分类"))
    layer = class_styled(
        frame[["name", "kind", "geometry"]], frame["category"], {c: {"fillColor": v} for c, v in colors.items()},
        name="服务点",
        marker=folium.CircleMarker(radius=5, weight=1, color="#ffffff", fill=True, fill_opacity=0.95),
        tooltip=text_tooltip(["name", "kind"], ["服务点", "类别"]),
    )
    return layer, {CATEGORY_LABELS.get(c, c or "未分类"): colors[c] for c in cats}


def _grids_legend(grids_note: str | None, has_grids: bool) -> list[str]:
    if grids_note is None and not has_grids:
        return []
    rows = ['<div class="wg-legend-sub">网格方案</div>']
    if has_grids:
        rows.append(f"<div>{swatch(GRID_COLOR, kind='outline')}网格（生效方案）</div>")
    if grids_note:
        rows.append(f'<div class="wg-legend-note wg-plan-note">{html.escape(grids_note)}</div>')
    return rows


def _legend_html(breaks: tuple[int, ...], road_classes: list[str], categories: dict[str, str],
                 grids: list[str] | None = None) -> str:
    rows = [f"<div>{swatch(COMMUNITY_COLOR, kind='outline')}社区边界</div>",
            f"<div>{swatch(COMPOUND_COLOR, kind='outline', dash=True)}小区</div>",
            '<div class="wg-legend-sub">楼栋户数</div>']
    rows += [f"<div>{swatch(c)}{html.escape(t)}</div>"
             for c, t in zip(HOUSEHOLD_COLORS, household_class_labels(breaks), strict=False)]
    rows.append(f"<div>{swatch(NO_HOUSEHOLDS_COLOR)}非住宅 / 无户数</div>")
    rows.append('<div class="wg-legend-note">“估算”= 户数由面积和层数估算</div>')
    if road_classes:
        rows.append('<div class="wg-legend-sub">道路</div>')
        for rc in road_classes:
            spec = ROAD_STYLES[rc]
            sw = swatch(spec["color"], kind="line", dash="dashArray" in spec, weight=spec["weight"])
            rows.append(f"<div>{sw}{spec['label']}</div>")
    if categories:
        rows.append('<div class="wg-legend-sub">服务点</div><div class="wg-legend-cols">')
        rows += [f"<div>{swatch(c, kind='dot')}{html.escape(n)}</div>" for n, c in categories.items()]
        rows.append("</div>")
    rows += grids or []
    return collapsible_html("图例", "".join(rows))


def _data_layers(data: Mapping[str, gpd.GeoDataFrame], *, simplify_m: float,
                 household_breaks: tuple[int, ...]) -> tuple[dict[str, MacroElement], dict[str, str]]:
    """The map layers of the workspace in drawing order, and the service categories shown."""
    # Drawing order: community outlines over streets (boundaries run along centre lines),
    # buildings last so that on the canvas their hover wins over the polygons below.
    added: dict[str, MacroElement] = {}
    if "streets" in data:
        added["streets"] = _streets(data["streets"], simplify_m=simplify_m)
    if "communities" in data:
        added["communities"] = _communities(data["communities"], simplify_m=simplify_m)
    if "grids" in data:  # under compounds and buildings: their tooltips win where they are
        added["grids"] = _grids(data["grids"], simplify_m=simplify_m)
    if "compounds" in data:
        added["compounds"] = _compounds(data["compounds"], simplify_m=simplify_m)
    if "buildings" in data:
        added["buildings"] = _buildings(data["buildings"], simplify_m=simplify_m, breaks=household_breaks)
    if "communities" in data:
        added["community_names"] = _community_names(data["communities"])
    categories: dict[str, str] = {}
    if "service_points" in data:
        added["service_points"], categories = _service_points(data["service_points"])
    return added, categories


def workspace_map(
    layers: Mapping[str, gpd.GeoDataFrame],
    *,
    basemap: str = DEFAULTS["basemap"],
    tianditu_tk: str = DEFAULTS["tianditu_tk"],
    osm_tile_url: str = DEFAULTS["osm_tile_url"],
    label: str | None = None,
    simplify_m: float = DEFAULTS["map_simplify_m"],
    household_breaks: tuple[int, ...] = DEFAULTS["map_household_breaks"],
    grids_note: str | None = None,
    vendor_url: str = VENDOR_URL,
) -> folium.Map:
    """The workspace map of *layers* (canonical layers in EPSG:4326, any subset).

    Every data value reaches the page as text: tooltips set ``textContent``
    (:class:`TextTooltip`), labels and legend entries are HTML-escaped.

    Parameters
    ----------
    layers
        ``{"communities": gdf, "buildings": gdf, "streets": gdf, "compounds": gdf,
        "service_points": gdf, "grids": gdf}``; missing or empty layers are left out.
        ``grids`` are the active plan's grids (``grid_id``, ``code``, ``name``, ``households``).
    basemap
        ``"none"`` (blank, offline), ``"osm"``, ``"tianditu"`` (needs *tianditu_tk*) or
        ``"gaode"`` (GCJ-02 tiles; the data are shifted to GCJ-02 for display).
    label
        Banner text for synthetic or approximate data (e.g. "合成数据，仅供演示").
    grids_note
        Text under "网格方案" in the legend: which plan the grids are, or that none is published.

    Raises
    ------
    BasemapError
        Unknown *basemap*, Tianditu without key, OSM without tile URL.

    Examples
    --------
    >>> from geo.synthetic import synthetic_district  # doctest: +SKIP
    >>> m = workspace_map(synthetic_district(500))  # doctest: +SKIP
    """
    # Fractional zoom lets fit_bounds fill the window instead of stopping a whole level short.
    m = base_map(basemap, tianditu_tk=tianditu_tk, osm_tile_url=osm_tile_url, zoom_snap=0.25, zoom_delta=0.5)
    data = {k: g for k, g in layers.items() if g is not None and len(g)}
    if basemap == "gaode":
        data = to_gcj02(data)
    added, categories = _data_layers(data, simplify_m=simplify_m, household_breaks=tuple(household_breaks))
    for layer in added.values():
        layer.add_to(m)
    present = set(road_class(data["streets"]["road_class"])) if "road_class" in data.get(
        "streets", {}) else ({"minor"} if "streets" in data else set())
    roads = [c for c in ROAD_STYLES if c in present]
    MapControl(_legend_html(tuple(household_breaks), roads, categories,
                            _grids_legend(grids_note, "grids" in data)),
               position="bottomright", css_class="wg-legend", fold_on_phone=True).add_to(m)
    if label:
        MapControl(html.escape(label), position="bottomleft", css_class="wg-label").add_to(m)
    control = folium.LayerControl(collapsed=False, position="topright")
    control.add_to(m)
    PhoneCollapse(control).add_to(m)
    LayerRegistry(added).add_to(m)
    bounds = layers_bounds(data)
    if bounds is not None:
        m.fit_bounds(bounds)
    logger.info("workspace map: %s", ", ".join(f"{k} {len(g)}" for k, g in data.items()) or "empty")
    return localize(m, vendor_url=vendor_url)
