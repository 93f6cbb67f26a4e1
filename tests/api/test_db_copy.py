"""``wangge db copy``: a SQLite workspace moves to another database losslessly (PostgreSQL on PG runs)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import shapely
from flask import Flask
from sqlalchemy import select, update

from api import db
from api.cli import main
from api.dbcopy import copy_database, fingerprint, fingerprints
from api.models import Building, PlanVersion, User
from tests.api.plans_helpers import seed_district
from tests.databases import fresh_database


@pytest.fixture
def sqlite_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    """A workspace on a SQLite file (the embedded default being moved), with layers, users and a plan."""
    from api import create_app
    from api.users import create_user

    monkeypatch.setenv("WANGGE_SECRET_KEY", "test-secret")
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"),
                      "DATABASE_URL": f"sqlite:///{tmp_path / 'source.db'}"})
    seed_district(app, 120)
    with app.app_context(), db.session_scope() as s:
        create_user(s, "zhang_san", "pw-123456789", role="planner")
        s.add(PlanVersion(name="方案一", author="zhang_san", settings={"规模": [1, 2.5, None]}, message="含\"引号\"与换行\n"))
    yield app
    db.dispose(app)


@pytest.fixture
def target_url(tmp_path: Path) -> Iterator[str]:
    """An empty database: PostgreSQL + PostGIS on PG runs (not yet migrated), else a second SQLite file."""
    with fresh_database(tmp_path, "target.db", migrated=False) as url:
        yield url


def test_copy_is_lossless_and_prints_the_comparison(sqlite_app: Flask, target_url: str) -> None:
    result = sqlite_app.test_cli_runner().invoke(main, ["db", "copy", "--to", target_url])
    assert result.exit_code == 0, result.output
    assert "一致 / identical" in result.output
    assert "DIFFERENT" not in result.output
    buildings = next(line for line in result.output.splitlines() if line.startswith("buildings "))
    assert buildings.split()[1:3] == ["120", "120"] and buildings.endswith("OK")
    source = db.get_db(sqlite_app).engine
    target = db.make_engine(target_url)
    try:
        with source.connect() as a, target.connect() as b:
            assert fingerprints(a) == fingerprints(b)
            poly = a.execute(select(Building.geometry).where(Building.building_id == "B0000007")).scalar_one()
            copied = b.execute(select(Building.geometry).where(Building.building_id == "B0000007")).scalar_one()
            plan = b.execute(select(PlanVersion.settings, PlanVersion.message)).one()
        assert shapely.equals_exact(poly, copied, tolerance=0) and copied.wkb == poly.wkb
        assert plan == ({"规模": [1, 2.5, None]}, "含\"引号\"与换行\n")
        with target.begin() as b:  # ids continue after the copied ones (sequences restarted on PostgreSQL)
            b.execute(User.__table__.insert().values(username="new", role="viewer", password_hash="x",
                                                     active=True, session_token="t"))
            ids = b.execute(select(User.id).order_by(User.id)).scalars().all()
        assert ids == sorted(set(ids)) and len(ids) == 2
    finally:
        target.dispose()


def test_a_non_empty_target_is_refused_unless_forced(sqlite_app: Flask, target_url: str) -> None:
    runner = sqlite_app.test_cli_runner()
    assert runner.invoke(main, ["db", "copy", "--to", target_url]).exit_code == 0
    target = db.make_engine(target_url)
    try:
        with target.begin() as conn:
            conn.execute(update(Building).where(Building.building_id == "B0000001").values(name="目标里改过"))
        refused = runner.invoke(main, ["db", "copy", "--to", target_url])
        assert refused.exit_code == 2
        assert "refused, nothing changed" in refused.output and "--force" in refused.output
        with target.connect() as conn:
            kept = conn.execute(select(Building.name).where(Building.building_id == "B0000001")).scalar_one()
        assert kept == "目标里改过"
        forced = runner.invoke(main, ["db", "copy", "--to", target_url, "--force"])
        assert forced.exit_code == 0, forced.output
        with target.connect() as conn:
            name = conn.execute(select(Building.name).where(Building.building_id == "B0000001")).scalar_one()
            count = conn.execute(select(Building.fid)).all()
        assert name != "目标里改过" and len(count) == 120
    finally:
        target.dispose()


def test_fingerprints_see_a_moved_vertex_and_a_changed_value(sqlite_app: Flask, target_url: str) -> None:
    source = db.get_db(sqlite_app).engine
    target = db.make_engine(target_url)
    try:
        assert copy_database(source, target).equal
        table = Building.__table__
        with target.connect() as conn:
            same = fingerprint(conn, table)
        with target.begin() as conn:
            geom = conn.execute(select(Building.geometry).where(Building.building_id == "B0000003")).scalar_one()
            moved = shapely.transform(geom, lambda xy: xy + [1e-9, 0])
            conn.execute(update(Building).where(Building.building_id == "B0000003").values(geometry=moved))
            changed = fingerprint(conn, table)
        with target.begin() as conn:
            conn.execute(update(Building).where(Building.building_id == "B0000003").values(geometry=geom, floors=99))
            other = fingerprint(conn, table)
    finally:
        target.dispose()
    assert changed.rows == same.rows and changed.geometry_checksum != same.geometry_checksum
    assert changed.checksum != same.checksum
    assert other.geometry_checksum == same.geometry_checksum and other.checksum != same.checksum
