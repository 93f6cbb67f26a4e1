/* Map setup shared by the plan and diff pages: display coordinates (GCJ-02 base maps),
 * grid styles, label points, and the context layers (streets, compounds, community boundaries).
 */
import { api } from "./api.js";
import { CFG, PAGE } from "./core.js";
import { gcjToWgs, wgsToGcj } from "./gcj02.js";
import { showError } from "./messages.js";

function mapCoords(coords, fn) {
  return typeof coords[0] === "number" ? fn(coords[0], coords[1]).concat(coords.slice(2))
    : coords.map((c) => mapCoords(c, fn));
}
/** GeoJSON from the server (WGS84) to display coordinates, in place. */
export function toDisplay(fc) {
  if (!CFG.gcj02 || !fc) return fc;
  for (const f of fc.features || []) {
    if (f.geometry) f.geometry.coordinates = mapCoords(f.geometry.coordinates, wgsToGcj);
  }
  return fc;
}
/** A geometry drawn on the map back to WGS84 for the server. */
export const toServer = (geom) => (CFG.gcj02 ? { type: geom.type, coordinates: mapCoords(geom.coordinates, gcjToWgs) } : geom);
export function viewBbox(map, pad) {
  const b = map.getBounds().pad(pad || 0);
  let sw = [b.getWest(), b.getSouth()], ne = [b.getEast(), b.getNorth()];
  if (CFG.gcj02) { sw = gcjToWgs(sw[0], sw[1]); ne = gcjToWgs(ne[0], ne[1]); }
  return { bounds: b, param: [sw[0], sw[1], ne[0], ne[1]].map((v) => v.toFixed(6)).join(",") };
}

