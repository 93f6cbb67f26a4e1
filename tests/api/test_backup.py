"""``wangge backup`` / ``wangge restore`` on the run's backend (SQLite, or PostgreSQL on PG runs)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from api import db
from api.backup import BackupError, backup, manifest_path, pg_tool, restore
from api.cli import main
from api.dbcopy import TargetNotEmpty, fingerprints
from api.models import AuditEntry, Building
from tests.api.plans_helpers import seed_district
from tests.databases import fresh_database


@pytest.fixture
def seeded(app: Flask) -> Flask:
    seed_district(app, 150)
    return app


def _audit_rows(app: Flask, stop: threading.Event, written: list[int]) -> None:
    """Keep writing while the backup runs (the app stays in service)."""
    with app.app_context():
        while not stop.is_set():
            with db.session_scope() as s:
                s.add(AuditEntry(username="writer", action="test.write", target=str(len(written)), detail={}))
            written.append(1)


def test_backup_while_writing_restores_equal_to_its_manifest(seeded: Flask, tmp_path: Path) -> None:
    stop, written = threading.Event(), []
    writer = threading.Thread(target=_audit_rows, args=(seeded, stop, written))
    writer.start()
    try:
        while len(written) < 5:
            stop.wait(0.01)
        result = seeded.test_cli_runner().invoke(main, ["backup", "-o", str(tmp_path / "b" / "wangge.backup")])
        after_backup = len(written)
        while len(written) < after_backup + 3:  # writes go on after the snapshot
            stop.wait(0.01)
    finally:
        stop.set()
        writer.join(timeout=30)
    assert result.exit_code == 0, result.output
    assert "备份完成 / backup done" in result.output
    manifest = json.loads(manifest_path(tmp_path / "b" / "wangge.backup").read_text(encoding="utf-8"))
    counts = {t["table"]: t["rows"] for t in manifest["tables"]}
    # one audit row of the import, then a prefix of the writer's rows: never a torn snapshot
    assert counts["buildings"] == 150 and 5 <= counts["audit_log"] - 1 < len(written)
    with fresh_database(tmp_path, "restored.db", migrated=False) as url:
        engine = db.make_engine(url)
        try:
            got = restore(engine, tmp_path / "b" / "wangge.backup")
            with engine.connect() as conn:
                audit = conn.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
        finally:
            engine.dispose()
    assert got.equal and got.found == got.expected
    assert audit == counts["audit_log"]


def test_restore_through_the_cli_refuses_a_non_empty_database_unless_forced(
        seeded: Flask, runner: FlaskCliRunner, tmp_path: Path) -> None:
    path = tmp_path / "snap.backup"
    assert runner.invoke(main, ["backup", "-o", str(path)]).exit_code == 0
    engine = db.get_db(seeded).engine
    with engine.begin() as conn:
        conn.execute(Building.__table__.delete().where(Building.building_id == "B0000002"))
    refused = runner.invoke(main, ["restore", str(path)])
    assert refused.exit_code == 2 and "--force" in refused.output
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Building)).scalar_one() == 149
    done = runner.invoke(main, ["restore", str(path), "--force"])
    assert done.exit_code == 0, done.output
    assert "一致 / identical" in done.output
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Building)).scalar_one() == 150
        names = conn.execute(select(Building.building_id)).scalars().all()
    assert "B0000002" in names


def test_restore_needs_the_manifest_and_the_same_backend(seeded: Flask, tmp_path: Path) -> None:
    engine = db.get_db(seeded).engine
    path = tmp_path / "x.backup"
    made = backup(engine, path)
    with engine.connect() as conn:
        assert made.tables == fingerprints(conn)
    manifest = manifest_path(path)
    text = manifest.read_text(encoding="utf-8")
    manifest.unlink()
    with pytest.raises(BackupError, match="manifest.json is missing beside x.backup"):
        restore(engine, path, force=True)
    other = "postgresql" if engine.dialect.name == "sqlite" else "sqlite"
    manifest.write_text(text.replace(f'"backend": "{engine.dialect.name}"', f'"backend": "{other}"'), encoding="utf-8")
    with pytest.raises(BackupError, match=f"is a {other} backup and the database is {engine.dialect.name}"):
        restore(engine, path, force=True)
    manifest.write_text(text, encoding="utf-8")
    with pytest.raises(TargetNotEmpty, match="already holds rows in .*buildings"):
        restore(engine, path)


def test_pg_tools_older_than_the_server_are_refused() -> None:
    with pytest.raises(BackupError, match="no pg_dump of version 99 or newer .* postgresql-client-99"):
        pg_tool("pg_dump", 99)
