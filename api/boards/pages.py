"""Board pages: the list of boards with what is missing, single board downloads, the public grid page.

``/g/<grid code>`` is the QR codes' target: no login, staff information only (never
residents), valid as long as the grid's code survives re-plans.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, current_app, render_template, request
from flask_login import current_user

from api.auth import role_required
from api.boards.batch_job import FORMATS
from api.boards.jobs import photo_dir
from api.boards.service import (
    BoardIncomplete,
    board_content,
    grid_map_png,
    missing_by_grid,
    public_url,
    render_board,
)
from api.boards.sources import BoardSources, load_checklist_sources, load_sources
from api.db import session_scope
from api.errors import RequestError
from api.paging import page_number, page_of
from api.register.access import own_grids
from api.security import limiter, public_limit
from webmap.boards.render import ORIENTATIONS, SIZES

__all__ = ["bp", "board_status"]

bp = Blueprint("board_pages", __name__)

_STAFF_ROLES = ("admin", "planner", "worker", "viewer")


def _settings() -> dict[str, Any]:
    return current_app.config["WANGGE"]


def _sources(key: str | None = None) -> BoardSources:
    with session_scope() as s:
        return load_sources(s, keys=None if key is None else [key])


def _content(src: BoardSources, key: str, **options: Any) -> Any:
    try:
        return board_content(src, key, settings=_settings(), photo_dir=photo_dir(current_app.instance_path,
                                                                                  _settings()), **options)
    except LookupError as exc:
        raise RequestError(404, "grid_not_found", str(exc).strip(chr(39)),
                           "网格编码可能已在重新划分后停用；从公示牌列表中选择网格") from None


def board_status(session: Any) -> list[dict[str, Any]]:
    """Every active grid with the mandatory board fields it lacks (no map, no pictures: fast)."""
    src = load_checklist_sources(session)
    settings = current_app.config["WANGGE"]
    missing = missing_by_grid(src, settings=settings, photo_dir=photo_dir(current_app.instance_path, settings))
    return [{"key": str(key), "name": _grid_name(name, key), "community_id": str(cid),
             "community": src.communities.get(str(cid), str(cid)), "missing": missing[str(key)]}
            for key, name, cid in zip(src.grids["key"], src.grids["name"], src.grids["community_id"], strict=True)]


def _grid_name(name: Any, key: Any) -> str:
    text = "" if name is None or name != name else str(name).strip()
    return text or f"网格 {key}"


#: The list's status filter: value -> label.
STATUS_FILTERS: dict[str, str] = {"": "全部", "ready": "可打印", "missing": "缺少必填内容"}


def _filtered(rows: list[dict[str, Any]], q: str, community: str, status: str) -> list[dict[str, Any]]:
    """Rows whose code, name or community contains *q*, of *community*, of *status*."""
    if status not in STATUS_FILTERS:
        raise RequestError(400, "bad_option", f"参数 status={status!r} 无效", "可选：ready（可打印）、missing（缺少必填内容）",
                           field="status")
    q = q.strip().lower()
    return [r for r in rows
            if (not q or any(q in str(r[k]).lower() for k in ("key", "name", "community")))
            and (not community or r["community_id"] == community)
            and (not status or bool(r["missing"]) == (status == "missing"))]


@bp.get("/boards")
@role_required(*_STAFF_ROLES)
def boards_page() -> str:
    """网格公示牌: active grids (search, community, status, pages), what each board lacks, its PDF/PNG;
    admins select grids across pages and print them as one batch."""
    args = request.args
    with session_scope() as s:
        rows = board_status(s)
        own = sorted(own_grids(s, current_user._get_current_object()))  # type: ignore[attr-defined]
    hits = _filtered(rows, args.get("q", ""), args.get("community", ""), args.get("status", ""))
    communities = sorted({(r["community_id"], r["community"]) for r in rows}, key=lambda c: c[0])
    return render_template("boards/list.html", page=page_of(hits, page_number(args), int(_settings()["list_page_size"])),
                           hits=[r["key"] for r in hits], total=len(rows), ready=sum(not r["missing"] for r in rows),
                           communities=communities, statuses=STATUS_FILTERS, args=args, sizes=list(SIZES),
                           orientations=ORIENTATIONS, formats=FORMATS, can_draft=current_user.role == "admin",
                           own=own)


def _option(name: str, allowed: tuple[str, ...] | list[str], default: str) -> str:
    value = request.args.get(name, default)
    if value not in allowed:
        raise RequestError(400, "bad_option", f"参数 {name}={value!r} 无效", f"可选：{'、'.join(allowed)}", field=name)
    return value


@bp.get("/boards/<key>.<fmt>")
@role_required(*_STAFF_ROLES)
def board_file(key: str, fmt: str) -> Response:
    """One board as PDF or PNG (``?size=A3|A4&orientation=portrait|landscape&drafts=1``; drafts: admins)."""
    if fmt not in ("pdf", "png"):
        raise RequestError(404, "bad_format", f"不支持的格式 .{fmt}", "请用 .pdf 或 .png")
    size = _option("size", list(SIZES), "A3")
    orientation = _option("orientation", ORIENTATIONS, "portrait")
    drafts = request.args.get("drafts") == "1"
    if drafts and current_user.role != "admin":
        raise RequestError(403, "forbidden", "只有管理员可以打印待补充的草稿公示牌", "去掉 drafts=1，或请管理员打印",
                           field="drafts")
    board = _content(_sources(key), key, orientation=orientation)
    try:
        data = render_board(board, settings=_settings(), size=size, orientation=orientation, fmt=fmt, drafts=drafts)
    except BoardIncomplete as exc:
        raise RequestError(409, "board_incomplete", str(exc), "补全登记册后再打印，或由管理员打印草稿") from None
    mime = "application/pdf" if fmt == "pdf" else "image/png"
    return Response(data, mimetype=mime, headers={
        "Content-Disposition": f"inline; filename=board-{quote(key, safe='')}-{size}-{orientation}.{fmt}"})


@bp.get("/g/<key>")
@limiter.limit(public_limit)
def public_page(key: str) -> str:
    """The grid's public page (QR target): map, staff contacts, party cell, services, how to report."""
    src = _sources(key)
    board = _content(src, key, pictures=False)
    return render_template("boards/public.html", b=board, url=public_url(_settings(), key))


@bp.get("/g/<key>/map.png")
@limiter.limit(public_limit)
def public_map(key: str) -> Response:
    """The grid's boundary map for the public page (no residents: buildings, streets, services)."""
    src = _sources(key)
    try:
        png = grid_map_png(src, key)
    except LookupError as exc:
        raise RequestError(404, "grid_not_found", str(exc).strip("'"), "网格编码可能已在重新划分后停用") from None
    return Response(png, mimetype="image/png", headers={"Cache-Control": "public, max-age=3600"})
