"""Who sees which plan, and which actions a plan's state allows (issue 10 §4, §5).

Drafts, automatic results and exports are the planners' and admins' work: workers and
viewers see only published plans (every other plan answers 404, as if it did not exist).
The actions a page offers follow the plan's state: a published plan is not edited in
place, and rollback is offered only when an earlier plan was active before it.
"""

from __future__ import annotations

from typing import Any

from flask_login import current_user
from sqlalchemy import Select
from sqlalchemy.orm import Session

from api.errors import RequestError
from api.models import PlanVersion
from api.plans.store import get_plan

__all__ = ["EDIT_ROLES", "READ_STATUSES", "AUTO_STATUS", "can_edit", "visible_plan", "visible_only",
           "allowed_actions"]

#: Roles that edit plans, see drafts and export.
EDIT_ROLES = ("planner", "admin")
#: Plan statuses workers and viewers may see.
READ_STATUSES = ("published",)
#: Status of a partition's automatic result, kept read-only as the first version of its draft.
AUTO_STATUS = "auto"
#: Edit operations of a draft (the toolbar's tools).
_EDIT_ACTIONS = ("edit", "undo", "redo", "repartition")


def can_edit(user: Any = None) -> bool:
    """Whether *user* (default: the logged-in one) may edit plans, see drafts and export."""
    user = current_user if user is None else user
    return bool(getattr(user, "is_authenticated", False)) and getattr(user, "role", None) in EDIT_ROLES


def visible_plan(session: Session, plan_id: int) -> PlanVersion:
    """Plan *plan_id* if the current user may see it; 404 (same as a missing plan) otherwise."""
    plan = get_plan(session, plan_id)
    if not can_edit() and plan.status not in READ_STATUSES:
        raise RequestError(404, "plan_not_found", f"方案 {plan_id} 不存在或尚未发布",
                           "网格员和只读用户只能查看已发布的方案；从方案列表选择")
    return plan


def visible_only(stmt: Select[Any]) -> Select[Any]:
    """*stmt* over plan versions, limited to those the current user may see."""
    return stmt if can_edit() else stmt.where(PlanVersion.status.in_(READ_STATUSES))


def allowed_actions(plan: PlanVersion) -> list[str]:
    """The actions the plan page offers for *plan* to the current user, by the plan's state.

    Examples: a draft allows editing and publishing; a published plan only a copy (and
    rollback when another plan was active before it); workers and viewers get none.
    """
    if not can_edit():
        return []
    out = ["save_version"]
    if plan.status == "draft":
        out += [*_EDIT_ACTIONS, "publish"]
    elif plan.status in (AUTO_STATUS, "archived"):
        out.append("publish")
    if plan.is_active and (plan.settings or {}).get("previous_active"):
        out.append("rollback")
    return out
