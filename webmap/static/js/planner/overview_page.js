/* The overview of a city-size plan (/plans/<id> without ?community_id= when the plan has more
 * grids than planner_overview_min_grids): the plan's card and its communities with their
 * numbers (GET /api/plans/<id>/communities), as a paged table and as one dot per community on
 * the map. A row or a dot opens that community's grids (?community_id=), never the whole plan.
 * window.wanggePlannerReady is set once the table and the dots are drawn.
 */
import { api } from "./api.js";
import { $, $$, CFG, PAGE, STATUS_LABELS, esc, fmtInt, fmtTime, markReady } from "./core.js";
import { communityLayer, contextLayers, contextPane, toDisplay } from "./mapsetup.js";
import { showError } from "./messages.js";

const map = window.wanggeMap, control = window.wanggeLayerControl;
const planId = PAGE.planId;
/** Rows of the table per page. */
const PAGE_ROWS = 100;
const COLORS = { broken: "#d62728", out: "#fd8d3c", ok: "#41ab5d" };

/** The communities as row objects, from the column lists of the response. */
function rowsOf(list) {
  return list.community_id.map((id, i) => ({
    community_id: id, name: list.name[i], grids: list.grids[i], households: list.households[i],
    buildings: list.buildings[i], out_of_range: list.out_of_range[i], broken: list.broken[i], bbox: list.bbox[i],
  }));
}

const openCommunity = (id) => { window.location.href = `${window.location.pathname}?community_id=${encodeURIComponent(id)}`; };
const colorOf = (r) => (r.broken ? COLORS.broken : r.out_of_range ? COLORS.out : COLORS.ok);

function showSummary(meta) {
  const s = meta.summary || {};
  const lo = meta.bounds.min_households, hi = meta.bounds.max_households;
  const pct = s.share_in_range === undefined ? "–" : `${Math.floor(1000 * s.share_in_range) / 10}%`;
  $("#wg-summary").innerHTML = `<div><b>${esc(meta.name)}</b> <span class="wg-muted">#${planId} · 修订 ${esc(meta.version)}</span></div>
    <div class="wg-kpis"><span>社区 <b data-kpi="communities">${fmtInt(s.communities)}</b></span>
    <span>网格 <b data-kpi="grids">${fmtInt(s.grids)}</b></span><span>户数 <b data-kpi="households">${fmtInt(s.households)}</b></span>
    <span>达标 <b data-kpi="in-range">${pct}</b>（${esc(lo)}–${esc(hi)} 户）</span>
    <span>冲突 <b data-kpi="violations">${fmtInt(s.violations)}</b></span></div>
    <div class="wg-muted">${esc(meta.author || "")} ${esc(fmtTime(meta.created_at))}${meta.message ? " · " + esc(meta.message) : ""}</div>`;
  const badge = $("#wg-plan-status");
  if (badge) badge.textContent = `${STATUS_LABELS[meta.status] || meta.status || ""}${meta.is_active ? " · 生效中" : ""}`;
}

