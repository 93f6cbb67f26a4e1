"""Transactional import of prepared layers and loading them back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from flask import Flask
from sqlalchemy import inspect, select

from api import db, workspace
from api.models import AuditEntry, ImportRun
from api.workspace import import_workspace, load_layer, workspace_stats
from geo.errors import LayerError


@dataclass
class FakeReport:
    issues: tuple = ()
    warnings: tuple = ()
    repaired: tuple = ()

    def to_records(self) -> list[dict[str, Any]]:
        return [{"code": "x"} for _ in self.issues]

    def summary(self) -> dict[str, int]:
        return {"x": len(self.issues)} if self.issues else {}


@dataclass
class FakePrepared:
    layers: dict[str, gpd.GeoDataFrame]
    report: FakeReport = field(default_factory=FakeReport)


def _district(n: int, *, prefix: str = "B", seed: int = 7) -> FakePrepared:
    rng = np.random.default_rng(seed)
    x = 121.0 + rng.random(n) * 0.01
    y = 31.0 + rng.random(n) * 0.01
    buildings = gpd.GeoDataFrame(
        {
            "building_id": [f"{prefix}{i}" for i in range(n)],
            "name": pd.Series([f"{i}号楼" if i % 3 else None for i in range(n)], dtype="str"),
            "use": ["residential"] * n,
            "floors": pd.array([int(f) if i % 4 else None for i, f in enumerate(rng.integers(1, 30, n))], dtype="Int64"),
            "height_m": np.where(np.arange(n) % 5 == 0, np.nan, rng.random(n) * 80),
            "households": pd.array(rng.integers(0, 200, n), dtype="Int64"),
            "households_estimated": pd.array([bool(i % 2) for i in range(n)], dtype="boolean"),
            "compound_id": ["P1"] * n,
            "community_id": ["C1" if i % 2 else "C2" for i in range(n)],
        },
        geometry=shapely.box(x, y, x + 0.0002, y + 0.0001),
        crs=4326,
    )
    communities = gpd.GeoDataFrame(
        {"community_id": ["C1", "C2"], "name": ["梅园社区", "兰苑社区"], "admin_code": ["310101001001", None]},
        geometry=[shapely.box(121.0, 31.0, 121.005, 31.011), shapely.box(121.005, 31.0, 121.011, 31.011)],
        crs=4326,
    )
    streets = gpd.GeoDataFrame(
        {"street_id": ["S1"], "name": ["南京路"], "road_class": ["major"], "foot": [True]},
        geometry=[shapely.LineString([(121.0, 31.005), (121.011, 31.005)])],
        crs=4326,
    )
    return FakePrepared({"communities": communities, "buildings": buildings, "streets": streets})


def test_round_trip_load_equals_imported(app: Flask) -> None:
    prepared = _district(500)
    with app.app_context():
        with db.session_scope() as s:
            summary = import_workspace(s, prepared, user="tester", sources={"buildings": "b.gpkg"})
        with db.session_scope() as s:
            loaded = load_layer(s, "buildings")
            run = s.get(ImportRun, summary.import_run_id)
            audits = s.scalars(select(AuditEntry)).all()
    given = prepared.layers["buildings"]
    assert summary.counts == {"communities": 2, "buildings": 500, "streets": 1}
    assert loaded["building_id"].tolist() == given["building_id"].tolist()
    assert loaded["households"].tolist() == given["households"].tolist()
    assert loaded["floors"].isna().tolist() == given["floors"].isna().tolist()
    assert loaded["name"].fillna("-").tolist() == given["name"].fillna("-").tolist()
    np.testing.assert_allclose(loaded["height_m"], given["height_m"])
    assert loaded["households_estimated"].tolist() == given["households_estimated"].tolist()
    assert shapely.equals(loaded.geometry.to_numpy(), given.geometry.to_numpy()).all()
    assert loaded.crs.to_epsg() == 4326
    assert (run.status, run.username, run.counts["buildings"], run.sources) == (
        "success", "tester", 500, {"buildings": "b.gpkg"})
    assert [(a.action, a.username, a.detail["import_run_id"]) for a in audits] == [
        ("workspace.import", "tester", summary.import_run_id)]


def test_large_import_rebuilds_indexes_and_keeps_uniqueness(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workspace, "REBUILD_INDEXES_FROM", 10)
    monkeypatch.setattr(workspace, "INSERT_CHUNK", 7)
    prepared = _district(50)
    with app.app_context():
        with db.session_scope() as s:
            import_workspace(s, prepared, user="t", sources={})
        with db.get_db().engine.connect() as conn:
            indexes = {ix["name"] for ix in inspect(conn).get_indexes("buildings")}
        with db.session_scope() as s:
            assert len(load_layer(s, "buildings")) == 50
    assert {"ix_buildings_bbox", "ix_buildings_building_id", "ix_buildings_community_id"} <= indexes


def test_failure_midway_leaves_previous_workspace_intact(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    with app.app_context():
        with db.session_scope() as s:
            first = import_workspace(s, _district(30, prefix="OLD"), user="t", sources={})
        calls = {"n": 0}
        real = workspace._executemany

        def failing(*args: Any, **kwargs: Any) -> None:
            calls["n"] += 1
            if calls["n"] == 2:  # communities went in, buildings fail
                raise OSError("disk full")
            real(*args, **kwargs)

        monkeypatch.setattr(workspace, "_executemany", failing)
        with pytest.raises(OSError, match="disk full"), db.session_scope() as s:
            import_workspace(s, _district(40, prefix="NEW"), user="t", sources={})
        with db.session_scope() as s:
            ids = load_layer(s, "buildings")["building_id"]
            runs = s.scalars(select(ImportRun)).all()
            audits = s.scalars(select(AuditEntry)).all()
    assert calls["n"] == 2
    assert len(ids) == 30 and ids.str.startswith("OLD").all()
    assert [(r.id, r.status) for r in runs] == [(first.import_run_id, "success")]
    assert len(audits) == 1


def test_append_adds_rows_and_refuses_existing_ids(app: Flask) -> None:
    with app.app_context():
        with db.session_scope() as s:
            import_workspace(s, FakePrepared({"buildings": _district(10, prefix="A").layers["buildings"]}),
                             user="t", sources={})
        with db.session_scope() as s:
            import_workspace(s, FakePrepared({"buildings": _district(5, prefix="B").layers["buildings"]}),
                             user="t", sources={}, replace=False)
        with pytest.raises(LayerError, match=r"layer buildings: 5 id\(s\) already in the workspace, e.g. #B0"), \
                db.session_scope() as s:
            import_workspace(s, FakePrepared({"buildings": _district(5, prefix="B").layers["buildings"]}),
                             user="t", sources={}, replace=False)
        with db.session_scope() as s:
            assert workspace_stats(s)["counts"]["buildings"] == 15


def test_load_layer_filters_by_bbox_community_and_columns(app: Flask) -> None:
    prepared = _district(200)
    given = prepared.layers["buildings"]
    bbox = (121.0, 31.0, 121.004, 31.004)
    with app.app_context():
        with db.session_scope() as s:
            import_workspace(s, prepared, user="t", sources={})
        with db.session_scope() as s:
            in_box = load_layer(s, "buildings", bbox=bbox)
            c1 = load_layer(s, "buildings", community_id="C1", columns=["households"])
            empty = load_layer(s, "buildings", community_id=["nowhere"])
    expected = given[given.intersects(shapely.box(*bbox))]["building_id"]
    assert sorted(in_box["building_id"]) == sorted(expected)
    assert list(c1.columns) == ["building_id", "households", "geometry"]
    assert c1["building_id"].tolist() == given.loc[given["community_id"] == "C1", "building_id"].tolist()
    assert len(empty) == 0 and empty.crs.to_epsg() == 4326


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "parcels"}, "unknown layer 'parcels'"),
        ({"kind": "buildings", "columns": ["colour"]}, r"no column\(s\) \['colour'\]"),
        ({"kind": "streets", "community_id": "C1"}, "layer streets has no community_id"),
    ],
)
def test_load_layer_rejects_bad_requests(session: Any, kwargs: dict, message: str) -> None:
    with pytest.raises(LayerError, match=message):
        load_layer(session, **kwargs)


def test_layers_must_be_wgs84_with_geometry(session: Any) -> None:
    layer = _district(3).layers["buildings"]
    with pytest.raises(LayerError, match="layer buildings: stored layers must be in EPSG:4326"):
        import_workspace(session, FakePrepared({"buildings": layer.to_crs(32651)}), user="t", sources={})
    broken = layer.copy()
    broken.loc[1, "geometry"] = None
    with pytest.raises(LayerError, match="1 feature\\(s\\) without geometry, e.g. #B1"):
        import_workspace(session, FakePrepared({"buildings": broken}), user="t", sources={})


def test_workspace_stats(app: Flask) -> None:
    prepared = _district(20)
    with app.app_context():
        with db.session_scope() as s:
            assert workspace_stats(s)["empty"] is True
            import_workspace(s, prepared, user="t", sources={}, note="synthetic")
        with db.session_scope() as s:
            stats = workspace_stats(s)
    b = prepared.layers["buildings"]
    assert stats["counts"]["buildings"] == 20 and stats["empty"] is False
    assert stats["households"] == int(b["households"].sum())
    np.testing.assert_allclose(stats["bbox"], b.total_bounds)
    assert stats["last_import"]["note"] == "synthetic"
