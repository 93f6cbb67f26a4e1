"""The planner map frame (webmap.planner): offline, legend with bounds, config, context layers."""

from __future__ import annotations

import json
import re

import geopandas as gpd
import pandas as pd
import pytest

from webmap.basemaps import BasemapError
from webmap.offline import assert_offline
from webmap.planner import (
    GRID_STATUS,
    context_features,
    context_features_json,
    grid_status,
    plan_map,
    planner_legend_html,
)


def _config(html: str) -> dict:
    match = re.search(r"window\.wanggePlannerConfig = (\{.*?\});\n", html)
    assert match, "planner config not in the page"
    return json.loads(match.group(1))


def test_grid_status_bounds_are_inclusive_and_exclusive_wins() -> None:
    hh = pd.Series([0, 299, 300, 500, 501, 900])
    excl = pd.Series([False, False, False, False, False, True])
    assert grid_status(hh, lo=300, hi=500, exclusive=excl).tolist() == [
        "under", "under", "in", "in", "over", "exclusive"]


def test_plan_map_is_offline_with_config_and_no_embedded_data() -> None:
    html = plan_map(basemap="none", min_households=50, max_households=80).get_root().render()
    assert_offline(html)
    config = _config(html)
    assert config["bounds"] == [50, 80] and config["gcj02"] is False
    assert set(config["status"]) == set(GRID_STATUS)
    assert config["buildingsMinZoom"] >= config["labelsMinZoom"]
    assert "window.wanggeLayerControl" in html and "preferCanvas" in html
    assert "FeatureCollection" not in html  # data comes from the API, never embedded


def test_geoman_only_for_editors() -> None:
    editor = plan_map(basemap="none", editable=True).get_root().render()
    viewer = plan_map(basemap="none", editable=False).get_root().render()
    assert "/static/vendor/leaflet-geoman-free/leaflet-geoman.js" in editor
    assert "leaflet-geoman" not in viewer


def test_gaode_shifts_in_the_browser() -> None:
    html = plan_map(basemap="gaode").get_root().render()
    assert _config(html)["gcj02"] is True
    assert "autonavi.com" in html


def test_tianditu_without_key_is_refused() -> None:
    with pytest.raises(BasemapError, match="tianditu_tk"):
        plan_map(basemap="tianditu", tianditu_tk="")


def test_legend_names_the_bounds() -> None:
    legend = planner_legend_html(min_households=300, max_households=500)
    for text in ("户数不足", "&lt; 300 户", "300–500 户", "&gt; 500 户", "专属网格", "社区边界"):
        assert text in legend


def test_context_features_keep_display_columns_and_filter_classes(small_layers) -> None:
    streets: gpd.GeoDataFrame = small_layers["streets"]
    all_fc = context_features(streets, "streets", simplify_m=0.5)
    assert len(all_fc["features"]) == len(streets)
    assert set(all_fc["features"][0]["properties"]) == {"name", "road_class"}
    major = context_features(streets, "streets", simplify_m=0.5, road_classes=("major",))
    expected = int((streets["road_class"] == "major").sum()) if "road_class" in streets else 0
    assert len(major["features"]) == expected
    assert all(f["properties"]["road_class"] == "major" for f in major["features"])


@pytest.mark.parametrize(("kind", "classes"), [("streets", None), ("streets", ("major",)), ("compounds", None)])
def test_context_features_json_is_the_same_collection(small_layers, kind, classes) -> None:
    import json

    layer = small_layers[kind].copy()
    layer.loc[layer.index[0], "name"] = None  # a missing value is "" in both
    text = context_features_json(layer, kind, simplify_m=0.5, road_classes=classes)
    expected = context_features(layer, kind, simplify_m=0.5, road_classes=classes)
    assert json.loads(text) == json.loads(json.dumps(expected))
    assert len(expected["features"]) > 0 or classes is not None


def test_context_features_refuse_other_layers(small_layers) -> None:
    with pytest.raises(ValueError, match="not a context layer"):
        context_features(small_layers["buildings"], "buildings", simplify_m=0.5)


def test_display_grids_json_simplifies_rounds_and_keeps_only_page_properties() -> None:
    import shapely

    from webmap.planner import DISPLAY_PROPERTIES, display_grids_json

    # 200 collinear points along the bottom edge, coordinates with 10 decimals
    bottom = [(120.0 + i * 1e-5 + 1.23e-9, 31.0) for i in range(200)]
    wiggly = shapely.Polygon([*bottom, (120.002, 31.001), (120.0, 31.001)])
    feats = [{"id": g, "properties": {"grid_id": g, "code": f"C{g}", "households": 7, "street_share": 0.3},
              "geometry": {"ignored": True}} for g in ("a", "b")]
    fc = json.loads(display_grids_json(feats, [wiggly, None], simplify_m=0.5, version=9))
    assert fc["version"] == 9 and [f["id"] for f in fc["features"]] == ["a", "b"]
    first = fc["features"][0]
    assert set(first["properties"]) <= set(DISPLAY_PROPERTIES) and "street_share" not in first["properties"]
    ring = first["geometry"]["coordinates"][0]
    assert len(ring) < len(wiggly.exterior.coords) / 10
    assert all(round(v, 6) == v for xy in ring for v in xy)
    assert shapely.geometry.shape(first["geometry"]).symmetric_difference(wiggly).area < 1e-9
    assert fc["features"][1]["geometry"] is None
    with pytest.raises(ValueError, match="2 features but 1 geometries"):
        display_grids_json(feats, [wiggly], simplify_m=0.5)


def test_plan_map_scale_is_metric_only_and_the_legend_folds() -> None:
    html = plan_map(basemap="none", min_households=300, max_households=500).get_root().render()
    assert "L.control.scale({imperial: false" in html
    assert "L.control.scale()" not in html  # Leaflet's default shows feet and miles
    legend = planner_legend_html(min_households=300, max_households=500)
    assert legend.startswith("<details open><summary") and legend.endswith("</details>")
    assert all(f'data-status="{key}"' in legend for key in GRID_STATUS)  # rows planner.js makes clickable
