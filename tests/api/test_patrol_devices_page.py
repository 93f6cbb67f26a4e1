"""The patrol map before any track (empty state with what to do) and 巡查设备与轨迹 (/patrol/devices)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import func, select

from api.db import session_scope
from api.patrol.models import PatrolDevice, PatrolFix
from tests.api.plans_helpers import login
from tests.api.register_helpers import published_app


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from api.grids.service import active_grids

    with published_app(tmp_path_factory.mktemp("patrol_devices"), 600) as app:
        with app.app_context(), session_scope() as s:
            point = active_grids(s).geometry.iloc[0].representative_point()
        yield {"app": app, "admin": login(app, "admin"), "planner": login(app, "planner"),
               "worker": login(app, "worker"), "lonlat": (point.x, point.y)}


def _count(app: Any, model: Any) -> int:
    with app.app_context(), session_scope() as s:
        return int(s.scalar(select(func.count()).select_from(model)))


def _track_csv(lon: float, lat: float) -> bytes:
    t = pd.date_range("2024-05-07 09:00", periods=12, freq="10s")
    frame = pd.DataFrame({"经度": lon + 0.00001 * pd.RangeIndex(12), "纬度": lat, "时间": t.strftime("%Y-%m-%d %H:%M:%S")})
    return frame.to_csv(index=False).encode()


def test_patrol_map_without_tracks_says_what_to_do(world: dict[str, Any]) -> None:
    assert _count(world["app"], PatrolFix) == 0
    admin = world["admin"].get("/patrol").get_data(as_text=True)
    assert "还没有巡查轨迹" in admin and "OsmAnd" in admin and "/api/patrol/osmand" in admin
    assert 'href="/patrol/devices"' in admin and "绑定设备 / 导入轨迹" in admin
    planner = world["planner"].get("/patrol").get_data(as_text=True)
    assert "还没有巡查轨迹" in planner and "请联系系统管理员" in planner and 'href="/patrol/devices"' not in planner


def test_devices_page_is_for_admins(world: dict[str, Any]) -> None:
    assert world["planner"].get("/patrol/devices").status_code == 403
    assert world["worker"].get("/patrol/devices").status_code == 403
    page = world["admin"].get("/patrol/devices")
    assert page.status_code == 200 and "绑定定位设备" in page.get_data(as_text=True)


def test_bind_a_device_from_the_form(world: dict[str, Any]) -> None:
    admin, app = world["admin"], world["app"]
    bad = admin.post("/patrol/devices", data={"action": "bind", "device_id": " ", "username": "worker"})
    assert bad.status_code == 400 and "缺少设备标识" in bad.get_data(as_text=True)
    nobody = admin.post("/patrol/devices", data={"action": "bind", "device_id": "phone-9", "username": "nobody"})
    assert nobody.status_code == 400 and "没有用户 nobody" in nobody.get_data(as_text=True)
    assert _count(app, PatrolDevice) == 0
    ok = admin.post("/patrol/devices", data={"action": "bind", "device_id": "phone-9", "username": "worker",
                                             "label": "小米"})
    text = ok.get_data(as_text=True)
    assert ok.status_code == 200 and "已把设备 phone-9 绑定给 worker" in text and "<td>phone-9</td>" in text
    assert _count(app, PatrolDevice) == 1


def test_import_a_track_file_then_the_map_has_tracks(world: dict[str, Any]) -> None:
    admin, app = world["admin"], world["app"]
    lon, lat = world["lonlat"]
    wrong = admin.post("/patrol/devices", data={"action": "import", "username": "worker",
                                                "file": (io.BytesIO(b"x"), "track.docx")})
    assert wrong.status_code == 400 and "不能读取 .docx 文件" in wrong.get_data(as_text=True)
    empty = admin.post("/patrol/devices", data={"action": "import", "username": "worker",
                                                "file": (io.BytesIO(b"a,b\n1,2\n"), "track.csv")})
    assert empty.status_code == 400 and "读不出定位点" in empty.get_data(as_text=True)
    assert _count(app, PatrolFix) == 0
    ok = admin.post("/patrol/devices", data={"action": "import", "username": "worker",
                                             "file": (io.BytesIO(_track_csv(lon, lat)), "walk.csv")})
    assert ok.status_code == 200 and "12 个定位点记入 worker 的轨迹" in ok.get_data(as_text=True)
    again = admin.post("/patrol/devices", data={"action": "import", "username": "worker",
                                                "file": (io.BytesIO(_track_csv(lon, lat)), "walk.csv")})
    assert "跳过已有 12 个" in again.get_data(as_text=True) and _count(app, PatrolFix) == 12
    assert "还没有巡查轨迹" not in world["planner"].get("/patrol").get_data(as_text=True)
