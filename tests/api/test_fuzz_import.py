"""Fuzzing ``wangge import`` with files that fail validation: nothing is half-written.

A workspace is imported, then hypothesis builds building files (random ids, households, floors
and geometries, in UTF-8 / BOM / GBK / GB18030) that each carry at least one blocking problem.
Every such import exits with code 2, lists its problems without a traceback, and leaves every
workspace table, the import log and the audit log exactly as they were.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from api import db
from api.cli import main
from api.models import LAYER_MODELS, AuditEntry, ImportRun

X0, Y0 = 121.0, 31.0
MODELS = [*LAYER_MODELS.values(), ImportRun, AuditEntry]


def _box(i: int) -> dict[str, Any]:
    x, y = X0 + 0.0001 + (i % 20) * 0.0005, Y0 + 0.0001 + (i // 20) * 0.0005
    return {"type": "Polygon", "coordinates": [[[x, y], [x + 4e-4, y], [x + 4e-4, y + 3e-4], [x, y + 3e-4], [x, y]]]}


def _collection(rows: list[tuple[Any, Any, Any, dict | None]]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"building_id": bid, "households": hh, "floors": fl}, "geometry": geom}
        for bid, hh, fl, geom in rows]}


def _counts(app: Flask) -> dict[str, int]:
    with app.app_context(), db.session_scope() as s:
        return {m.__tablename__: s.scalar(select(func.count()).select_from(m)) for m in MODELS}


@pytest.fixture
def seeded(app: Flask, runner: FlaskCliRunner, tmp_path: Path) -> dict[str, int]:
    """A workspace of 12 buildings imported through the CLI; the table counts it left."""
    path = tmp_path / "good.geojson"
    path.write_text(json.dumps(_collection([(f"B{i}", 10 + i, 6, _box(i)) for i in range(12)])), encoding="utf-8")
    result = runner.invoke(main, ["import", "--buildings", str(path)])
    assert result.exit_code == 0, result.output
    counts = _counts(app)
    assert counts["buildings"] == 12 and counts["import_runs"] == 1
    return counts


text = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
value = st.one_of(st.none(), text, st.integers(-10**6, 10**6), st.floats(-1e6, 1e6),
                  st.sampled_from(["12", "abc", "", "1e3"]))
ok_row = st.builds(lambda i, hh, fl: (f"R{i}", hh, fl, _box(i)), st.integers(0, 300),
                   st.one_of(st.none(), st.integers(0, 200)), st.one_of(st.none(), st.integers(1, 30)))
#: each one a blocking problem of the validation catalogue
bad_row = st.one_of(
    st.builds(lambda i, hh: ("B1", hh, 6, _box(i)), st.integers(0, 300), value),  # with B1 below: duplicate id
    st.builds(lambda i, hh: (f"N{i}", hh, 6, _box(i)), st.integers(0, 300), st.integers(-10**6, -1)),
    st.builds(lambda i, c: (f"C{i}{c}x", 5, 6, _box(i)), st.integers(0, 300), st.sampled_from(["\n", "\x00", "\t", "\x1f"])),
    st.builds(lambda i: ("L" * 5000, 5, 6, _box(i)), st.integers(0, 300)),
    st.builds(lambda i: (f"H{i}", 10**12, 6, _box(i)), st.integers(0, 300)),
    st.builds(lambda i: (f"F{i}", 5, "abc", _box(i)), st.integers(0, 300)),
    st.builds(lambda i: (f"E{i}", 5, 6, None), st.integers(0, 300)),
    st.just(("INF", 5, 6, {"type": "Polygon", "coordinates": [[[X0, Y0], [X0 + 1e-4, Y0], [X0, math.inf], [X0, Y0]]]})),
)


@settings(max_examples=25, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rows=st.lists(ok_row, max_size=5), bad=st.lists(bad_row, min_size=1, max_size=3),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "gbk", "gb18030"]))
def test_failed_import_writes_nothing(app: Flask, runner: FlaskCliRunner, tmp_path: Path, seeded: dict[str, int],
                                      rows: list[tuple], bad: list[tuple], encoding: str) -> None:
    doc = _collection([("B1", 10, 6, _box(0)), *rows, *bad])
    path = tmp_path / "楼栋.geojson"
    path.write_bytes(json.dumps(doc, ensure_ascii=False, allow_nan=True).encode(encoding, errors="replace"))
    result = runner.invoke(main, ["import", "--buildings", str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit), result.output
    assert "nothing was written" in result.output or "未写入" in result.output, result.output
    assert _counts(app) == seeded
