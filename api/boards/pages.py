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
from api.boards.jobs import photo_dir
from api.boards.service import (
    BoardIncomplete,
    board_content,
    board_problems,
    grid_map_png,
    public_url,
    render_board,
)
from api.boards.sources import BoardSources, load_sources
from api.db import session_scope
from api.errors import RequestError
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
    """Every active grid with the mandatory board fields it lacks (no pictures drawn)."""
    src = load_sources(session)
    settings = current_app.config["WANGGE"]
    out = []
    for key in src.grids["key"].astype(str):
        board = board_content(src, key, settings=settings, photo_dir=photo_dir(current_app.instance_path, settings),
                              pictures=False)
        out.append({"key": key, "name": board.name, "community": board.community,
                    "missing": board_problems(board, settings)})
    return out


@bp.get("/boards")
@role_required(*_STAFF_ROLES)
def boards_page() -> str:
    """网格公示牌: every active grid, what its board lacks, links to its PDF and PNG."""
    with session_scope() as s:
        rows = board_status(s)
    return render_template("boards/list.html", rows=rows, sizes=list(SIZES), orientations=ORIENTATIONS,
                           can_draft=current_user.role == "admin")


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
