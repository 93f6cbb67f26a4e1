/* The plan page's grids: map layer, table (sort, filter, lazy rows), selection of a grid,
 * labels, rule tips, the summary and the clickable legend.
 */
import { $, $$, CFG, PAGE, STATUS_LABELS, esc, fmtInt, fmtTime } from "./core.js";
import { gridStyleFor, labelPoint, statusOf } from "./mapsetup.js";
import { message } from "./messages.js";

/** Add the grid functions to the page context *P* (see plan_page.js). */
export function install(P) {
  const { S, map, planId, EDIT, renderer, tbody, gridLayer, buildingLayer, labelLayer, violationLayer, highlight,
    selectionShape } = P;
  const updateTargets = (...a) => P.updateTargets(...a);

  // ---------------------------------------------------------------- grids
  /** Map label: the grid's own name, else the last 6 code digits (community + sequence). */
  const shortLabel = (p) => (p.name && p.name !== p.code ? esc(p.name)
    : p.code && p.code.length > 6 ? `…${esc(p.code.slice(-6, -3))}-${esc(p.code.slice(-3))}` : esc(p.code || p.grid_id));
  function gridTooltip(p) {
    const st = CFG.status[p.status || statusOf(p)] || { label: "" };
    const v = S.violations.get(p.grid_id) || [];
    return `<b>${esc(p.code || p.grid_id)}</b> ${p.name && p.name !== p.code ? esc(p.name) : ""}<br>户数 ${fmtInt(p.households)}（${st.label}）· 楼栋 ${fmtInt(p.buildings)}`
      + (p.locked ? "<br>已锁定" : "") + v.map((x) => `<br><span style="color:#b02a37">${esc(x.text)}</span>`).join("");
  }
  function upsertGrid(feature) {
    const p = feature.properties;
    const old = S.grids.get(p.grid_id);
    if (old) gridLayer.removeLayer(old.layer);
    p.status = p.status || statusOf(p);
    const layer = L.GeoJSON.geometryToLayer(feature, Object.assign({ renderer }, gridStyleFor(p, S)));
    layer.feature = feature;
    gridLayer.addLayer(layer);  // tooltip and click are the group's (one each, not one per grid)
    if (buildingLayer.getLayers().length) layer.bringToBack();
    let label = null;  // label point: computed when first needed (labels, neighbours)
    S.grids.set(p.grid_id, { props: p, layer, get label() { return label || (label = labelPoint(layer)); } });
  }
  gridLayer.bindTooltip((layer) => gridTooltip(layer.feature.properties), { sticky: true, direction: "top" });
  gridLayer.on("click", (e) => { if (!S.tool) selectGrid(e.layer.feature.properties.grid_id, { scroll: true }); });
  function removeGrid(id) {
    const g = S.grids.get(id);
    if (!g) return;
    gridLayer.removeLayer(g.layer);
    S.grids.delete(id);
    S.violations.delete(id);
    if (S.selectedGrid === id) selectGrid(null);
  }
  function restyle(id) {
    const g = S.grids.get(id);
    if (g) g.layer.setStyle(gridStyleFor(g.props, S));
  }
  function flagsOf(p) {
    const out = [];
    if (p.locked) out.push({ cls: "lock", text: "锁定" });
    if (p.exclusive) out.push({ cls: "excl", text: "专属" });
    const seen = new Set();
    for (const v of S.violations.get(p.grid_id) || []) {
      if (!seen.has(v.rule)) { seen.add(v.rule); out.push({ cls: "rule", text: CFG.rules[v.rule] || v.rule, title: v.message }); }
    }
    const raw = Array.isArray(p.flags) ? p.flags : (p.flags ? String(p.flags).split(/[,;]\s*/) : []);
    for (const f of raw) {
      const key = typeof f === "string" ? f : (f.rule || f.code || "");
      if (!key || seen.has(key) || (CFG.flags && CFG.flags[key] === "")) continue;
      seen.add(key);
      if (CFG.rules[key]) out.push({ cls: "rule", text: CFG.rules[key], title: f.message || "" });
      else out.push({ cls: "note", text: (CFG.flags && CFG.flags[key]) || key, title: f.message || "" });
    }
    return out;
  }

  // ---------------------------------------------------------------- table
  function sortValue(p, key) {
    if (key === "flags") return flagsOf(p).length;
    if (key === "code") return String(p.code || p.grid_id);
    return Number(p[key]) || 0;
  }
  function rowHtml(p) {
    const st = CFG.status[p.status] || { color: "#ccc", label: "" };
    const flags = flagsOf(p).map((x) => `<span class="wg-flag wg-flag-${x.cls}" title="${esc(x.title || "")}">${esc(x.text)}</span>`).join("");
    return `<tr data-grid="${esc(p.grid_id)}" class="${p.grid_id === S.selectedGrid ? "wg-selected" : ""}">
      <td><i class="wg-dot" style="background:${st.color}" title="${st.label}"></i><span class="wg-code">${esc(p.code || p.grid_id)}</span>${p.name && p.name !== p.code ? ` <span class="wg-gname">${esc(p.name)}</span>` : ""}</td>
      <td class="num" data-col="households">${fmtInt(p.households)}</td><td class="num" data-col="buildings">${fmtInt(p.buildings)}</td>
      <td class="num">${p.area_m2 === undefined ? "–" : (Number(p.area_m2) / 1e4).toFixed(2)}</td>
      <td class="num">${p.polsby_popper === undefined || p.polsby_popper === null ? "–" : Number(p.polsby_popper).toFixed(2)}</td>
      <td>${flags}</td></tr>`;
  }
  /** Rows after the first TABLE_FIRST_ROWS wait for the task after the next frame (or a rowOf lookup):
   *  building and laying out 2,000+ rows would hold the first paint. */
  const TABLE_FIRST_ROWS = 120;
  const tableRest = { list: [], timer: null };
  function renderTable() {
    const f = S.filter.toLowerCase();
    const list = Array.from(S.grids.values(), (g) => g.props)
      .filter((p) => !f || `${p.code} ${p.name} ${p.grid_id}`.toLowerCase().includes(f));
    const { key, dir } = S.sort;
    list.sort((a, b) => { const x = sortValue(a, key), y = sortValue(b, key); return (x < y ? -1 : x > y ? 1 : 0) * dir; });
    tbody.innerHTML = list.slice(0, TABLE_FIRST_ROWS).map(rowHtml).join("");
    clearTimeout(tableRest.timer);
    tableRest.list = list.slice(TABLE_FIRST_ROWS);
    if (tableRest.list.length) requestAnimationFrame(() => { tableRest.timer = setTimeout(flushTable, 0); });
    $$("#wg-grid-table th[data-sort]").forEach((th) => {
      th.classList.toggle("sorted-asc", th.dataset.sort === key && dir > 0);
      th.classList.toggle("sorted-desc", th.dataset.sort === key && dir < 0);
    });
  }
  function flushTable() {
    clearTimeout(tableRest.timer);
    if (tableRest.list.length) tbody.insertAdjacentHTML("beforeend", tableRest.list.map(rowHtml).join(""));
    tableRest.list = [];
  }
  const rowOf = (id) => {
    const sel = `tr[data-grid="${CSS.escape(id)}"]`;
    return tbody.querySelector(sel) || (tableRest.list.length ? (flushTable(), tbody.querySelector(sel)) : null);
  };
  $$("#wg-grid-table th[data-sort]").forEach((th) => th.addEventListener("click", () => {
    const key = th.dataset.sort;
    S.sort = { key, dir: S.sort.key === key ? -S.sort.dir : (key === "code" ? 1 : -1) };
    renderTable();
  }));
  tbody.addEventListener("click", (ev) => {
    const tr = ev.target.closest("tr[data-grid]");
    if (tr) selectGrid(tr.dataset.grid, { zoom: true });
  });
  $("#wg-filter").addEventListener("input", (ev) => { S.filter = ev.target.value.trim(); renderTable(); });

  function selectGrid(id, opts) {
    const prev = S.selectedGrid;
    S.selectedGrid = id && S.grids.has(id) ? id : null;
    if (prev) restyle(prev);
    highlight.clearLayers();
    $$("#wg-grid-table tr.wg-selected").forEach((tr) => tr.classList.remove("wg-selected"));
    if (S.selectedGrid) {
      const g = S.grids.get(S.selectedGrid);
      restyle(S.selectedGrid);
      highlight.addData(g.layer.feature);
      const tr = rowOf(S.selectedGrid);
      if (tr) {
        tr.classList.add("wg-selected");
        if (opts && opts.scroll) tr.scrollIntoView({ block: "nearest" });
      }
      if (opts && opts.zoom) map.fitBounds(g.layer.getBounds(), { maxZoom: 17, padding: [40, 40] });
    }
    updateTargets();
  }

  // ---------------------------------------------------------------- labels and violations
  function refreshLabels() {
    labelLayer.clearLayers();
    if (map.getZoom() < CFG.labelsMinZoom) return;
    const view = map.getBounds();
    for (const g of S.grids.values()) {
      if (!view.contains(g.label)) continue;
      const b = g.layer.getBounds();  // label only grids wide enough on screen to hold one
      const w = map.latLngToContainerPoint(b.getNorthEast()).x - map.latLngToContainerPoint(b.getSouthWest()).x;
      if (w < 56) continue;
      const p = g.props;
      const html = `<div><b>${shortLabel(p)}</b><br>${fmtInt(p.households)} 户</div>`;
      labelLayer.addLayer(L.marker(g.label, { interactive: false, keyboard: false,
        icon: L.divIcon({ className: "wg-grid-label", html, iconSize: [0, 0] }) }));
    }
  }
  function refreshViolationTips() {
    violationLayer.clearLayers();
    for (const [id, list] of S.violations) {
      const g = S.grids.get(id);
      if (!g || !list.length) continue;
      violationLayer.addLayer(L.tooltip({ permanent: true, direction: "right", className: "wg-violation", offset: [12, 0] })
        .setLatLng(g.label).setContent(list.map((v) => esc(v.text)).join("<br>")));
    }
  }
  map.on("zoomend moveend", refreshLabels);

  // ---------------------------------------------------------------- summary
  function updateSummary() {
    const box = $("#wg-summary");
    const plan = S.plan || {};
    const props = Array.from(S.grids.values(), (g) => g.props);
    const counted = props.filter((p) => p.status !== "exclusive");
    const inRange = counted.filter((p) => p.status === "in").length;
    const out = counted.length - inRange;
    const hh = props.reduce((a, p) => a + (Number(p.households) || 0), 0);
    const bad = props.filter(CYCLES.rule).length;
    const [lo, hi] = CFG.bounds;
    const link = (kind, n, text) => (n ? `<button type="button" class="wg-link" data-cycle="${kind}" title="点击依次定位到这些网格">${text}</button>` : text);
    const scope = PAGE.community ? ` · 社区 <span data-kpi="community">${esc(PAGE.communityName || PAGE.community)}</span>` : "";
    box.innerHTML = `<div><b>${esc(plan.name || "")}</b>${scope} <span class="wg-muted">#${planId} · 修订 ${esc(S.version)}</span></div>
      <div class="wg-kpis"><span>网格 <b data-kpi="grids">${props.length}</b></span><span>户数 <b data-kpi="households">${fmtInt(hh)}</b></span>
      <span>达标 <b data-kpi="in-range">${floorPct(inRange, counted.length)}</b>（${lo}–${hi} 户）</span>
      <span>超出范围 <b data-kpi="out-of-range">${link("out", out, `${out} 个`)}</b></span>
      <span>冲突 <b data-kpi="violations">${link("rule", bad, String(bad))}</b></span></div>
      <div class="wg-muted">${esc(plan.author || "")} ${esc(fmtTime(plan.created_at))}${plan.message ? " · " + esc(plan.message) : ""}</div>
      ${PAGE.canEdit ? "" : '<div class="wg-readonly">只读：您的角色可以查看方案，不能编辑。</div>'}`;
    const badge = $("#wg-plan-status");
    if (badge) badge.textContent = `${STATUS_LABELS[plan.status] || plan.status || ""}${plan.is_active ? " · 生效中" : ""}`;
  }

  /** A share as a percentage floored to 0.1 (never "100%" unless every grid counts). */
  function floorPct(part, whole) {
    return whole ? `${Math.floor(1000 * part / whole) / 10}%` : "–";
  }
  /** Grids the summary links and legend rows step through, by kind. */
  const CYCLES = {
    out: (p) => p.status === "under" || p.status === "over",
    rule: (p) => flagsOf(p).some((f) => f.cls === "rule"),
    under: (p) => p.status === "under", in: (p) => p.status === "in", over: (p) => p.status === "over",
    exclusive: (p) => p.status === "exclusive",
  };
  /** Select and zoom to the next grid of *kind* (in code order); says which of how many. */
  function cycleGrids(kind) {
    const test = CYCLES[kind];
    if (!test) return;
    const ids = Array.from(S.grids.values(), (g) => g.props).filter(test)
      .sort((a, b) => String(a.code || a.grid_id).localeCompare(String(b.code || b.grid_id))).map((p) => p.grid_id);
    if (!ids.length) { message("没有这类网格", "info"); return; }
    const i = ((S.cycle[kind] ?? -1) + 1) % ids.length;
    S.cycle[kind] = i;
    selectGrid(ids[i], { zoom: true, scroll: true });
    const p = S.grids.get(ids[i]).props;
    message(`第 ${i + 1}/${ids.length} 个：网格 ${p.code || p.name || p.grid_id}（${fmtInt(p.households)} 户）`, "info");
  }
  $("#wg-summary").addEventListener("click", (ev) => {
    const b = ev.target.closest("[data-cycle]");
    if (b) cycleGrids(b.dataset.cycle);
  });
  function initLegend() {
    const legend = document.querySelector(".wg-legend");
    if (!legend) return;
    const box = legend.querySelector("details");
    if (box && window.matchMedia("(max-width: 760px)").matches) box.open = false;  // phones: the map first
    legend.querySelectorAll("[data-status]").forEach((row) => {
      row.classList.add("wg-legend-link");
      row.title = "点击依次定位到这类网格";
    });
    legend.addEventListener("click", (ev) => {
      const row = ev.target.closest("[data-status]");
      if (row) cycleGrids(row.dataset.status);
    });
  }
  initLegend();

  Object.assign(P, { upsertGrid, removeGrid, restyle, renderTable, rowOf, selectGrid, refreshLabels,
    refreshViolationTips, updateSummary, floorPct });
}
