"""Times as users read them: stored in UTC, shown in the ``display_timezone`` (default Asia/Shanghai).

Every page, message and export that shows a time goes through :func:`local_text` (the Jinja
filters ``wg_localtime`` and ``wg_localtime_s`` on pages); the JSON API keeps ISO 8601 with an
offset. Dates typed into filters (the audit log's 从/到) are local days: :func:`local_day_start`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Flask, current_app, has_app_context

from geo.settings import DEFAULTS

__all__ = ["MINUTES", "SECONDS", "init_app", "local_day_start", "local_text", "local_today", "local_zone"]

#: ``2026-12-06 21:20``
MINUTES = "%Y-%m-%d %H:%M"
#: ``2026-12-06 21:20:05``
SECONDS = "%Y-%m-%d %H:%M:%S"


def local_zone(settings: dict[str, Any] | None = None) -> ZoneInfo:
    """The time zone users read times in: ``display_timezone`` of *settings* (default: the app's).

    Examples
    --------
    >>> local_zone({"display_timezone": "Asia/Urumqi"}).key
    'Asia/Urumqi'
    """
    if settings is None:
        settings = current_app.config["WANGGE"] if has_app_context() else DEFAULTS
    return ZoneInfo(str(settings.get("display_timezone", DEFAULTS["display_timezone"])))


def local_text(value: datetime | str | None, settings: dict[str, Any] | None = None, *, fmt: str = MINUTES) -> str:
    """A stored time (aware, naive UTC or ISO 8601 text) in the local zone; ``—`` for none.

    Examples
    --------
    >>> local_text(datetime(2026, 12, 6, 13, 20, tzinfo=UTC), {"display_timezone": "Asia/Shanghai"})
    '2026-12-06 21:20'
    >>> local_text("2026-12-06T20:00:05+00:00", {"display_timezone": "Asia/Shanghai"}, fmt=SECONDS)
    '2026-12-07 04:00:05'
    """
    if value is None or value == "":
        return "—"
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(local_zone(settings)).strftime(fmt)


def local_day_start(day: date, settings: dict[str, Any] | None = None) -> datetime:
    """Local midnight that starts *day*, as an aware UTC time (for filters on stored times).

    Examples
    --------
    >>> local_day_start(date(2026, 12, 6), {"display_timezone": "Asia/Shanghai"}).isoformat()
    '2026-12-05T16:00:00+00:00'
    """
    start = datetime(day.year, day.month, day.day, tzinfo=local_zone(settings))
    return start.astimezone(UTC)


def local_today(settings: dict[str, Any] | None = None) -> date:
    """Today's date in the local zone."""
    return datetime.now(local_zone(settings)).date()


def _minutes(value: datetime | str | None) -> str:
    return local_text(value)


def _seconds(value: datetime | str | None) -> str:
    return local_text(value, fmt=SECONDS)


def init_app(app: Flask) -> None:
    """Check ``display_timezone``; register the page filters ``wg_localtime`` (minutes) and
    ``wg_localtime_s`` (seconds) and the global ``wg_timezone()`` (base.html hands it to scripts)."""
    name = app.config["WANGGE"]["display_timezone"]
    try:
        local_zone(app.config["WANGGE"])
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"display_timezone {name!r} is not a time zone; use an IANA name such as "
                         "'Asia/Shanghai' (see README 'Settings')") from None
    app.add_template_filter(_minutes, "wg_localtime")
    app.add_template_filter(_seconds, "wg_localtime_s")
    app.add_template_global(lambda: local_zone().key, "wg_timezone")

