/* The plan page (/plans/<id>): grids on the map and in the table, building selection, edits.
 *
 * The page context P holds the state (S), the map layers and every function of the page's
 * modules (plan_grids.js, selection.js, plan_edits.js); each module adds its functions to P
 * and calls the others' through it. window.wanggePlannerReady is set (ms since navigation)
 * once the grids are drawn and the table is filled; window.wanggePlanner exposes the page
 * state for tests and the bench.
 */
import { api } from "./api.js";
import { $, CFG, PAGE, STATUS_LABELS, esc } from "./core.js";
import { communityLayer, contextLayers, toDisplay } from "./mapsetup.js";
import { message, showError } from "./messages.js";
import { install as installEdits } from "./plan_edits.js";
import { install as installGrids } from "./plan_grids.js";
import { install as installSelection } from "./selection.js";

const map = window.wanggeMap, control = window.wanggeLayerControl;
const planId = PAGE.planId;
/** What the plan's state lets this user do (api/plans/policy.py): the toolbar shows only these. */
const ACT = new Set(PAGE.actions || []);
const EDIT = ACT.has("edit");
/** ?community_id=: this community's grids only (the whole plan is never loaded). */
const COMMUNITY = PAGE.community || null;
const GRIDS_URL = `/plans/${planId}/grids.geojson?display=1${COMMUNITY ? `&community_id=${encodeURIComponent(COMMUNITY)}` : ""}`;

/** The page context: state, layers, and (after install) every page function. */
function context() {
  const S = {
    plan: null, version: null, grids: new Map(), violations: new Map(), selectedGrid: null,
    selection: new Map(), polygon: null, sort: { key: "code", dir: 1 }, filter: "", busy: false, tool: null,
    lastEdit: null, cycle: {},
  };
  const gridLayer = L.featureGroup().addTo(map);
  const buildingLayer = L.featureGroup().addTo(map);
  const labelLayer = L.layerGroup().addTo(map);
  const violationLayer = L.layerGroup().addTo(map);
  const highlight = L.geoJSON(null, { interactive: false, pane: "wgContext", renderer: L.canvas({ pane: "wgContext" }),
    style: () => ({ color: CFG.colors.selected, weight: 5, opacity: 1, fill: false }) });
  const selectionShape = L.geoJSON(null, { interactive: false, pane: "wgContext", renderer: L.canvas({ pane: "wgContext" }),
    style: () => ({ color: "#000", weight: 1.5, dashArray: "4 4", fill: false }) });
  highlight.addTo(map); selectionShape.addTo(map);
  control.addOverlay(gridLayer, "网格");
  control.addOverlay(labelLayer, "网格标注");
  control.addOverlay(buildingLayer, "楼栋（放大显示）");
  return { S, map, planId, EDIT, renderer: L.canvas({ padding: 0.3, tolerance: 3 }), tbody: $("#wg-grid-table tbody"),
    gridLayer, buildingLayer, labelLayer, violationLayer, highlight, selectionShape };
}

function parseBounds(b) {
  if (Array.isArray(b) && b.length >= 2) return [Number(b[0]), Number(b[1])];
  if (b && typeof b === "object") {
    const lo = b.min_households ?? b.min ?? b.lo, hi = b.max_households ?? b.max ?? b.hi;
    if (lo !== undefined && hi !== undefined) return [Number(lo), Number(hi)];
  }
  return CFG.bounds;
}

/** Load the plan and its grids into the map and the table; the number of grids. */
async function loadPlan(P, fit) {
  const { S, gridLayer, buildingLayer } = P;
  const [meta, fc] = await Promise.all([api("GET", `/plans/${planId}`), api("GET", GRIDS_URL)]);
  performance.mark("wg:plan-fetched");
  S.plan = meta;
  S.version = meta.version;
  CFG.bounds = parseBounds(meta.bounds);
  // Off the map while filling and fitting: each grid is projected once, at the final zoom.
  const shown = map.hasLayer(gridLayer);
  map.removeLayer(gridLayer);
  gridLayer.clearLayers();
  S.grids.clear();
  toDisplay(fc);
  const empty = fc.features.filter((f) => !f.geometry).length;
  for (const f of fc.features) if (f.geometry) P.upsertGrid(f);
  if (empty) message(`${empty} 个网格没有边界几何，地图上不显示`, "warn");
  performance.mark("wg:grids-added");
  if (fit && S.grids.size) map.fitBounds(gridLayer.getBounds(), { padding: [10, 10], animate: false });
  if (shown) map.addLayer(gridLayer);
  if (buildingLayer.getLayers().length) gridLayer.eachLayer((l) => l.bringToBack());
  performance.mark("wg:fitted");
  P.renderTable();
  performance.mark("wg:table");
  P.updateSummary();
  P.refreshLabels();
  performance.mark("wg:labels");
  return fc.features.length;
}

/** After publish/rollback the plan's state (and so its toolbar) changed: reload, then say what happened. */
function reloadWith(text) {
  try { sessionStorage.setItem("wg-after-reload", text); } catch (e) { /* private mode: no note */ }
  window.location.reload();
}
function noteAfterReload() {
  let text = null;
  try { text = sessionStorage.getItem("wg-after-reload"); sessionStorage.removeItem("wg-after-reload"); } catch (e) { text = null; }
  if (text) message(text, "ok");
}

/** "与版本对比…": every other version this user may see; the parent (the automatic result) first. */
async function initDiffPicker() {
  const sel = $("#wg-diff-with");
  if (!sel) return;
  let plans;
  try { plans = await api("GET", "/plans"); } catch (err) { sel.hidden = true; return; }
  const others = plans.filter((p) => p.id !== planId)
    .sort((a, b) => (b.id === PAGE.parentId) - (a.id === PAGE.parentId) || b.id - a.id);
  if (!others.length) { sel.hidden = true; return; }
  sel.innerHTML = '<option value="">与版本对比…</option>' + others.map((p) => `<option value="${p.id}">#${p.id} ${esc(p.name)}（${esc(STATUS_LABELS[p.status] || p.status)}）${p.id === PAGE.parentId ? " · 上一版本" : ""}</option>`).join("");
  sel.addEventListener("change", () => {
    const other = Number(sel.value);
    if (other) window.location.href = `${PAGE.pages}/${Math.min(other, planId)}/diff/${Math.max(other, planId)}`;
  });
}

async function initPlanPage() {
  const P = context();
  P.loadPlan = (fit) => loadPlan(P, fit);
  P.reloadWith = reloadWith;
  installGrids(P);
  installSelection(P);
  installEdits(P);
  noteAfterReload();
  window.wanggePlanner = { state: P.S, map, gridLayer: P.gridLayer, buildingLayer: P.buildingLayer,
    selectGrid: P.selectGrid, refreshBuildings: P.refreshBuildings, floorPct: P.floorPct };
  if (ACT.size) P.initToolbar();
  const ctx = contextLayers(map, control);
  let n = 0;
  try { n = await P.loadPlan(true); } catch (err) {
    $("#wg-loading").textContent = "方案加载失败";
    showError(err, "加载方案");
    return;
  }
  requestAnimationFrame(() => {
    window.wanggePlannerReady = performance.now();
    document.body.dataset.ready = "1";
    if (EDIT) setTimeout(() => P.loadGeoman().catch((err) => message(err.message, "error")), 0);
  });
  $("#wg-loading").hidden = true;
  if (!n) message("本方案还没有网格", "warn");
  communityLayer(map, control, planId, { byView: Boolean(COMMUNITY) });
  initDiffPicker();
  ctx.loadMajor();
  ctx.refresh();
  P.refreshBuildings(true);
}

initPlanPage();
