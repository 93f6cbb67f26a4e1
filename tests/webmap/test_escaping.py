"""Stored XSS (issue 16 §2): hostile names reach the map pages as text, never as markup.

folium's GeoJsonTooltip and Leaflet's layer control set ``innerHTML``; these tests check the
builders hand them text (``TextTooltip``) or escaped HTML. ``tests/browser/test_xss.py``
checks the same pages in a real browser.
"""

from __future__ import annotations

import html
import re

import folium
import geopandas as gpd
import pytest
from shapely.geometry import Point, box

from tests.webmap.factories import make_layers
from tests.webmap.hostile import PAYLOADS, hostile, hostile_layers, injected
from webmap.access_map import access_map
from webmap.controls import PHONE_MEDIA
from webmap.maps import workspace_map
from webmap.planner import plan_map
from webmap.styles import GRID_COLOR
from webmap.tooltips import TextTooltip


def _decoded(m: folium.Map) -> str:
    """The rendered page with JSON string escapes decoded, as the browser's JS sees the strings."""
    text = m.get_root().render()
    return re.sub(r'\\(u[0-9a-fA-F]{4}|["\\/])',
                  lambda g: chr(int(g.group(1)[1:], 16)) if len(g.group(1)) == 5 else g.group(1), text)


def _geojson_layers(m: folium.Map) -> dict[str, folium.GeoJson]:
    return {c.layer_name: c for c in m._children.values() if isinstance(c, folium.GeoJson)}


def _tooltips(layer: folium.GeoJson) -> list[folium.GeoJsonTooltip]:
    return [c for c in layer._children.values() if isinstance(c, folium.GeoJsonTooltip)]


def _grids(layers: dict[str, gpd.GeoDataFrame]) -> gpd.GeoDataFrame:
    """Four grids over the communities, names hostile, one without code."""
    x0, y0, x1, y1 = layers["communities"].total_bounds
    xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
    cells = [box(x0, y0, xm, ym), box(xm, y0, x1, ym), box(x0, ym, xm, y1), box(xm, ym, x1, y1)]
    return gpd.GeoDataFrame({"grid_id": [f"G{i}" for i in range(4)],
                             "code": ["320508001001001", "320508001001002", None, "320508001002001"],
                             "name": [hostile("网格", i) for i in range(4)],
                             "households": [312, 405, 498, 350]}, geometry=cells, crs=4326)


@pytest.fixture
def hostile_map_layers() -> dict[str, gpd.GeoDataFrame]:
    layers = hostile_layers(make_layers(60))
    layers["grids"] = _grids(layers)
    return layers


def test_every_tooltip_of_the_workspace_map_sets_text(hostile_map_layers: dict[str, gpd.GeoDataFrame]) -> None:
    m = workspace_map(hostile_map_layers, grids_note=hostile("生效方案", 0))
    layers = _geojson_layers(m)
    assert len(layers) == 6
    for name, layer in layers.items():
        tips = _tooltips(layer)
        assert len(tips) == 1 and isinstance(tips[0], TextTooltip), name
    page = m.get_root().render()
    assert "div.innerHTML=table" not in page  # folium's tooltip body
    assert page.count(".textContent = v === null") == 6
    # Data are embedded unchanged (the tooltip shows them as text) and never as raw markup.
    names = [f["properties"]["name"] for f in layers["楼栋（按户数）"].data["features"]]
    assert names == hostile_map_layers["buildings"]["name"].tolist()
    assert not injected(page)


def test_labels_and_legend_hold_escaped_text(hostile_map_layers: dict[str, gpd.GeoDataFrame]) -> None:
    note = hostile("生效方案", 0)
    m = workspace_map(hostile_map_layers, label=hostile("数据", 1), grids_note=note)
    text = _decoded(m)
    for i, name in enumerate(hostile_map_layers["communities"]["name"]):  # community name labels
        assert f'<div class="wg-community-name">{html.escape(name)}</div>' in text, i
    category = hostile_map_layers["service_points"]["category"].iloc[0]
    assert category.startswith("类别0<img")
    assert f"{html.escape(category)}</div>" in text  # legend entry of the hostile category
    assert html.escape(note) in text and html.escape(hostile("数据", 1)) in text
    assert not injected(m.get_root().render())  # embedded data stay inside JS strings


def test_active_plan_grids_are_a_layer_with_code_name_households(
        hostile_map_layers: dict[str, gpd.GeoDataFrame]) -> None:
    m = workspace_map(hostile_map_layers, grids_note="生效方案：#1 测试方案（4 个网格）")
    grids = _geojson_layers(m)["网格（生效方案）"]
    props = [f["properties"] for f in grids.data["features"]]
    assert [p["code"] for p in props] == ["320508001001001", "320508001001002", "G2", "320508001002001"]
    assert [p["name"] for p in props] == hostile_map_layers["grids"]["name"].tolist()
    assert [p["hh"] for p in props] == ["312", "405", "498", "350"]
    assert _tooltips(grids)[0].aliases == ["网格编码", "网格名称", "户数"]
    assert "window.wanggeLayers" in (page := _decoded(m)) and '"grids":' in page
    assert "生效方案：#1 测试方案（4 个网格）" in page and GRID_COLOR in page


