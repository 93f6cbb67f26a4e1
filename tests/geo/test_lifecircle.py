"""Life-circle checklist: defaults, overrides from CSV/JSON, POI category mapping."""

from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import pytest

from geo.errors import LayerError
from geo.lifecircle import (
    DEFAULT_CHECKLIST,
    Checklist,
    ChecklistItem,
    categorise_points,
    level_distances,
    load_checklist,
)


def test_default_checklist_levels_and_labels() -> None:
    five = {c for c, lv in DEFAULT_CHECKLIST.required_for(1).items() if lv == 1}
    assert {"kindergarten", "public_toilet", "bus_stop", "convenience_store"} <= five
    assert DEFAULT_CHECKLIST.required_for(2)["primary_school"] == 2
    fifteen = DEFAULT_CHECKLIST.required_for(3)
    assert fifteen["middle_school"] == 3 and fifteen["kindergarten"] == 1  # non-inclusive
    assert DEFAULT_CHECKLIST.label("police_station") == "派出所"
    assert all(i.source for i in DEFAULT_CHECKLIST.items)


def test_checklist_loads_from_csv_and_json(tmp_path) -> None:
    rows = [{"category": "kindergarten", "label_zh": "幼儿园", "level": 1},
            {"category": "clinic", "label_zh": "诊所", "level": 2}]
    csv = tmp_path / "c.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    js = tmp_path / "c.json"
    js.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    for path in (csv, js):
        c = load_checklist(path)
        assert c.categories == ("kindergarten", "clinic")
        assert c.required_for(1) == {"kindergarten": 1}


def test_bad_checklists_raise(tmp_path) -> None:
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"category": ["a"], "level": [1]}).to_csv(bad, index=False)
    with pytest.raises(LayerError, match="lacks column.*label_zh"):
        load_checklist(bad)
    with pytest.raises(LayerError, match="'a' listed twice"):
        Checklist((ChecklistItem("a", "甲", 1), ChecklistItem("a", "甲", 2)))
    with pytest.raises(LayerError, match="uses level 3 but only 2 walk levels"):
        level_distances((300, 500), checklist=DEFAULT_CHECKLIST)


def test_osm_tags_and_chinese_types_map_to_categories() -> None:
    pts = pd.DataFrame({
        "amenity": ["kindergarten", "school", None, "clinic", None, None, "police"],
        "shop": [None, None, "convenience", None, None, None, None],
        "highway": [None, None, None, None, "bus_stop", None, None],
        "type": [None, None, None, None, None, "生活服务;公共厕所", None],
        "name": ["", "崂山小学", "", "", "建国中学", "", ""],
    })
    assert categorise_points(pts).tolist() == [
        "kindergarten", "primary_school", "convenience_store", "health_station",
        "bus_stop", "public_toilet", "police_station"]
    names = pd.DataFrame({"name": ["梅园社区卫生服务中心", "东方菜市场", "乳山日间照料中心",
                                   "浦东派出所", "某某咖啡"]})
    assert categorise_points(names).tolist() == [
        "community_health_centre", "food_market", "elderly_daycare", "police_station", None]


def test_shanghai_bund_pois_map(shared_datasets) -> None:
    pois = gpd.read_file(shared_datasets / "shanghai_bund_osm.gpkg", layer="pois")
    cat = categorise_points(pois)
    for kind, expected in [("bus_stop", "bus_stop"), ("toilets", "public_toilet"),
                           ("convenience", "convenience_store"), ("police", "police_station"),
                           ("kindergarten", "kindergarten"), ("supermarket", "food_market")]:
        assert set(cat[pois["kind"] == kind]) == {expected}
    assert set(cat[pois["kind"] == "school"]) <= {"primary_school", "middle_school", "kindergarten"}
    assert cat[pois["kind"].isin(["restaurant", "cafe", "hotel"])].isna().all()
