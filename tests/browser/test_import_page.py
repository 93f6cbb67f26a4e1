"""A planner imports files in the browser: upload, pick a layer, map columns, watch the job, read the report.

The import replaces the workspace, so this module runs its own app (empty workspace) on
its own port instead of the shared ``live_server``.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.browser.conftest import PASSWORD, SCREENSHOTS, Traffic, serving
from tests.databases import database_url_for

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
#: Upload limit of this module's app: the test files are far smaller.
MAX_MB = 2


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object]]:
    from api import create_app, db
    from api.db import session_scope
    from api.users import create_user

    tmp = tmp_path_factory.mktemp("import-browser")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANGGE_SECRET_KEY", "browser-test-secret")
        app = create_app({"INSTANCE_PATH": str(tmp / "instance"), "DATABASE_URL": database_url_for(tmp, "w.db"),
                          "WANGGE": {"max_upload_mb": MAX_MB}})
    with app.app_context(), session_scope() as s:
        create_user(s, "i_planner", PASSWORD, role="planner")
    try:
        with serving(app) as url:
            yield url, app
    finally:
        db.dispose(app)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from geo.synthetic import synthetic_district

    d = synthetic_district(300, seed=5)
    tmp = tmp_path_factory.mktemp("import-files")
    shp = tmp / "shp"
    shp.mkdir()
    b = d.buildings[["building_id", "name", "use", "floors", "households", "geometry"]]
    b.rename(columns={"building_id": "楼号", "households": "户数"}).to_file(shp / "楼栋.shp", encoding="UTF-8")
    with zipfile.ZipFile(tmp / "楼栋.zip", "w") as zf:
        for part in shp.iterdir():
            zf.write(part, part.name)
    d.compounds.to_file(tmp / "社区.gpkg", layer="小区", driver="GPKG")
    d.communities.to_file(tmp / "社区.gpkg", layer="社区边界", driver="GPKG")
    d.streets.to_file(tmp / "道路.geojson", driver="GeoJSON")
    bad = d.buildings.copy()
    bad.loc[bad.index[:2], "building_id"] = "X1"
    bad.to_file(tmp / "坏数据.geojson", driver="GeoJSON")
    (tmp / "big.geojson").write_bytes(b" " * (MAX_MB * 1024 * 1024 + 1))
    return {"big": tmp / "big.geojson", "buildings": tmp / "楼栋.zip", "communities": tmp / "社区.gpkg", "streets": tmp / "道路.geojson",
            "bad": tmp / "坏数据.geojson", "n_buildings": len(b), "households": int(b["households"].sum()),
            "n_communities": len(d.communities)}


@pytest.fixture
def open_page(browser, server, request: pytest.FixtureRequest):
    url, _ = server
    opened = []

    def _open(viewport: dict[str, int], traffic: Traffic | None = None):
        traffic = traffic or Traffic()
        context = browser.new_context(base_url=url, viewport=viewport, locale="zh-CN")
        page = context.new_page()
        page.on("request", lambda r: traffic.requests.append(r.url))
        page.on("pageerror", lambda e: traffic.page_errors.append(str(e)))
        opened.append((context, page, traffic))
        page.goto("/login")
        page.get_by_label("用户名").fill("i_planner")
        page.get_by_label("密码").fill(PASSWORD)
        with page.expect_navigation():
            page.get_by_role("button", name="登录").click()
        return page

    yield _open
    for context, page, traffic in opened:
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            SCREENSHOTS.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"), full_page=True)
        context.close()
        assert not traffic.foreign(), traffic.foreign()
        assert not traffic.page_errors, traffic.page_errors


def _buildings(app) -> int:
    from api.db import session_scope
    from api.models import Building

    with app.app_context(), session_scope() as s:
        return s.scalar(select(func.count()).select_from(Building))


def _upload(page, paths: dict[str, Path]) -> None:
    for kind, path in paths.items():
        page.locator(f'#wg-upload-form input[name="{kind}"]').set_input_files(str(path))
    page.get_by_role("button", name="上传并读取列").click()
    page.wait_for_selector("#wg-mapping:not([hidden])")


def _run(page) -> str:
    page.get_by_role("button", name="开始导入").click()
    page.wait_for_function("() => /导入完成|导入未完成/.test(document.getElementById('wg-job-message').textContent)",
                           timeout=120_000)
    return page.locator("#wg-job-message").inner_text()


def test_planner_imports_a_zipped_shapefile_with_column_mapping(open_page, server, files) -> None:
    _, app = server
    page = open_page({"width": 1400, "height": 900})
    page.locator(".wg-nav a", has_text="导入数据").click()
    page.wait_for_url("**/import")
    _upload(page, {k: files[k] for k in ("buildings", "communities", "streets")})
    card = page.locator('.wg-import-layer[data-kind="communities"]')
    assert card.locator('select[name="layer"]').input_value() == "小区"  # first layer of the file
    card.locator('select[name="layer"]').select_option("社区边界")
    page.wait_for_function("""() => !!document.querySelector('.wg-import-layer[data-kind="communities"] '
                           + 'select[data-source="community_id"]')""")
    page.get_by_label("楼栋 列 楼号 映射为").select_option("building_id")
    page.get_by_label("楼栋 列 户数 映射为").select_option("households")
    message = _run(page)
    assert message.startswith("导入完成"), message
    summary = page.locator("#wg-summary").inner_text()
    assert f"楼栋：{files['n_buildings']:,}" in summary and f"户数：{files['households']:,}" in summary
    assert f"社区：{files['n_communities']}" in summary
    assert page.locator("#wg-progress").get_attribute("aria-valuenow") == "100"
    assert _buildings(app) == files["n_buildings"]
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "import_done.png"), full_page=True)


def test_a_refused_import_shows_each_problem_and_writes_nothing(open_page, server, files) -> None:
    _, app = server
    before = _buildings(app)
    page = open_page({"width": 1400, "height": 900})
    page.goto("/import")
    _upload(page, {"buildings": files["bad"]})
    message = _run(page)
    assert "未写入任何数据" in message
    row = page.locator('#wg-issues tr[data-code="duplicate_id"]')
    cells = row.locator("td").all_inner_texts()
    assert cells[:4] == ["错误（阻止导入）", "楼栋（buildings）", "X1", "编号重复"]
    assert "列映射" in cells[4]
    assert _buildings(app) == before


def test_import_page_works_on_a_phone(open_page) -> None:
    page = open_page(PHONE)
    page.goto("/import")
    for locator in (page.locator('#wg-upload-form input[name="buildings"]'),
                    page.get_by_role("button", name="上传并读取列")):
        locator.scroll_into_view_if_needed()
        assert locator.is_visible()
        box = locator.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 1
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"] + 1
    page.screenshot(path=str(SCREENSHOTS / "import_phone.png"), full_page=True)


def test_a_file_over_max_upload_mb_is_refused_before_uploading(open_page, files) -> None:
    traffic = Traffic()
    page = open_page({"width": 1400, "height": 900}, traffic)
    page.goto("/import")
    page.locator('#wg-upload-form input[name="buildings"]').set_input_files(str(files["big"]))
    page.get_by_role("button", name="上传并读取列").click()
    message = page.locator("#wg-upload-messages .wg-msg-error")
    message.wait_for()
    assert f"超过 {MAX_MB} MB 的上限（设置 max_upload_mb）" in message.inner_text()
    assert not [u for u in traffic.requests if "/api/imports/uploads" in u]


def test_a_queued_import_is_cancelled_from_the_page_and_writes_nothing(open_page, server, files) -> None:
    from api.jobs import stop_consumer

    _, app = server
    before = _buildings(app)
    stop_consumer(app)  # no worker: the import stays queued until the planner cancels it
    app.config["WANGGE"]["jobs_in_process"] = False
    try:
        page = open_page({"width": 1400, "height": 900})
        page.goto("/import")
        _upload(page, {"buildings": files["bad"]})
        page.get_by_role("button", name="开始导入").click()
        page.get_by_role("button", name="取消导入").click()
        page.wait_for_function("() => /已取消/.test(document.getElementById('wg-job-message').textContent)")
        assert page.locator("#wg-cancel").is_hidden() and page.get_by_role("button", name="开始导入").is_enabled()
        assert _buildings(app) == before
    finally:
        app.config["WANGGE"]["jobs_in_process"] = True
