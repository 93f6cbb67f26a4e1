"""The workspace map builder: layers, styles, legend, base maps, size."""

from __future__ import annotations

import re

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Polygon

from geo import lifecircle
from tests.webmap.factories import make_layers
from webmap.basemaps import BasemapError
from webmap.maps import workspace_map
from webmap.offline import assert_offline, external_urls
from webmap.styles import (
    CATEGORY_LABELS,
    HOUSEHOLD_COLORS,
    NO_HOUSEHOLDS_COLOR,
    ROAD_STYLES,
    household_class,
)


def _text(m: folium.Map) -> str:
    """Rendered page with JSON ``\\uXXXX`` escapes decoded (folium escapes non-ASCII in JS)."""
    html = m.get_root().render()
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda g: chr(int(g.group(1), 16)), html)


def _geojson_layers(m: folium.Map) -> dict[str, folium.GeoJson]:
    return {c.layer_name: c for c in m._children.values() if isinstance(c, folium.GeoJson)}


def test_map_has_every_layer_with_every_feature(small_layers: dict[str, gpd.GeoDataFrame]) -> None:
    m = workspace_map(small_layers)
    layers = _geojson_layers(m)
    expected = {"社区": "communities", "小区": "compounds", "道路": "streets",
                "楼栋（按户数）": "buildings", "服务点": "service_points"}
    assert set(layers) == set(expected)
    for name, key in expected.items():
        assert len(layers[name].data["features"]) == len(small_layers[key])
    html = m.get_root().render()
    assert_offline(html)
    assert "window.wanggeLayers" in html
    assert '"preferCanvas": true' in html


def test_only_needed_columns_are_embedded(small_layers: dict[str, gpd.GeoDataFrame]) -> None:
    props = _geojson_layers(workspace_map(small_layers))["楼栋（按户数）"].data["features"][0]["properties"]
    assert set(props) == {"name", "hh", "s"}  # s: the style class


def test_styles_switch_on_a_few_classes_not_on_every_feature(small_layers: dict[str, gpd.GeoDataFrame]) -> None:
    """folium's styler was a JavaScript switch over every feature id (3,000 cases on the demo)."""
    m = workspace_map(small_layers, household_breaks=(20, 50, 100, 200))
    page = m.get_root().render()
    buildings = _geojson_layers(m)["楼栋（按户数）"]
    own = re.search(rf"function {buildings.get_name()}_styler\(feature\) \{{(.*?)\n        \}}", page, re.S)
    assert own is not None and "switch(feature.properties.s)" in own.group(1)
    # one case per class but the default one; the table has six classes (five bounds, none)
    assert len(buildings.data["features"]) > 50 and own.group(1).count("case ") == 6 - 1
    assert {f["properties"]["s"] for f in buildings.data["features"]} <= set(buildings.class_styles)


def test_estimated_households_are_marked(small_layers: dict[str, gpd.GeoDataFrame]) -> None:
    b = small_layers["buildings"]
    feats = _geojson_layers(workspace_map(small_layers))["楼栋（按户数）"].data["features"]
    labels = pd.Series([f["properties"]["hh"] for f in feats])
    positive = pd.to_numeric(b["households"]).fillna(0).to_numpy() > 0
    est = b["households_estimated"].to_numpy()
    assert labels[positive & est].str.endswith("（估算）").all()
    assert not labels[positive & ~est].str.contains("估算").any()
    assert (labels[~positive] == "无").all()


def test_household_class_follows_breaks() -> None:
    got = household_class(pd.Series([np.nan, 0, 1, 19, 20, 49, 50, 500]), breaks=(20, 50))
    assert got.tolist() == [-1, -1, 0, 0, 1, 1, 2, 2]


def test_legend_is_chinese_and_follows_breaks(small_layers: dict[str, gpd.GeoDataFrame]) -> None:
    html = _text(workspace_map(small_layers, household_breaks=(10, 30)))
    categories = [CATEGORY_LABELS.get(c, c) for c in ("kindergarten", "health_station")]
    for text in ("图例", "1–9 户", "10–29 户", "≥ 30 户", "主干道", "巷道", "铁路", "小区", "laundry", *categories):
        assert text in html, text
    assert "次干道" not in html  # only road classes present are listed


def test_life_circle_categories_are_chinese() -> None:
    for code in lifecircle.DEFAULT_CHECKLIST.categories:
        assert re.search(r"[\u4e00-\u9fff]", CATEGORY_LABELS[code]), code


