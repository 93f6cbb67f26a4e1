"""The workspace map: communities, compounds, streets, buildings and service points on one page.

Renders what it is handed (GeoDataFrames in EPSG:4326, canonical columns of
:mod:`geo.layers`); no SQL, no request handling. Geometry is simplified for display and
only the columns the tooltips need are embedded, so a 5,000-building page stays small.
"""

from __future__ import annotations

import html
import json
import logging
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from folium.elements import MacroElement
from folium.template import Template
from folium.utilities import get_obj_in_upper_tree

from geo.errors import WanggeError
from geo.settings import DEFAULTS
from webmap.offline import VENDOR_URL, localize
from webmap.packed import PackedFeatures, pack_features

try:
    from geo.lifecircle import CATEGORY_LABELS_ZH as _LIFECIRCLE_LABELS
except ImportError:  # geo.lifecircle lands with the 15-minute circle (issue 5)
    _LIFECIRCLE_LABELS = {}

__all__ = [
    "text_tooltip",
    "merged_lines",
    "class_styled",
    "ClassStyledGeoJson",
    "BASEMAPS",
    "CATEGORY_LABELS",
    "ROAD_STYLES",
    "BasemapError",
    "GRID_COLOR",
    "HOUSEHOLD_COLORS",
    "MetricScale",
    "NO_HOUSEHOLDS_COLOR",
    "PHONE_MEDIA",
    "PhoneCollapse",
    "TextTooltip",
    "collapsible_html",
    "household_class",
    "workspace_map",
]

logger = logging.getLogger(__name__)

#: Base maps the builder knows, with their Chinese names.
BASEMAPS: dict[str, str] = {"none": "无底图", "osm": "OpenStreetMap", "tianditu": "天地图", "gaode": "高德地图"}

#: Chinese names of service-point categories: the life-circle catalogue's, plus a few
#: codes other sources use (unknown codes are shown as given).
CATEGORY_LABELS: dict[str, str] = {
    "school": "学校", "hospital": "医院", "pharmacy": "药店", "library": "图书馆",
    "supermarket": "超市", "sports_ground": "运动场地", "party_centre": "党群服务中心",
    **_LIFECIRCLE_LABELS,
}

#: Line style per ``road_class`` (geo.layers.ROAD_CLASSES) and its Chinese legend name.
ROAD_STYLES: dict[str, dict[str, Any]] = {
    "major": {"color": "#7f2704", "weight": 4.0, "label": "主干道"},
    "secondary": {"color": "#a63603", "weight": 3.0, "label": "次干道"},
    "minor": {"color": "#636363", "weight": 2.0, "label": "支路"},
    "lane": {"color": "#969696", "weight": 1.2, "label": "巷道", "dashArray": "4 3"},
    "path": {"color": "#bdbdbd", "weight": 1.0, "label": "步行道", "dashArray": "2 3"},
    "rail": {"color": "#252525", "weight": 2.5, "label": "铁路", "dashArray": "8 4"},
    "water": {"color": "#3182bd", "weight": 3.0, "label": "河道"},
}

HOUSEHOLD_COLORS = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")
NO_HOUSEHOLDS_COLOR = "#c8c8c8"
COMMUNITY_COLOR = "#1f4e9c"
COMPOUND_COLOR = "#2ca25f"
GRID_COLOR = "#6a3d9a"
#: Screens this narrow (phones) start with legends and the layer list folded away.
PHONE_MEDIA = "(max-width: 640px)"
#: Service-point colours (d3 category20 order, strong shades first): 20 before repeating.
POINT_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896",
                "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5")
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
_M_PER_DEGREE = 111_320.0


class BasemapError(WanggeError, ValueError):
    """A base map cannot be shown as configured (unknown name, missing key)."""


def household_class(households: pd.Series, *, breaks: tuple[int, ...]) -> pd.Series:
    """Class index per building: -1 for none/unknown, else 0..len(breaks) by *breaks*."""
    values = pd.to_numeric(households, errors="coerce")
    idx = np.searchsorted(np.asarray(breaks, dtype=float), values.fillna(0).to_numpy(), side="right")
    out = pd.Series(idx, index=households.index, dtype="int64")
    return out.where(values.fillna(0) > 0, -1)


