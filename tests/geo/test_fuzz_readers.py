"""Fuzzing the readers and the validation catalogue with hypothesis.

Files built from random geometries (valid, self-intersecting, empty, NaN/inf, huge, wrongly
nested), random attribute values (control characters, long strings, numbers as strings, nulls)
and encodings (UTF-8, BOM, GBK, GB18030): ``read_layer`` returns a GeoDataFrame or raises a
``WanggeError`` with a message, never anything else. Random building layers through
``validate_layer`` / ``prepare_layers``: a report or ``ValidationFailed`` whose every issue names
a layer and a fix. Seeded (derandomize) and bounded so the module runs in seconds.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import shapely
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from geo.errors import ValidationFailed, WanggeError
from geo.prepare import prepare_layers
from geo.readers import read_layer
from geo.validate import validate_layer

FUZZ = settings(max_examples=100, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
X0, Y0 = 121.495, 31.25  # North Bund, Shanghai
ENCODINGS = ("utf-8", "utf-8-sig", "gbk", "gb18030")

# --- values -------------------------------------------------------------------------------

_odd_floats = st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 1e12, 0.0, -0.0])
_near = st.tuples(st.floats(-0.01, 0.01), st.floats(-0.01, 0.01)).map(lambda d: [X0 + d[0], Y0 + d[1]])
_wild = st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), _odd_floats), min_size=2, max_size=3)
coordinate = st.one_of(_near, _near, _wild)
#: any text hypothesis can encode in GB18030 (no lone surrogates), control characters included
text = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
attribute = st.one_of(
    st.none(), text, st.text(max_size=3).map(lambda s: s * 2000), st.integers(-10**20, 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["12", "1e3", "-5", "NaN", "inf", " 7 ", "十二", "0x10", ""]),
    st.booleans(), st.lists(st.integers(), max_size=2),
)
properties = st.one_of(st.none(), st.dictionaries(
    st.one_of(st.sampled_from(["building_id", "households", "floors", "name", "楼号", "户数"]), text),
    attribute, max_size=5))

# --- GeoJSON geometries --------------------------------------------------------------------

ring = st.lists(coordinate, min_size=0, max_size=6).map(lambda r: r + r[:1])


def _box(d: tuple[float, float]) -> list[list[float]]:
    x, y = X0 + d[0], Y0 + d[1]
    return [[x, y], [x + 0.0004, y], [x + 0.0004, y + 0.0003], [x, y + 0.0003], [x, y]]


def _bow_tie(d: tuple[float, float]) -> list[list[float]]:
    x, y = X0 + d[0], Y0 + d[1]
    return [[x, y], [x + 0.0004, y + 0.0003], [x + 0.0004, y], [x, y + 0.0003], [x, y]]


offset = st.tuples(st.floats(-0.01, 0.01), st.floats(-0.01, 0.01))
geometry = st.one_of(
    offset.map(lambda d: {"type": "Polygon", "coordinates": [_box(d)]}),
    offset.map(lambda d: {"type": "Polygon", "coordinates": [_bow_tie(d)]}),
    st.lists(ring, max_size=2).map(lambda rings: {"type": "Polygon", "coordinates": rings}),
    st.lists(st.lists(ring, max_size=2), max_size=2).map(lambda p: {"type": "MultiPolygon", "coordinates": p}),
    coordinate.map(lambda c: {"type": "Point", "coordinates": c}),
    st.lists(coordinate, max_size=4).map(lambda c: {"type": "LineString", "coordinates": c}),
    coordinate.map(lambda c: {"type": "Polygon", "coordinates": c}),  # wrong nesting
    offset.map(lambda d: {"type": "Polygon", "coordinates": _box(d)}),  # one level short
    st.sampled_from([None, {}, {"type": "Polygon"}, {"type": "Polygon", "coordinates": []},
                     {"type": "GeometryCollection", "geometries": []}, {"type": "Blob", "coordinates": [1, 2]}]),
)
feature = st.builds(lambda g, p: {"type": "Feature", "geometry": g, "properties": p}, geometry, properties)
collection = st.builds(lambda fs: {"type": "FeatureCollection", "features": fs}, st.lists(feature, max_size=6))


def _write(path: Path, content: str, encoding: str) -> Path:
    path.write_bytes(content.encode(encoding, errors="replace"))
    return path


def _read_or_refuse(path: Path, **kwargs: Any) -> gpd.GeoDataFrame | None:
    """The property: a GeoDataFrame, or a WanggeError with a message; anything else fails the test."""
    try:
        gdf = read_layer(path, kind="buildings", **kwargs)
    except WanggeError as exc:
        assert str(exc).strip(), f"{type(exc).__name__} without a message"
        return None
    assert isinstance(gdf, gpd.GeoDataFrame)
    assert gdf.crs is not None and gdf.crs.to_epsg() == 4326
    return gdf


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz_readers")


def _one(geometry: dict | None, properties: dict | None = None) -> dict:
    return {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": geometry,
                                                       "properties": properties}]}


#: found by this module: a two-point ring raised shapely's GEOSException (a traceback)
TWO_POINT_RING = _one({"type": "Polygon", "coordinates": [[[X0, Y0], [X0, Y0]]]})
#: found by this module: GDAL's "Non closed ring detected" escaped as a stray RuntimeWarning
UNCLOSED_RING = _one({"type": "Polygon", "coordinates": [[[X0, Y0], [X0 + 1e-4, Y0], [X0, Y0 + 1e-4]]]})


@FUZZ
@given(doc=collection, encoding=st.sampled_from(ENCODINGS), allow_nan=st.booleans())
@example(doc=TWO_POINT_RING, encoding="utf-8", allow_nan=False)
@example(doc=TWO_POINT_RING, encoding="gbk", allow_nan=False)
@example(doc=UNCLOSED_RING, encoding="utf-8", allow_nan=False)
def test_geojson_reads_or_refuses_with_a_message(folder: Path, doc: dict, encoding: str, allow_nan: bool) -> None:
    try:
        content = json.dumps(doc, ensure_ascii=False, allow_nan=allow_nan)
    except ValueError:  # NaN/inf without allow_nan: not a file anybody can write
        content = json.dumps(doc, ensure_ascii=False)
    _read_or_refuse(_write(folder / "楼栋.geojson", content, encoding))


def test_two_point_ring_is_named_with_its_fix(folder: Path) -> None:
    path = _write(folder / "ring.geojson", json.dumps(TWO_POINT_RING), "utf-8")
    with pytest.raises(WanggeError, match=r"ring\.geojson: a geometry cannot be built .*at least 4 points") as err:
        read_layer(path, kind="buildings")
    assert err.value.code == "undecodable_geometry"


def test_unclosed_ring_is_named_without_a_stray_warning(folder: Path) -> None:
    # filterwarnings=error turns GDAL's warning, if it escaped the read, into a failure
    path = _write(folder / "open.geojson", json.dumps(UNCLOSED_RING), "utf-8")
    with pytest.raises(WanggeError, match=r"open\.geojson: .*closed linestring.*must end where it starts"):
        read_layer(path, kind="buildings")


@FUZZ
@given(junk=st.one_of(st.binary(max_size=200), text.map(lambda s: '{"type": "FeatureCollection", ' + s)),
       encoding=st.sampled_from(ENCODINGS))
def test_truncated_or_binary_geojson_is_refused_with_a_message(folder: Path, junk: bytes | str, encoding: str) -> None:
    path = folder / "broken.geojson"
    if isinstance(junk, bytes):
        path.write_bytes(junk)
    else:
        _write(path, junk, encoding)
    _read_or_refuse(path)


def _cell(value: Any) -> str:
    text_value = "" if value is None else str(value)
    return '"' + text_value.replace('"', '""') + '"'


csv_number = st.one_of(st.floats(-0.01, 0.01).map(lambda d: X0 + d), st.floats(allow_nan=True, allow_infinity=True),
                       _odd_floats, attribute)
csv_row = st.tuples(csv_number, csv_number, attribute, attribute)


@FUZZ
@given(rows=st.lists(csv_row, max_size=8), header=st.sampled_from([("lon", "lat"), ("经度", "纬度"), ("x", "y")]),
       encoding=st.sampled_from(ENCODINGS), sep=st.sampled_from([",", ";", "\t"]))
def test_csv_reads_or_refuses_with_a_message(folder: Path, rows: list[tuple], header: tuple[str, str],
                                              encoding: str, sep: str) -> None:
    lines = [sep.join([*header, "building_id", "households"])]
    lines += [sep.join(_cell(v) for v in row) for row in rows]
    path = _write(folder / "楼栋.csv", "\n".join(lines) + "\n", encoding)
    gdf = _read_or_refuse(path, declared_crs="EPSG:4326" if header == ("x", "y") else None)
    if gdf is not None and len(gdf):
        assert gdf.geometry.geom_type.dropna().eq("Point").all()


# --- the validation catalogue --------------------------------------------------------------

households = st.one_of(st.none(), st.integers(-10**15, 10**15), st.floats(allow_nan=True, allow_infinity=True),
                       st.sampled_from(["12", "-3", "1e12", "abc", "", " 40 ", "NaN", "十二户"]), st.booleans())
building_id = st.one_of(st.sampled_from(["B1", "B2", "B1 ", ""]), text, st.integers(-5, 5),
                        st.text(max_size=2).map(lambda s: s * 3000), st.none(), st.floats(allow_nan=True))
building_geometry = st.one_of(
    offset.map(lambda d: shapely.Polygon(_box(d))), offset.map(lambda d: shapely.Polygon(_bow_tie(d))),
    offset.map(lambda d: shapely.Point(X0 + d[0], Y0 + d[1])),
    offset.map(lambda d: shapely.LineString(_box(d)[:3])),
    st.sampled_from([None, shapely.Polygon(), shapely.Point(math.nan, math.nan),
                     shapely.Polygon([(X0, Y0), (X0 + 1e-4, Y0), (X0, Y0 + math.inf), (X0, Y0)]),
                     shapely.box(1e9, 1e9, 1e9 + 1, 1e9 + 1)]),
)
building_row = st.tuples(building_id, households, st.one_of(attribute, st.integers(-3, 200)), building_geometry)


def _buildings(rows: list[tuple]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"building_id": [r[0] for r in rows], "households": [r[1] for r in rows],
                             "floors": [r[2] for r in rows]},
                            geometry=[r[3] for r in rows], crs=4326)


def _check_issues(issues: Any) -> None:
    for issue in issues:
        assert issue.layer.strip() and issue.problem.strip() and issue.fix.strip(), issue


LIST_FLOORS = [("B1", None, [1, 2], shapely.Polygon(_box((0, 0))))]  # found: unhashable list → TypeError
HUGE_HOUSEHOLDS = [("B1", 9.3e18, 6, shapely.Polygon(_box((0, 0))))]  # found: Int64 overflow warning


@FUZZ
@given(rows=st.lists(building_row, max_size=8))
@example(rows=LIST_FLOORS)
@example(rows=HUGE_HOUSEHOLDS)
def test_validate_layer_reports_every_problem_with_a_fix(rows: list[tuple]) -> None:
    try:
        _, report = validate_layer(_buildings(rows), kind="buildings")
    except WanggeError as exc:
        assert str(exc).strip()
        return
    _check_issues(report.issues)


@FUZZ
@given(rows=st.lists(building_row, min_size=1, max_size=8))
@example(rows=LIST_FLOORS)
@example(rows=HUGE_HOUSEHOLDS)
def test_prepare_layers_returns_a_workspace_or_validation_failed(rows: list[tuple]) -> None:
    try:
        ws = prepare_layers({"buildings": _buildings(rows)})
    except ValidationFailed as exc:
        assert exc.issues, "ValidationFailed without issues"
        _check_issues(exc.issues)
        return
    except WanggeError as exc:
        assert str(exc).strip()
        return
    _check_issues(ws.report.issues)
    assert ws.report.ok and ws.layers["buildings"]["households"].notna().all()


def test_huge_households_are_an_error_not_an_overflow() -> None:
    _, report = validate_layer(_buildings(HUGE_HOUSEHOLDS), kind="buildings")
    (issue,) = report.errors
    assert (issue.code, issue.feature_id) == ("households_too_many", "B1")
    assert "far too large" in issue.problem


def test_list_floors_are_reported_as_not_a_number() -> None:
    _, report = validate_layer(_buildings(LIST_FLOORS), kind="buildings")
    assert [(i.code, i.feature_id) for i in report.errors] == [("absurd_floors", "B1")]
    assert "[1, 2] is not a number" in report.errors[0].problem



def test_nul_in_a_geojson_value_is_refused_not_silently_cut(folder: Path) -> None:
    # found by fuzzing the import: GDAL read the id 'C12\x00x' as 'C12' and it imported
    doc = _one({"type": "Point", "coordinates": [X0, Y0]}, {"building_id": "C12\x00x"})
    for encoding in ("utf-8", "gbk"):
        path = _write(folder / "nul.geojson", json.dumps(doc), encoding)
        with pytest.raises(WanggeError, match=r"nul\.geojson holds a NUL character .*remove the NUL") as err:
            read_layer(path, kind="buildings", encoding=None if encoding == "utf-8" else encoding)
        assert err.value.code == "nul_character"
    escaped = _one({"type": "Point", "coordinates": [X0, Y0]}, {"building_id": "C12\\u0000x"})  # text, no NUL
    gdf = read_layer(_write(folder / "nul.geojson", json.dumps(escaped), "utf-8"), kind="buildings")
    assert gdf["building_id"].tolist() == ["C12\\u0000x"]