def test_community_names_are_labelled(small_layers: dict[str, gpd.GeoDataFrame]) -> None:
    html = _text(workspace_map(small_layers))
    assert html.count('"className": "wg-community-label"') == 2
    assert "梅园社区" in html and "桃源社区" in html


def test_label_banner(small_layers: dict[str, gpd.GeoDataFrame]) -> None:
    html = _text(workspace_map(small_layers, label="合成数据 <仅供演示>"))
    assert "合成数据 &lt;仅供演示&gt;" in html
    assert "wg-label" in html


def test_geometry_is_simplified_for_display() -> None:
    layers = make_layers(4)
    ring = [(120.6 + 0.001 * np.cos(t), 31.3 + 0.001 * np.sin(t)) for t in np.linspace(0, 2 * np.pi, 400)]
    layers["communities"] = gpd.GeoDataFrame({"community_id": ["C9"], "name": ["圆社区"]},
                                             geometry=[Polygon(ring)], crs="EPSG:4326")
    feat = _geojson_layers(workspace_map(layers, simplify_m=2.0))["社区"].data["features"][0]
    n_coords = len(feat["geometry"]["coordinates"][0])
    assert 8 < n_coords < 200


def test_basemap_none_is_offline_and_osm_is_not(small_layers: dict[str, gpd.GeoDataFrame]) -> None:
    assert_offline(workspace_map(small_layers, basemap="none").get_root().render())
    urls = external_urls(workspace_map(small_layers, basemap="osm", osm_tile_url="http://tiles.local/{z}/{x}/{y}.png")
                         .get_root().render())
    assert "http://tiles.local/{z}/{x}/{y}.png" in urls


def test_tianditu_needs_key(small_layers: dict[str, gpd.GeoDataFrame]) -> None:
    with pytest.raises(BasemapError, match=r"needs a Tianditu key: set the setting `tianditu_tk`"):
        workspace_map(small_layers, basemap="tianditu")
    html = _text(workspace_map(small_layers, basemap="tianditu", tianditu_tk="abc123"))
    assert "LAYER=vec" in html and "LAYER=cva" in html and "tk=abc123" in html
    assert "天地图矢量" in html and "无底图" in html


def test_unknown_basemap(small_layers: dict[str, gpd.GeoDataFrame]) -> None:
    with pytest.raises(BasemapError, match=r"basemap 'baidu' is unknown; use one of none, osm"):
        workspace_map(small_layers, basemap="baidu")


def test_gaode_shifts_data_to_gcj02(small_layers: dict[str, gpd.GeoDataFrame]) -> None:
    wgs = _geojson_layers(workspace_map(small_layers))["服务点"].data["features"][0]["geometry"]["coordinates"]
    m = workspace_map(small_layers, basemap="gaode")
    gcj = _geojson_layers(m)["服务点"].data["features"][0]["geometry"]["coordinates"]
    shift_m = np.hypot((gcj[0] - wgs[0]) * 111_320 * np.cos(np.radians(wgs[1])), (gcj[1] - wgs[1]) * 111_320)
    assert 100 < shift_m < 1000  # GCJ-02 offset in Suzhou is several hundred metres
    assert "autonavi.com" in m.get_root().render()


def test_empty_workspace_still_renders() -> None:
    html = _text(workspace_map({}))
    assert_offline(html)
    assert "图例" in html


def test_5000_building_page_stays_small() -> None:
    html = workspace_map(make_layers(5000), label="合成数据").get_root().render()
    assert len(html.encode()) < 3_000_000


def test_styles_follow_households_and_road_class(small_layers: dict[str, gpd.GeoDataFrame]) -> None:
    b = small_layers["buildings"]
    b.loc[0, "households"], b.loc[1, "households"], b.loc[2, "households"] = np.nan, 250, 5
    layers = _geojson_layers(workspace_map(small_layers, household_breaks=(20, 50, 100, 200)))
    style = layers["楼栋（按户数）"].style_function
    feats = layers["楼栋（按户数）"].data["features"]
    assert [style(f)["fillColor"] for f in feats[:3]] == [NO_HOUSEHOLDS_COLOR, HOUSEHOLD_COLORS[4],
                                                          HOUSEHOLD_COLORS[0]]
    streets = layers["道路"]
    got = {f["properties"]["kind"]: streets.style_function(f) for f in streets.data["features"]}
    assert got["主干道"]["color"] == ROAD_STYLES["major"]["color"]
    assert got["铁路"]["dashArray"] == ROAD_STYLES["rail"]["dashArray"]
