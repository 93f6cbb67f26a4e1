"""The planner map: the frame of the plan pages, filled by the ES modules of ``static/js/planner/``.

A plan of a 20 k-building street has hundreds of grids and tens of thousands of buildings;
embedding them would make the page tens of megabytes. So the folium map built here holds
only what is small and fixed — base maps, legend, layer control, the canvas renderer and
(for planners) the Geoman editing assets — and :func:`planner_config` tells the script
what to load from the JSON API: grids as simplified GeoJSON, community outlines, and
streets, compounds and buildings per bounding box once the view is zoomed in.

Base map "gaode" shows GCJ-02 tiles; the script then shifts every geometry it draws to
GCJ-02 (and drawn lines and polygons back to WGS84 before they are sent), like
:func:`webmap.maps.workspace_map` does for embedded layers.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Sequence
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from folium.elements import JSCSSMixin, MacroElement
from folium.template import Template

from geo.settings import DEFAULTS
from webmap.basemaps import base_map
from webmap.controls import MapControl
from webmap.features import display_frame, feature_collection
from webmap.offline import LOCAL_ASSETS, VENDOR_URL, localize
from webmap.styles import COMMUNITY_COLOR, COMPOUND_COLOR, ROAD_STYLES, road_class, swatch

__all__ = [
    "EXPORT_FORMATS",
    "FLAG_LABELS",
    "GRID_STATUS",
    "RULE_LABELS",
    "SELECTED_COLOR",
    "DISPLAY_PROPERTIES",
    "context_features",
    "context_features_json",
    "community_outlines_json",
    "display_grids_json",
    "grid_status",
    "planner_config",
    "planner_legend_html",
    "plan_map",
]

logger = logging.getLogger(__name__)

#: Grid status -> (fill colour, Chinese legend name). Colour-blind safe blue/green/red + purple.
GRID_STATUS: dict[str, tuple[str, str]] = {
    "under": ("#6baed6", "户数不足"),
    "in": ("#74c476", "户数达标"),
    "over": ("#fb6a4a", "户数超限"),
    "exclusive": ("#9e9ac8", "专属网格"),
}
#: Violation rule (docs/PLANNER_API.md) -> Chinese message.
RULE_LABELS: dict[str, str] = {
    "range": "户数超出范围",
    "contiguity": "网格不连通",
    "nesting": "跨越社区边界",
    "tiling": "未完全覆盖或有重叠",
    "empty": "空网格",
}
#: Partition flags (grids.geojson ``flags``) -> Chinese; ``exclusive``/``locked`` have their own marks.
FLAG_LABELS: dict[str, str] = {
    "compound_split": "小区被拆分",
    "oversize_unit": "单体超上限",
    "infeasible": "社区无法满足户数范围",
    "over_max": "划分时超上限",
    "under_min": "划分时低于下限",
    "exclusive": "",
    "locked": "",
}
#: Export format (``?format=``) -> Chinese menu entry.
EXPORT_FORMATS: dict[str, str] = {
    "gpkg": "GeoPackage (.gpkg)",
    "geojson": "GeoJSON (.geojson)",
    "shp": "Shapefile (.zip)",
    "kml": "KML (.kml)",
    "csv": "网格统计 CSV",
    "xlsx": "网格统计 Excel",
}
SELECTED_COLOR = "#ffd400"
#: folium.Map assets the plan pages do not link in ``<head>``: no jQuery, marker icons or Font
#: Awesome; Bootstrap's script (the export dropdown) is loaded ``defer`` by ``plan.html``.
_UNUSED_ASSETS = frozenset({"jquery", "awesome_markers", "awesome_markers_css", "awesome_markers_font_css",
                            "bootstrap"})
BUILDING_COLOR = "#555555"
MOVED_COLOR = "#e6007e"


def grid_status(households: pd.Series, *, lo: int, hi: int, exclusive: pd.Series | None = None) -> pd.Series:
    """``under`` / ``in`` / ``over`` by households against [*lo*, *hi*]; ``exclusive`` wins.

    Examples
    --------
    >>> grid_status(pd.Series([120, 400, 640]), lo=300, hi=500).tolist()
    ['under', 'in', 'over']
    """
    values = pd.to_numeric(households, errors="coerce").fillna(0).to_numpy()
    out = np.where(values < lo, "under", np.where(values > hi, "over", "in")).astype(object)
    if exclusive is not None:
        out[exclusive.fillna(False).astype(bool).to_numpy()] = "exclusive"
    return pd.Series(out, index=households.index, name="status")


#: Attribute columns of the context layers the plan map loads per bounding box.
CONTEXT_COLUMNS: dict[str, list[str]] = {"streets": ["name", "road_class"], "compounds": ["name"]}


def context_features(gdf: gpd.GeoDataFrame, kind: str, *, simplify_m: float,
                     road_classes: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Streets or compounds of a view as a small GeoJSON FeatureCollection (simplified, ~0.1 m).

    *road_classes* keeps only those classes of streets (e.g. the major roads shown when zoomed out).

    Raises
    ------
    ValueError
        *kind* is not ``streets`` or ``compounds``.
    """
    return feature_collection(_context_frame(gdf, kind, simplify_m=simplify_m, road_classes=road_classes))


