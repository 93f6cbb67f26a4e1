"""Grid notice boards: PDF/PNG content checked with poppler and zbar, refusals, the public page.

Grid A has a full team (one name is hostile HTML), a party branch with secretary and a
resident; grid B has only a 网格员 and no party cell; grid C is complete. Boards are
checked from the outside: ``pdfinfo`` (page size), ``pdffonts`` (embedded CJK font),
``pdftotext`` (text), ``pdftoppm`` + ``zbarimg`` (QR code -> URL, then that URL answered).
"""

from __future__ import annotations

import html
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import pytest
from flask import Flask
from PIL import Image
from sqlalchemy import update

from api.cli import main
from api.db import session_scope
from api.grids.service import grid_meta
from api.register.crypto import cipher_for
from api.register.importer import import_sheet
from api.register.models import Staff
from tests.api.plans_helpers import login
from tests.api.register_helpers import published_app

HOSTILE = "<script>alert(1)</script>"
RESIDENT, RESIDENT_PHONE = "居民甲某", "13912345678"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with published_app(tmp_path_factory.mktemp("boards"), 600) as app:
        yield _seed(app)


def _team(code: str, tag: str) -> pd.DataFrame:
    return pd.DataFrame({"姓名": [f"{tag}网格长", f"{tag}网格员", f"{tag}指导员"],
                         "联系电话": ["13700000001", "13700000002", "13700000004"],
                         "角色": ["网格长", "网格员", "网格指导员"], "网格编码": code,
                         "职责": ["统筹网格内各项工作", "信息采集、日常巡查", "业务指导"]})


def _seed(app: Flask) -> dict[str, Any]:
    from api.grids.service import active_grids, buildings_of_grid
    from geo.register.idnumber import id_check_char

    with app.app_context(), session_scope() as s:
        grids = active_grids(s)
        keys = grids.loc[grids["households"] > 0, "key"].tolist()
        a, b, c = keys[0], keys[1], keys[2]
        ciph, settings = cipher_for(app.instance_path, app.config["WANGGE"]), app.config["WANGGE"]
        staff = pd.concat([_team(a, "李"), _team(c, "周"),
                           pd.DataFrame({"姓名": [HOSTILE, "孙网格员"], "联系电话": ["13700000003", "13700000005"],
                                         "角色": "网格员", "网格编码": [a, b]})], ignore_index=True)
        import_sheet(s, "staff", staff.fillna(""), cipher=ciph, settings=settings, user="test")
        import_sheet(s, "party", pd.DataFrame({"组织类型": ["社区党委", "网格党支部", "党小组"],
                                               "组织名称": ["甲社区党委", "第一网格党支部", "第三网格党小组"],
                                               "上级组织": ["", "甲社区党委", "甲社区党委"], "网格编码": ["", a, c],
                                               "书记": ["", "陈书记", "吴组长"]}),
                     cipher=ciph, settings=settings, user="test")
        body = "11010519491231002"
        import_sheet(s, "residents", pd.DataFrame({"姓名": [RESIDENT], "身份证号": [body + id_check_char(body)],
                                                   "联系电话": [RESIDENT_PHONE], "楼栋编号": [buildings_of_grid(s, a)[0]],
                                                   "门牌": ["101"], "党员中心户": ["是"]}),
                     cipher=ciph, settings=settings, user="test")
        s.execute(update(Staff).where(Staff.name == "李网格长").values(photo="../li.png"))  # a path: name only
    photos = Path(app.instance_path) / "photos"
    photos.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (60, 80), "#446").save(photos / "li.png")
    return {"app": app, "A": a, "B": b, "C": c}


def _run(*args: str) -> str:
    return subprocess.run(list(args), check=True, capture_output=True, text=True, timeout=120).stdout


def _qr_url(png: Path) -> str:
    return _run("zbarimg", "-q", "--raw", str(png)).strip()


