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