def _context_frame(gdf: gpd.GeoDataFrame, kind: str, *, simplify_m: float,
                   road_classes: tuple[str, ...] | None) -> gpd.GeoDataFrame:
    if kind not in CONTEXT_COLUMNS:
        raise ValueError(f"context_features: layer {kind!r} is not a context layer; "
                         f"use one of {', '.join(CONTEXT_COLUMNS)}")
    frame = display_frame(gdf, CONTEXT_COLUMNS[kind], simplify_m=simplify_m)
    if kind == "streets":
        frame["road_class"] = road_class(frame["road_class"])
        if road_classes is not None:
            frame = frame[frame["road_class"].isin(road_classes)]
    return frame


def context_features_json(gdf: gpd.GeoDataFrame, kind: str, *, simplify_m: float,
                          road_classes: tuple[str, ...] | None = None) -> str:
    """:func:`context_features` as GeoJSON text, encoded in one vectorised pass.

    The same collection (a test compares them); the map asks it for every view it shows
    (about 1,000 streets in 1.5 km of a city), where building it feature by feature through
    ``__geo_interface__`` cost 60 ms of CPU per request.

    Examples
    --------
    >>> streets = gpd.GeoDataFrame({"street_id": ["s1"], "name": ["人民路"], "road_class": ["primary"]},
    ...                            geometry=[shapely.LineString([(120.1, 31.0), (120.2, 31.0)])], crs=4326)
    >>> json.loads(context_features_json(streets, "streets", simplify_m=0.5))["features"][0]["properties"]["name"]
    '人民路'
    """
    frame = _context_frame(gdf, kind, simplify_m=simplify_m, road_classes=road_classes)
    texts = shapely.to_geojson(frame.geometry.values) if len(frame) else []
    columns = [c for c in frame.columns if c != frame.geometry.name]
    values = [frame[c].astype(object).where(frame[c].notna(), "").tolist() for c in columns]
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    feats = [f'{{"id":{encode(str(i))},"type":"Feature","properties":{encode(dict(zip(columns, row, strict=True)))},'
             f'"geometry":{g}}}' for i, g, row in zip(frame.index, texts, zip(*values, strict=True), strict=True)]
    return '{"type":"FeatureCollection","features":[' + ",".join(feats) + "]}"


#: Grid properties ``static/js/planner/`` reads; the display form of ``grids.geojson`` sends only these.
DISPLAY_PROPERTIES: tuple[str, ...] = ("grid_id", "code", "name", "community_id", "households", "buildings",
                                       "area_m2", "polsby_popper", "locked", "exclusive", "status", "flags")
_M_PER_DEGREE = 111_320.0


def community_outlines_json(gdf: gpd.GeoDataFrame, *, simplify_m: float) -> str:
    """Community outlines for the plan map as compact GeoJSON text: ``community_id`` and ``name``
    only, simplified by *simplify_m* metres, coordinates rounded to ~0.1 m.

    Examples
    --------
    >>> comms = gpd.GeoDataFrame({"community_id": ["C1"], "name": ["东园"], "street_id": ["S1"]},
    ...                          geometry=[shapely.box(120.1, 31.0, 120.2, 31.1)], crs=4326)
    >>> json.loads(community_outlines_json(comms, simplify_m=5))["features"][0]["properties"]
    {'community_id': 'C1', 'name': '东园'}
    """
    frame = display_frame(gdf, ["community_id", "name"], simplify_m=simplify_m)
    return json.dumps(feature_collection(frame, ids=False), ensure_ascii=False, separators=(",", ":"))


