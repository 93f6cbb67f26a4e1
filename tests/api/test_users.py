"""User creation, password policy and hashing, audit rows."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from api import audit
from api.models import AuditEntry
from api.users import (
    UserError,
    check_password_policy,
    create_user,
    get_user,
    list_users,
    set_active,
    set_password,
    verify_password,
)


def test_create_user_hashes_and_verifies(session: Session) -> None:
    user = create_user(session, "planner1", "grid2026plan", role="planner", display_name="王规划")
    session.commit()
    stored = get_user(session, "planner1")
    assert stored is user
    assert stored.password_hash.startswith("scrypt:")
    assert "grid2026plan" not in stored.password_hash
    assert verify_password(stored, "grid2026plan")
    assert not verify_password(stored, "grid2026plaN")
    assert (stored.role, stored.display_name, stored.active) == ("planner", "王规划", True)


@pytest.mark.parametrize("password", ["short1", "onlyletters", "1234567890", ""])
def test_password_policy_rejects_weak_passwords(password: str) -> None:
    with pytest.raises(UserError, match="至少 8 位.*at least 8 characters including letters and digits"):
        check_password_policy(password)


def test_duplicate_username_is_refused(session: Session) -> None:
    create_user(session, "worker1", "patrol2026a", role="worker")
    with pytest.raises(UserError, match="'worker1' already exists"):
        create_user(session, "worker1", "another2026b", role="viewer")


@pytest.mark.parametrize(
    ("username", "role", "message"),
    [("ok_name", "boss", "unknown role 'boss'"), ("bad name!", "viewer", "invalid username")],
)
def test_bad_role_or_name_is_refused(session: Session, username: str, role: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        create_user(session, username, "grid2026plan", role=role)


def test_set_password_and_disable(session: Session) -> None:
    user = create_user(session, "viewer1", "look2026see", role="viewer")
    user.failed_logins = 4
    set_password(session, "viewer1", "newpass2026")
    set_active(session, "viewer1", active=False)
    assert verify_password(user, "newpass2026") and not verify_password(user, "look2026see")
    assert (user.failed_logins, user.is_active) == (0, False)
    with pytest.raises(UserError, match="no user 'ghost'"):
        set_password(session, "ghost", "newpass2026")
    assert [u.username for u in list_users(session)] == ["viewer1"]


def test_audit_record_writes_a_row(session: Session) -> None:
    user = create_user(session, "admin1", "admin2026ok", role="admin")
    audit.record(session, user=user, action="user.create", target="user:admin1", detail={"role": "admin"})
    audit.record(session, user="cli", action="workspace.import", target="buildings", detail={"n": 3})
    session.commit()
    rows = audit.recent(session)
    assert [(r.username, r.action, r.detail) for r in rows] == [
        ("cli", "workspace.import", {"n": 3}),
        ("admin1", "user.create", {"role": "admin"}),
    ]
    assert session.get(AuditEntry, rows[0].id).at is not None
    assert [r.action for r in audit.recent(session, action="user.create")] == ["user.create"]
