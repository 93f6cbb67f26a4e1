"""Which grids a print run covers, and where board inputs live (shared by the CLI and the pages)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.grids import service
from api.models import Community

__all__ = ["photo_dir", "select_grids", "streets"]


def photo_dir(instance_path: str, settings: Mapping[str, Any]) -> Path:
    """Folder of staff photos (setting ``board_photo_dir``; default ``instance/photos``)."""
    configured = str(settings.get("board_photo_dir") or "").strip()
    return Path(configured) if configured else Path(instance_path) / "photos"


def select_grids(session: Session, *, grid: str | None = None, community: str | None = None,
                 every: bool = False, street: str | None = None) -> list[str]:
    """Keys of the active grids chosen by exactly one of *grid*, *community*, *street* or *every*.

    Raises ``ValueError`` (no or several selectors, no active grid) and
    :class:`api.grids.service.GridNotFound` (unknown grid, community or street office).
    """
    if sum((grid is not None, community is not None, street is not None, every)) != 1:
        raise ValueError("choose exactly one of --grid CODE, --community ID or --all")
    grids = service.active_grids(session, community_id=community)
    if grids.empty:
        raise service.GridNotFound("没有生效的网格：先发布网格方案" if community is None
                                   else f"社区 {community} 没有生效的网格；检查社区编号")
    keys = grids["key"].astype(str).tolist()
    if grid is not None:
        if grid not in keys:
            raise service.GridNotFound(f"没有编码为 {grid} 的生效网格；用 wangge boards list 查看网格编码")
        return [grid]
    if street is not None:
        members = set(session.scalars(select(Community.community_id).where(Community.street_id == street)))
        keys = [k for k, c in zip(keys, grids["community_id"].astype(str), strict=True) if c in members]
        if not keys:
            raise service.GridNotFound(f"街道 {street} 没有生效的网格；检查街道编号")
    return keys


def streets(session: Session) -> list[tuple[str, str]]:
    """(street id, name) of the street offices the communities belong to, by id."""
    rows = session.execute(select(Community.street_id, Community.street_name)
                           .where(Community.street_id.is_not(None)).distinct()).all()
    names: dict[str, str] = {}
    for sid, name in rows:
        names[str(sid)] = names.get(str(sid)) or (name or "")
    return sorted((k, v or k) for k, v in names.items())