def display_grids_json(features: Sequence[dict[str, Any]], geometries: Sequence[Any], *,
                       simplify_m: float, version: int | None = None) -> str:
    """Grids as compact GeoJSON text for the map: simplified, 6 decimals, only :data:`DISPLAY_PROPERTIES`.

    Parameters
    ----------
    features
        GeoJSON features (their ``geometry`` is ignored; ``id`` and ``properties`` are kept).
    geometries
        The shapely geometry of each feature (WGS84), ``None`` for a grid without outline.
    simplify_m
        Display tolerance in metres (``map_simplify_m``), Douglas-Peucker without topology
        checks (8x faster): holes and slivers thinner than it go; an outline that would vanish
        entirely keeps its exact form.
    version
        The plan version, sent as the collection's ``version``.

    Examples
    --------
    >>> text = display_grids_json([{"id": "g1", "properties": {"grid_id": "g1", "street_share": 0.5}}],
    ...                           [shapely.box(120.1234567, 31.0, 120.2, 31.1)], simplify_m=0.5, version=3)
    >>> fc = json.loads(text); fc["features"][0]["properties"], fc["features"][0]["geometry"]["coordinates"][0][0]
    ({'grid_id': 'g1'}, [120.2, 31.0])
    """
    if len(features) != len(geometries):
        raise ValueError(f"display_grids_json: {len(features)} features but {len(geometries)} geometries; "
                         "pass one geometry (or None) per feature")
    geoms = np.array(list(geometries), dtype=object)
    present = np.array([g is not None and not shapely.is_empty(g) for g in geoms], dtype=bool)
    texts = np.full(len(geoms), "null", dtype=object)
    if present.any():
        exact = geoms[present]
        simple = shapely.simplify(exact, simplify_m / _M_PER_DEGREE, preserve_topology=False) if simplify_m > 0 else exact
        vanished = shapely.is_empty(simple) | (shapely.area(simple) <= 0)
        simple = np.where(vanished, exact, simple)
        rounded = shapely.transform(simple, lambda xy: np.round(xy, 6))
        texts[present] = shapely.to_geojson(rounded)
    parts = []
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode  # one encoder, not one per feature
    for feature, geometry in zip(features, texts, strict=True):
        props = {k: v for k, v in (feature.get("properties") or {}).items() if k in DISPLAY_PROPERTIES}
        head = encode({"type": "Feature", "id": feature.get("id"), "properties": props})
        parts.append(f'{head[:-1]},"geometry":{geometry}}}')
    logger.info("display grids: %d features, %d without outline", len(parts), int((~present).sum()))
    return (f'{{"type":"FeatureCollection","version":{json.dumps(version)},"features":['
            + ",".join(parts) + "]}")


def planner_legend_html(*, min_households: int, max_households: int) -> str:
    """Legend of the plan map: grid status classes with the bounds, outlines, selection.

    It folds (``<details>``): phones start with it closed so it does not cover the map, and
    each status row steps through the grids of that status (``static/js/planner/plan_grids.js``).
    """
    bounds = {"under": f"&lt; {min_households} 户", "in": f"{min_households}–{max_households} 户",
              "over": f"&gt; {max_households} 户", "exclusive": "不受户数限制"}
    rows = ['<details open><summary class="wg-legend-title">图例</summary>',
            '<div class="wg-legend-sub">网格（按户数，点击定位）</div>']
    rows += [f'<div data-status="{key}">{swatch(color)}{name} <span class="wg-legend-note">'
             f'{bounds[key]}</span></div>' for key, (color, name) in GRID_STATUS.items()]
    rows += [
        f"<div>{swatch('#d62728', kind='outline', dash=True)}规则冲突</div>",
        f"<div>{swatch(SELECTED_COLOR, kind='outline')}选中</div>",
        '<div class="wg-legend-sub">底图要素</div>',
        f"<div>{swatch(COMMUNITY_COLOR, kind='outline')}社区边界</div>",
        f"<div>{swatch(COMPOUND_COLOR, kind='outline', dash=True)}小区</div>",
        f"<div>{swatch(ROAD_STYLES['major']['color'], kind='line', weight=3)}道路</div>",
        f"<div>{swatch('#ffffff')}楼栋（放大后显示）</div>",
        "</details>",
    ]
    return "".join(rows)


def planner_config(
    *,
    basemap: str,
    min_households: int,
    max_households: int,
    labels_min_zoom: int = DEFAULTS["planner_labels_min_zoom"],
    buildings_min_zoom: int = DEFAULTS["planner_buildings_min_zoom"],
    streets_min_zoom: int = DEFAULTS["planner_streets_min_zoom"],
) -> dict[str, Any]:
    """What ``static/js/planner/`` needs to draw: colours, Chinese names, zoom thresholds, GCJ-02 flag."""
    return {
        "gcj02": basemap == "gaode",
        "bounds": [int(min_households), int(max_households)],
        "status": {k: {"color": c, "label": n} for k, (c, n) in GRID_STATUS.items()},
        "rules": RULE_LABELS,
        "flags": FLAG_LABELS,
        "exports": EXPORT_FORMATS,
        "roads": {k: {kk: v for kk, v in spec.items()} for k, spec in ROAD_STYLES.items()},
        "colors": {"community": COMMUNITY_COLOR, "compound": COMPOUND_COLOR, "selected": SELECTED_COLOR,
                   "building": BUILDING_COLOR, "moved": MOVED_COLOR},
        "labelsMinZoom": int(labels_min_zoom),
        "buildingsMinZoom": int(buildings_min_zoom),
        "streetsMinZoom": int(streets_min_zoom),
    }


