"""No resident ID number, phone or key-person record reaches a role the register forbids it to,
and no hostile name comes back as live markup.

The walk discovers its routes from the Flask URL map, so a route added later is walked too:
every route × every role (anonymous, viewer, worker of grid A, worker of grid B, planner,
admin), GET and (with an empty body) POST, every body scanned — JSON, HTML, CSV, XML and
each file inside an XLSX. Then the places people read outside responses: the request log,
the audit log, notification and outbox texts. Only the ``unmask`` answer to an admin holding
the grant may carry clear numbers (DOMAIN §10).
"""

from __future__ import annotations

import html
import io
import logging
import re
import zipfile
from collections.abc import Iterator
from typing import Any
from xml.etree import ElementTree

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.routing import Rule

from api.db import session_scope
from tests.api.attack_helpers import ATTACK_ROLES, ID_RE, World, attack_world
from tests.webmap.hostile import injected

#: Routes never walked: assets, the session itself, and POSTs that start long jobs (fuzz test's list).
SKIP = {"static", "incident_pages.folium_asset", "auth.logout", "auth.login"}
JOB_POSTS = {"plans_api.start_partition", "plans_api.plan_repartition", "board_batch.start_batch",
             "imports_pages.start", "plans_api.plan_publish", "plans_api.plan_rollback"}
