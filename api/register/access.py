"""Who may see which register records: roles, own grids, the ``unmask`` grant (enforced here, not in templates).

- anonymous: nothing; ``viewer``: staff and counts only, never residents;
- ``worker``: residents and key persons of the grids they serve (staff rows linked to
  their account, current on today's date) only;
- ``planner``, ``admin``: every grid, masked;
- clear ID numbers and phones: only users holding the ``unmask`` grant, with a stated
  reason, audited each time.
"""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from api.localtime import local_today
from api.models import User
from api.register.models import RegisterGrant, Staff

__all__ = ["PEOPLE_ROLES", "ALL_GRIDS_ROLES", "Forbidden", "own_grids", "readable_grids", "has_grant",
           "require_people", "require_grid"]

PEOPLE_ROLES = frozenset({"admin", "planner", "worker"})
ALL_GRIDS_ROLES = frozenset({"admin", "planner"})


class Forbidden(PermissionError):
    """The user may not see this record; the message says why in Chinese."""


def own_grids(session: Session, user: User) -> set[str]:
    """Grid codes the user serves today (staff rows linked to the account)."""
    today = local_today()
    rows = session.scalars(select(Staff.grid_code).where(
        Staff.user_id == user.id, Staff.grid_code.is_not(None),
        or_(Staff.start_date.is_(None), Staff.start_date <= today),
        or_(Staff.end_date.is_(None), Staff.end_date >= today)))
    return {str(r) for r in rows}


def readable_grids(session: Session, user: User) -> set[str] | None:
    """Grids whose people *user* may see: ``None`` = all; raises :class:`Forbidden` for other roles."""
    require_people(user)
    return None if user.role in ALL_GRIDS_ROLES else own_grids(session, user)


def require_people(user: User) -> None:
    """Raise :class:`Forbidden` unless *user*'s role may see residents at all."""
    if user.role not in PEOPLE_ROLES:
        raise Forbidden("只读用户不能查看居民信息；如需查看，请联系管理员分配网格员或规划员角色")


def require_grid(session: Session, user: User, grid: str | None) -> None:
    """Raise :class:`Forbidden` unless *user* may see people of *grid*."""
    allowed = readable_grids(session, user)
    if allowed is not None and grid not in allowed:
        raise Forbidden(f"网格 {grid} 不是您负责的网格，只能查看本人网格的居民和重点人员")


def has_grant(session: Session, user: User, permission: str) -> bool:
    """Does *user* hold *permission* (e.g. ``unmask``)?"""
    return session.scalar(select(RegisterGrant.id).where(RegisterGrant.user_id == user.id,
                                                         RegisterGrant.permission == permission)) is not None
