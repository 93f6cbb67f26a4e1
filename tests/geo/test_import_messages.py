"""Import messages for files people really send (issue 16 §8), through the import pipeline.

Each case is a catalogue entry of docs/VALIDATION.md ("Reading files" and the per-layer
table); pytest runs with warnings as errors, so a stray warning fails too.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from geo.errors import CRSError, ReadError, ValidationFailed
from geo.prepare import prepare_files


def _square(x: float) -> list[list[float]]:
    return [[x, 31.0], [x + 0.001, 31.0], [x + 0.001, 31.001], [x, 31.001], [x, 31.0]]


def _collection(rings: list[list[list[float]]]) -> dict:
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"building_id": f"B{i + 1}", "名称": "梅园新村"},
         "geometry": {"type": "Polygon", "coordinates": [ring]}} for i, ring in enumerate(rings)]}


def test_gbk_geojson_is_read(tmp_path: Path) -> None:
    path = tmp_path / "gbk.geojson"
    path.write_bytes(json.dumps(_collection([_square(120.6)]), ensure_ascii=False).encode("gbk"))
    ws = prepare_files({"buildings": path})
    assert ws.layers["buildings"]["name"].tolist() == ["梅园新村"]


@pytest.mark.parametrize("value, what", [(float("inf"), "an infinite coordinate"),
                                         (float("nan"), "a NaN (not a number) coordinate")])
def test_broken_vertex_is_reported_on_its_feature(tmp_path: Path, value: float, what: str) -> None:
    broken = _square(120.61)
    broken[1] = [value, 31.0]
    path = tmp_path / "b.geojson"
    path.write_text(json.dumps(_collection([_square(120.6), broken])), encoding="utf-8")
    with pytest.raises(ValidationFailed) as err:
        prepare_files({"buildings": path})
    (issue,) = err.value.issues
    assert (issue.code, issue.feature_id) == ("absurd_coordinates", "B2")
    assert str(issue) == f"buildings #B2: a vertex has {what}: fix or remove the feature's broken vertices"


@pytest.mark.parametrize("name", ["empty.gpkg", "empty.geojson"])
def test_empty_file(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"")
    with pytest.raises(ReadError, match=f"{name}: the file is empty \\(0 bytes\\); export the layer") as err:
        prepare_files({"buildings": tmp_path / name})
    assert err.value.code == "empty_file"


def test_device_is_not_a_regular_file(tmp_path: Path) -> None:
    link = tmp_path / "zero.geojson"
    link.symlink_to("/dev/zero")
    with pytest.raises(ReadError, match="zero.geojson is not a regular file \\(a device, pipe or socket\\)") as err:
        prepare_files({"buildings": link})
    assert err.value.code == "not_a_file"


def test_degrees_labelled_as_a_projected_crs(tmp_path: Path) -> None:
    path = tmp_path / "b.gpkg"
    gpd.GeoDataFrame({"building_id": ["B1"]}, geometry=[shapely.box(120.6, 31.3, 120.601, 31.301)],
                     crs=4326).set_crs(3857, allow_override=True).to_file(path)
    with pytest.raises(CRSError, match="lon/lat degrees labelled as a projected CRS \\(EPSG:3857, metres\\); "
                                       "declare the real CRS with --crs EPSG:4326") as err:
        prepare_files({"buildings": path})
    assert err.value.code == "absurd_coordinates"
    assert len(prepare_files({"buildings": path}, declared_crs="EPSG:4326").layers["buildings"]) == 1