def _class_labels(breaks: tuple[int, ...]) -> list[str]:
    edges = [1, *breaks]
    labels = [f"{lo}–{hi - 1} 户" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    return [*labels, f"≥ {breaks[-1]} 户"]


def _display_frame(gdf: gpd.GeoDataFrame, columns: list[str], *, simplify_m: float) -> gpd.GeoDataFrame:
    """Only *columns* (missing ones as empty), simplified geometry, coordinates rounded to ~0.1 m."""
    out = gpd.GeoDataFrame(
        {c: gdf[c] if c in gdf.columns else pd.Series([None] * len(gdf), index=gdf.index) for c in columns},
        geometry=gdf.geometry.values, crs=gdf.crs,
    ).reset_index(drop=True)
    out = out[~(out.geometry.isna() | out.geometry.is_empty)]
    geoms = out.geometry.values
    if simplify_m > 0:
        geoms = shapely.simplify(geoms, simplify_m / _M_PER_DEGREE, preserve_topology=True)
    out.geometry = shapely.set_precision(geoms, 1e-6, mode="pointwise")
    return out


def _features(gdf: gpd.GeoDataFrame, *, ids: bool = True) -> dict[str, Any]:
    """A GeoJSON FeatureCollection, no bboxes; ids = index labels (folium's style map keys on them) if *ids*."""
    frame = gdf.copy()
    for col in frame.columns.drop(frame.geometry.name):
        frame[col] = frame[col].astype(object).where(frame[col].notna(), "")
    return frame.to_geo_dict(show_bbox=False, drop_id=not ids)


class ClassStyledGeoJson(folium.GeoJson):
    """A GeoJSON layer whose features carry a class code ``s``, styled from a table of a few classes.

    folium writes a style function as a JavaScript ``switch`` over every feature's id, and
    Leaflet calls it once per feature: on the 3,000-building demo map that switch of 3,000
    string cases per call was most of the page's script time. Here the switch has one case
    per class. The features reach the page packed (:mod:`webmap.packed`, a third of the bytes);
    ``data`` keeps them as GeoJSON on the Python side.
    """

    def __init__(self, data: dict[str, Any], *, styles: Mapping[str, dict[str, Any]],
                 packed: dict[str, Any], **kwargs: Any) -> None:
        self.class_styles = {code: dict(style) for code, style in styles.items()}
        super().__init__(data, style_function=lambda f: self.class_styles[f["properties"]["s"]], **kwargs)
        PackedFeatures(packed).add_to(self)

    def find_identifier(self) -> str:
        """Features are styled by their class: they need no id (folium would otherwise add one to each)."""
        return "feature.properties.s"

    def render(self, **kwargs: Any) -> None:
        by_style: dict[str, list[str]] = {}
        for code, style in self.class_styles.items():
            by_style.setdefault(json.dumps(style, sort_keys=True), []).append(code)
        default = next(iter(by_style))
        self.parent_map = get_obj_in_upper_tree(self, folium.Map)
        self.style_map = {k: v for k, v in by_style.items() if k != default} | {"default": default}
        # The layer's own script with no features (they are sent packed), then its children (tooltip,
        # packed features) with the features back: folium's tooltip checks its fields against them.
        features, self.data = self.data, {"type": "FeatureCollection", "features": []}
        children, self._children = self._children, OrderedDict()
        try:
            super(folium.GeoJson, self).render(**kwargs)  # folium's own render would map every feature again
        finally:
            self.data, self._children = features, children
        for child in self._children.values():
            child.render(**kwargs)


def class_styled(frame: gpd.GeoDataFrame, classes: pd.Series, table: Mapping[Any, dict[str, Any]],
                 **kwargs: Any) -> ClassStyledGeoJson:
    """*frame* as a :class:`ClassStyledGeoJson`, each feature styled by ``table[classes[i]]``."""
    codes = {value: str(i) for i, value in enumerate(table)}
    coded = frame.assign(s=classes.map(codes).to_numpy())
    return ClassStyledGeoJson(_features(coded, ids=False), styles={codes[k]: style for k, style in table.items()},
                              packed=pack_features(coded), **kwargs)


class TextTooltip(folium.GeoJsonTooltip):
    """A GeoJSON tooltip that shows every property value as text, never as HTML.

    folium's own tooltip joins the values into an HTML string and sets ``innerHTML``, so a
    name imported as ``<img src=x onerror=…>`` runs as script (stored XSS). This one builds
    the same table with DOM nodes and ``textContent``; the data stay unescaped in the page.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        {{ this._parent.get_name() }}.bindTooltip(function (layer) {
            var props = (layer.feature && layer.feature.properties) || {};
            var fields = {{ this.fields|tojson }}, aliases = {{ this.aliases|tojson }};
            var div = L.DomUtil.create("div"), table = L.DomUtil.create("table", "", div);
            fields.forEach(function (field, i) {
                var row = table.insertRow(), v = props[field];
                {%- if this.labels %}
                L.DomUtil.create("th", "", row).textContent = aliases[i];
                {%- endif %}
                row.insertCell().textContent = v === null || v === undefined ? ""
                    : typeof v === "object" ? JSON.stringify(v) : String(v);
            });
            return div;
        }, {{ this.tooltip_options|tojavascript }});
        {% endmacro %}
        """
    )


