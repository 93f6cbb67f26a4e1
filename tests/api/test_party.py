"""``wangge party link`` and ``wangge party check`` on a published district with register households."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from flask import Flask
from sqlalchemy import select, update

from api.cli import main
from api.db import session_scope
from api.party.models import PartyLink
from api.register.crypto import cipher_for
from api.register.importer import import_sheet
from api.register.models import Household
from geo.register.idnumber import id_check_char
from tests.api.register_helpers import published_app


def _ids(n: int, start: int) -> list[str]:
    bodies = [f"11010519900101{start + i:03d}" for i in range(n)]
    return [b + id_check_char(b) for b in bodies]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from api.grids.service import active_grids, buildings_of_grid

    with published_app(tmp_path_factory.mktemp("party"), 600) as app:
        with app.app_context(), session_scope() as s:
            grids = active_grids(s)
            keys = grids.loc[grids["households"] > 0, "key"].tolist()
            a, b = keys[0], keys[1]
            other = grids.loc[grids["community_id"] != grids.loc[grids["key"] == a, "community_id"].iloc[0], "key"]
            c_key = str(other.iloc[0])
            ba, bb = buildings_of_grid(s, a), buildings_of_grid(s, b)
            n_a, n_b = 28, 17
            sheet = pd.DataFrame({
                "姓名": [f"居民{i}" for i in range(n_a + n_b)], "身份证号": _ids(n_a + n_b, 0),
                "楼栋编号": [ba[i % len(ba)] for i in range(n_a)] + [bb[i % len(bb)] for i in range(n_b)],
                "门牌": [f"{100 + i}" for i in range(n_a + n_b)],
                "党员中心户": ["是" if i in (0, 1) else "否" for i in range(n_a + n_b)]})
            c, settings = cipher_for(app.instance_path, app.config["WANGGE"]), app.config["WANGGE"]
            import_sheet(s, "residents", sheet, cipher=c, settings=settings, user="test")
            import_sheet(s, "party", pd.DataFrame({"组织类型": ["社区党委", "网格党支部", "党小组", "党小组"],
                                                   "组织名称": ["甲社区党委", "一支部", "无书记小组", "<b>邻社区</b>小组"],
                                                   "上级组织": ["", "甲社区党委", "一支部", "一支部"],
                                                   "网格编码": ["", a, a, c_key], "书记": ["", "陈书记", "", "吴组长"]}),
                         cipher=c, settings=settings, user="test")
        yield {"app": app, "A": a, "B": b, "C": c_key, "n_a": n_a, "n_b": n_b, "grids": keys}


def _links(app: Flask) -> pd.DataFrame:
    from api.grids.service import grids_of_buildings

    with app.app_context(), session_scope() as s:
        rows = s.execute(select(PartyLink.household_id, PartyLink.centre_id, PartyLink.method, PartyLink.fixed)).all()
        building = dict(s.execute(select(Household.id, Household.building_id)).all())
        grid = grids_of_buildings(s)
    frame = pd.DataFrame(rows, columns=["household", "centre", "method", "fixed"])
    return frame.assign(hgrid=frame["household"].map(building).map(grid),
                        cgrid=frame["centre"].map(building).map(grid))


def test_link_assigns_every_household_within_bounds_and_reports_grids_needing_centres(world: dict[str, Any]) -> None:
    app = world["app"]
    r = app.test_cli_runner().invoke(main, ["party", "link", "--min", "5", "--max", "15"])
    assert r.exit_code == 0, r.output
    links = _links(app)
    assert len(links) == world["n_a"] - 2  # every household of grid A but the two centres
    assert (links["hgrid"] == links["cgrid"]).all() and (links["hgrid"] == world["A"]).all()
    per_centre = links.groupby("centre").size()
    assert len(per_centre) == 2 and per_centre.between(5, 15).all()
    assert set(links["method"]) <= {"walk", "straight"} and (links["method"] == "walk").any()
    # Grid B has 17 households and no centre: 2 centres needed at 15 each.
    assert f"网格 {world['B']}: {world['n_b']} 户未结对，还需 2 个党员中心户" in r.output


def test_hand_fixed_links_survive_a_relink(world: dict[str, Any]) -> None:
    app = world["app"]
    links = _links(app)
    pinned = links.iloc[0]
    other = int(links.loc[links["centre"] != pinned["centre"], "centre"].iloc[0])
    with app.app_context(), session_scope() as s:
        s.execute(update(PartyLink).where(PartyLink.household_id == int(pinned["household"]))
                  .values(centre_id=other, fixed=True, method="fixed"))
    r = app.test_cli_runner().invoke(main, ["party", "link"])
    assert r.exit_code == 0, r.output
    after = _links(app).set_index("household")
    assert after.loc[int(pinned["household"]), "centre"] == other and after.loc[int(pinned["household"]), "fixed"]
    assert len(after) == world["n_a"] - 2 and "固定 fixed 1" in r.output


def test_bad_bounds_exit_2_with_the_rule(world: dict[str, Any]) -> None:
    r = world["app"].test_cli_runner().invoke(main, ["party", "link", "--min", "9", "--max", "5"])
    assert r.exit_code == 2 and "need 0 <= min_links <= max_links" in r.output


def test_check_lists_grids_without_a_cell_and_cells_without_secretary(world: dict[str, Any]) -> None:
    r = world["app"].test_cli_runner().invoke(main, ["party", "check"])
    assert r.exit_code == 2
    assert f"2 / {len(_all_grids(world))} 个网格有党支部或党小组" in r.output
    assert "跨社区党支部 branch across communities: 一支部" in r.output
    assert f"无党组织 no party cell: {world['B']}" in r.output and f"no party cell: {world['A']}" not in r.output
    assert "缺书记 no secretary: 无书记小组" in r.output and "一支部" not in r.output.split("缺书记")[1]


def _all_grids(world: dict[str, Any]) -> list[str]:
    from api.grids.service import active_grids

    with world["app"].app_context(), session_scope() as s:
        return active_grids(s)["key"].tolist()


def test_party_map_shows_links_to_staff_and_no_households_in_public(world: dict[str, Any]) -> None:
    from tests.api.plans_helpers import login
    from webmap.offline import assert_offline

    app = world["app"]
    app.test_cli_runner().invoke(main, ["party", "link"])
    page = login(app, "admin").get("/party")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert_offline(html)
    for expected in ("党员中心户：楼栋", "结对连线", "陈书记"):
        assert expected in html or _js(expected) in html, expected
    # A name with markup is data shown as text by the tooltip (textContent): in the page only as
    # HTML-safe JSON, never as markup.
    assert _safe_js("<b>邻社区</b>小组") in html
    assert "<b>邻社区</b>" not in html and _js("<b>邻社区</b>") not in html
    for client, url in ((app.test_client(), "/party/public"), (login(app, "viewer"), "/party")):
        public = client.get(url)
        assert public.status_code == 200
        text = public.get_data(as_text=True)
        assert "一支部" in text and _js("党员中心户：") not in text and _js("结对连线") not in text
        assert "公开地图不显示住户信息" in text


def _js(text: str) -> str:
    """*text* as folium writes it into the page's JavaScript (JSON, ASCII escapes)."""
    return json.dumps(text)[1:-1]