def _print(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(main, ["boards", "print", *args])


def test_a3_pdf_has_page_size_cjk_font_text_and_a_qr_code_to_the_public_page(world: dict[str, Any],
                                                                              tmp_path: Path) -> None:
    app, a = world["app"], world["A"]
    r = _print(app, "--grid", a, "--size", "A3", "-o", str(tmp_path))
    assert r.exit_code == 0, r.output
    pdf = tmp_path / f"{a}.pdf"
    info = _run("pdfinfo", str(pdf))
    assert "Pages:           1" in info and "841.89 x 1190.55 pts (A3)" in info
    fonts = _run("pdffonts", str(pdf)).splitlines()[2:]
    assert any("CJK" in f and f.split()[-5] == "yes" for f in fonts), fonts  # emb column
    text = _run("pdftotext", "-layout", str(pdf), "-")
    with app.app_context(), session_scope() as s:
        meta = grid_meta(s, a)
    for expected in (a, f"户数：{meta['households']}", f"楼栋数：{meta['buildings']}", "李网格长", "李网格员", "李指导员",
                     "13700000001", "第一网格党支部", "陈书记", "12345", "120", "网格指导员"):
        assert expected in text, expected
    assert HOSTILE in re.sub(r"\s+", "", _run("pdftotext", str(pdf), "-"))  # printed as text (wrapped across lines), not markup
    assert RESIDENT not in text and RESIDENT_PHONE not in text
    images = [line for line in _run("pdfimages", "-list", str(pdf)).splitlines()[2:] if line.split()[2] == "image"]
    assert len(images) == 3  # map, QR code and the leader's photo (the others get the vector silhouette)
    _run("pdftoppm", "-png", "-r", "150", "-singlefile", str(pdf), str(tmp_path / "page"))
    url = _qr_url(tmp_path / "page.png")
    assert url == f"http://127.0.0.1:5000/g/{a}"
    page = app.test_client().get(urlsplit(url).path)  # anonymous: the QR target needs no login
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "李网格长" in html and "13700000001" in html and "陈书记" in html
    assert RESIDENT not in html and RESIDENT_PHONE not in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert app.test_client().get(f"/g/{a}/map.png").mimetype == "image/png"


def test_a4_landscape_png_is_a4_sized_and_its_qr_decodes(world: dict[str, Any], tmp_path: Path) -> None:
    app, a = world["app"], world["A"]
    r = _print(app, "--grid", a, "--size", "A4", "--orientation", "landscape", "--format", "png", "-o", str(tmp_path))
    assert r.exit_code == 0, r.output
    png = tmp_path / f"{a}.png"
    with Image.open(png) as im:
        size = im.size
    dpi = app.config["WANGGE"]["board_png_dpi"]
    assert abs(size[0] - 297 / 25.4 * dpi) <= 1 and abs(size[1] - 210 / 25.4 * dpi) <= 1, size  # A4 landscape
    assert _qr_url(png) == f"http://127.0.0.1:5000/g/{a}"


def test_missing_fields_are_reported_not_printed_unless_drafts(world: dict[str, Any], tmp_path: Path) -> None:
    app, b = world["app"], world["B"]
    r = _print(app, "--grid", b, "-o", str(tmp_path / "out"))
    assert r.exit_code == 2
    assert f"{b}: 缺少网格长" in r.output and "缺少网格党支部或党小组" in r.output
    assert not (tmp_path / "out" / f"{b}.pdf").exists()
    r = _print(app, "--grid", b, "--drafts", "-o", str(tmp_path / "drafts"))
    assert r.exit_code == 0, r.output
    text = _run("pdftotext", str(tmp_path / "drafts" / f"{b}.pdf"), "-")
    assert "待补充" in text and "孙网格员" in text and "网格长" in text


def test_batch_merges_printable_boards_and_lists_refused(world: dict[str, Any], tmp_path: Path) -> None:
    import zipfile

    from api.boards.service import print_batch
    from api.boards.sources import load_sources

    app, keys = world["app"], [world["A"], world["B"], world["C"]]
    done: list[int] = []
    with app.app_context(), session_scope() as s:
        src = load_sources(s, keys=keys)
    result = print_batch(src, keys, tmp_path, settings=app.config["WANGGE"], photo_dir=tmp_path, size="A4",
                         progress=lambda i, n: done.append(i))
    assert result.printed == [world["A"], world["C"]] and list(result.refused) == [world["B"]]
    assert done == [1, 2, 3]
    assert "Pages:           2" in _run("pdfinfo", str(tmp_path / "boards-all.pdf"))
    with zipfile.ZipFile(tmp_path / "boards.zip") as z:
        assert sorted(z.namelist()) == sorted([f"{world['A']}.pdf", f"{world['C']}.pdf"])
    assert "第三网格党小组" in _run("pdftotext", str(tmp_path / f"{world['C']}.pdf"), "-")


def test_board_routes_refuse_incomplete_boards_and_need_login(world: dict[str, Any]) -> None:
    app, a, b = world["app"], world["A"], world["B"]
    anonymous = app.test_client()
    assert anonymous.get(f"/boards/{a}.pdf").status_code in (302, 401)
    viewer, admin = login(app, "viewer"), login(app, "admin")
    r = viewer.get(f"/boards/{a}.pdf?size=A4")
    assert r.status_code == 200 and r.mimetype == "application/pdf" and r.data.startswith(b"%PDF")
    refused = viewer.get(f"/boards/{b}.pdf")
    assert refused.status_code == 409 and "缺少网格长" in refused.get_data(as_text=True)
    assert viewer.get(f"/boards/{b}.pdf?drafts=1").status_code == 403
    assert admin.get(f"/boards/{b}.png?drafts=1").mimetype == "image/png"
    assert viewer.get(f"/boards/{a}.pdf?size=B5").status_code == 400
    listing = viewer.get("/boards").get_data(as_text=True)
    assert f"/boards/{a}.pdf" in listing and "缺少网格长" in listing and f"/boards/{b}.pdf" not in listing
    assert anonymous.get("/g/999999999999999").status_code == 404


def test_check_lists_every_grid_missing_fields(world: dict[str, Any]) -> None:
    r = world["app"].test_cli_runner().invoke(main, ["boards", "check"])
    assert r.exit_code == 2
    lines = {line.split(":")[0]: line for line in r.output.splitlines() if ": " in line}
    assert world["B"] in lines and "缺少网格长" in lines[world["B"]]
    assert world["A"] not in lines and world["C"] not in lines
    assert "2 / " in r.output  # grids A and C are the printable ones


def test_board_cli_needs_exactly_one_selector(world: dict[str, Any], tmp_path: Path) -> None:
    r = _print(world["app"], "-o", str(tmp_path))
    assert r.exit_code == 2 and "choose exactly one of --grid CODE, --community ID or --all" in r.output
    r = _print(world["app"], "--grid", "nope", "-o", str(tmp_path))
    assert r.exit_code == 2 and "没有编码为 nope 的生效网格" in r.output


def test_printed_boards_are_listed_for_reprint_when_staff_change(world: dict[str, Any], tmp_path: Path) -> None:
    app, a, c = world["app"], world["A"], world["C"]
    assert _print(app, "--grid", c, "-o", str(tmp_path)).exit_code == 0
    runner = app.test_cli_runner()
    before = runner.invoke(main, ["boards", "stale"]).output
    assert f"reprint {c}" not in before and f"reprint {a}" not in before
    with app.app_context(), session_scope() as s:
        s.execute(update(Staff).where(Staff.name == "周网格长").values(phone="13799999999"))
    after = runner.invoke(main, ["boards", "stale"]).output
    assert f"需重印 reprint {c}: 工作人员、党组织或户数等内容已变更" in after and f"reprint {a}" not in after
    assert "从未打印 never printed" in after and world["B"] not in after.split("从未打印")[0]


def _red_pixels(png: bytes) -> int:
    import io

    import numpy as np

    with Image.open(io.BytesIO(png)) as im:
        rgb = np.asarray(im.convert("RGB"))
    return int((np.abs(rgb.astype(int) - (214, 39, 40)).sum(axis=2) < 10).sum())


def test_public_map_hides_party_member_households_the_board_map_shows(world: dict[str, Any], tmp_path: Path) -> None:
    import base64

    from api.boards.service import board_content
    from api.boards.sources import load_sources

    app, a = world["app"], world["A"]
    with app.app_context(), session_scope() as s:
        src = load_sources(s, keys=[a])
    board = board_content(src, a, settings=app.config["WANGGE"], photo_dir=tmp_path)
    assert _red_pixels(base64.b64decode(board.map_uri.split(",", 1)[1])) > 20  # the 党员中心户 star
    assert _red_pixels(app.test_client().get(f"/g/{a}/map.png").data) == 0


def test_the_admin_logo_setting_is_printed_in_the_header(world: dict[str, Any], tmp_path: Path) -> None:
    from api.boards.service import board_content, content_hash
    from api.boards.sources import load_sources
    from webmap.boards.render import board_html

    app, a = world["app"], world["A"]
    Image.new("RGB", (40, 40), "#b71c1c").save(tmp_path / "logo.png")
    with app.app_context(), session_scope() as s:
        src = load_sources(s, keys=[a])
    plain = board_content(src, a, settings=app.config["WANGGE"], photo_dir=tmp_path, pictures=False)
    settings = {**app.config["WANGGE"], "board_logo_file": str(tmp_path / "logo.png")}
    board = board_content(src, a, settings=settings, photo_dir=tmp_path)
    assert board.logo_uri.startswith("data:image/png;base64,")
    assert f'<img class="logo" src="{board.logo_uri}"' in board_html(board)
    assert content_hash(board) == content_hash(plain)  # pictures do not make a board out of date
    missing = board_content(src, a, settings={**settings, "board_logo_file": str(tmp_path / "nope.png")},
                            photo_dir=tmp_path)
    assert missing.logo_uri == "" and 'class="logo"' not in board_html(missing)


def _pages(pdf: Path) -> int:
    return int(re.search(r"Pages:\s+(\d+)", _run("pdfinfo", str(pdf))).group(1))


def test_batch_in_worker_processes_prints_what_one_process_prints(world: dict[str, Any], tmp_path: Path) -> None:
    import zipfile

    from api.boards.service import print_batch
    from api.boards.sources import load_sources

    app, keys = world["app"], [world["A"], world["B"], world["C"]]
    with app.app_context(), session_scope() as s:
        src = load_sources(s, keys=keys)
    runs = {}
    for name, workers in (("one", 1), ("pool", 2)):
        done: list[int] = []
        settings = {**app.config["WANGGE"], "board_workers": workers, "board_batch_chunk": 1}
        runs[name] = print_batch(src, keys, tmp_path / name, settings=settings, photo_dir=tmp_path, size="A4",
                                 fmt="both", progress=lambda i, n, done=done: done.append(i))
        assert sorted(done) == done and done[-1] == 3  # one step per chunk (of one grid) in the pool
    one, pool = runs["one"], runs["pool"]
    assert pool.printed == one.printed == [world["A"], world["C"]] and list(pool.refused) == [world["B"]]
    assert pool.versions == one.versions and pool.refused == one.refused
    merged = tmp_path / "pool" / "boards-all.pdf"
    assert _pages(merged) == 2 and not list((tmp_path / "pool").glob(".boards-part-*"))
    text = _run("pdftotext", str(merged), "-")
    assert text.index("李网格长") < text.index("周网格长")  # boards in the order asked for
    with zipfile.ZipFile(tmp_path / "pool" / "boards.zip") as z:
        assert sorted(z.namelist()) == sorted(f"{k}.{e}" for k in (world["A"], world["C"]) for e in ("pdf", "png"))
    assert _qr_url(tmp_path / "pool" / f"{world['C']}.png") == f"http://127.0.0.1:5000/g/{world['C']}"


def test_batch_job_role_checks_and_bad_requests(world: dict[str, Any]) -> None:
    app = world["app"]
    anonymous = app.test_client()
    assert anonymous.post("/api/boards/batch", json={"scope": "all"}).status_code == 401
    assert anonymous.get("/boards/batch").status_code in (302, 401)
    for role in ("viewer", "worker", "planner"):
        client = login(app, role)
        assert client.post("/api/boards/batch", json={"scope": "all"}).status_code == 403, role
        assert client.get("/boards/batch").status_code == 403, role
    admin = login(app, "admin")
    cases = [({"scope": "district"}, 400, "scope='district' 无效；可选：all、street、community"),
             ({"scope": "community"}, 400, "scope=community 需要 target：社区编号"),
             ({"scope": "all", "size": "A5"}, 400, "size='A5' 无效；可选：A3、A4"),
             ({"scope": "all", "format": "svg"}, 400, "format='svg' 无效"),
             ({"scope": "all", "drafts": "yes"}, 400, "drafts 须为 true 或 false"),
             ({"scope": "community", "target": "nope"}, 404, "社区 nope 没有生效的网格"),
             ({"scope": "street", "target": "nope"}, 404, "街道 nope 没有生效的网格")]
    for body, status, message in cases:
        r = admin.post("/api/boards/batch", json=body)
        assert r.status_code == status and message in r.get_json()["error"]["message"], (body, r.get_json())
    assert admin.post("/api/boards/batch", data="scope=all").status_code == 400
    assert admin.get("/api/boards/batch/nosuchjob").status_code == 404
    page = admin.get("/boards/batch").get_data(as_text=True)
    assert "批量打印公示牌" in page and 'name="community"' in page and "js/boards_batch.js" in page


def test_batch_job_prints_every_grid_and_serves_zip_and_merged_pdf(world: dict[str, Any], tmp_path: Path) -> None:
    import io
    import time
    import zipfile

    from sqlalchemy import func, select

    from api.boards.models import BoardPrint
    from api.models import AuditEntry

    app, a, b, c = world["app"], world["A"], world["B"], world["C"]
    admin = login(app, "admin")
    with app.app_context(), session_scope() as s:
        before = s.scalar(select(func.count()).select_from(BoardPrint))
    r = admin.post("/api/boards/batch", json={"scope": "all", "size": "A4", "format": "both"})
    assert r.status_code == 202, r.get_json()
    status_url = r.get_json()["status_url"]
    job_id = r.get_json()["job_id"]
    with admin.get(f"/boards/batch/{job_id}/boards.zip") as early:
        assert early.status_code in (409, 200)  # 409 until it is done
    deadline = time.monotonic() + 180
    while (job := admin.get(status_url).get_json())["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    assert job["state"] == "done", job
    assert job["result"]["printed"] == 2 and "缺少网格长" in "".join(job["result"]["refused"][b])
    assert a not in job["result"]["refused"] and set(job["downloads"]) == {"boards.zip", "boards-all.pdf"}
    with admin.get(job["downloads"]["boards.zip"]) as archive:  # a streamed file: close it
        assert archive.status_code == 200 and archive.mimetype == "application/zip"
        with zipfile.ZipFile(io.BytesIO(archive.data)) as z:
            assert sorted(z.namelist()) == sorted(f"{k}.{e}" for k in (a, c) for e in ("pdf", "png"))
    with admin.get(job["downloads"]["boards-all.pdf"]) as merged:
        assert merged.mimetype == "application/pdf"
        (tmp_path / "all.pdf").write_bytes(merged.data)
    assert _pages(tmp_path / "all.pdf") == 2 and "A4" in _run("pdfinfo", str(tmp_path / "all.pdf"))
    assert admin.get(f"/boards/batch/{job_id}/secrets.txt").status_code == 404
    assert login(app, "planner").get(job["downloads"]["boards.zip"]).status_code == 403
    with app.app_context(), session_scope() as s:
        assert s.scalar(select(func.count()).select_from(BoardPrint)) == before + 2
        assert s.scalar(select(func.count()).where(AuditEntry.action == "boards.batch",
                                                   AuditEntry.target == f"job:{job_id}")) == 1
    # A community with no complete grid: the job fails saying so, and leaves no files.
    with app.app_context(), session_scope() as s:
        community = grid_meta(s, b)["community_id"]
        others = grid_meta(s, a)["community_id"], grid_meta(s, c)["community_id"]
    if community not in others:
        r = admin.post("/api/boards/batch", json={"scope": "community", "target": community})
        while (job := admin.get(r.get_json()["status_url"]).get_json())["state"] in ("queued", "running"):
            time.sleep(0.2)
        assert job["state"] == "failed" and "没有可打印的公示牌" in job["message"], job
        assert not (Path(app.instance_path) / "boards" / job["job_id"]).exists()


def test_a_cancelled_batch_leaves_no_files_and_no_print_records(world: dict[str, Any]) -> None:
    import time

    from sqlalchemy import func, select

    from api.boards.models import BoardPrint

    app = world["app"]
    admin = login(app, "admin")
    with app.app_context(), session_scope() as s:
        before = s.scalar(select(func.count()).select_from(BoardPrint))
    r = admin.post("/api/boards/batch", json={"scope": "all", "format": "both"})
    status_url = r.get_json()["status_url"]
    cancel = admin.post(f"{status_url}/cancel")
    assert cancel.status_code == 200 and cancel.get_json()["job_id"] == r.get_json()["job_id"]
    while (job := admin.get(status_url).get_json())["state"] in ("queued", "running"):
        time.sleep(0.2)
    folder = Path(app.instance_path) / "boards" / job["job_id"]
    with app.app_context(), session_scope() as s:
        after = s.scalar(select(func.count()).select_from(BoardPrint))
    if job["state"] == "cancelled":  # the usual case: stopped before (or while) printing
        assert not folder.exists() and after == before and job["downloads"] == {}
    else:  # it finished before the cancel arrived: then it is complete
        assert job["state"] == "done" and (folder / "boards.zip").is_file() and after == before + 2
    assert admin.post("/api/boards/batch/nosuchjob/cancel").status_code == 404


def test_a_negative_worker_count_is_refused_naming_the_setting(world: dict[str, Any], tmp_path: Path) -> None:
    from api.boards.service import print_batch
    from api.boards.sources import load_sources

    app = world["app"]
    with app.app_context(), session_scope() as s:
        src = load_sources(s, keys=[world["A"]])
    with pytest.raises(ValueError, match=r"board_workers must be ≥ 0 \(0 = every core\); got -1"):
        print_batch(src, [world["A"]], tmp_path, settings={**app.config["WANGGE"], "board_workers": -1},
                    photo_dir=tmp_path)


def _keys_on(html: str) -> list[str]:
    return re.findall(r'class="form-check-input wg-board-pick" value="([^"]+)"', html)


def test_board_list_searches_filters_and_pages_on_the_server(world: dict[str, Any]) -> None:
    """368 grids once made a 35,000 px page: now search, community, status and pages of list_page_size."""
    app, a, b, c = world["app"], world["A"], world["B"], world["C"]
    admin = login(app, "admin")
    size = app.config["WANGGE"]["list_page_size"]
    app.config["WANGGE"]["list_page_size"] = 2
    try:
        first, second = admin.get("/boards").get_data(as_text=True), admin.get("/boards?page=2").get_data(as_text=True)
        assert len(_keys_on(first)) == 2 and len(_keys_on(second)) == 2 and not set(_keys_on(first)) & set(_keys_on(second))
        with app.app_context(), session_scope() as s:
            from api.grids.service import active_grids

            grids = active_grids(s)
        assert f"第 1 / {-(-len(grids) // 2)} 页，共 {len(grids)} 条" in first
        assert 'rel="next"' in first and "page=2" in first
        ready = admin.get("/boards?status=ready").get_data(as_text=True)
        assert sorted(_keys_on(ready)) == sorted([a, c])
        missing = admin.get("/boards?status=missing&page=99").get_data(as_text=True)  # past the end: last page
        assert f"共 {len(grids) - 2} 条" in missing and a not in _keys_on(missing)
        found = admin.get(f"/boards?q={b[-6:]}").get_data(as_text=True)
        assert b in _keys_on(found) and "缺少网格长" in found
        community = str(grids.loc[grids["key"] == a, "community_id"].iloc[0])
        in_community = set(grids.loc[grids["community_id"].astype(str) == community, "key"])
        app.config["WANGGE"]["list_page_size"] = 500
        assert set(_keys_on(admin.get(f"/boards?community={community}").get_data(as_text=True))) == in_community
        none = admin.get("/boards?q=没有这个网格").get_data(as_text=True)
        assert _keys_on(none) == [] and "没有符合条件的网格" in none and "清除筛选" in none
    finally:
        app.config["WANGGE"]["list_page_size"] = size
    assert admin.get("/boards?page=abc").status_code == 400
    bad = admin.get("/boards?status=lost")
    assert bad.status_code == 400 and "status='lost' 无效" in html.unescape(bad.get_data(as_text=True))
    viewer_page = login(app, "viewer").get("/boards").get_data(as_text=True)
    assert "wg-board-pick" not in viewer_page and "打印所选" not in viewer_page  # selection is the admins'


def test_batch_of_grids_selected_on_the_list_prints_exactly_those(world: dict[str, Any]) -> None:
    import time

    app, a, b, c = world["app"], world["A"], world["B"], world["C"]
    admin = login(app, "admin")
    for body, status, message in [({"scope": "grids"}, 400, "scope=grids 需要 grids"),
                                  ({"scope": "grids", "grids": []}, 400, "scope=grids 需要 grids"),
                                  ({"scope": "grids", "grids": [1, 2]}, 400, "scope=grids 需要 grids"),
                                  ({"scope": "grids", "grids": [a, "nope"]}, 404, "没有这些生效网格：nope")]:
        r = admin.post("/api/boards/batch", json=body)
        assert r.status_code == status and message in r.get_json()["error"]["message"], (body, r.get_json())
    r = admin.post("/api/boards/batch", json={"scope": "grids", "grids": [c, b, c], "format": "pdf"})
    assert r.status_code == 202, r.get_json()
    deadline = time.monotonic() + 180
    while (job := admin.get(r.get_json()["status_url"]).get_json())["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    assert job["state"] == "done", job
    assert job["result"]["printed"] == 1 and list(job["result"]["refused"]) == [b]


def test_the_list_check_equals_the_full_board_check_for_every_grid(world: dict[str, Any]) -> None:
    """The list checks fields without drawing boards; it must say exactly what printing would refuse."""
    from api.boards.jobs import photo_dir
    from api.boards.service import board_content, board_problems, missing_by_grid
    from api.boards.sources import load_checklist_sources, load_sources

    app = world["app"]
    settings = {**app.config["WANGGE"], "board_require_photo": True}
    photos = photo_dir(app.instance_path, settings)
    with app.app_context(), session_scope() as s:
        full, light = load_sources(s), load_checklist_sources(s)
    fast = missing_by_grid(light, settings=settings, photo_dir=photos)
    slow = {k: board_problems(board_content(full, k, settings=settings, photo_dir=photos, pictures=False), settings)
            for k in full.grids["key"].astype(str)}
    assert fast == slow
    assert fast[world["A"]] != [] and any("缺少照片" in m for m in fast[world["A"]])  # one photo is a path
    assert any("缺少网格长" in m for m in fast[world["B"]])
