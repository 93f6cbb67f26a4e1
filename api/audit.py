"""The audit log: who did what to which target (logins, imports, boundary changes, exports).

A write is audited in its own transaction (:func:`record`). An audited *read* (an export)
must not turn its read transaction into a write: that is a lock upgrade SQLite refuses
under load. It reads first, then calls :func:`record_read`, one short write transaction.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.models import AuditEntry, User

__all__ = ["record", "record_read", "recent"]

log = logging.getLogger(__name__)


def _client_ip() -> str | None:
    # Optional import: audit works from scripts and the CLI, where there is no request.
    try:
        from flask import has_request_context, request
    except ImportError:  # pragma: no cover - flask is a dependency
        return None
    return request.remote_addr if has_request_context() else None


def record(
    session: Session,
    *,
    user: User | str | None,
    action: str,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
    ip: str | None = None,
) -> AuditEntry:
    """Add one audit row in *session*'s transaction (it commits or rolls back with the work).

    Parameters
    ----------
    session
        The session doing the audited work.
    user
        The acting :class:`~api.models.User`, a username (``"cli"``, ``"system"``) or ``None``.
    action
        Dotted verb, e.g. ``"workspace.import"``, ``"user.create"``, ``"auth.login_failed"``.
    target
        What was acted on, e.g. ``"buildings"`` or ``"user:planner"``.
    detail
        JSON-serialisable facts (counts, ids); never passwords or personal data in clear.
    ip
        Client address; defaults to the current request's ``remote_addr`` when there is one.
    """
    username = user.username if isinstance(user, User) else user
    entry = AuditEntry(
        username=_fit(username, AuditEntry.username),
        action=_fit(action, AuditEntry.action),
        target=_fit(target, AuditEntry.target),
        detail=dict(detail or {}),
        ip=_fit(ip if ip is not None else _client_ip(), AuditEntry.ip),
    )
    session.add(entry)
    session.flush()
    log.debug("audit %s %s by %s", action, target, username)
    return entry


def _fit(value: str | None, column: Any) -> str | None:
    """*value* cut to the column's length: an audit row is never refused (PostgreSQL enforces VARCHAR(n))."""
    size = getattr(column.type, "length", None)
    if value is None or size is None or len(value) <= size:
        return value
    return value[: size - 1] + "…"


def record_read(
    *,
    user: User | str | None,
    action: str,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Audit a read that just finished, in a short write transaction of its own (see module doc).

    Parameters are those of :func:`record`; needs an app context (it uses
    :func:`api.db.session_scope`, which first ends the read).
    """
    from api.db import session_scope

    username = user.username if isinstance(user, User) else user
    with session_scope() as session:
        record(session, user=username, action=action, target=target, detail=detail)


def recent(session: Session, *, limit: int = 100, action: str | None = None) -> list[AuditEntry]:
    """The newest audit rows first, optionally only one *action*."""
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if action is not None:
        stmt = stmt.where(AuditEntry.action == action)
    return list(session.scalars(stmt))
