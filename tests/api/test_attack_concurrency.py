"""Several people at once on the operations routes: real HTTP requests from threads against a served app.

The attack world served by a threaded werkzeug server (as ``wangge serve``) on SQLite. Every
answer must be 2xx/3xx/4xx with a clear message (never 5xx), and the database afterwards must
hold exactly the acknowledged writes: one transition when two people act on the same case,
one 网格长 when two planners add one to the same grid, every acknowledged report, visit and
fix once, and party links not doubled by two runs at the same time.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from api.db import session_scope
from tests.api.attack_helpers import World, attack_world, grid_point, http_session
from tests.live import serving

N = 12


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, str]]:
    with attack_world(tmp_path_factory.mktemp("attack_concurrency")) as world, \
            serving(world.app, name="attack-server") as url:
        yield world, url


_session = http_session


def _burst(calls: list[Callable[[], requests.Response]]) -> list[requests.Response]:
    """Run every call in its own thread, all released at the same moment."""
    gate = threading.Barrier(len(calls))

    def run(call: Callable[[], requests.Response]) -> requests.Response:
        gate.wait(timeout=60)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def _twice_at_once(world: World, write: Callable[[Any], Any]) -> tuple[list[Any], list[BaseException]]:
    """Run ``write(session)`` in two threads at the same moment, each in its own write transaction."""
    done: list[Any] = []
    errors: list[BaseException] = []
    gate = threading.Barrier(2)

    def run() -> None:
        gate.wait(timeout=60)
        try:
            with world.app.app_context(), session_scope() as s:
                done.append(write(s))
        except Exception as exc:  # noqa: BLE001 - returned and asserted by the test
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return done, errors


def _no_5xx(responses: list[requests.Response]) -> Counter[int]:
    codes = Counter(r.status_code for r in responses)
    assert not [c for c in codes if c >= 500], [(r.status_code, r.text[:200]) for r in responses if r.status_code >= 500]
    return codes


def _count(world: World, model: Any, *where: Any) -> int:
    with world.app.app_context(), session_scope() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)))


def test_two_people_accepting_the_same_case_make_one_transition(served: tuple[World, str]) -> None:
    from api.incidents.models import IncidentCase, IncidentEvent

    world, url = served
    case = world.cases["open311"]
    people = [_session(url, who) for who in ("admin", "planner") * 3]
    out = _burst([lambda p=p: p.post(f"{url}/incidents/{case}/act", data={"action": "accept", "reason": "受理"},
                                     allow_redirects=False, timeout=60) for p in people])
    assert set(_no_5xx(out)) <= {302, 303}
    assert _count(world, IncidentEvent, IncidentEvent.case_id == case, IncidentEvent.action == "accept") == 1
    with world.app.app_context(), session_scope() as s:
        assert s.get(IncidentCase, case).state == "accepted"
    # the others were told why, in Chinese, on the page they came back to
    pages = [p.get(f"{url}/incidents/{case}", timeout=60).text for p in people]
    assert sum("未能办理" in page for page in pages) == len(people) - 1


def test_dispatch_and_send_back_at_once_leave_a_consistent_case(served: tuple[World, str]) -> None:
    from api.incidents.models import IncidentCase, IncidentEvent

    world, url = served
    case = world.cases["worker"]
    admin = _session(url, "admin")
    assert admin.post(f"{url}/incidents/{case}/act", data={"action": "accept"}, allow_redirects=False,
                      timeout=60).status_code == 302
    people = [_session(url, who) for who in ("admin", "planner") * 4]
    out = _burst([lambda p=p, i=i: p.post(f"{url}/incidents/{case}/act", data={
        "action": "dispatch", "assignee": "worker", "reason": f"派遣{i}"}, allow_redirects=False, timeout=60)
        for i, p in enumerate(people)])
    _no_5xx(out)
    with world.app.app_context(), session_scope() as s:
        c = s.get(IncidentCase, case)
        events = s.scalars(select(IncidentEvent).where(IncidentEvent.case_id == case).order_by(IncidentEvent.id)).all()
        assert c.state == events[-1].to_state  # the case says what its last event says
    assert [e.action for e in events].count("dispatch") == 1


def test_simultaneous_reports_are_each_stored_once(served: tuple[World, str]) -> None:
    from api.incidents.models import IncidentCase

    world, url = served
    lon, lat = grid_point(world)
    before = _count(world, IncidentCase)
    code = _category(world)

    def post(i: int) -> requests.Response:
        return requests.post(f"{url}/open311/v2/requests.json", timeout=60, data={
            "api_key": world.api_key, "service_code": code, "lat": str(lat), "long": str(lon),
            "description": f"并发上报 {i} <b>粗</b>"})

    out = _burst([lambda i=i: post(i) for i in range(N)])
    assert _no_5xx(out) == Counter({201: N})
    ids = {r.json()[0]["service_request_id"] for r in out}
    assert len(ids) == N and _count(world, IncidentCase) == before + N


def _category(world: World) -> str:
    from api.incidents.models import IncidentCase

    with world.app.app_context(), session_scope() as s:
        return str(s.scalar(select(IncidentCase.category).where(IncidentCase.id == world.cases["worker"])))


def test_two_planners_adding_a_leader_to_one_grid_get_one_leader(served: tuple[World, str]) -> None:
    from api.register.models import Staff

    world, url = served
    people = [_session(url, who) for who in ("planner", "admin") * 4]
    before = _count(world, Staff, Staff.grid_code == world.B, Staff.role == "grid_leader")
    out = _burst([lambda p=p, i=i: p.post(f"{url}/api/register/staff", timeout=60, json={
        "name": f"并发网格长{i}", "phone": f"1370000{i:04d}", "role": "网格长", "grid_code": world.B})
        for i, p in enumerate(people)])
    codes = _no_5xx(out)
    assert codes[201] == 1 and before == 0, codes
    refused = [r.json()["error"]["message"] for r in out if r.status_code != 201]
    assert all("已有网格长" in m or "稍后" in m for m in refused), refused
    assert _count(world, Staff, Staff.grid_code == world.B, Staff.role == "grid_leader") == 1


def test_simultaneous_edits_of_one_resident_all_land_and_one_wins(served: tuple[World, str]) -> None:
    from api.register.models import Resident

    world, url = served
    rid = world.residents["A"]
    people = [_session(url, who) for who in ("planner", "admin", "worker") * 3]
    relations = [f"关系{i}" for i in range(len(people))]
    out = _burst([lambda p=p, rel=rel: p.post(f"{url}/api/register/residents/{rid}", json={"relation": rel}, timeout=60)
                  for p, rel in zip(people, relations, strict=True)])
    codes = _no_5xx(out)
    assert set(codes) <= {200, 409, 503}, codes
    with world.app.app_context(), session_scope() as s:
        final = s.get(Resident, rid).relation
    assert final in [rel for rel, r in zip(relations, out, strict=True) if r.status_code == 200]


def test_visits_and_fixes_from_many_phones_are_each_stored_once(served: tuple[World, str]) -> None:
    from api.patrol.models import PatrolFix, PatrolVisit

    world, url = served
    worker = _session(url, "worker")
    lon, lat = grid_point(world)
    visits, fixes = _count(world, PatrolVisit), _count(world, PatrolFix)
    calls = [lambda i=i: worker.post(f"{url}/api/patrol/visits", timeout=60, json={
        "keyperson_id": world.keypersons["A"], "note": f"走访{i}"}) for i in range(N // 2)]
    calls += [lambda i=i: requests.get(f"{url}/api/patrol/osmand", timeout=60, params={
        "id": world.device, "lat": str(lat + i * 1e-5), "lon": str(lon), "timestamp": str(1764990000 + i)})
        for i in range(N)]
    out = _burst(calls)
    codes = _no_5xx(out)
    assert codes == Counter({201: N // 2, 200: N}), codes
    assert _count(world, PatrolVisit) == visits + N // 2
    assert _count(world, PatrolFix) == fixes + N


def test_a_visit_sent_again_at_once_is_stored_once_and_a_different_one_is_not_lost(served: tuple[World, str]) -> None:
    """A double tap or a phone resending on a bad network: the same record (note, point, photo) from six
    threads at once is one visit, every answer naming it; a different note right after is a new visit."""
    from api.patrol.models import PatrolVisit

    world, url = served
    lon, lat = grid_point(world)
    phones = [_session(url, "worker") for _ in range(6)]
    before = _count(world, PatrolVisit)
    sent = {"keyperson_id": world.keypersons["A"], "note": "重复提交", "lon": lon, "lat": lat}
    out = _burst([lambda p=p: p.post(f"{url}/api/patrol/visits", timeout=60, json=sent) for p in phones])
    codes = _no_5xx(out)
    assert codes == Counter({201: 1, 200: 5}), codes
    assert len({r.json()["id"] for r in out}) == 1 and sum(r.json()["repeated"] for r in out) == 5
    assert _count(world, PatrolVisit) == before + 1
    for change in ({"note": "补充情况"}, {"lon": lon + 1e-4}):
        again = phones[0].post(f"{url}/api/patrol/visits", timeout=60, json=sent | change)
        assert again.status_code == 201 and not again.json()["repeated"], again.text
    assert _count(world, PatrolVisit) == before + 3
    world.app.config["WANGGE"]["patrol_visit_repeat_s"] = 0  # the setting off: every record is a visit
    try:
        assert phones[1].post(f"{url}/api/patrol/visits", timeout=60, json=sent).status_code == 201
    finally:
        world.app.config["WANGGE"]["patrol_visit_repeat_s"] = 120
    assert _count(world, PatrolVisit) == before + 4


def test_one_new_device_bound_by_several_admins_at_once_is_one_device(served: tuple[World, str]) -> None:
    from api.patrol.models import PatrolDevice

    world, url = served
    admins = [_session(url, "admin") for _ in range(N // 2)]
    out = _burst([lambda a=a, i=i: a.post(f"{url}/api/patrol/devices", timeout=60, json={
        "device_id": "并发新设备", "username": ("worker", "worker_b")[i % 2]}) for i, a in enumerate(admins)])
    codes = _no_5xx(out)
    assert codes == Counter({201: N // 2}), codes  # re-binding moves the device: each bind succeeds in turn
    assert _count(world, PatrolDevice, PatrolDevice.device_id == "并发新设备") == 1


def test_fixes_flushed_at_once_by_an_unbound_phone_are_refused_and_counted(served: tuple[World, str]) -> None:
    from api.patrol.models import UnknownDevice

    world, url = served
    lon, lat = grid_point(world)
    out = _burst([lambda i=i: requests.get(f"{url}/api/patrol/osmand", timeout=60, params={
        "id": "未绑定手机", "lat": str(lat), "lon": str(lon), "timestamp": str(1764990000 + i)}) for i in range(N)])
    codes = _no_5xx(out)
    assert codes == Counter({403: N}), codes
    assert all(r.json()["error"]["code"] == "unknown_device" for r in out)
    with world.app.app_context(), session_scope() as s:
        row = s.get(UnknownDevice, "未绑定手机")
        assert row is not None and row.attempts == N  # none lost


def test_password_guesses_sent_at_once_are_throttled_as_if_sent_in_turn(served: tuple[World, str]) -> None:
    """A burst of wrong passwords for one account from one client: the first is checked, the rest wait
    (login_delay_s), as when they arrive one after another; none is a 500 and no failure is lost."""
    from api.models import LoginThrottle
    from api.users import create_user

    world, url = served
    with world.app.app_context(), session_scope() as s:
        create_user(s, "guess_target", "Grid2026plan!x", role="viewer")
    out = _burst([lambda i=i: requests.post(f"{url}/login", timeout=60, allow_redirects=False, data={
        "username": "guess_target", "password": f"wrong-{i}"}) for i in range(N)])
    codes = _no_5xx(out)
    assert codes == Counter({401: 1, 429: N - 1}), codes
    with world.app.app_context(), session_scope() as s:
        rows = s.scalars(select(LoginThrottle).where(LoginThrottle.username == "guess_target")).all()
        assert [r.failures for r in rows] == [1]


def test_a_new_account_created_twice_at_once_is_one_user_and_no_500(served: tuple[World, str]) -> None:
    """A double click on 新建用户, or two admins at once."""
    from api.models import User

    world, url = served
    admins = [_session(url, "admin") for _ in range(N // 2)]
    out = _burst([lambda a=a: a.post(f"{url}/admin/users", timeout=60, allow_redirects=False, data={
        "username": "double_click", "role": "viewer", "password": "Grid2026plan!x"}) for a in admins])
    codes = _no_5xx(out)
    assert codes == Counter({302: 1, 400: N // 2 - 1}), codes
    assert all("已存在" in r.text for r in out if r.status_code == 400)
    assert _count(world, User, User.username == "double_click") == 1


def test_one_staff_member_added_by_several_people_at_once_is_one_row(served: tuple[World, str]) -> None:
    from api.register.models import Staff

    world, url = served
    people = [_session(url, who) for who in ("planner", "admin") * 4]
    out = _burst([lambda p=p: p.post(f"{url}/api/register/staff", timeout=60, json={
        "name": "并发新增员", "phone": "13700006666", "role": "网格员", "grid_code": world.A}) for p in people])
    codes = _no_5xx(out)
    assert codes == Counter({201: 1, 400: len(people) - 1}), codes
    assert all("重复" in r.json()["error"]["message"] for r in out if r.status_code == 400)
    assert _count(world, Staff, Staff.name == "并发新增员") == 1


def test_one_staff_row_removed_and_edited_at_once_is_removed_once(served: tuple[World, str]) -> None:
    from api.models import AuditEntry

    world, url = served
    planner = _session(url, "planner")
    form = {"name": "并发删除员", "phone": "13700007777", "role": "网格员", "grid_code": world.B}
    added = planner.post(f"{url}/api/register/staff", timeout=60, json=form)
    assert added.status_code == 201, added.text
    sid = added.json()["id"]
    people = [_session(url, who) for who in ("planner", "admin") * 3]
    out = _burst([lambda p=p, i=i: p.delete(f"{url}/api/register/staff/{sid}", timeout=60) if i % 2 else
                  p.post(f"{url}/api/register/staff/{sid}", timeout=60, json=form | {"duties": f"职责{i}"})
                  for i, p in enumerate(people)])
    codes = _no_5xx(out)
    removed = [r for r, i in zip(out, range(len(people)), strict=True) if i % 2 and r.status_code == 200]
    assert len(removed) == 1 and set(codes) <= {200, 404}, [(r.status_code, r.text[:120]) for r in out]
    assert _count(world, AuditEntry, AuditEntry.action == "register.staff_remove",
                  AuditEntry.target == f"staff:{sid}") == 1


def test_two_party_link_runs_at_once_do_not_double_the_links(served: tuple[World, str]) -> None:
    from api.party.models import PartyLink
    from api.party.service import link_households

    world, _ = served
    app = world.app
    _, errors = _twice_at_once(world, lambda s: link_households(s, settings=app.config["WANGGE"], min_links=1,
                                                               max_links=15))
    assert not errors, errors  # both runs finish: they take turns
    with app.app_context(), session_scope() as s:
        rows = s.execute(select(PartyLink.household_id, PartyLink.centre_id)).all()
    assert len(rows) == len(set(rows)) and len(rows) == len({h for h, _ in rows})  # each household linked once


def test_the_same_register_sheet_uploaded_at_once_never_duplicates(served: tuple[World, str]) -> None:
    from api.grids.service import buildings_of_grid
    from api.register.models import Household, Resident
    from tests.api.attack_helpers import ids_with_check

    world, url = served
    with world.app.app_context(), session_scope() as s:
        building = buildings_of_grid(s, world.B)[1]
    sheet = ("姓名,身份证号,楼栋编号,单元,门牌\n" + "".join(
        f"并发居民{i},{ident},{building},3,30{i}\n"
        for i, ident in enumerate(ids_with_check([f"3201022000010140{i}" for i in range(5)])))).encode("gbk")
    people = [_session(url, who) for who in ("planner", "admin") * 3]
    residents, households = _count(world, Resident), _count(world, Household)
    out = _burst([lambda p=p: p.post(f"{url}/api/register/import", timeout=120, data={"kind": "residents"},
                                     files={"file": ("同一张表.csv", sheet, "text/csv")}) for p in people])
    codes = _no_5xx(out)
    assert codes[200] >= 1 and set(codes) <= {200, 409, 503}, codes
    assert sum(r.json()["inserted"] for r in out if r.status_code == 200) == 5  # the first inserts, the rest update
    assert _count(world, Resident) == residents + 5 and _count(world, Household) == households + 5


def test_one_12345_file_imported_twice_at_once_gives_each_work_order_once(served: tuple[World, str]) -> None:
    import pandas as pd

    from api.incidents.importer import import_workorders
    from api.incidents.models import IncidentCase

    world, _ = served
    app = world.app
    lon, lat = grid_point(world)
    frame = pd.DataFrame({"工单编号": [f"并发{i}" for i in range(5)], "诉求内容": "楼道堆物", "类别": _category(world),
                          "坐标": f"{lon},{lat}", "受理时间": "2026-11-03 10:00", "时限": "24小时", "状态": ""})
    from geo.incidents.workorders import read_workorders

    rows = read_workorders(frame.to_csv(index=False).encode("utf-8-sig"), "12345", name="w.csv")
    before = _count(world, IncidentCase)
    done, errors = _twice_at_once(world, lambda s: import_workorders(s, rows, "12345", settings=app.config["WANGGE"],
                                                                    user="test").inserted)
    assert not errors and sorted(done) == [0, 5], (errors, done)
    assert _count(world, IncidentCase) == before + 5
