"""The one incident state machine (DOMAIN.md §6, §9).

上报 → 受理 (or 不予受理 / 注销, with a reason) → 派遣 (交办) → 处置 → 反馈 → 核查
(pass → 结案; fail → back to 处置, counted as 返工) → 评价 (+ optional 回访).
Besides: 回退 (send back to the centre), 改派 (reassign), 督办 (ordinary / yellow / red card),
延期 (request, then approval or denial; approved extensions are counted).

Workflow roles: ``reporter`` (whoever reports, also Open311 and 12345), ``worker`` (the
assigned 网格员; worker actions need ``actor == case.assignee``) and ``center`` (街道/区指挥中心:
accepts, dispatches, verifies, closes, evaluates, supervises, approves extensions). The service
maps login roles to these. :func:`apply` returns the new case state and the event to record,
or raises :class:`TransitionRefused` with the reason in Chinese.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import pandas as pd

from geo.errors import WanggeError
from geo.incidents.workcalendar import WorkCalendar, due_time
from geo.settings import DEFAULTS

__all__ = ["STATES", "OPEN_STATES", "CLOSED_STATES", "ACTIONS", "ROLES", "SUPERVISE_LEVELS", "Action",
           "CaseState", "Event", "TransitionRefused", "allowed_actions", "apply", "overdue_hours", "escalation_level"]

#: State -> Chinese label.
STATES: dict[str, str] = {
    "reported": "已上报", "accepted": "已受理", "rejected": "不予受理", "cancelled": "已注销",
    "dispatched": "已派遣", "handling": "处置中", "feedback": "已反馈待核查", "closed": "已结案",
    "evaluated": "已评价", "visited": "已回访",
}
#: States in which a case still needs work.
OPEN_STATES: frozenset[str] = frozenset({"reported", "accepted", "dispatched", "handling", "feedback"})
#: States of a finished case (closed or refused).
CLOSED_STATES: frozenset[str] = frozenset(STATES) - OPEN_STATES
#: Workflow role -> Chinese label.
ROLES: dict[str, str] = {"reporter": "上报人", "worker": "网格员", "center": "指挥中心"}
#: 督办 levels.
SUPERVISE_LEVELS: dict[str, str] = {"ordinary": "普通督办", "yellow": "黄牌督办", "red": "红牌督办"}
_SUPERVISABLE = frozenset({"accepted", "dispatched", "handling", "feedback"})


@dataclass(frozen=True)
class Action:
    """One transition: from which states, to which state (``None`` = unchanged), who, what it needs."""

    name: str
    label: str
    sources: frozenset[str]
    target: str | None
    roles: frozenset[str]
    needs_reason: bool = False
    assignee_only: bool = False


def _a(name: str, label: str, sources: set[str] | frozenset[str], target: str | None, roles: set[str],
       *, reason: bool = False, own: bool = False) -> Action:
    return Action(name, label, frozenset(sources), target, frozenset(roles), reason, own)


#: Every transition of the machine, by name.
ACTIONS: dict[str, Action] = {a.name: a for a in (
    _a("accept", "受理", {"reported"}, "accepted", {"center"}),
    _a("reject", "不予受理", {"reported"}, "rejected", {"center"}, reason=True),
    _a("cancel", "注销", {"reported", "accepted"}, "cancelled", {"center"}, reason=True),
    _a("dispatch", "派遣", {"accepted"}, "dispatched", {"center"}),
    _a("reassign", "改派", {"dispatched", "handling"}, "dispatched", {"center"}, reason=True),
    _a("send_back", "回退", {"dispatched", "handling"}, "accepted", {"worker", "center"}, reason=True, own=True),
    _a("start", "签收处置", {"dispatched"}, "handling", {"worker"}, own=True),
    _a("feedback", "处置反馈", {"handling"}, "feedback", {"worker"}, reason=True, own=True),
    _a("verify_pass", "核查通过结案", {"feedback"}, "closed", {"center"}),
    _a("verify_fail", "核查不通过返工", {"feedback"}, "handling", {"center"}, reason=True),
    _a("evaluate", "评价", {"closed"}, "evaluated", {"center"}),
    _a("visit", "回访", {"closed", "evaluated"}, "visited", {"center"}, reason=True),
    _a("supervise", "督办", _SUPERVISABLE, None, {"center"}, reason=True),
    _a("request_extension", "申请延期", {"dispatched", "handling"}, None, {"worker"}, reason=True, own=True),
    _a("approve_extension", "批准延期", {"dispatched", "handling", "feedback"}, None, {"center"}),
    _a("deny_extension", "驳回延期", {"dispatched", "handling", "feedback"}, None, {"center"}, reason=True),
)}


class TransitionRefused(WanggeError, ValueError):
    """An action is not allowed on a case in its state, for this role, or lacks what it needs."""


@dataclass(frozen=True)
class CaseState:
    """What the workflow needs to know about a case (the service keeps the rest)."""

    state: str = "reported"
    category: str = ""
    limit_value: float = 1.0
    limit_unit: str = "workdays"
    assignee: str | None = None
    dispatched_at: datetime | None = None
    due_at: datetime | None = None
    closed_at: datetime | None = None
    rework_count: int = 0
    extension_count: int = 0
    pending_extension_days: int = 0
    supervise_level: str | None = None
    rating: int | None = None


@dataclass(frozen=True)
class Event:
    """One transition as recorded: who, in which role, when, why, from/to state, details."""

    action: str
    actor: str
    role: str
    at: datetime
    from_state: str
    to_state: str
    reason: str = ""
    detail: tuple[tuple[str, Any], ...] = ()


def allowed_actions(case: CaseState, role: str, actor: str | None = None) -> list[str]:
    """Names of the actions *role* (as *actor*) may take on *case* now (options aside)."""
    return [name for name, a in ACTIONS.items() if _refusal(case, a, role, actor) is None]


def _refusal(case: CaseState, a: Action, role: str, actor: str | None) -> str | None:
    if role not in ROLES:
        return f"未知角色 {role}；应为 {'、'.join(ROLES)} 之一"
    if case.state not in a.sources:
        ok = "、".join(STATES[s] for s in sorted(a.sources))
        return f"案件当前状态为“{STATES[case.state]}”，不能{a.label}（只有“{ok}”的案件可以）"
    if role not in a.roles:
        who = "、".join(ROLES[r] for r in sorted(a.roles))
        return f"{ROLES[role]}不能{a.label}；此操作由{who}执行"
    if a.assignee_only and role == "worker" and actor != case.assignee:
        return f"只有承办网格员（{case.assignee or '未指派'}）可以{a.label}；请联系指挥中心改派"
    if a.name in ("approve_extension", "deny_extension") and case.pending_extension_days <= 0:
        return f"没有待审批的延期申请，不能{a.label}"
    return None


def _need(value: Any, message: str) -> Any:
    if value in (None, ""):
        raise TransitionRefused(message)
    return value


def _dispatch(case: CaseState, at: datetime, assignee: str | None, calendar: WorkCalendar) -> CaseState:
    who = _need(assignee, "派遣需要指定承办网格员；先在网格登记中为该网格配备网格员")
    if case.dispatched_at is not None:  # re-dispatch after 回退: the SLA clock keeps running
        return replace(case, assignee=who)
    due = due_time(at, case.limit_value, case.limit_unit, calendar)
    return replace(case, assignee=who, dispatched_at=at, due_at=due)


def _request_extension(case: CaseState, days: int | None, max_days: int, max_count: int) -> CaseState:
    if not days or days < 1 or days > max_days:
        raise TransitionRefused(f"延期天数须为 1 至 {max_days} 个工作日；收到 {days}")
    if case.extension_count >= max_count:
        raise TransitionRefused(f"本案已延期 {case.extension_count} 次，达到上限 {max_count} 次；请按期办结或申请督办")
    if case.pending_extension_days:
        raise TransitionRefused("已有待审批的延期申请；请等待指挥中心审批")
    return replace(case, pending_extension_days=int(days))


def _approve_extension(case: CaseState, calendar: WorkCalendar) -> CaseState:
    base = case.due_at or case.dispatched_at
    due = due_time(_need(base, "案件尚未派遣，不能延期"), case.pending_extension_days, "workdays", calendar)
    return replace(case, due_at=due, extension_count=case.extension_count + 1, pending_extension_days=0)


def _effect(case: CaseState, a: Action, at: datetime, opts: dict[str, Any], calendar: WorkCalendar) -> CaseState:
    name = a.name
    if name == "dispatch":
        return _dispatch(case, at, opts.get("assignee"), calendar)
    if name == "reassign":
        return replace(case, assignee=_need(opts.get("assignee"), "改派需要指定新的承办网格员"))
    if name == "verify_pass":
        return replace(case, closed_at=at)
    if name == "verify_fail":
        return replace(case, rework_count=case.rework_count + 1)
    if name == "evaluate":
        rating = opts.get("rating")
        if rating not in (1, 2, 3, 4, 5):
            raise TransitionRefused(f"评价需要 1 至 5 分的满意度；收到 {rating!r}")
        return replace(case, rating=int(rating))
    if name == "supervise":
        level = opts.get("level", "ordinary")
        if level not in SUPERVISE_LEVELS:
            raise TransitionRefused(f"督办级别 {level!r} 未知；应为 {'、'.join(SUPERVISE_LEVELS)}（普通/黄牌/红牌）")
        return replace(case, supervise_level=level)
    if name == "request_extension":
        return _request_extension(case, opts.get("days"), int(opts.get("max_days", DEFAULTS["incident_max_extension_workdays"])),
                                  int(opts.get("max_count", DEFAULTS["incident_max_extensions"])))
    if name == "approve_extension":
        return _approve_extension(case, calendar)
    if name == "deny_extension":
        return replace(case, pending_extension_days=0)
    return case


def apply(case: CaseState, action: str, *, role: str, actor: str, at: datetime, reason: str = "",
          calendar: WorkCalendar | None = None, **options: Any) -> tuple[CaseState, Event]:
    """Take *action* on *case*; return the new state and the event to record.

    Options: ``assignee`` (dispatch, reassign), ``rating`` 1–5 (evaluate), ``level``
    (supervise: ordinary / yellow / red), ``days`` (request_extension, working days;
    ``max_days`` / ``max_count`` bound it, defaults from the settings).

    Examples
    --------
    >>> from datetime import UTC
    >>> t = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
    >>> case, ev = apply(CaseState(), "accept", role="center", actor="zhang", at=t)
    >>> case.state, ev.from_state
    ('accepted', 'reported')
    >>> apply(case, "start", role="worker", actor="li", at=t)
    Traceback (most recent call last):
    ...
    geo.incidents.workflow.TransitionRefused: 案件当前状态为“已受理”，不能签收处置（只有“已派遣”的案件可以）
    """
    a = ACTIONS.get(action)
    if a is None:
        raise TransitionRefused(f"未知操作 {action!r}；应为 {'、'.join(ACTIONS)} 之一")
    if at.tzinfo is None:
        raise TransitionRefused(f"{a.label}的时间没有时区；请传入带时区的时间（如 UTC）")
    refusal = _refusal(case, a, role, actor)
    if refusal:
        raise TransitionRefused(refusal)
    if a.needs_reason and not reason.strip():
        raise TransitionRefused(f"{a.label}必须填写原因或说明")
    new = _effect(case, a, at, options, calendar or WorkCalendar())
    new = replace(new, state=a.target or case.state)
    detail = tuple(sorted((k, v) for k, v in options.items() if k not in ("max_days", "max_count")))
    return new, Event(action, actor, role, at, case.state, new.state, reason.strip(), detail)


def overdue_hours(due: datetime | None, now: datetime) -> float:
    """Hours past *due* at *now* (≤ 0 when not overdue or no due time)."""
    if due is None:
        return 0.0
    return float((pd.Timestamp(now) - pd.Timestamp(due)) / pd.Timedelta(hours=1))


def escalation_level(due: datetime | None, now: datetime, current: str | None, *,
                     yellow_hours: float = DEFAULTS["incident_escalate_yellow_hours"],
                     red_hours: float = DEFAULTS["incident_escalate_red_hours"]) -> str | None:
    """The 督办 level the periodic job should raise now, or ``None`` when none is due.

    Overdue at all → ordinary; by *yellow_hours* → yellow; by *red_hours* → red. Levels only
    go up: a case already at (or above) the level gets ``None``.
    """
    late = overdue_hours(due, now)
    if late <= 0:
        return None
    level = "red" if late >= red_hours else "yellow" if late >= yellow_hours else "ordinary"
    order = list(SUPERVISE_LEVELS)
    if current is not None and order.index(current) >= order.index(level):
        return None
    return level
