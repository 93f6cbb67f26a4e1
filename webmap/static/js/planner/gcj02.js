/* WGS84 <-> GCJ-02 (the offset of Amap/Tencent base maps), the same formulas as geo/chinacoords.py.
 *
 * Pure functions of (lon, lat) degrees; no DOM, no Leaflet. tests/browser/test_planner_gcj02.py
 * runs them in the browser and compares with the Python transforms to < 1e-6 degrees.
 */
const GCJ_A = 6378245.0, GCJ_EE = 0.00669342162296594323, PI = Math.PI;

/** Outside China's rough bounding box (geo/chinacoords.py out_of_china): such points are not offset. */
export const outOfChina = (lon, lat) => !(lon > 73.66 && lon < 135.05 && lat > 3.86 && lat < 53.55);
// Inverse iteration: 1e-9 degrees is ~0.1 mm; it converges in ~5 steps (as geo/chinacoords.py).
const INVERSE_TOL_DEG = 1e-9, INVERSE_MAX_ITER = 30;

function gcjDelta(lon, lat) {
  const x = lon - 105.0, y = lat - 35.0;
  let dLat = -100 + 2 * x + 3 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
  dLat += (20 * Math.sin(6 * x * PI) + 20 * Math.sin(2 * x * PI)) * 2 / 3;
  dLat += (20 * Math.sin(y * PI) + 40 * Math.sin(y / 3 * PI)) * 2 / 3;
  dLat += (160 * Math.sin(y / 12 * PI) + 320 * Math.sin(y * PI / 30)) * 2 / 3;
  let dLon = 300 + x + 2 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
  dLon += (20 * Math.sin(6 * x * PI) + 20 * Math.sin(2 * x * PI)) * 2 / 3;
  dLon += (20 * Math.sin(x * PI) + 40 * Math.sin(x / 3 * PI)) * 2 / 3;
  dLon += (150 * Math.sin(x / 12 * PI) + 300 * Math.sin(x / 30 * PI)) * 2 / 3;
  const rad = lat / 180 * PI;
  const magic = 1 - GCJ_EE * Math.sin(rad) * Math.sin(rad);
  const sq = Math.sqrt(magic);
  return [dLon * 180 / (GCJ_A / sq * Math.cos(rad) * PI), dLat * 180 / ((GCJ_A * (1 - GCJ_EE)) / (magic * sq) * PI)];
}

/** WGS84 -> GCJ-02 (closed form). */
export function wgsToGcj(lon, lat) {
  if (outOfChina(lon, lat)) return [lon, lat];
  const d = gcjDelta(lon, lat);
  return [lon + d[0], lat + d[1]];
}

/** GCJ-02 -> WGS84: fixed-point iteration of the forward map to 1e-9 degrees. */
export function gcjToWgs(lon, lat) {
  if (outOfChina(lon, lat)) return [lon, lat];
  let x = lon, y = lat;
  for (let i = 0; i < INVERSE_MAX_ITER; i++) {
    const g = wgsToGcj(x, y);
    const ex = g[0] - lon, ey = g[1] - lat;
    x -= ex; y -= ey;
    if (Math.max(Math.abs(ex), Math.abs(ey)) < INVERSE_TOL_DEG) break;
  }
  return [x, y];
}