class _GeomanAssets(JSCSSMixin, MacroElement):
    """Leaflet-Geoman's style (drawing boxes, polygons, lines); localised by name.

    Its 0.6 MB script is not linked here: ``plan_edits.js`` loads it (config ``geomanJs``) once
    the grids are drawn, so it neither delays the page nor hooks every grid polygon.
    """

    _template = Template("")
    default_js: list[tuple[str, str]] = []
    # Named like folium's GeoMan asset so that localize() maps it; the path is the local one already.
    default_css = [("leaflet_geoman_css", "/static/vendor/leaflet-geoman-free/leaflet-geoman.css")]

    def __init__(self) -> None:
        super().__init__()
        self._name = "GeomanAssets"


class PlannerRegistry(MacroElement):
    """Expose map, layer control and config as ``window.wanggeMap`` / ``wanggeLayerControl`` /
    ``wanggePlannerConfig`` for ``static/js/planner/``."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        window.wanggeMap = {{ this._parent.get_name() }};
        window.wanggeLayerControl = {{ this.control.get_name() }};
        window.wanggePlannerConfig = {{ this.config|tojson }};
        {% endmacro %}
        """
    )

    def __init__(self, control: folium.LayerControl, config: dict[str, Any]) -> None:
        super().__init__()
        self._name = "PlannerRegistry"
        self.control = control
        self.config = config


def plan_map(
    *,
    basemap: str = DEFAULTS["basemap"],
    tianditu_tk: str = DEFAULTS["tianditu_tk"],
    osm_tile_url: str = DEFAULTS["osm_tile_url"],
    min_households: int = DEFAULTS["grid_min_households"],
    max_households: int = DEFAULTS["grid_max_households"],
    editable: bool = False,
    bounds: list[list[float]] | None = None,
    labels_min_zoom: int = DEFAULTS["planner_labels_min_zoom"],
    buildings_min_zoom: int = DEFAULTS["planner_buildings_min_zoom"],
    streets_min_zoom: int = DEFAULTS["planner_streets_min_zoom"],
    label: str | None = None,
    vendor_url: str = VENDOR_URL,
) -> folium.Map:
    """The plan map frame: base maps, legend, layer control; data layers come from the API.

    Parameters
    ----------
    basemap
        ``"none"`` (offline), ``"osm"``, ``"tianditu"`` or ``"gaode"`` (data shown in GCJ-02).
    min_households, max_households
        The plan's household bounds, for the legend and the under/in/over colours.
    editable
        Load Leaflet-Geoman for the edit toolbar (planners); read-only pages leave it out.
    bounds
        ``[[south, west], [north, east]]`` to show before the grids arrive (WGS84).

    Raises
    ------
    webmap.basemaps.BasemapError
        Unknown *basemap*, Tianditu without key, OSM without tile URL.

    Examples
    --------
    >>> m = plan_map(basemap="none", editable=True)
    >>> "wanggePlannerConfig" in m.get_root().render()
    True
    """
    m = base_map(basemap, tianditu_tk=tianditu_tk, osm_tile_url=osm_tile_url, zoom_snap=0.5)
    if editable:
        _GeomanAssets().add_to(m)
    MapControl(planner_legend_html(min_households=min_households, max_households=max_households),
               position="bottomright", css_class="wg-legend").add_to(m)
    if label:
        MapControl(html.escape(label), position="bottomleft", css_class="wg-label").add_to(m)
    control = folium.LayerControl(collapsed=True, position="topright")
    control.add_to(m)
    config = planner_config(basemap=basemap, min_households=min_households, max_households=max_households,
                            labels_min_zoom=labels_min_zoom, buildings_min_zoom=buildings_min_zoom,
                            streets_min_zoom=streets_min_zoom)
    if editable:
        config["geomanJs"] = f"{vendor_url}/{LOCAL_ASSETS['leaflet_geoman_js']}"
    PlannerRegistry(control, config).add_to(m)
    if bounds is not None:
        m.fit_bounds(bounds)
    logger.info("plan map: basemap %s, %s", basemap, "editable" if editable else "read-only")
    localize(m, vendor_url=vendor_url)
    # This instance only: the workspace map keeps them.
    m.default_js = [(k, v) for k, v in m.default_js if k not in _UNUSED_ASSETS]
    m.default_css = [(k, v) for k, v in m.default_css if k not in _UNUSED_ASSETS]
    return m