#: Roles that may read the residents of grid A (names shown, numbers masked).
READS_A = {"worker", "planner", "admin"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with attack_world(tmp_path_factory.mktemp("attack_privacy")) as w:
        yield w


def _values(world: World) -> dict[str, list[str]]:
    """URL parameter -> values to try (a case of each channel, each export type, each Open311 format)."""
    return {"key": [world.A], "resident_id": [str(world.residents["A"])], "keyperson_id": [str(world.keypersons["A"])],
            "plan_id": [str(world.plan)], "a": [str(world.plan)], "b": [str(world.plan)],
            "case_id": [str(c) for c in world.cases.values()], "rid": [str(c) for c in world.cases.values()],
            "photo_id": ["1"], "kind": ["csv", "xlsx", "json"], "fmt": ["json", "xml", "png"],
            "job_id": ["0"], "upload_id": ["0"], "filename": ["x"], "name": ["boards.zip"], "token": [world.token], "code": ["x"],
            "username": ["nobody"], "action": ["disable"], "notification_id": ["1"], "staff_id": ["999999"]}


def _urls(rule: Rule, values: dict[str, list[str]]) -> list[str]:
    urls = [rule.rule]
    for arg in re.findall(r"<(?:[^:<>]+:)?([^:<>]+)>", rule.rule):
        urls = [re.sub(rf"<(?:[^:<>]+:)?{arg}>", v, u) for u in urls for v in values.get(arg, ["1"])]
    if rule.endpoint == "register_pages.register_page":
        urls = [f"{u}?grid={values['key'][0]}" for u in urls]
    return urls


def _walk(world: World) -> list[tuple[str, str]]:
    values = _values(world)
    out = []
    for rule in world.app.url_map.iter_rules():
        if rule.endpoint in SKIP:
            continue
        for method in sorted((rule.methods or set()) & {"GET", "POST", "DELETE"}):
            if method != "GET" and rule.endpoint in JOB_POSTS:
                continue
            out += [(method, u) for u in _urls(rule, values)]
    return sorted(set(out))


def _bodies(data: bytes) -> list[bytes]:
    if data[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return [z.read(n) for n in z.namelist()]
    return [data]


def _call(client: FlaskClient, method: str, url: str) -> Any:
    if method == "GET":
        return client.get(url)
    if method == "DELETE":
        return client.delete(url)
    return client.post(url, json={}) if url.startswith("/api/") else client.post(url, data={})


def _granted(world: World, role: str, url: str) -> set[bytes]:
    """Clear numbers *role* may see at *url*: the holder of ``unmask`` sees a reporter's contact (audited)."""
    return {world.reporter_phone.encode()} if role == "admin" and re.fullmatch(r"/incidents/\d+", url) else set()


def _leaks(world: World, role: str, url: str, body: bytes) -> list[str]:
    found = [s.decode() for s in set(world.secrets()) - _granted(world, role, url) if s in body]
    found += [m.group().decode() for m in ID_RE.finditer(body)]
    if role not in READS_A:
        found += [n for n in (world.names["A"][0],) if n.encode() in body]
    if role != "worker_b" and role not in ("planner", "admin"):
        found += [n for n in (world.names["B"][0],) if n.encode() in body]
    return found


def _markup_problems(r: Any) -> list[str]:
    """Hostile names seeded everywhere must reach HTML escaped and XML well-formed (Open311)."""
    if r.mimetype == "text/html" and injected(r.get_data(as_text=True)):
        return ["live markup from data in an HTML page"]
    if r.mimetype in ("text/xml", "application/xml"):
        try:
            ElementTree.fromstring(r.get_data())
        except ElementTree.ParseError as exc:
            return [f"XML not well-formed: {exc}"]
    return []


def test_walk_finds_the_routes_of_every_feature(world: World) -> None:
    walked = {u.split("?")[0] for _, u in _walk(world)}
    for prefix in ("/api/register/", "/register", "/incidents", "/open311/v2/", "/api/patrol/", "/patrol", "/party",
                   "/boards", "/g/", "/report", "/notifications", "/api/grids"):
        assert any(u.startswith(prefix) for u in walked), prefix
    assert len(walked) > 100
    page = world.clients["worker"].get(f"/register?grid={world.A}").get_data(as_text=True)
    assert html.escape(world.names["A"][1]).replace("&quot;", "&#34;") in page  # the hostile names are there, as text


@pytest.mark.parametrize("role", ATTACK_ROLES)
def test_no_route_shows_a_clear_number_or_another_grids_residents(world: World, role: str,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    client = world.clients[role]
    leaks, errors, markup = [], [], []
    with caplog.at_level(logging.DEBUG):
        for method, url in _walk(world):
            r = _call(client, method, url)
            if r.status_code >= 500:
                errors.append((method, url, r.status_code, r.get_data()[:200]))
            markup += [(method, url, problem) for problem in _markup_problems(r)]
            for body in _bodies(r.get_data()):
                leaks += [(method, url, found) for found in _leaks(world, role, url, body)]
    assert not errors, errors
    assert not leaks, leaks
    assert not markup, markup
    logged = "\n".join(rec.getMessage() + repr(rec.__dict__.get("extra", "")) for rec in caplog.records).encode()
    assert not [s for s in world.secrets() if s in logged], "clear number in the logs"


def test_unmask_is_the_one_answer_with_clear_numbers(world: World) -> None:
    url = f"/api/register/residents/{world.residents['A']}/unmask"
    for role in ATTACK_ROLES:
        r = world.clients[role].post(url, json={"reason": "核实低保申请"})
        assert (r.status_code == 200) == (role == "admin"), (role, r.status_code)
        assert (world.ids["A"][0].encode() in r.get_data()) == (role == "admin"), role


def test_a_reporters_phone_is_masked_on_the_case_page_unless_granted_and_then_audited(world: World) -> None:
    from api.models import AuditEntry

    url = f"/incidents/{world.cases['public']}"
    masked = world.reporter_phone[:3] + "****" + world.reporter_phone[-4:]
    planner = world.clients["planner"].get(url).get_data(as_text=True)
    assert masked in planner and world.reporter_phone not in planner
    with world.app.app_context(), session_scope() as s:
        before = len(s.scalars(select(AuditEntry).where(AuditEntry.action == "incidents.view_contact")).all())
    assert world.reporter_phone in world.clients["admin"].get(url).get_data(as_text=True)
    with world.app.app_context(), session_scope() as s:
        after = s.scalars(select(AuditEntry).where(AuditEntry.action == "incidents.view_contact")).all()
    assert len(after) == before + 1 and (after[-1].username, after[-1].target) == ("admin", f"case:{world.cases['public']}")


def test_a_full_id_number_typed_as_a_search_is_masked_in_the_audit_log(world: World) -> None:
    from api.models import AuditEntry

    worker = world.clients["worker"]
    full = world.ids["A"][1]
    for url in (f"/api/register/grids/{world.A}/residents?q={full}", f"/register?grid={world.A}&q={full}",
                f"/api/register/grids/{world.A}/residents?q={world.phones['A'][1]}"):
        assert worker.get(url).status_code == 200, url
    found = worker.get(f"/api/register/grids/{world.A}/residents?q={full}").get_json()["residents"]
    assert [r["name"] for r in found] == [world.names["A"][1]]  # the search still finds by the ID's tail
    with world.app.app_context(), session_scope() as s:
        details = [repr(e.detail) for e in s.scalars(select(AuditEntry))]
    assert any(full[-4:] in d for d in details)  # the tail is kept: the audit still says what was searched
    assert not [d for d in details if any(sec.decode() in d for sec in world.secrets())]
    page = world.clients["admin"].get("/register/audit").get_data()
    assert not [sec for sec in world.secrets() if sec in page]


def test_notifications_outbox_and_events_hold_no_clear_number(world: World) -> None:
    from api.incidents.models import IncidentEvent, Notification, OutboxMessage
    from api.models import AuditEntry

    admin = world.clients["admin"]
    case = world.cases["public"]
    admin.post(f"/incidents/{case}/act", data={"action": "accept", "reason": "受理"})
    admin.post(f"/incidents/{case}/act", data={"action": "dispatch", "reason": "派遣", "assignee": "worker"})
    with world.app.app_context(), session_scope() as s:
        texts = [repr(n.__dict__) for n in s.scalars(select(Notification))]
        texts += [repr(o.__dict__) for o in s.scalars(select(OutboxMessage))]
        texts += [repr((e.reason, e.detail)) for e in s.scalars(select(IncidentEvent))]
        texts += [repr(e.detail) for e in s.scalars(select(AuditEntry))]
    assert texts
    assert not [t for t in texts if any(sec.decode() in t for sec in world.secrets())]


def test_the_development_servers_access_log_masks_an_id_number_searched_for(
        world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """``wangge serve`` (werkzeug) logs every request line with its query string: a search by ID number
    or phone must reach the log masked, as the audit log has it. The server is built with the handler
    ``wangge serve`` hands to ``run_simple`` and asked over real HTTP."""
    import threading

    import requests
    from werkzeug.serving import WSGIRequestHandler, make_server

    import api.cli.serve as serve_cli
    from api.cli import main

    handed: dict[str, Any] = {}
    monkeypatch.setattr(serve_cli, "run_simple", lambda *a, **kw: handed.update(kw))
    monkeypatch.setattr(serve_cli, "_start_jobs", lambda app, debug: None)
    monkeypatch.setattr(serve_cli, "abandon_running", lambda app: None)
    result = world.app.test_cli_runner().invoke(main, ["serve", "--port", "1"])
    assert result.exit_code == 0 and handed, result.output
    handler = handed.get("request_handler") or WSGIRequestHandler
    server = make_server("127.0.0.1", 0, world.app, threaded=True, request_handler=handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        with caplog.at_level(logging.INFO, logger="werkzeug"):
            worker = requests.Session()
            worker.post(f"{url}/login", data={"username": "worker", "password": "grid2026plan"}, timeout=60)
            for q in (world.ids["A"][1], world.phones["A"][1]):
                assert worker.get(f"{url}/register", params={"grid": world.A, "q": q}, timeout=60).status_code == 200
    finally:
        server.shutdown()
        thread.join(timeout=10)
    lines = "\n".join(rec.getMessage() for rec in caplog.records if rec.name == "werkzeug")
    assert "/register?grid=" in lines and world.ids["A"][1][-4:] in lines  # the lines are there, tails kept
    assert not [s for s in world.secrets() if s.decode() in lines], lines