def _safe_js(text: str) -> str:
    """*text* as Jinja's ``tojson`` writes map data into the page (JSON with <, >, &, ' escaped)."""
    return _js(text).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").replace("'", "\\u0027")


def test_public_map_is_built_once_until_the_party_organisation_changes(world: dict[str, Any],
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The public map (0.6 s to build on the demo) is kept while nothing it draws changes."""
    from api.pagecache import page_cache_clear
    from api.party import pages
    from api.register.models import PartyOrg

    app, client = world["app"], world["app"].test_client()
    built: list[int] = []
    real = pages.party_map
    monkeypatch.setattr(pages, "party_map", lambda *a, **k: (built.append(1), real(*a, **k))[1])
    with app.app_context():
        page_cache_clear("party")
    first = client.get("/party/public").get_data(as_text=True)
    again = client.get("/party/public").get_data(as_text=True)
    assert len(built) == 1 and "陈书记" in _decoded(first) and _decoded(again) == _decoded(first)
    with app.app_context(), session_scope() as s:
        s.execute(update(PartyOrg).where(PartyOrg.name == "一支部").values(secretary="林书记"))
    changed = _decoded(client.get("/party/public").get_data(as_text=True))
    assert len(built) == 2 and "林书记" in changed and "陈书记" not in changed
    with app.app_context(), session_scope() as s:
        s.execute(update(PartyOrg).where(PartyOrg.name == "一支部").values(secretary="陈书记"))


def _decoded(page: str) -> str:
    """*page* with JSON \\uXXXX escapes decoded and the per-request nonce and CSRF token taken out."""
    text = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), page)
    return re.sub(r'(nonce|content|value)="[^"]*"', "", text)


def test_the_map_says_what_its_dots_are_and_when_nothing_is_linked(world: dict[str, Any]) -> None:
    from sqlalchemy import delete

    from tests.api.plans_helpers import login

    app = world["app"]
    app.test_cli_runner().invoke(main, ["party", "link"])
    staff = login(app, "admin")
    page = staff.get("/party").get_data(as_text=True)
    assert "深红圆点为网格党支部/党小组" in page and "图层中打开" in page and "还没有党员中心户结对" not in page
    with app.app_context(), session_scope() as s:
        s.execute(delete(PartyLink))
    try:
        empty = staff.get("/party").get_data(as_text=True)
        assert "还没有党员中心户结对" in empty and "wangge party link" in empty
        public = app.test_client().get("/party/public").get_data(as_text=True)
        assert "还没有党员中心户结对" in public and "wangge party link" not in public
    finally:
        app.test_cli_runner().invoke(main, ["party", "link"])