def text_tooltip(fields: list[str], aliases: list[str]) -> TextTooltip:
    """A sticky tooltip that shows each property as text (imported names are hostile)."""
    return TextTooltip(fields=fields, aliases=aliases, sticky=True, localize=False)


def _communities(gdf: gpd.GeoDataFrame, *, simplify_m: float) -> folium.GeoJson:
    frame = _display_frame(gdf, ["community_id", "name"], simplify_m=simplify_m)
    frame["name"] = frame["name"].where(frame["name"].notna() & (frame["name"] != ""), frame["community_id"])
    return folium.GeoJson(
        _features(frame), name="社区", tooltip=text_tooltip(["name"], ["社区"]),
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
    frame = _display_frame(gdf, ["compound_id", "name"], simplify_m=simplify_m)
    frame["name"] = frame["name"].where(frame["name"].notna() & (frame["name"] != ""), frame["compound_id"])
    return folium.GeoJson(
        _features(frame), name="小区", tooltip=text_tooltip(["name"], ["小区"]),
        style_function=lambda f: {"color": COMPOUND_COLOR, "weight": 1.5, "dashArray": "6 4",
                                  "fillColor": COMPOUND_COLOR, "fillOpacity": 0.06},
    )


def _grids(gdf: gpd.GeoDataFrame, *, simplify_m: float) -> folium.GeoJson:
    """The active plan's grids: outlines, tooltip with code, name and households."""
    frame = _display_frame(gdf, ["grid_id", "code", "name", "households"], simplify_m=simplify_m)
    frame["code"] = frame["code"].where(frame["code"].notna() & (frame["code"] != ""), frame["grid_id"])
    frame["name"] = frame["name"].where(frame["name"].notna(), "")
    frame["hh"] = pd.to_numeric(frame["households"], errors="coerce").map(
        lambda v: "无" if pd.isna(v) else f"{int(v):,}")
    return folium.GeoJson(
        _features(frame[["code", "name", "hh", "geometry"]]), name="网格（生效方案）",
        tooltip=text_tooltip(["code", "name", "hh"], ["网格编码", "网格名称", "户数"]),
        style_function=lambda f: {"color": GRID_COLOR, "weight": 2.5, "opacity": 0.9,
                                  "fillColor": GRID_COLOR, "fillOpacity": 0.04},
    )


def _joined(lines: shapely.MultiLineString) -> shapely.Geometry:
    """*lines* joined end to end; as they are when nothing joins (line_merge drops zero-length lines,
    and a street of one such line would become an empty collection)."""
    merged = shapely.line_merge(lines)
    return lines if merged.is_empty else merged


def merged_lines(frame: gpd.GeoDataFrame, by: list[str]) -> gpd.GeoDataFrame:
    """One feature per value of *by* (missing values as ""), its lines joined end to end.

    A street layer is the walk network's edges: thousands of two-point lines whose feature
    overhead and repeated names were 500 KB of the 1.7 MB demo map page; merged by name and
    class they draw the same lines from a third of the bytes and a tenth of the Leaflet layers.
    """
    keyed = frame.assign(**{c: frame[c].astype(object).where(frame[c].notna(), "") for c in by})
    lines = keyed[by].join(keyed.geometry.explode(index_parts=False).rename("line"))
    lines = lines[shapely.get_type_id(lines["line"].to_numpy()) == 1]  # LineStrings (explode of a multi)
    groups = lines.groupby(by, sort=True)["line"].agg(lambda g: _joined(shapely.multilinestrings(g.to_numpy())))
    out = groups.index.to_frame(index=False)
    return gpd.GeoDataFrame(out, geometry=list(groups.to_numpy()), crs=frame.crs)


def _streets(gdf: gpd.GeoDataFrame, *, simplify_m: float) -> folium.GeoJson:
    frame = _display_frame(gdf, ["name", "road_class"], simplify_m=simplify_m)
    frame["road_class"] = _road_class(frame["road_class"])
    frame = merged_lines(frame, ["name", "road_class"])
    frame["kind"] = frame["road_class"].map(lambda c: ROAD_STYLES[c]["label"])

    table = {c: {k: v for k, v in spec.items() if k != "label"} | {"opacity": 0.9}
             for c, spec in ROAD_STYLES.items()}
    return class_styled(
        frame[["name", "kind", "geometry"]], frame["road_class"], table, name="道路",
        tooltip=text_tooltip(["name", "kind"], ["道路", "等级"]),
    )


def _road_class(values: pd.Series) -> pd.Series:
    """``road_class`` with missing or unknown values shown as ``minor`` (the schema default)."""
    return values.where(values.isin(list(ROAD_STYLES)), "minor")


def _buildings(gdf: gpd.GeoDataFrame, *, simplify_m: float, breaks: tuple[int, ...]) -> folium.GeoJson:
    frame = _display_frame(
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
    frame = _display_frame(gdf, ["name", "category"], simplify_m=0.0)
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


class MapControl(MacroElement):
    """A Leaflet control holding static HTML (legend, data label) at *position*.

    *body* is HTML: every data value in it must be escaped by the caller.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function() {
            var ctl = L.control({position: {{ this.position|tojson }}});
            ctl.onAdd = function() {
                var div = L.DomUtil.create("div", {{ this.css_class|tojson }});
                div.innerHTML = {{ this.body|tojson }};
                {%- if this.fold_on_phone %}
                div.querySelectorAll("details").forEach(function (d) {
                    d.open = !window.matchMedia({{ this.phone_media|tojson }}).matches;
                });
                {%- endif %}
                L.DomEvent.disableClickPropagation(div);
                L.DomEvent.disableScrollPropagation(div);
                return div;
            };
            ctl.addTo({{ this._parent.get_name() }});
        })();
        {% endmacro %}
        """
    )

    def __init__(self, body: str, *, position: str, css_class: str, fold_on_phone: bool = False) -> None:
        super().__init__()
        self._name = "MapControl"
        self.body = body
        self.position = position
        self.css_class = css_class
        self.fold_on_phone = fold_on_phone  # its <details> start closed on phone-sized screens
        self.phone_media = PHONE_MEDIA


class MetricScale(MacroElement):
    """A metric-only scale bar (Leaflet's default also shows feet and miles)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        L.control.scale({imperial: false, maxWidth: 160}).addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self) -> None:
        super().__init__()
        self._name = "MetricScale"


class PhoneCollapse(MacroElement):
    """Fold *control* (a layer control shown open) on phone-sized screens; a tap opens it,
    a tap on the map folds it again."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        if (window.matchMedia({{ this.phone_media|tojson }}).matches) {
            {{ this.control.get_name() }}.collapse();
            {{ this._parent.get_name() }}.on("click", function () { {{ this.control.get_name() }}.collapse(); });
        }
        {% endmacro %}
        """
    )

    def __init__(self, control: folium.LayerControl) -> None:
        super().__init__()
        self._name = "PhoneCollapse"
        self.control = control
        self.phone_media = PHONE_MEDIA


class LayerRegistry(MacroElement):
    """Expose the map and its layers as ``window.wanggeMap`` / ``window.wanggeLayers``."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        window.wanggeMap = {{ this._parent.get_name() }};
        window.wanggeLayers = {
        {%- for key, layer in this.layers.items() %}
            {{ key|tojson }}: {{ layer.get_name() }},
        {%- endfor %}
        };
        {% endmacro %}
        """
    )

    def __init__(self, layers: dict[str, MacroElement]) -> None:
        super().__init__()
        self._name = "LayerRegistry"
        self.layers = layers


def _swatch(color: str, *, kind: str = "box", dash: bool = False, weight: float = 2.0) -> str:
    if kind == "line":
        style = f"border-top:{max(weight, 1.0):.1f}px {'dashed' if dash else 'solid'} {color};height:0;margin-top:7px"
    elif kind == "dot":
        style = f"background:{color};border-radius:50%;width:10px;height:10px;margin:3px"
    elif kind == "outline":
        style = f"border:2px {'dashed' if dash else 'solid'} {color}"
    else:
        style = f"background:{color};border:1px solid #555"
    return f'<i class="wg-swatch" style="{style}"></i>'


def collapsible_html(title: str, body: str) -> str:
    """*body* (HTML) under a title that folds it (``<details>``); *title* is escaped."""
    return (f'<details open><summary class="wg-legend-title">{html.escape(title)}</summary>'
            f"{body}</details>")


def _grids_legend(grids_note: str | None, has_grids: bool) -> list[str]:
    if grids_note is None and not has_grids:
        return []
    rows = ['<div class="wg-legend-sub">网格方案</div>']
    if has_grids:
        rows.append(f"<div>{_swatch(GRID_COLOR, kind='outline')}网格（生效方案）</div>")
    if grids_note:
        rows.append(f'<div class="wg-legend-note wg-plan-note">{html.escape(grids_note)}</div>')
    return rows


def _legend_html(breaks: tuple[int, ...], road_classes: list[str], categories: dict[str, str],
                 grids: list[str] | None = None) -> str:
    rows = [f"<div>{_swatch(COMMUNITY_COLOR, kind='outline')}社区边界</div>",
            f"<div>{_swatch(COMPOUND_COLOR, kind='outline', dash=True)}小区</div>",
            '<div class="wg-legend-sub">楼栋户数</div>']
    rows += [f"<div>{_swatch(c)}{html.escape(t)}</div>"
             for c, t in zip(HOUSEHOLD_COLORS, _class_labels(breaks), strict=False)]
    rows.append(f"<div>{_swatch(NO_HOUSEHOLDS_COLOR)}非住宅 / 无户数</div>")
    rows.append('<div class="wg-legend-note">“估算”= 户数由面积和层数估算</div>')
    if road_classes:
        rows.append('<div class="wg-legend-sub">道路</div>')
        for rc in road_classes:
            spec = ROAD_STYLES[rc]
            sw = _swatch(spec["color"], kind="line", dash="dashArray" in spec, weight=spec["weight"])
            rows.append(f"<div>{sw}{spec['label']}</div>")
    if categories:
        rows.append('<div class="wg-legend-sub">服务点</div><div class="wg-legend-cols">')
        rows += [f"<div>{_swatch(c, kind='dot')}{html.escape(n)}</div>" for n, c in categories.items()]
        rows.append("</div>")
    rows += grids or []
    return collapsible_html("图例", "".join(rows))


def _tile(m: folium.Map, url: str, *, name: str, attr: str, show: bool, overlay: bool = False,
          **options: Any) -> None:
    folium.TileLayer(tiles=url, name=name, attr=attr, overlay=overlay, control=True, show=show,
                     max_zoom=20, max_native_zoom=18, **options).add_to(m)


def _add_basemaps(m: folium.Map, basemap: str, *, tianditu_tk: str, osm_tile_url: str) -> None:
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


def _check_basemap(basemap: str, *, tianditu_tk: str, osm_tile_url: str) -> None:
    if basemap not in BASEMAPS:
        raise BasemapError(f"basemap {basemap!r} is unknown; use one of {', '.join(BASEMAPS)} "
                           "(setting `basemap`)", code="unknown_basemap",
                           params={"basemap": basemap, "choices": "、".join(BASEMAPS)})
    if basemap == "tianditu" and not tianditu_tk:
        raise BasemapError("basemap 'tianditu' needs a Tianditu key: set the setting `tianditu_tk` "
                           "(WANGGE_TIANDITU_TK) or use basemap 'none'", code="tianditu_key_missing")
    if basemap == "osm" and not osm_tile_url:
        raise BasemapError("basemap 'osm' needs a tile URL: set the setting `osm_tile_url`", code="osm_url_missing")


def _to_gcj02(layers: Mapping[str, gpd.GeoDataFrame]) -> dict[str, gpd.GeoDataFrame]:
    try:
        from geo.chinacoords import transform_geoseries
    except ImportError as exc:
        raise BasemapError("basemap 'gaode' needs geo.chinacoords (WGS84 → GCJ-02 shift), which "
                           "is not available; use basemap 'none', 'osm' or 'tianditu'") from exc
    return {k: g.set_geometry(transform_geoseries(g.geometry, source="wgs84", target="gcj02"))
            for k, g in layers.items()}


def _bounds(layers: Mapping[str, gpd.GeoDataFrame]) -> list[list[float]] | None:
    frames = [g for g in layers.values() if g is not None and len(g)]
    if not frames:
        return None
    b = np.array([g.total_bounds for g in frames])
    return [[float(b[:, 1].min()), float(b[:, 0].min())], [float(b[:, 3].max()), float(b[:, 2].max())]]


_MAP_CSS = """<style>
.wg-legend, .wg-label { background: rgba(255,255,255,.94); padding: 8px 10px; border-radius: 6px;
  box-shadow: 0 1px 4px rgba(0,0,0,.3); font: 12px/1.5 "Noto Sans CJK SC", "Source Han Sans SC",
  "Microsoft YaHei", "PingFang SC", sans-serif; color: #222; }
/* the open layer list (top right, ~290 px with 7 layers) stays clear of the legend (bottom right): at
   1280x800 a 60vh legend covered its last row */
.wg-legend { max-height: min(60vh, calc(100vh - 350px)); overflow-y: auto; min-width: 130px; }
.wg-legend-title { font-weight: 700; font-size: 13px; margin-bottom: 2px; }
.wg-legend-sub { font-weight: 600; margin-top: 6px; }
.wg-legend-note { color: #666; font-size: 11px; }
.wg-swatch { display: inline-block; width: 18px; height: 12px; margin-right: 6px; vertical-align: -1px; }
.wg-legend-cols { display: grid; grid-template-columns: auto auto; column-gap: 10px; }
.wg-community-name { transform: translate(-50%, -50%); white-space: nowrap; font-weight: 700;
  font-size: 13px; color: #1f4e9c; text-shadow: 0 0 3px #fff, 0 0 3px #fff, 0 0 3px #fff; }
.wg-label { background: #fff3cd; border: 1px solid #e0b84c; color: #6b4e00; max-width: 420px; }
.leaflet-container { background: #f4f3ef; font-family: "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; }
</style>"""


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
    _check_basemap(basemap, tianditu_tk=tianditu_tk, osm_tile_url=osm_tile_url)
    data = {k: g for k, g in layers.items() if g is not None and len(g)}
    if basemap == "gaode":
        data = _to_gcj02(data)
    # Fractional zoom lets fit_bounds fill the window instead of stopping a whole level short.
    m = folium.Map(tiles=None, prefer_canvas=True, zoom_start=4, location=[35.0, 105.0],
                   max_zoom=20, zoom_snap=0.25, zoom_delta=0.5)
    MetricScale().add_to(m)
    m.get_root().header.add_child(folium.Element(_MAP_CSS), name="wangge_map_css")
    _add_basemaps(m, basemap, tianditu_tk=tianditu_tk, osm_tile_url=osm_tile_url)
    added, categories = _data_layers(data, simplify_m=simplify_m, household_breaks=tuple(household_breaks))
    for layer in added.values():
        layer.add_to(m)
    present = set(_road_class(data["streets"]["road_class"])) if "road_class" in data.get(
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
    bounds = _bounds(data)
    if bounds is not None:
        m.fit_bounds(bounds)
    logger.info("workspace map: %s", ", ".join(f"{k} {len(g)}" for k, g in data.items()) or "empty")
    return localize(m, vendor_url=vendor_url)
