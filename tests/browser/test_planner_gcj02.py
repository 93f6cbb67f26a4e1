"""The planner's GCJ-02 module (webmap/static/js/planner/gcj02.js) agrees with geo/chinacoords.py.

The map shows WGS84 data on GCJ-02 base maps and sends drawn shapes back as WGS84, so the
browser's transforms must be the server's: both directions are run in Chromium on seeded
points across China, near its bounding box and outside it, and compared to < 1e-6 degrees.
"""

from __future__ import annotations

import numpy as np
import pytest

from geo.chinacoords import gcj02_to_wgs84, wgs84_to_gcj02
from tests.browser.conftest import LiveServer

pytestmark = pytest.mark.browser

RUN_IN_PAGE = """async (pts) => {
  const m = await import("/static/js/planner/gcj02.js");
  return {wgsToGcj: pts.map(([x, y]) => m.wgsToGcj(x, y)), gcjToWgs: pts.map(([x, y]) => m.gcjToWgs(x, y))};
}"""


def _points() -> np.ndarray:
    rng = np.random.default_rng(42)
    inside = np.c_[rng.uniform(74.0, 134.5, 300), rng.uniform(4.5, 53.0, 300)]
    edges = [(73.0, 40.0), (73.7, 40.0), (135.0, 40.0), (136.0, 30.0), (100.0, 3.5), (100.0, 3.9),
             (120.0, 53.5), (120.0, 54.0)]  # either side of the bounding box
    outside = [(-0.1276, 51.5072), (2.35, 48.86), (139.69, 35.69), (151.2, -33.9)]
    cities = [(121.4737, 31.2304), (116.4074, 39.9042), (113.2644, 23.1291), (120.585, 31.299), (91.1, 29.65)]
    return np.vstack([inside, edges, outside, cities])


def test_js_gcj02_matches_python(page, live_server: LiveServer) -> None:
    page.goto("/login")
    assert page.request.get("/static/js/planner/gcj02.js").ok
    pts = _points()
    got = page.evaluate(RUN_IN_PAGE, pts.tolist())
    for name, fn in (("wgsToGcj", wgs84_to_gcj02), ("gcjToWgs", gcj02_to_wgs84)):
        js = np.asarray(got[name], dtype=float)
        py = np.c_[fn(pts[:, 0], pts[:, 1])]
        assert js.shape == py.shape == (len(pts), 2)
        err = np.abs(js - py).max()
        assert err < 1e-6, (name, err, pts[np.abs(js - py).max(axis=1).argmax()])
    moved = np.abs(np.asarray(got["wgsToGcj"]) - pts).max(axis=1) > 1e-4
    assert moved.sum() >= 300 and not moved[-9:-5].any()  # offsets really applied inside, none outside
