"""Times are stored in UTC and shown to users in ``display_timezone`` (default Asia/Shanghai)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from flask import Flask, render_template_string

from api import audit
from api.db import session_scope
from api.models import AuditEntry
from tests.api.plans_helpers import login

#: 2026-03-01 20:00:05 UTC: already 2 March in Shanghai (UTC+8) and Urumqi (UTC+6).
STORED = datetime(2026, 3, 1, 20, 0, 5, tzinfo=UTC)


@pytest.fixture
def zone(app: Flask) -> Iterator[dict]:
    """The app's settings, restored after the test changes ``display_timezone``."""
    settings = app.config["WANGGE"]
    before = settings["display_timezone"]
    yield settings
    settings["display_timezone"] = before


def _audit_entry(app: Flask) -> None:
    with app.app_context(), session_scope() as s:
        audit.record(s, user="admin", action="plan.publish", target="plan:tz").at = STORED


def _rows(html: str) -> list[str]:
    return re.findall(r'<tr><td[^>]*>([^<]*)</td>', html)


def test_the_audit_page_shows_stored_utc_times_in_the_display_timezone(app: Flask, zone: dict) -> None:
    admin = login(app, "admin")
    _audit_entry(app)
    assert zone["display_timezone"] == "Asia/Shanghai"  # the default
    assert _rows(admin.get("/register/audit?target=plan:tz").get_data(as_text=True)) == ["2026-03-02 04:00:05"]
    zone["display_timezone"] = "Asia/Urumqi"
    assert _rows(admin.get("/register/audit?target=plan:tz").get_data(as_text=True)) == ["2026-03-02 02:00:05"]
    zone["display_timezone"] = "UTC"
    assert _rows(admin.get("/register/audit?target=plan:tz").get_data(as_text=True)) == ["2026-03-01 20:00:05"]
    entries = admin.get("/api/register/audit?target=plan:tz").get_json()["entries"]
    assert [e["at"] for e in entries] == ["2026-03-01T20:00:05+00:00"]  # the API keeps UTC with its offset


@pytest.mark.parametrize(("timezone", "day", "other_day"), [
    ("Asia/Shanghai", "2026-03-02", "2026-03-01"),
    ("UTC", "2026-03-01", "2026-03-02"),
])
def test_audit_date_filters_are_local_days(app: Flask, zone: dict, timezone: str, day: str, other_day: str) -> None:
    admin = login(app, "admin")
    _audit_entry(app)
    zone["display_timezone"] = timezone
    for path in ("/register/audit?target=plan:tz&", "/api/register/audit?target=plan:tz&"):
        on_day = admin.get(f"{path}since={day}&until={day}")
        other = admin.get(f"{path}since={other_day}&until={other_day}")
        assert on_day.status_code == other.status_code == 200
        if path.startswith("/api"):
            assert len(on_day.get_json()["entries"]) == 1 and other.get_json()["entries"] == []
        else:
            assert len(_rows(on_day.get_data(as_text=True))) == 1
            assert "没有符合条件的审计记录" in other.get_data(as_text=True)


def test_the_users_page_shows_the_last_login_in_local_time(app: Flask) -> None:
    admin = login(app, "admin")
    with app.app_context(), session_scope() as s:
        s.query(AuditEntry).filter_by(username="admin", action="auth.login").update({"at": STORED})
    html = admin.get("/admin/users").get_data(as_text=True)
    assert re.findall(r'data-label="最近登录">([^<]*)<', html) == ["2026-03-02 04:00"]


def test_page_filters_and_the_zone_scripts_read(app: Flask, zone: dict) -> None:
    with app.test_request_context():
        text = render_template_string("{{ t | wg_localtime }}|{{ t | wg_localtime_s }}|{{ none | wg_localtime }}",
                                      t=STORED, none=None)
    assert text == "2026-03-02 04:00|2026-03-02 04:00:05|—"
    zone["display_timezone"] = "Asia/Urumqi"
    page = app.test_client().get("/login").get_data(as_text=True)
    assert '<meta name="wangge-timezone" content="Asia/Urumqi">' in page


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "", "../etc/passwd"])
def test_an_unknown_display_timezone_is_refused_at_start(tmp_path, database_url: str, name: str) -> None:
    from api import create_app

    with pytest.raises(ValueError, match=rf"display_timezone {re.escape(repr(name))} is not a time zone; use an IANA"):
        create_app({"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": database_url, "WANGGE": {"display_timezone": name}})
