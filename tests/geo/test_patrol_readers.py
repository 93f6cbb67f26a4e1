"""Track files: GPX, CSV/XLSX (GCJ-02/BD-09 declared), GeoJSON, GeoLife .plt and the real GeoLife data."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest

from geo.chinacoords import wgs84_to_bd09, wgs84_to_gcj02
from geo.errors import ReadError
from geo.patrol.clean import clean_fixes
from geo.patrol.readers import read_track

LON = np.array([116.3260, 116.3262, 116.3265])
LAT = np.array([40.0030, 40.0031, 40.0033])

GPX = """<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="OsmAnd~ 4.6.8" xmlns="http://www.topografix.com/GPX/1/1">
  <trk><name>巡查 2024-05-06</name><trkseg>
    <trkpt lat="40.0030" lon="116.3260"><ele>50</ele><time>2024-05-06T01:00:00Z</time><hdop>1.2</hdop></trkpt>
    <trkpt lat="40.0031" lon="116.3262"><ele>50</ele><time>2024-05-06T01:00:10Z</time><hdop>1.0</hdop></trkpt>
  </trkseg><trkseg>
    <trkpt lat="40.0033" lon="116.3265"><time>2024-05-06T01:00:20Z</time></trkpt>
  </trkseg></trk>
</gpx>
"""


def test_gpx_track_points_in_utc(tmp_path: Path) -> None:
    (tmp_path / "a.gpx").write_text(GPX, encoding="utf-8")
    f = read_track(tmp_path / "a.gpx")
    assert f["lon"].tolist() == LON.tolist() and f["lat"].tolist() == LAT.tolist()
    assert f["t"].iloc[0] == pd.Timestamp("2024-05-06 01:00:00", tz="UTC")
    assert f["accuracy"].iloc[0] == pytest.approx(6.0) and np.isnan(f["accuracy"].iloc[2])


def test_gpx_without_times_and_broken_gpx_are_refused(tmp_path: Path) -> None:
    (tmp_path / "b.gpx").write_text(GPX.replace("<time>2024-05-06T01:00:20Z</time>", ""), encoding="utf-8")
    with pytest.raises(ReadError, match=r"b.gpx: 1 GPX point\(s\) have no <time>"):
        read_track(tmp_path / "b.gpx")
    (tmp_path / "c.gpx").write_text("<gpx><trk>", encoding="utf-8")
    with pytest.raises(ReadError, match="c.gpx: not a valid GPX file"):
        read_track(tmp_path / "c.gpx")
    (tmp_path / "d.gpx").write_bytes(b"\xff\xfe<\x00g\x00")  # UTF-16 or binary: not the UTF-8 XML of GPX
    with pytest.raises(ReadError, match="d.gpx: not a valid GPX file"):
        read_track(tmp_path / "d.gpx")


@pytest.mark.parametrize(("coords", "forward"), [("gcj02", wgs84_to_gcj02), ("bd09", wgs84_to_bd09)])
def test_csv_chinese_headers_declared_coords_and_beijing_time(tmp_path: Path, coords: str, forward) -> None:
    x, y = forward(LON, LAT)
    rows = "\n".join(f"{a:.8f},{b:.8f},2024-05-06 09:00:{10 * i:02d},5" for i, (a, b) in enumerate(zip(x, y, strict=True)))
    (tmp_path / "t.csv").write_bytes(("经度,纬度,定位时间,精度\n" + rows + "\n").encode("gbk"))
    f = read_track(tmp_path / "t.csv", coords=coords)
    assert np.abs(f["lon"].to_numpy() - LON).max() < 1e-5 and np.abs(f["lat"].to_numpy() - LAT).max() < 1e-5
    assert f["t"].iloc[0] == pd.Timestamp("2024-05-06 01:00:00", tz="UTC")  # 09:00 Beijing
    assert f["accuracy"].tolist() == [5.0, 5.0, 5.0]


def test_xlsx_with_epoch_milliseconds_and_worker(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["lon", "lat", "timestamp", "worker"])
    for i in range(3):
        ws.append([LON[i], LAT[i], 1714957200000 + 10_000 * i, "zhang"])
    wb.save(tmp_path / "t.xlsx")
    f = read_track(tmp_path / "t.xlsx")
    assert f["t"].iloc[2] == pd.Timestamp("2024-05-06 01:00:20", tz="UTC")
    assert f["worker"].tolist() == ["zhang"] * 3


def test_geojson_points_with_time(tmp_path: Path) -> None:
    feats = [{"type": "Feature", "properties": {"time": f"2024-05-06T01:00:{10 * i:02d}Z"},
              "geometry": {"type": "Point", "coordinates": [LON[i], LAT[i]]}} for i in range(3)]
    (tmp_path / "t.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    f = read_track(tmp_path / "t.geojson")
    assert f["lon"].tolist() == pytest.approx(LON.tolist())
    assert f["t"].iloc[1] == pd.Timestamp("2024-05-06 01:00:10", tz="UTC")


def test_geolife_plt(tmp_path: Path) -> None:
    head = "Geolife trajectory\nWGS 84\nAltitude is in Feet\nReserved 3\n0,2,255,My Track,0,0,2,8421376\n0\n"
    body = "".join(f"{LAT[i]},{LON[i]},0,492,39744.1201851852,2008-10-23,02:53:{4 + 2 * i:02d}\n" for i in range(3))
    (tmp_path / "20081023025304.plt").write_text(head + body)
    f = read_track(tmp_path / "20081023025304.plt")
    assert f["lat"].tolist() == LAT.tolist()
    assert f["t"].iloc[0] == pd.Timestamp("2008-10-23 02:53:04", tz="UTC")


def test_bad_files_are_named(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ReadError, match="x.csv: no lon/lat/t column .*name them lon, lat, time"):
        read_track(tmp_path / "x.csv")
    (tmp_path / "y.csv").write_text("lon,lat,time\n116.3,40.0,yesterday\n")
    with pytest.raises(ReadError, match="y.csv: time column holds a value that is not a time"):
        read_track(tmp_path / "y.csv")
    (tmp_path / "z.kml").write_text("<kml/>")
    with pytest.raises(ReadError, match="z.kml: unknown track format '.kml'"):
        read_track(tmp_path / "z.kml")


def test_real_geolife_small(shared_datasets: Path) -> None:
    f = read_track(shared_datasets / "geolife_beijing_small.gpkg")
    assert len(f) == 5908
    assert f["t"].min() == pd.Timestamp("2008-12-11 04:42:14", tz="UTC")
    assert f["lon"].between(115, 118).all() and f["lat"].between(39, 41).all()


def test_real_geolife_10users_inside_tsinghua(shared_datasets: Path) -> None:
    f = read_track(shared_datasets / "geolife_beijing_10users.gpkg")
    assert len(f) == 164_531
    campus = gpd.read_file(shared_datasets / "tsinghua_campus.geojson").to_crs(4326).geometry.iloc[0]
    inside = gpd.GeoSeries(gpd.points_from_xy(f["lon"], f["lat"]), crs=4326).within(campus)
    assert int(inside.sum()) == 22_231  # the dataset's README figure
    assert f["worker"].nunique() == 11  # user_id read as the worker
    r = clean_fixes(f, now=datetime(2009, 1, 1, tzinfo=UTC), shift_start="00:00", shift_end="24:00")
    assert sum(r.dropped.values()) + len(r.fixes) == 164_531
    assert r.dropped["speed_jump"] > 0 and len(r.fixes) > 150_000
