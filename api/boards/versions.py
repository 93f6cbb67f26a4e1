"""Board versions: record what was printed, list the grids whose boards are out of date.

A board is out of date when the plan it was made from is no longer the grid's active plan
(boundaries changed) or what it shows changed (staff, phones, party cell, counts).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.boards.models import BoardPrint
from api.boards.service import board_content, content_hash
from api.boards.sources import load_sources

__all__ = ["record_prints", "stale_boards"]


def record_prints(session: Session, versions: Mapping[str, tuple[int | None, str]], *, size: str, orientation: str,
                  user: str) -> None:
    """Store one :class:`BoardPrint` per printed grid (*versions*: key -> (plan id, content hash))."""
    session.add_all([BoardPrint(grid_key=key, plan_id=plan, content_hash=digest, size=size, orientation=orientation,
                                printed_by=user) for key, (plan, digest) in versions.items()])


def _latest(session: Session) -> dict[str, BoardPrint]:
    newest = select(BoardPrint.grid_key, func.max(BoardPrint.id).label("id")).group_by(BoardPrint.grid_key).subquery()
    rows = session.scalars(select(BoardPrint).join(newest, BoardPrint.id == newest.c.id))
    return {r.grid_key: r for r in rows}


def stale_boards(session: Session, *, settings: Mapping[str, Any], photo_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """``stale`` (printed boards that changed, with the reason) and ``never`` (active grids never printed)."""
    src = load_sources(session)
    latest = _latest(session)
    stale, never = [], []
    for key in src.grids["key"].astype(str):
        printed = latest.get(key)
        if printed is None:
            never.append({"key": key})
            continue
        board = board_content(src, key, settings=settings, photo_dir=photo_dir, pictures=False)
        if board.plan_id != printed.plan_id:
            stale.append({"key": key, "reason": f"网格边界已变更（方案 {printed.plan_id} → {board.plan_id}）"})
        elif content_hash(board) != printed.content_hash:
            stale.append({"key": key, "reason": "工作人员、党组织或户数等内容已变更"})
    return {"stale": stale, "never": never}
