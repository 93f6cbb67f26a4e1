"""Shared helpers of the active-grid and register tests: a district with a published plan."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask

from api.db import session_scope
from tests.api.plans_helpers import district_app


def publish_partition(app: Flask, *, seed: int = 42, name: str = "测试方案") -> int:
    """Partition the app's workspace synchronously, store it and publish it; the plan id."""
    from api.models import PlanVersion
    from api.plans.store import publish, save_partition
    from api.workspace import load_layer
    from geo.partition import partition_grids

    settings = app.config["WANGGE"]
    with app.app_context(), session_scope() as s:
        layers = {k: load_layer(s, k) for k in ("buildings", "communities", "streets", "compounds")}
    result = partition_grids(layers["buildings"], layers["communities"], streets=layers["streets"],
                             compounds=layers["compounds"], seed=seed, workers=1,
                             code_scheme=settings["grid_code_scheme"])
    with app.app_context(), session_scope() as s:
        plan = save_partition(s, result, name=name, author="test", settings={})
        publish(s, s.get(PlanVersion, plan.id), user="test")
        return plan.id


@contextmanager
def published_app(tmp: Path, n_buildings: int = 1200, *, settings: dict[str, Any] | None = None) -> Iterator[Flask]:
    """A fresh app whose synthetic workspace has one published plan."""
    with district_app(tmp, n_buildings, settings=settings) as app:
        publish_partition(app)
        yield app


def grid_point(app: Flask) -> tuple[float, float]:
    """Lon/lat of a point inside the first active grid (its representative point)."""
    from api.grids.service import active_grids

    with app.app_context(), session_scope() as s:
        p = active_grids(s).geometry.iloc[0].representative_point()
    return p.x, p.y


def serve_first_grid(app: Flask, username: str, *, name: str, phone: str) -> str:
    """Make the existing user *username* the 网格员 (staff *name*, *phone*) of the first active grid; its code."""
    from sqlalchemy import select

    from api.grids.service import active_grids
    from api.models import User
    from api.register.models import Staff

    with app.app_context(), session_scope() as s:
        user = s.scalar(select(User).where(User.username == username))
        assert user is not None, f"no user {username!r}: log in as it first"
        key = str(active_grids(s)["key"].iloc[0])
        s.add(Staff(name=name, phone=phone, role="grid_worker", grid_code=key, user_id=user.id))
    return key
