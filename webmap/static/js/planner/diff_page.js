/* The diff page (/plans/<a>/diff/<b>): the newer version's grids, the older one's boundaries
 * and the buildings that changed grid, with a table that zooms to each.
 */
import { api } from "./api.js";
import { CFG, PAGE, esc, markReady } from "./core.js";
import { communityLayer, gridStyleFor, toDisplay } from "./mapsetup.js";
import { showError } from "./messages.js";

const map = window.wanggeMap, control = window.wanggeLayerControl;
const renderer = L.canvas({ padding: 0.3 });
const tbody = document.querySelector("#wg-diff-table tbody");
const count = document.getElementById("wg-diff-count");

/** The diff and both versions' grids, or null (the error is shown). */
async function load() {
  try {
    return await Promise.all([api("GET", `/plans/${PAGE.planA}/diff/${PAGE.planB}`),
      api("GET", `/plans/${PAGE.planA}/grids.geojson?display=1`), api("GET", `/plans/${PAGE.planB}/grids.geojson?display=1`)]);
  } catch (err) {
    count.textContent = "比较失败";
    showError(err, "比较方案");
    return null;
  }
}

/** The three layers: new grids (filled), old boundaries (dashed), moved buildings. */
function draw(diff, gridsA, gridsB, codes) {
  const layerB = L.geoJSON(toDisplay(gridsB), {
    renderer, style: (f) => Object.assign(gridStyleFor(f.properties, null), { fillOpacity: 0.3 }),
    onEachFeature: (f, l) => l.bindTooltip(`新版本 ${esc(f.properties.code || f.properties.grid_id)} · ${esc(f.properties.households)} 户`, { sticky: true }),
  }).addTo(map);
  const layerA = L.geoJSON(toDisplay(gridsA), {
    renderer, interactive: false,
    style: () => ({ color: "#222", weight: 2, dashArray: "6 5", fill: false, opacity: 0.9 }),
  }).addTo(map);
  const moved = L.geoJSON(toDisplay(diff.features || { type: "FeatureCollection", features: [] }), {
    renderer, style: () => ({ color: "#7a0044", weight: 1.2, fillColor: CFG.colors.moved, fillOpacity: 0.9 }),
    onEachFeature: (f, l) => l.bindTooltip(`楼栋 ${esc(f.properties.name || f.properties.building_id)}<br>${esc(codes.get(f.properties.from) || f.properties.from || "")} → ${esc(codes.get(f.properties.to) || f.properties.to || "")}`, { sticky: true }),
  }).addTo(map);
  control.addOverlay(layerB, "新版本网格");
  control.addOverlay(layerA, "原版本边界");
  control.addOverlay(moved, "换网格的楼栋");
  return { layerB, moved };
}

/** The moved-buildings table; a click zooms to the building. */
function fillTable(diff, codes, moved) {
  const byId = new Map();
  moved.eachLayer((l) => byId.set(String(l.feature.properties.building_id), l));
  const n = diff.count ?? (diff.moved || []).length;
  count.textContent = n ? `共 ${n} 栋楼换了网格` : "两个版本的楼栋归属相同";
  tbody.innerHTML = (diff.moved || []).map((m) => `<tr data-building="${esc(m.building_id)}"><td>${esc(m.building_id)}</td>
    <td class="wg-code">${esc(codes.get(m.from) || m.from)}</td><td class="wg-code">${esc(codes.get(m.to) || m.to)}</td></tr>`).join("");
  tbody.addEventListener("click", (ev) => {
    const tr = ev.target.closest("tr[data-building]");
    const l = tr && byId.get(tr.dataset.building);
    if (l) { map.fitBounds(l.getBounds(), { maxZoom: 18, padding: [80, 80] }); l.openTooltip(); }
  });
}

async function initDiffPage() {
  const loaded = await load();
  if (!loaded) return;
  const [diff, gridsA, gridsB] = loaded;
  const codes = new Map();
  for (const f of gridsA.features.concat(gridsB.features)) codes.set(f.properties.grid_id, f.properties.code || f.properties.grid_id);
  const { layerB, moved } = draw(diff, gridsA, gridsB, codes);
  fillTable(diff, codes, moved);
  const fit = moved.getLayers().length ? moved.getBounds() : layerB.getBounds();
  if (fit.isValid()) map.fitBounds(fit.pad(0.5), { padding: [30, 30], maxZoom: 16 });
  document.getElementById("wg-loading").hidden = true;
  communityLayer(map, control, PAGE.planB);
  markReady();
}

initDiffPage();
