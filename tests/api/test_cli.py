"""The ``wangge`` command line: import, demo, users, db (through Flask's CLI runner)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from api import db
from api.cli import main
from api.models import AuditEntry, ImportRun, User
from api.users import DEMO_PASSWORD, verify_password
from api.workspace import load_layer, workspace_stats


def _write_layers(folder: Path, *, duplicate_id: bool = False) -> dict[str, Path]:
    ids = ["B1", "B2", "B2" if duplicate_id else "B3"]
    buildings = gpd.GeoDataFrame(
        {"楼号": ids, "户数": [120, 80, 60], "use": ["residential"] * 3},
        geometry=[shapely.box(121.0001 + i * 0.001, 31.0001, 121.0005 + i * 0.001, 31.0004) for i in range(3)],
        crs=4326,
    )
    communities = gpd.GeoDataFrame(
        {"community_id": ["C1"], "name": ["梅园社区"]},
        geometry=[shapely.box(121.0, 31.0, 121.01, 31.01)],
        crs=4326,
    )
    paths = {"buildings": folder / "楼栋.geojson", "communities": folder / "communities.gpkg"}
    buildings.to_file(paths["buildings"], driver="GeoJSON")
    communities.to_file(paths["communities"], layer="社区", driver="GPKG")
    return paths


def _import_args(paths: dict[str, Path]) -> list[str]:
    return ["import", "--buildings", str(paths["buildings"]), "--communities", str(paths["communities"]),
            "--layer", "communities=社区", "--field", "buildings:楼号=building_id",
            "--field", "buildings:户数=households"]


def test_import_small_files_succeeds(app: Flask, runner: FlaskCliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, _import_args(_write_layers(tmp_path)))
    assert result.exit_code == 0, result.output
    assert "导入完成 / import done" in result.output
    with app.app_context(), db.session_scope() as s:
        buildings = load_layer(s, "buildings")
        run = s.scalars(select(ImportRun)).one()
    assert buildings["building_id"].tolist() == ["B1", "B2", "B3"]
    assert buildings["households"].tolist() == [120, 80, 60]
    assert buildings["community_id"].tolist() == ["C1"] * 3
    assert (run.status, run.sources["fields"]["buildings"]["户数"]) == ("success", "households")


def test_bad_import_exits_2_lists_problems_and_writes_nothing(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(main, _import_args(_write_layers(tmp_path, duplicate_id=True)))
    assert result.exit_code == 2, result.output
    assert "导入失败，未写入任何数据 / import failed, nothing was written" in result.output
    assert "buildings #B2" in result.output
    with app.app_context(), db.session_scope() as s:
        assert workspace_stats(s)["empty"]
        assert s.scalar(select(func.count()).select_from(ImportRun)) == 0


def test_import_requires_buildings_and_well_formed_options(runner: FlaskCliRunner, tmp_path: Path) -> None:
    paths = _write_layers(tmp_path)
    missing = runner.invoke(main, ["import", "--communities", str(paths["communities"])])
    assert missing.exit_code == 2 and "--buildings" in missing.output
    bad_field = runner.invoke(main, ["import", "--buildings", str(paths["buildings"]), "--field", "楼号=building_id"])
    assert bad_field.exit_code == 2 and "start with a layer" in bad_field.output


def test_demo_builds_then_if_missing_skips(app: Flask, runner: FlaskCliRunner) -> None:
    first = runner.invoke(main, ["demo", "--buildings", "1000"])
    assert first.exit_code == 0, first.output
    assert "合成演示数据（程序生成的街道，非真实数据，仅供演示）" in first.output and DEMO_PASSWORD in first.output
    assert "暂不生成演示巡查轨迹" in first.output  # no plan yet: the patrol demo says how to run it later
    with app.app_context(), db.session_scope() as s:
        stats = workspace_stats(s)
        run = s.scalars(select(ImportRun)).one()
        planner = s.scalars(select(User).where(User.username == "planner")).one()
        assert verify_password(planner, DEMO_PASSWORD)
    assert stats["counts"]["buildings"] == 1000
    assert run.sources["kind"] == "synthetic" and "合成演示数据" in run.note

    second = runner.invoke(main, ["demo", "--buildings", "1000", "--if-missing"])
    assert second.exit_code == 0 and "skipped (--if-missing)" in second.output
    refused = runner.invoke(main, ["demo", "--buildings", "1000"])
    assert refused.exit_code == 1 and "--force" in refused.output
    with app.app_context(), db.session_scope() as s:
        assert s.scalar(select(func.count()).select_from(ImportRun)) == 1


def _tiny_pbf(path: Path) -> Path:
    import osmium
    from osmium.osm.mutable import Node, Way

    x, y = 121.495, 31.25
    writer = osmium.SimpleWriter(str(path))
    try:
        for i, (dx, dy) in enumerate([(0, 0), (4, 0), (4, 3), (0, 3), (10, 0), (14, 0), (14, 3), (10, 3)]):
            writer.add_node(Node(id=i + 1, location=(x + dx * 1e-4, y + dy * 1e-4)))
        writer.add_node(Node(id=20, location=(x, y - 5e-4)))
        writer.add_node(Node(id=21, location=(x + 0.002, y - 5e-4)))
        writer.add_node(Node(id=30, location=(x + 6e-4, y + 8e-4), tags={"amenity": "kindergarten"}))
        writer.add_way(Way(id=100, nodes=[1, 2, 3, 4, 1], tags={"building": "apartments", "building:levels": "6"}))
        writer.add_way(Way(id=101, nodes=[5, 6, 7, 8, 5], tags={"building": "residential"}))
        writer.add_way(Way(id=200, nodes=[20, 21], tags={"highway": "primary", "name": "东大名路"}))
    finally:
        writer.close()
    return path


def test_demo_from_osm_is_labelled_approximate(app: Flask, runner: FlaskCliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["demo", "--osm", str(_tiny_pbf(tmp_path / "tiny.osm.pbf"))])
    assert result.exit_code == 0, result.output
    assert "approximate communities" in result.output and "社区边界为近似" in result.output
    with app.app_context(), db.session_scope() as s:
        run = s.scalars(select(ImportRun)).one()
        buildings = load_layer(s, "buildings")
    assert run.sources["kind"] == "osm" and "communities approximated" in run.note
    assert sorted(buildings["building_id"]) == ["w100", "w101"]


def test_users_commands(app: Flask, runner: FlaskCliRunner) -> None:
    created = runner.invoke(main, ["users", "create", "zhang", "--role", "worker", "--name", "张三",
                                   "--password-stdin"], input="patrol2026ok\n")
    assert created.exit_code == 0, created.output
    weak = runner.invoke(main, ["users", "create", "li", "--role", "viewer", "--password-stdin"], input="short\n")
    assert weak.exit_code == 1 and "at least 8 characters" in weak.output
    duplicate = runner.invoke(main, ["users", "create", "zhang", "--role", "viewer", "--password-stdin"],
                              input="another2026\n")
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output
    changed = runner.invoke(main, ["users", "set-password", "zhang", "--password-stdin"], input="newpass2026\n")
    disabled = runner.invoke(main, ["users", "disable", "zhang"])
    listed = runner.invoke(main, ["users", "list"])
    assert (changed.exit_code, disabled.exit_code) == (0, 0)
    assert "zhang" in listed.output and "张三" in listed.output and " no " in listed.output
    with app.app_context(), db.session_scope() as s:
        user = s.scalars(select(User)).one()
        assert verify_password(user, "newpass2026") and not user.active
    enabled = runner.invoke(main, ["users", "enable", "zhang"])
    with app.app_context(), db.session_scope() as s:
        user = s.scalars(select(User)).one()
        actions = s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert enabled.exit_code == 0 and user.active
    assert actions == ["user.create", "user.set_password", "user.disable", "user.enable"]


def test_db_commands(runner: FlaskCliRunner) -> None:
    upgraded = runner.invoke(main, ["db", "upgrade"])
    current = runner.invoke(main, ["db", "current"])
    head = db.head_revision()
    assert upgraded.exit_code == 0 and f"revision {head}" in upgraded.output
    assert current.output.startswith(f"{head} ")


@pytest.mark.parametrize("command", ["import", "demo", "serve", "users", "db"])
def test_help_is_available(runner: FlaskCliRunner, command: str) -> None:
    result = runner.invoke(main, [command, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output


def test_serve_answers_http_on_the_given_port(tmp_path: Path) -> None:
    """`wangge serve` really listens (app.run() would be a silent no-op under the Flask CLI)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "WANGGE_INSTANCE_PATH": str(tmp_path / "instance")}
    wangge = Path(sys.executable).with_name("wangge")
    proc = subprocess.Popen([str(wangge), "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as r:
                    body = json.loads(r.read())
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "wangge serve did not answer within 60 s"
                time.sleep(0.3)
        assert body["status"] == "ok"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert f"http://127.0.0.1:{port}/" in out and "workspace is empty" in out