def test_no_active_plan_is_said_in_the_legend() -> None:
    note = "尚无已发布的网格方案"
    page = _decoded(workspace_map(make_layers(20), grids_note=note))
    assert note in page and "网格（生效方案）" not in page


def test_legend_and_layer_list_fold_on_phones(hostile_map_layers: dict[str, gpd.GeoDataFrame]) -> None:
    page = _decoded(workspace_map(hostile_map_layers))
    assert '<details open><summary class="wg-legend-title">图例</summary>' in page
    assert page.count(f"window.matchMedia({PHONE_MEDIA!r}".replace("'", '"')) == 2  # legend, layer list
    assert ".collapse();" in page


def _access_layers() -> dict[str, gpd.GeoDataFrame]:
    zones = gpd.GeoDataFrame({"name": [hostile("网格", 0), hostile("网格", 1)], "share": [0.5, None],
                              "households": [300, 0]},
                             geometry=[box(120.0, 31.0, 120.01, 31.01), box(120.01, 31.0, 120.02, 31.01)], crs=4326)
    isochrones = gpd.GeoDataFrame({"name": [hostile("服务点", 0)], "level_m": [300.0], "reached_m": [280.0]},
                                  geometry=[Point(120.005, 31.005).buffer(0.002)], crs=4326)
    buildings = gpd.GeoDataFrame({"building_id": [hostile("楼", 4)], "dist_m": [120.0], "covered": [True]},
                                 geometry=[box(120.004, 31.004, 120.0045, 31.0045)], crs=4326)
    services = gpd.GeoDataFrame({"name": [hostile("服务点", 0)]}, geometry=[Point(120.005, 31.005)], crs=4326)
    return {"zones": zones, "isochrones": isochrones, "buildings": buildings, "services": services}


def test_access_map_escapes_layer_names_legend_and_tooltips() -> None:
    category = hostile("类别", 0)
    zone_label = hostile("区域", 1)
    m = access_map(_access_layers(), title=f"{category} · 15分钟生活圈（1000 米）", zone_label=zone_label)
    layers = _geojson_layers(m)
    # Leaflet's layer control shows names as HTML: they are escaped.
    assert f"服务点：{html.escape(category)}" in layers
    assert f"覆盖率（按{html.escape(zone_label)}）" in layers
    for name, layer in layers.items():
        assert all(isinstance(t, TextTooltip) for t in _tooltips(layer)), name
    assert f'<summary class="wg-legend-title">{html.escape(category)} · 15分钟生活圈' in _decoded(m)
    assert not injected(m.get_root().render())


def test_plan_map_label_is_escaped() -> None:
    m = plan_map(basemap="none", label=PAYLOADS[0])
    assert html.escape(PAYLOADS[0]) in _decoded(m) and not injected(m.get_root().render())


#: Jinja syntax in names: branca renders macro output a second time as a template, so these
#: ran on the server (the first printed "wg-49") or failed the page (TemplateSyntaxError).
TEMPLATE_PROBES = ('{{ "%s-%s"|format("wg", 7*7) }}', "{{ oops", "{% if %}", "{# x", "{{7*7}}")


@pytest.mark.parametrize("probe", TEMPLATE_PROBES)
def test_names_are_never_evaluated_as_templates(probe: str) -> None:
    layers = make_layers(12)
    for kind in ("communities", "compounds", "streets", "buildings", "service_points"):
        layers[kind]["name"] = f"名{probe}"
    layers["service_points"]["category"] = f"类{probe}"
    layers["grids"] = _grids(layers).assign(name=f"网格{probe}")
    maps = [workspace_map(layers, label=f"标{probe}", grids_note=f"注{probe}"),
            access_map(_access_layers() | {"services": layers["service_points"][["name", "geometry"]]},
                       title=f"类{probe} · 生活圈", zone_label=f"区{probe}", label=f"标{probe}"),
            plan_map(basemap="none", label=f"标{probe}")]
    for m in maps:
        page = m.get_root().render()  # raised TemplateSyntaxError for the broken probes
        assert "wg-49" not in page and not re.search(r"\{[{%#]", page)
        text = _decoded(m)
        assert f"标{html.escape(probe)}" in text or f"标{probe}" in text
    assert f'"name": "名{probe}"' in _decoded(maps[0]).replace('\\"', '"')