/** The paged, sortable, filterable table of communities. */
function communityTable(rows) {
  const T = { sort: { key: "broken", dir: -1 }, filter: "", page: 0 };
  const tbody = $("#wg-community-table tbody");
  const shown = () => {
    const f = T.filter;
    const out = f ? rows.filter((r) => r.community_id.toLowerCase().includes(f) || String(r.name).toLowerCase().includes(f)) : rows.slice();
    const { key, dir } = T.sort;
    return out.sort((a, b) => (a[key] < b[key] ? -dir : a[key] > b[key] ? dir : 0) || (a.community_id < b.community_id ? -1 : 1));
  };
  const render = () => {
    const all = shown();
    const pages = Math.max(1, Math.ceil(all.length / PAGE_ROWS));
    T.page = Math.min(Math.max(T.page, 0), pages - 1);
    tbody.innerHTML = all.slice(T.page * PAGE_ROWS, (T.page + 1) * PAGE_ROWS).map((r) => `<tr data-community="${esc(r.community_id)}">
      <td><a href="?community_id=${encodeURIComponent(r.community_id)}">${esc(r.name)}</a>${r.name !== r.community_id ? ` <span class="wg-muted">${esc(r.community_id)}</span>` : ""}</td>
      <td class="num">${fmtInt(r.grids)}</td><td class="num">${fmtInt(r.households)}</td>
      <td class="num">${fmtInt(r.out_of_range)}</td><td class="num">${fmtInt(r.broken)}</td></tr>`).join("")
      || '<tr><td colspan="5" class="wg-muted">没有符合条件的社区</td></tr>';
    $("#wg-community-page").textContent = `第 ${T.page + 1} / ${pages} 页，共 ${all.length} 个社区`;
    $$("#wg-community-table th").forEach((th) => {
      th.classList.toggle("sorted-asc", th.dataset.sort === T.sort.key && T.sort.dir === 1);
      th.classList.toggle("sorted-desc", th.dataset.sort === T.sort.key && T.sort.dir === -1);
    });
  };
  tbody.addEventListener("click", (e) => {
    const tr = e.target.closest("tr[data-community]");
    if (tr && !e.target.closest("a")) openCommunity(tr.dataset.community);
  });
  $$("#wg-community-table th[data-sort]").forEach((th) => th.addEventListener("click", () => {
    const key = th.dataset.sort;
    T.sort = { key, dir: T.sort.key === key ? -T.sort.dir : key === "name" ? 1 : -1 };
    T.page = 0;
    render();
  }));
  $$("#wg-community-pager [data-page]").forEach((b) => b.addEventListener("click", () => { T.page += Number(b.dataset.page); render(); }));
  $("#wg-filter").addEventListener("input", (e) => { T.filter = e.target.value.trim().toLowerCase(); T.page = 0; render(); });
  render();
}

/** One dot per community at the centre of its bounding box, coloured by its worst problem. */
function communityDots(rows) {
  const renderer = contextPane(map);
  const placed = rows.filter((r) => r.bbox);
  const fc = toDisplay({ type: "FeatureCollection", features: placed.map((r) => ({ type: "Feature",
    geometry: { type: "Point", coordinates: [(r.bbox[0] + r.bbox[2]) / 2, (r.bbox[1] + r.bbox[3]) / 2] } })) });
  const layer = L.featureGroup().addTo(map);
  fc.features.forEach((f, i) => {
    const r = placed[i], [x, y] = f.geometry.coordinates;
    const dot = L.circleMarker([y, x], { renderer, pane: "wgContext", radius: 5, weight: 1, color: "#333",
      fillColor: colorOf(r), fillOpacity: 0.85 });
    dot.bindTooltip(() => {
      const div = document.createElement("div");  // names are imported data: text only
      div.textContent = `${r.name}：${r.grids} 个网格，${r.households} 户，超出范围 ${r.out_of_range}，冲突 ${r.broken}`;
      return div;
    });
    dot.feature = { type: "Feature", properties: { community_id: r.community_id, name: r.name, grids: r.grids } };  // tests hover by it
    dot.on("click", () => openCommunity(r.community_id));
    layer.addLayer(dot);
  });
  control.addOverlay(layer, "社区汇总");
  if (placed.length) map.fitBounds(layer.getBounds(), { padding: [10, 10], animate: false });
  return layer;
}

async function initOverview() {
  const ctx = contextLayers(map, control);
  let meta, list;
  try {
    [meta, list] = await Promise.all([api("GET", `/plans/${planId}`), api("GET", `/plans/${planId}/communities`)]);
  } catch (err) {
    $("#wg-loading").textContent = "方案加载失败";
    showError(err, "加载方案");
    return;
  }
  CFG.bounds = [meta.bounds.min_households, meta.bounds.max_households];
  const rows = rowsOf(list);
  showSummary(meta);
  communityTable(rows);
  communityDots(rows);
  $("#wg-loading").hidden = true;
  window.wanggeOverview = { rows, meta };
  markReady();
  communityLayer(map, control, planId, { byView: true });
  ctx.loadMajor();
  ctx.refresh();
}

initOverview();