// ------------------------------------------------------------------ geometry
/** Area-weighted centroid of a polygon's outer ring (falls back to the bounds centre). */
export function labelPoint(layer) {
  if (!layer.getLatLngs) return layer.getBounds().getCenter();  // GeometryCollection -> FeatureGroup
  const ll = layer.getLatLngs();
  let ring = ll;
  while (Array.isArray(ring[0])) {
    // MultiPolygon -> largest part's outer ring; Polygon -> outer ring
    ring = Array.isArray(ring[0][0]) ? ring.reduce((a, b) => (b[0].length > a[0].length ? b : a))[0] : ring[0];
  }
  let a = 0, cx = 0, cy = 0;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const f = ring[j].lng * ring[i].lat - ring[i].lng * ring[j].lat;
    a += f; cx += (ring[j].lng + ring[i].lng) * f; cy += (ring[j].lat + ring[i].lat) * f;
  }
  if (Math.abs(a) < 1e-14) return layer.getBounds().getCenter();
  const c = L.latLng(cy / (3 * a), cx / (3 * a));
  return pointInLayer(c, layer) ? c : layer.getBounds().getCenter();
}
function pointInRing(pt, ring) {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const xi = ring[i].lng, yi = ring[i].lat, xj = ring[j].lng, yj = ring[j].lat;
    if ((yi > pt.lat) !== (yj > pt.lat) && pt.lng < (xj - xi) * (pt.lat - yi) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}
export function pointInLayer(pt, layer) {
  if (!layer.getLatLngs) return layer.getBounds().contains(pt);
  const polys = [];
  (function walk(ll) {
    if (!Array.isArray(ll[0])) { polys.push([ll]); return; }
    if (!Array.isArray(ll[0][0])) { polys.push(ll); return; }
    ll.forEach(walk);
  })(layer.getLatLngs());
  return polys.some((rings) => pointInRing(pt, rings[0]) && !rings.slice(1).some((h) => pointInRing(pt, h)));
}

export function gridStyleFor(props, state) {
  const st = CFG.status[props.status] || CFG.status[statusOf(props)] || { color: "#cccccc" };
  const bad = state && state.violations && state.violations.has(props.grid_id);
  const sel = state && state.selectedGrid === props.grid_id;
  return {
    color: sel ? CFG.colors.selected : bad ? "#d62728" : "#3b3b3b",
    weight: sel ? 4 : bad ? 2.5 : 1.2, dashArray: bad && !sel ? "6 4" : null,
    opacity: 0.95, fillColor: st.color, fillOpacity: sel ? 0.55 : 0.42,
  };
}
export function statusOf(p) {
  if (p.exclusive) return "exclusive";
  const [lo, hi] = CFG.bounds;
  return p.households < lo ? "under" : p.households > hi ? "over" : "in";
}

export function contextPane(map) {
  if (!map.getPane("wgContext")) {
    map.createPane("wgContext").style.zIndex = 420;
  }
  return L.canvas({ pane: "wgContext", padding: 0.3 });
}

/** Streets (major ones always, all from streetsMinZoom) and compounds of the view. */
export function contextLayers(map, control) {
  const renderer = contextPane(map);
  const roadStyle = (f) => {
    const r = CFG.roads[f.properties.road_class] || CFG.roads.minor;
    return { color: r.color, weight: r.weight, dashArray: r.dashArray || null, opacity: 0.85, interactive: false };
  };
  const major = L.geoJSON(null, { renderer, interactive: false, style: roadStyle, pane: "wgContext" });
  const minor = L.geoJSON(null, { renderer, interactive: false, style: roadStyle, pane: "wgContext" });
  const compounds = L.geoJSON(null, {
    renderer, interactive: false, pane: "wgContext",
    style: () => ({ color: CFG.colors.compound, weight: 1.3, dashArray: "5 4", fill: false, opacity: 0.9 }),
  });
  const streets = L.layerGroup([major, minor]).addTo(map);
  compounds.addTo(map);
  control.addOverlay(streets, "道路");
  control.addOverlay(compounds, "小区");
  let loaded = null;
  const refresh = async () => {
    if (map.getZoom() < CFG.streetsMinZoom) { minor.clearLayers(); compounds.clearLayers(); loaded = null; return; }
    if (loaded && loaded.contains(map.getBounds())) return;
    const box = viewBbox(map, 0.5);
    try {
      const [s, c] = await Promise.all([api("GET", `${PAGE.context}/streets.geojson?bbox=${box.param}`),
        api("GET", `${PAGE.context}/compounds.geojson?bbox=${box.param}`)]);
      minor.clearLayers(); compounds.clearLayers();
      minor.addData(toDisplay(s)); compounds.addData(toDisplay(c));
      loaded = box.bounds;
    } catch (err) { showError(err, "加载道路"); }
  };
  map.on("moveend", refresh);
  return {
    loadMajor: () => api("GET", `${PAGE.context}/streets.geojson?major=1`)
      .then((fc) => major.addData(toDisplay(fc))).catch((err) => showError(err, "加载道路")),
    refresh,
  };
}

/** Community outlines of the plan: all at once, or with *byView* (city-size plans) those of the
 * view, simplified, from two zoom levels below streetsMinZoom (a city has thousands). */
export function communityLayer(map, control, planId, opts) {
  const layer = L.geoJSON(null, {
    renderer: contextPane(map), interactive: false, pane: "wgContext",
    style: () => ({ color: CFG.colors.community, weight: 3, opacity: 0.9, fill: false }),
  }).addTo(map);
  control.addOverlay(layer, "社区边界");
  if (!(opts && opts.byView)) {
    return api("GET", `/plans/${planId}/communities.geojson`)
      .then((fc) => { layer.addData(toDisplay(fc)); return layer; })
      .catch((err) => { showError(err, "加载社区边界"); return layer; });
  }
  let loaded = null;
  const refresh = async () => {
    if (map.getZoom() < CFG.streetsMinZoom - 2) { layer.clearLayers(); loaded = null; return; }
    if (loaded && loaded.contains(map.getBounds())) return;
    const box = viewBbox(map, 0.5);
    try {
      const fc = await api("GET", `/plans/${planId}/communities.geojson?display=1&bbox=${box.param}`);
      layer.clearLayers();
      layer.addData(toDisplay(fc));
      loaded = box.bounds;
    } catch (err) { showError(err, "加载社区边界"); }
  };
  map.on("moveend", refresh);
  return refresh().then(() => layer);
}
