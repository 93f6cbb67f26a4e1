/* Wangge planner pages: plan list, plan map (table, edits, jobs, versions) and diff view.
 *
 * Vanilla JS on Leaflet (+ Leaflet-Geoman for planners). Everything comes from the JSON
 * routes of docs/PLANNER_API.md; nothing is loaded from outside this server. The page
 * data (role, API base, form defaults) is in <script id="wg-page-data">; the map frame
 * (webmap/planner.py) sets window.wanggeMap, wanggeLayerControl and wanggePlannerConfig.
 * window.wanggePlannerReady is set (ms since navigation) once the grids are drawn and the
 * table is filled; window.wanggePlanner exposes the page state for tests and the bench.
 */
(function () {
  "use strict";

  const PAGE = JSON.parse(document.getElementById("wg-page-data").textContent);
  const CSRF = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const STATUS_LABELS = { draft: "草稿", published: "已发布", archived: "已归档", auto: "自动结果（只读）" };
  const JOB_STATES = { queued: "排队中", running: "计算中", done: "完成", failed: "失败", cancelled: "已取消" };

  // ------------------------------------------------------------------ helpers
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const esc = (v) => String(v === null || v === undefined ? "" : v).replace(/[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  const INT_FORMAT = new Intl.NumberFormat("zh-CN");  // toLocaleString() builds a formatter per call: 2 per table row
  const fmtInt = (v) => (v === null || v === undefined || v === "" ? "–" : INT_FORMAT.format(Number(v)));
  const fmtTime = (iso) => {
    if (!iso) return "";
    const d = new Date(iso);
    return isNaN(d) ? String(iso) : d.toLocaleString("zh-CN", { hour12: false });
  };

  class ApiError extends Error {
    constructor(status, body) {
      const err = (body && body.error) || {};
      super(err.message || `请求失败（HTTP ${status}）`);
      this.status = status;
      this.code = err.code || String(status);
      this.fix = err.fix || "";
      this.detail = err;
    }
  }

  /** fetch JSON from the API; mutating calls carry the CSRF token. Throws ApiError. */
  async function api(method, path, body) {
    const opts = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (method !== "GET") {
      opts.headers["X-CSRFToken"] = CSRF;
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body || {});
    }
    let resp;
    const url = path.startsWith("/") && !path.startsWith(PAGE.api) && !path.startsWith(PAGE.context) ? PAGE.api + path : path;
    const early = method === "GET" && window.wanggePrefetch && window.wanggePrefetch[url];
    if (early) delete window.wanggePrefetch[url];  // a started request is used once (the first load)
    try {
      resp = (early && await early) || await fetch(url, opts);
    } catch (e) {
      throw new ApiError(0, { error: { message: "无法连接服务器，请检查网络后重试" } });
    }
    let data = null;
    const text = await resp.text();
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!resp.ok) throw new ApiError(resp.status, data);
    return data;
  }

  // ------------------------------------------------------------------ messages
  function message(text, kind, opts) {
    const box = $("#wg-messages");
    if (!box) return null;
    const div = document.createElement("div");
    div.className = `wg-msg wg-msg-${kind || "info"}`;
    div.innerHTML = `<span class="wg-msg-text"></span><button type="button" class="wg-msg-close" aria-label="关闭">×</button>`;
    $(".wg-msg-text", div).innerHTML = (opts && opts.html) ? text : esc(text);
    $(".wg-msg-close", div).addEventListener("click", () => div.remove());
    box.prepend(div);
    while (box.children.length > 6) box.lastChild.remove();
    return div;
  }

  function showConflict(err) {
    $$(".wg-conflict").forEach((el) => el.remove());
    const div = document.createElement("div");
    div.className = "wg-conflict";
    div.setAttribute("role", "alertdialog");
    div.innerHTML = `<h3>编辑冲突：方案已被他人修改</h3><p>${esc(err.message)}</p>
      <p class="wg-muted">您的这次修改没有保存。请重新加载页面，查看最新方案后再编辑。</p>
      <button type="button" class="btn btn-danger btn-sm" data-reload>重新加载</button>
      <button type="button" class="btn btn-outline-secondary btn-sm" data-dismiss>关闭</button>`;
    $("[data-reload]", div).addEventListener("click", () => window.location.reload());
    $("[data-dismiss]", div).addEventListener("click", () => div.remove());
    document.body.appendChild(div);
  }

  /** A refused request: the version-conflict dialog only for a real conflict, else the server's reason and fix. */
  /** A modal question with the details of what will happen; resolves true on *ok*. */
  function confirmDialog(title, bodyHtml, ok) {
    $$(".wg-confirm").forEach((el) => el.remove());
    const div = document.createElement("div");
    div.className = "wg-confirm";
    div.setAttribute("role", "alertdialog");
    div.innerHTML = `<h3></h3><div class="wg-confirm-body">${bodyHtml}</div>
      <button type="button" class="btn btn-primary btn-sm" data-ok></button>
      <button type="button" class="btn btn-outline-secondary btn-sm" data-cancel>取消</button>`;
    $("h3", div).textContent = title;
    $("[data-ok]", div).textContent = ok;
    document.body.appendChild(div);
    return new Promise((resolve) => {
      $("[data-ok]", div).addEventListener("click", () => { div.remove(); resolve(true); });
      $("[data-cancel]", div).addEventListener("click", () => { div.remove(); resolve(false); });
    });
  }

  function showError(err, what) {
    if (err.status === 409 && err.code === "conflict") return showConflict(err);
    const prefix = what ? `${what}失败：` : "";
    const fix = err.fix && err.fix !== "reload" ? `（处理办法：${err.fix}）` : "";
    message(`${prefix}${err.message}${fix}`, "error");
    return null;
  }

  // ------------------------------------------------------------------ WGS84 <-> GCJ-02
  const GCJ_A = 6378245.0, GCJ_EE = 0.00669342162296594323, PI = Math.PI;
  const outOfChina = (lon, lat) => lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271;
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
  function wgsToGcj(lon, lat) {
    if (outOfChina(lon, lat)) return [lon, lat];
    const d = gcjDelta(lon, lat);
    return [lon + d[0], lat + d[1]];
  }
  function gcjToWgs(lon, lat) {  // fixed-point iteration: < 1e-7 degrees after a few steps
    let x = lon, y = lat;
    for (let i = 0; i < 6; i++) {
      const g = wgsToGcj(x, y);
      x -= g[0] - lon; y -= g[1] - lat;
    }
    return [x, y];
  }
  function mapCoords(coords, fn) {
    return typeof coords[0] === "number" ? fn(coords[0], coords[1]).concat(coords.slice(2))
      : coords.map((c) => mapCoords(c, fn));
  }
  const CFG = window.wanggePlannerConfig || { gcj02: false };
  /** GeoJSON from the server (WGS84) to display coordinates, in place. */
  function toDisplay(fc) {
    if (!CFG.gcj02 || !fc) return fc;
    for (const f of fc.features || []) {
      if (f.geometry) f.geometry.coordinates = mapCoords(f.geometry.coordinates, wgsToGcj);
    }
    return fc;
  }
  /** A geometry drawn on the map back to WGS84 for the server. */
  const toServer = (geom) => (CFG.gcj02 ? { type: geom.type, coordinates: mapCoords(geom.coordinates, gcjToWgs) } : geom);
  function viewBbox(map, pad) {
    const b = map.getBounds().pad(pad || 0);
    let sw = [b.getWest(), b.getSouth()], ne = [b.getEast(), b.getNorth()];
    if (CFG.gcj02) { sw = gcjToWgs(sw[0], sw[1]); ne = gcjToWgs(ne[0], ne[1]); }
    return { bounds: b, param: [sw[0], sw[1], ne[0], ne[1]].map((v) => v.toFixed(6)).join(",") };
  }

  // ------------------------------------------------------------------ geometry
  /** Area-weighted centroid of a polygon's outer ring (falls back to the bounds centre). */
  function labelPoint(layer) {
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
  function pointInLayer(pt, layer) {
    if (!layer.getLatLngs) return layer.getBounds().contains(pt);
    const polys = [];
    (function walk(ll) {
      if (!Array.isArray(ll[0])) { polys.push([ll]); return; }
      if (!Array.isArray(ll[0][0])) { polys.push(ll); return; }
      ll.forEach(walk);
    })(layer.getLatLngs());
    return polys.some((rings) => pointInRing(pt, rings[0]) && !rings.slice(1).some((h) => pointInRing(pt, h)));
  }

  // ------------------------------------------------------------------ jobs and the partition form
  function partitionForm(form) {
    const micro = form.elements.micro;
    micro.addEventListener("change", () => {
      const d = PAGE.defaults[micro.checked ? "micro" : "normal"];
      form.elements.min_households.value = d.min;
      form.elements.max_households.value = d.max;
      form.elements.target_households.value = d.target;
    });
    return () => {
      const e = form.elements;
      const out = {
        min_households: Number(e.min_households.value), max_households: Number(e.max_households.value),
        target_households: Number(e.target_households.value), micro: e.micro.checked, seed: Number(e.seed.value),
      };
      if (e.name) out.name = e.name.value.trim() || "自动划分方案";
      if (e.register_households) out.register_households = e.register_households.checked;
      if (!(out.min_households <= out.target_households && out.target_households <= out.max_households)) {
        throw new ApiError(400, { error: { message: "户数设置无效：应满足 最少户数 ≤ 目标户数 ≤ 最多户数" } });
      }
      return out;
    };
  }

  /** Poll job *jobId*, drive the progress box; resolves with the final job. */
  function watchJob(jobId, box) {
    const bar = $(".progress-bar", box), text = $(".wg-job-message", box), cancel = $("[data-cancel]", box);
    box.hidden = false;
    cancel.disabled = false;
    let cancelled = false;
    cancel.onclick = async () => {
      cancel.disabled = true;
      cancelled = true;
      try { await api("POST", `/jobs/${jobId}/cancel`, {}); } catch (err) { showError(err, "取消任务"); }
    };
    return new Promise((resolve) => {
      const poll = async () => {
        let job;
        try { job = await api("GET", `/jobs/${jobId}`); } catch (err) {
          showError(err, "查询任务进度");
          resolve({ state: "failed", message: err.message });
          return;
        }
        const pct = Math.round(100 * Math.max(0, Math.min(1, Number(job.progress) || 0)));
        bar.style.width = `${job.state === "done" ? 100 : pct}%`;
        bar.textContent = `${job.state === "done" ? 100 : pct}%`;
        box.dataset.state = job.state;
        const label = JOB_STATES[job.state] || job.state;  // the server's message may start with it ("完成：12 个网格")
        text.textContent = !job.message ? label : job.message.startsWith(label) ? job.message : `${label}：${job.message}`;
        if (["done", "failed", "cancelled"].includes(job.state)) {
          cancel.disabled = true;
          bar.classList.toggle("bg-danger", job.state !== "done");
          resolve(job);
        } else {
          setTimeout(poll, cancelled ? 300 : 500);
        }
      };
      poll();
    });
  }

  // ------------------------------------------------------------------ plan list page
  async function initPlansPage() {
    const tbody = $("#wg-plan-list tbody");
    const compare = $("#wg-compare");
    const load = async () => {
      let plans;
      try { plans = await api("GET", "/plans"); } catch (err) {
        tbody.innerHTML = `<tr><td colspan="8" class="wg-muted">无法加载方案列表</td></tr>`;
        showError(err, "加载方案列表");
        return;
      }
      if (!plans.length) {
        tbody.innerHTML = `<tr><td colspan="8" class="wg-muted">还没有方案。${PAGE.canEdit ? "点击“自动划分”生成第一个方案。" : ""}</td></tr>`;
        return;
      }
      tbody.innerHTML = plans.map((p) => `<tr data-plan="${p.id}">
        <td><input type="checkbox" class="form-check-input" value="${p.id}" aria-label="选择 #${p.id} 对比"></td>
        <td>#${p.id}</td><td><a href="${PAGE.pages}/${p.id}">${esc(p.name)}</a></td>
        <td><span class="wg-badge wg-badge-${esc(p.status)}">${esc(STATUS_LABELS[p.status] || p.status)}</span>
          ${p.is_active ? '<span class="wg-badge wg-badge-active">生效中</span>' : ""}</td>
        <td>${esc(p.author)}</td><td>${esc(fmtTime(p.created_at))}</td><td>${esc(p.message || "")}</td>
        <td>${esc(p.version)}</td></tr>`).join("");
    };
    tbody.addEventListener("change", () => {
      compare.disabled = $$("input:checked", tbody).length !== 2;
    });
    compare.addEventListener("click", () => {
      const ids = $$("input:checked", tbody).map((i) => Number(i.value)).sort((a, b) => a - b);
      if (ids.length === 2) window.location.href = `${PAGE.pages}/${ids[0]}/diff/${ids[1]}`;
    });
    const panel = $("#wg-partition-panel");
    if (panel) {
      const form = $("#wg-partition-form");
      const read = partitionForm(form);
      $("#wg-open-partition").addEventListener("click", () => { panel.hidden = false; });
      $("[data-close]", panel).addEventListener("click", () => { panel.hidden = true; });
      form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const submit = $('button[type="submit"]', form);
        submit.disabled = true;
        try {
          const { job_id: jobId } = await api("POST", "/plans/partition", read());
          const job = await watchJob(jobId, $("#wg-job"));
          if (job.state === "done" && job.plan_id) {
            message(`划分完成：方案 #${job.plan_id}，正在打开…`, "ok");
            await load();
            setTimeout(() => { window.location.href = `${PAGE.pages}/${job.plan_id}`; }, 400);
          } else if (job.state === "failed") {
            message(`自动划分失败：${job.message || "未知原因"}`, "error");
          } else if (job.state === "cancelled") {
            message("自动划分已取消", "warn");
          }
        } catch (err) { showError(err, "自动划分"); } finally { submit.disabled = false; }
      });
    }
    await load();
  }

  // ------------------------------------------------------------------ shared map layers
  function gridStyleFor(props, state) {
    const st = CFG.status[props.status] || CFG.status[statusOf(props)] || { color: "#cccccc" };
    const bad = state && state.violations && state.violations.has(props.grid_id);
    const sel = state && state.selectedGrid === props.grid_id;
    return {
      color: sel ? CFG.colors.selected : bad ? "#d62728" : "#3b3b3b",
      weight: sel ? 4 : bad ? 2.5 : 1.2, dashArray: bad && !sel ? "6 4" : null,
      opacity: 0.95, fillColor: st.color, fillOpacity: sel ? 0.55 : 0.42,
    };
  }
  function statusOf(p) {
    if (p.exclusive) return "exclusive";
    const [lo, hi] = CFG.bounds;
    return p.households < lo ? "under" : p.households > hi ? "over" : "in";
  }

  function contextPane(map) {
    if (!map.getPane("wgContext")) {
      map.createPane("wgContext").style.zIndex = 420;
    }
    return L.canvas({ pane: "wgContext", padding: 0.3 });
  }

  /** Streets (major ones always, all from streetsMinZoom) and compounds of the view. */
  function contextLayers(map, control) {
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

  function communityLayer(map, control, planId) {
    const layer = L.geoJSON(null, {
      renderer: contextPane(map), interactive: false, pane: "wgContext",
      style: () => ({ color: CFG.colors.community, weight: 3, opacity: 0.9, fill: false }),
    }).addTo(map);
    control.addOverlay(layer, "社区边界");
    return api("GET", `/plans/${planId}/communities.geojson`)
      .then((fc) => { layer.addData(toDisplay(fc)); return layer; })
      .catch((err) => { showError(err, "加载社区边界"); return layer; });
  }

  window.wanggePlanner = { wgsToGcj, gcjToWgs, ApiError };
  const page = PAGE.page;
  const start = () => {
    if (page === "plans") initPlansPage();
    else if (page === "plan") window.wanggePlannerPlan(PAGE, { api, message, showError, confirmDialog, esc, fmtInt, fmtTime, toDisplay, toServer, viewBbox, labelPoint, pointInLayer, gridStyleFor, statusOf, contextLayers, communityLayer, partitionForm, watchJob, CFG, STATUS_LABELS });
    else if (page === "diff") window.wanggePlannerDiff(PAGE, { api, showError, esc, toDisplay, gridStyleFor, contextLayers, communityLayer, CFG });
  };
  // The plan and diff page code lives below this closure; start() runs once the file is read.
  Promise.resolve().then(start);
})();

/* ---------------------------------------------------------------- plan map page */
window.wanggePlannerPlan = async function (PAGE, H) {
  "use strict";
  const { api, message, showError, confirmDialog, esc, fmtInt, CFG } = H;
  const $ = (sel) => document.querySelector(sel);
  const $$ = (sel) => Array.from(document.querySelectorAll(sel));
  const map = window.wanggeMap, control = window.wanggeLayerControl;
  const planId = PAGE.planId;
  const S = {
    plan: null, version: null, grids: new Map(), violations: new Map(), selectedGrid: null,
    selection: new Map(), polygon: null, sort: { key: "code", dir: 1 }, filter: "", busy: false, tool: null,
    lastEdit: null, cycle: {},
  };
  /** What the plan's state lets this user do (api/plans/policy.py): the toolbar shows only these. */
  const ACT = new Set(PAGE.actions || []);
  const EDIT = ACT.has("edit");
  const renderer = L.canvas({ padding: 0.3, tolerance: 3 });
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
  const tbody = $("#wg-grid-table tbody");

  // ---------------------------------------------------------------- grids
  /** Map label: the grid's own name, else the last 6 code digits (community + sequence). */
  const shortLabel = (p) => (p.name && p.name !== p.code ? esc(p.name)
    : p.code && p.code.length > 6 ? `…${esc(p.code.slice(-6, -3))}-${esc(p.code.slice(-3))}` : esc(p.code || p.grid_id));
  function gridTooltip(p) {
    const st = CFG.status[p.status || H.statusOf(p)] || { label: "" };
    const v = S.violations.get(p.grid_id) || [];
    return `<b>${esc(p.code || p.grid_id)}</b> ${p.name && p.name !== p.code ? esc(p.name) : ""}<br>户数 ${fmtInt(p.households)}（${st.label}）· 楼栋 ${fmtInt(p.buildings)}`
      + (p.locked ? "<br>已锁定" : "") + v.map((x) => `<br><span style="color:#b02a37">${esc(x.text)}</span>`).join("");
  }
  function upsertGrid(feature) {
    const p = feature.properties;
    const old = S.grids.get(p.grid_id);
    if (old) gridLayer.removeLayer(old.layer);
    p.status = p.status || H.statusOf(p);
    const layer = L.GeoJSON.geometryToLayer(feature, Object.assign({ renderer }, H.gridStyleFor(p, S)));
    layer.feature = feature;
    gridLayer.addLayer(layer);  // tooltip and click are the group's (one each, not one per grid)
    if (buildingLayer.getLayers().length) layer.bringToBack();
    let label = null;  // label point: computed when first needed (labels, neighbours)
    S.grids.set(p.grid_id, { props: p, layer, get label() { return label || (label = H.labelPoint(layer)); } });
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
    if (g) g.layer.setStyle(H.gridStyleFor(g.props, S));
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

  // ---------------------------------------------------------------- buildings
  const bStyle = (id) => (S.selection.has(id)
    ? { color: "#8a6d00", weight: 1.5, fillColor: CFG.colors.selected, fillOpacity: 0.95 }
    : { color: CFG.colors.building, weight: 0.6, fillColor: "#ffffff", fillOpacity: 0.8 });
  let bLoaded = null;
  async function refreshBuildings(force) {
    if (map.getZoom() < CFG.buildingsMinZoom) { buildingLayer.clearLayers(); bLoaded = null; return; }
    if (!force && bLoaded && bLoaded.contains(map.getBounds())) return;
    const box = H.viewBbox(map, 0.3);
    let fc;
    try { fc = H.toDisplay(await api("GET", `/plans/${planId}/buildings.geojson?bbox=${box.param}`)); } catch (err) {
      showError(err, "加载楼栋");
      return;
    }
    buildingLayer.clearLayers();
    for (const f of fc.features) {
      const p = f.properties;
      const layer = L.GeoJSON.geometryToLayer(f, { renderer });
      layer.feature = f;
      layer.setStyle(bStyle(p.building_id));
      layer.bindTooltip(() => {
        const g = S.grids.get(p.grid_id);
        return `<b>${esc(p.name || p.building_id)}</b><br>户数 ${fmtInt(p.households)} · 网格 ${esc(g ? g.props.code || p.grid_id : p.grid_id)}`;
      }, { sticky: true });
      if (EDIT) layer.on("click", () => { if (!S.tool) toggleBuilding(p, layer); });
      buildingLayer.addLayer(layer);
    }
    bLoaded = box.bounds;
    window.wanggePlanner.buildingsLoaded = performance.now();
  }
  map.on("moveend", () => refreshBuildings(false));

  // ---------------------------------------------------------------- selection and targets
  function toggleBuilding(p, layer) {
    if (S.selection.has(p.building_id)) S.selection.delete(p.building_id);
    else S.selection.set(p.building_id, { grid_id: p.grid_id, layer });
    S.polygon = null;
    selectionShape.clearLayers();
    layer.setStyle(bStyle(p.building_id));
    updateSelection();
  }
  function clearSelection() {
    const ids = Array.from(S.selection.keys());
    S.selection.clear();
    S.polygon = null;
    selectionShape.clearLayers();
    buildingLayer.eachLayer((l) => { if (ids.includes(l.feature.properties.building_id)) l.setStyle(bStyle(l.feature.properties.building_id)); });
    updateSelection();
  }
  function sourceGrids() {
    const src = new Set(Array.from(S.selection.values(), (s) => s.grid_id));
    if (!src.size && S.selectedGrid) src.add(S.selectedGrid);
    return src;
  }
  function neighbours(src) {
    const out = [];
    const comms = new Set(Array.from(src, (id) => (S.grids.get(id) || { props: {} }).props.community_id));
    for (const id of src) {
      const g = S.grids.get(id);
      if (!g) continue;
      const b = g.layer.getBounds().pad(0.02);
      for (const [oid, o] of S.grids) {
        if (src.has(oid) || out.includes(oid)) continue;
        if (o.props.community_id && !comms.has(o.props.community_id)) continue;
        if (b.intersects(o.layer.getBounds())) out.push(oid);
      }
    }
    const c = S.grids.get(Array.from(src)[0]);
    const centre = c ? c.label : map.getCenter();
    return out.sort((a, b) => centre.distanceTo(S.grids.get(a).label) - centre.distanceTo(S.grids.get(b).label));
  }
  function updateTargets() {
    const sel = $("#wg-target");
    if (!sel) return;
    const current = sel.value;
    const ids = neighbours(sourceGrids());
    sel.innerHTML = `<option value="">${ids.length ? "选择相邻网格…" : "先选择楼栋或网格"}</option>` + ids.map((id) => {
      const p = S.grids.get(id).props;
      return `<option value="${esc(id)}">${esc(p.code || id)}${p.name && p.name !== p.code ? " " + esc(p.name) : ""}（${fmtInt(p.households)} 户）</option>`;
    }).join("");
    if (ids.includes(current)) sel.value = current;
    updateButtons();
  }
  function updateSelection() {
    const box = $("#wg-selection");
    if (box) {
      const n = S.selection.size;
      const hh = Array.from(S.selection.values()).reduce((a, s) => a + (Number(s.layer.feature.properties.households) || 0), 0);
      box.textContent = n ? `已选 ${n} 栋楼，共 ${hh} 户` : S.polygon ? "已按绘制范围选择（楼栋未加载，按范围移动）" : "未选择楼栋：放大地图后点击楼栋，或用框选/多边形选择";
    }
    updateTargets();
  }
  function updateButtons() {
    if (!EDIT) return;
    const target = $("#wg-target").value;
    $('[data-action="move"]').disabled = S.busy || !target || !(S.selection.size || S.polygon);
    $('[data-action="merge"]').disabled = S.busy || !target || !S.selectedGrid;
    for (const a of ["lock", "exclusive", "rename"]) $(`[data-action="${a}"]`).disabled = S.busy || !S.selectedGrid;
    $('[data-tool="split"]').disabled = S.busy || !S.selectedGrid;
    const g = S.selectedGrid && S.grids.get(S.selectedGrid);
    $('[data-action="lock"]').textContent = g && g.props.locked ? "解锁" : "锁定";
    $('[data-action="exclusive"]').textContent = g && g.props.exclusive ? "取消专属" : "设为专属";
  }

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
    box.innerHTML = `<div><b>${esc(plan.name || "")}</b> <span class="wg-muted">#${planId} · 修订 ${esc(S.version)}</span></div>
      <div class="wg-kpis"><span>网格 <b data-kpi="grids">${props.length}</b></span><span>户数 <b data-kpi="households">${fmtInt(hh)}</b></span>
      <span>达标 <b data-kpi="in-range">${floorPct(inRange, counted.length)}</b>（${lo}–${hi} 户）</span>
      <span>超出范围 <b data-kpi="out-of-range">${link("out", out, `${out} 个`)}</b></span>
      <span>冲突 <b data-kpi="violations">${link("rule", bad, String(bad))}</b></span></div>
      <div class="wg-muted">${esc(plan.author || "")} ${esc(H.fmtTime(plan.created_at))}${plan.message ? " · " + esc(plan.message) : ""}</div>
      ${PAGE.canEdit ? "" : '<div class="wg-readonly">只读：您的角色可以查看方案，不能编辑。</div>'}`;
    const badge = $("#wg-plan-status");
    if (badge) badge.textContent = `${H.STATUS_LABELS[plan.status] || plan.status || ""}${plan.is_active ? " · 生效中" : ""}`;
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

  // ---------------------------------------------------------------- loading
  function parseBounds(b) {
    if (Array.isArray(b) && b.length >= 2) return [Number(b[0]), Number(b[1])];
    if (b && typeof b === "object") {
      const lo = b.min_households ?? b.min ?? b.lo, hi = b.max_households ?? b.max ?? b.hi;
      if (lo !== undefined && hi !== undefined) return [Number(lo), Number(hi)];
    }
    return CFG.bounds;
  }
  async function loadPlan(fit) {
    const [meta, fc] = await Promise.all([api("GET", `/plans/${planId}`), api("GET", `/plans/${planId}/grids.geojson?display=1`)]);
    performance.mark("wg:plan-fetched");
    S.plan = meta;
    S.version = meta.version;
    CFG.bounds = parseBounds(meta.bounds);
    // Off the map while filling and fitting: each grid is projected once, at the final zoom.
    const shown = map.hasLayer(gridLayer);
    map.removeLayer(gridLayer);
    gridLayer.clearLayers();
    S.grids.clear();
    H.toDisplay(fc);
    const empty = fc.features.filter((f) => !f.geometry).length;
    for (const f of fc.features) if (f.geometry) upsertGrid(f);
    if (empty) message(`${empty} 个网格没有边界几何，地图上不显示`, "warn");
    performance.mark("wg:grids-added");
    if (fit && S.grids.size) map.fitBounds(gridLayer.getBounds(), { padding: [10, 10], animate: false });
    if (shown) map.addLayer(gridLayer);
    if (buildingLayer.getLayers().length) gridLayer.eachLayer((l) => l.bringToBack());
    performance.mark("wg:fitted");
    renderTable();
    performance.mark("wg:table");
    updateSummary();
    refreshLabels();
    performance.mark("wg:labels");
    return fc.features.length;
  }

  // ---------------------------------------------------------------- edits
  function setBusy(on) {
    S.busy = on;
    $$("#wg-toolbar button").forEach((b) => { if (on) b.disabled = true; });
    if (!on) { $$("#wg-toolbar button").forEach((b) => { b.disabled = false; }); updateButtons(); }
  }
  function applyEdit(resp, label, clientMs) {
    S.version = resp.version;
    const touched = new Set(resp.removed || []);
    for (const id of resp.removed || []) removeGrid(id);
    for (const f of H.toDisplay({ features: resp.grids || [] }).features) { upsertGrid(f); touched.add(f.properties.grid_id); }
    for (const id of touched) S.violations.delete(id);
    for (const v of resp.violations || []) {
      const list = S.violations.get(v.grid_id) || [];
      list.push({ rule: v.rule, message: v.message, text: `${CFG.rules[v.rule] || v.rule}${v.message ? "：" + v.message : ""}` });
      S.violations.set(v.grid_id, list);
    }
    for (const id of touched) restyle(id);
    if (S.selectedGrid && S.grids.has(S.selectedGrid)) {
      highlight.clearLayers();
      highlight.addData(S.grids.get(S.selectedGrid).layer.feature);
    }
    renderTable();
    for (const id of touched) { const tr = rowOf(id); if (tr) tr.classList.add("wg-flash"); }
    refreshLabels();
    refreshViolationTips();
    updateSummary();
    S.lastEdit = { server_ms: resp.server_ms, client_ms: clientMs, version: resp.version };
    window.wanggePlanner.lastEdit = S.lastEdit;
    const codes = Array.from(touched, (id) => (S.grids.get(id) ? S.grids.get(id).props.code || id : id)).join("、");
    const vs = resp.violations || [];
    message(`${esc(label)}完成${codes ? "（" + esc(codes) + "）" : ""}；服务器 ${Math.round(resp.server_ms || 0)} ms`
      + (vs.length ? `；${vs.length} 条规则提示：` + vs.map((v) => `${esc((S.grids.get(v.grid_id) || { props: { code: v.grid_id } }).props.code || v.grid_id)} ${esc(CFG.rules[v.rule] || v.rule)}${v.message ? "（" + esc(v.message) + "）" : ""}`).join("；") : ""),
    vs.length ? "warn" : "ok", { html: true });
  }
  async function post(path, body, label) {
    if (S.busy) return null;
    setBusy(true);
    const t0 = performance.now();
    try {
      const resp = await api("POST", `/plans/${planId}/${path}`, Object.assign({ version: S.version }, body));
      if (resp && resp.grids) {
        applyEdit(resp, label, performance.now() - t0);
        clearSelection();
        await refreshBuildings(true);
      } else if (resp && resp.version !== undefined) S.version = resp.version;
      return resp || {};
    } catch (err) {
      if (err.code === "confirm_move" && !body.confirm) {
        setBusy(false);
        return (await confirmMove(err)) ? post(path, Object.assign({}, body, { confirm: true }), label) : null;
      }
      showError(err, label);
      return null;
    } finally { setBusy(false); }
  }
  /** Ask before a move that takes more than the selection or deletes a grid (nothing moved yet). */
  function confirmMove(err) {
    const d = err.detail || {};
    const others = (d.also_moving || []).map((b) => `<li>${esc(b.name || b.building_id)}${b.households === null || b.households === undefined ? "" : `（${fmtInt(b.households)} 户）`}</li>`).join("");
    const more = (d.also_moving_count || 0) - (d.also_moving || []).length;
    const gone = (d.deleted_grids || []).map((g) => `<li>${g.exclusive ? "专属网格" : "网格"} ${esc(g.label)}</li>`).join("");
    const html = `<p>${esc(err.message)}</p>`
      + (others ? `<p>随之移动的楼栋：</p><ul class="wg-confirm-list" data-list="buildings">${others}${more > 0 ? `<li>…另 ${more} 栋</li>` : ""}</ul>` : "")
      + (gone ? `<p>将被删除的网格：</p><ul class="wg-confirm-list" data-list="grids">${gone}</ul>` : "");
    return confirmDialog("移动前请确认", html, "确认移动");
  }
  const edit = (body, label) => post("edits", body, label);

  // ---------------------------------------------------------------- toolbar
  /** Leaflet-Geoman (CFG.geomanJs) is loaded once the page is ready: tools wait for it. */
  let geoman = null;
  function loadGeoman() {
    if (!geoman) {
      geoman = new Promise((resolve, reject) => {
        if (map.pm || !CFG.geomanJs) { resolve(); return; }
        const tag = document.createElement("script");
        tag.src = CFG.geomanJs;
        tag.onload = () => { map.pm = new L.PM.Map(map); initDrawing(); resolve(); };
        tag.onerror = () => reject(new Error("绘图工具加载失败，请刷新页面"));
        document.head.appendChild(tag);
      });
    }
    return geoman;
  }
  function setTool(name) {
    if (name && !map.pm) {
      loadGeoman().then(() => setTool(name), (err) => message(err.message, "error"));
      return;
    }
    if (map.pm) map.pm.disableDraw();
    S.tool = name;
    $$("#wg-toolbar [data-tool]").forEach((b) => b.classList.toggle("active", b.dataset.tool === name));
    if (!name || !map.pm) return;
    const shape = { box: "Rectangle", polygon: "Polygon", split: "Line" }[name];
    map.pm.enableDraw(shape, { snappable: false, templineStyle: { color: "#000" }, hintlineStyle: { color: "#000", dashArray: "4 4" },
      pathOptions: { color: "#000", weight: 1.5, fill: false } });
  }
  function selectWithin(drawn) {
    S.selection.clear();
    buildingLayer.eachLayer((l) => {
      const p = l.feature.properties;
      if (H.pointInLayer(l.getBounds().getCenter(), drawn)) S.selection.set(p.building_id, { grid_id: p.grid_id, layer: l });
    });
    buildingLayer.eachLayer((l) => l.setStyle(bStyle(l.feature.properties.building_id)));
    S.polygon = H.toServer(drawn.toGeoJSON().geometry);
    selectionShape.clearLayers();
    selectionShape.addData(drawn.toGeoJSON());
    if (S.selection.size) S.polygon = null;
    updateSelection();
  }
  function initDrawing() {
    map.pm.setLang("zh");
    map.on("pm:create", (e) => {
      const tool = S.tool;
      map.removeLayer(e.layer);
      setTool(null);
      if (tool === "split") {
        if (!S.selectedGrid) { message("请先选择要拆分的网格", "warn"); return; }
        edit({ op: "split", grid_id: S.selectedGrid, line: H.toServer(e.layer.toGeoJSON().geometry) }, "拆分网格");
      } else selectWithin(e.layer);
    });
  }
  function initToolbar() {
    if (map.pm && EDIT) initDrawing();
    $$("#wg-toolbar [data-tool]").forEach((b) => b.addEventListener("click", () => {
      const t = b.dataset.tool;
      if (t === "split" && !S.selectedGrid) { message("请先在表格或地图上选择要拆分的网格，再画一条穿过它的线", "warn"); return; }
      setTool(S.tool === t ? null : t);
      if (t === "split" && S.tool) message("在选中网格上画一条线（单击加点，双击结束）", "info");
    }));
    if (EDIT) $("#wg-target").addEventListener("change", updateButtons);
    const actions = {
      clear: () => { clearSelection(); setTool(null); },
      move: () => {
        const to = $("#wg-target").value;
        const body = S.selection.size ? { op: "move", building_ids: Array.from(S.selection.keys()), to_grid: to }
          : { op: "move", polygon: S.polygon, to_grid: to };
        return edit(body, "移动楼栋");
      },
      merge: () => edit({ op: "merge", grid_ids: [S.selectedGrid, $("#wg-target").value] }, "合并网格"),
      lock: () => { const p = S.grids.get(S.selectedGrid).props; return edit({ op: p.locked ? "unlock" : "lock", grid_id: p.grid_id }, p.locked ? "解锁" : "锁定"); },
      exclusive: () => { const p = S.grids.get(S.selectedGrid).props; return edit({ op: "exclusive", grid_id: p.grid_id, value: !p.exclusive }, p.exclusive ? "取消专属网格" : "设为专属网格"); },
      rename: () => {
        const p = S.grids.get(S.selectedGrid).props;
        const name = window.prompt(`网格 ${p.code || p.grid_id} 的新名称`, p.name || "");
        if (name !== null && name.trim()) edit({ op: "rename", grid_id: p.grid_id, name: name.trim() }, "重命名");
      },
      undo: () => post("undo", {}, "撤销"),
      redo: () => post("redo", {}, "重做"),
      save: async () => {
        const note = window.prompt("版本说明（保存为新版本）", "");
        if (note === null) return;
        try {
          const v = await api("POST", `/plans/${planId}/versions`, { name: (S.plan && S.plan.name) || `方案 #${planId}`, message: note, version: S.version });
          message(`已保存为版本 <a href="${PAGE.pages}/${v.id}">#${v.id} ${esc(v.name || "")}</a>`, "ok", { html: true });
        } catch (err) { showError(err, "保存版本"); }
      },
      publish: async () => {
        try {
          await api("POST", `/plans/${planId}/publish`, { version: S.version });
          reloadWith("已发布：本方案成为所辖社区的生效网格方案；已发布的方案不再直接编辑");
        } catch (err) { showError(err, "发布"); }
      },
      rollback: async () => {
        try {
          const r = await api("POST", `/plans/${planId}/rollback`, { version: S.version });
          const back = ((r && r.restored) || []).map((p) => `#${p.id} ${p.name}`).join("、");
          reloadWith(`已回滚：本方案已撤下${back ? "，重新生效：" + back : ""}`);
        } catch (err) { showError(err, "回滚"); }
      },
      repartition: () => { const p = $("#wg-partition-panel"); p.hidden = !p.hidden; },
    };
    $$("#wg-toolbar [data-action]").forEach((b) => b.addEventListener("click", () => actions[b.dataset.action]()));
    if (EDIT) document.addEventListener("keydown", (ev) => {
      if (ev.target.closest("input, textarea, select") || !(ev.ctrlKey || ev.metaKey)) return;
      if (ev.key === "z" && !ev.shiftKey) { ev.preventDefault(); actions.undo(); }
      if (ev.key === "y" || (ev.key === "z" && ev.shiftKey)) { ev.preventDefault(); actions.redo(); }
    });
    const panel = $("#wg-partition-panel"), form = $("#wg-partition-form");
    if (!panel) { updateSelection(); return; }
    const read = H.partitionForm(form);
    panel.querySelector("[data-close]").addEventListener("click", () => { panel.hidden = true; });
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        const { job_id: jobId } = await api("POST", `/plans/${planId}/repartition`, Object.assign({ version: S.version }, read()));
        const job = await H.watchJob(jobId, panel.querySelector("#wg-job"));
        if (job.state !== "done") { message(`重新划分${job.state === "cancelled" ? "已取消" : "失败：" + (job.message || "")}`, job.state === "cancelled" ? "warn" : "error"); return; }
        if (job.plan_id && Number(job.plan_id) !== Number(planId)) { window.location.href = `${PAGE.pages}/${job.plan_id}`; return; }
        await loadPlan(false);
        message("重新划分完成（锁定的网格保持不变）", "ok");
      } catch (err) { showError(err, "重新划分"); }
    });
    updateSelection();
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
    sel.innerHTML = '<option value="">与版本对比…</option>' + others.map((p) => `<option value="${p.id}">#${p.id} ${esc(p.name)}（${esc(H.STATUS_LABELS[p.status] || p.status)}）${p.id === PAGE.parentId ? " · 上一版本" : ""}</option>`).join("");
    sel.addEventListener("change", () => {
      const other = Number(sel.value);
      if (other) window.location.href = `${PAGE.pages}/${Math.min(other, planId)}/diff/${Math.max(other, planId)}`;
    });
  }

  // ---------------------------------------------------------------- start
  noteAfterReload();
  window.wanggePlanner = Object.assign(window.wanggePlanner || {}, { state: S, map, gridLayer, buildingLayer, selectGrid, refreshBuildings, floorPct });
  if (ACT.size) initToolbar();
  const ctx = H.contextLayers(map, control);
  let n = 0;
  try { n = await loadPlan(true); } catch (err) {
    $("#wg-loading").textContent = "方案加载失败";
    showError(err, "加载方案");
    return;
  }
  requestAnimationFrame(() => {
    window.wanggePlannerReady = performance.now();
    document.body.dataset.ready = "1";
    if (EDIT) setTimeout(() => loadGeoman().catch((err) => message(err.message, "error")), 0);
  });
  $("#wg-loading").hidden = true;
  if (!n) message("本方案还没有网格", "warn");
  H.communityLayer(map, control, planId);
  initDiffPicker();
  ctx.loadMajor();
  ctx.refresh();
  refreshBuildings(true);
};

/* ---------------------------------------------------------------- diff page */
window.wanggePlannerDiff = async function (PAGE, H) {
  "use strict";
  const { api, showError, esc, CFG } = H;
  const map = window.wanggeMap, control = window.wanggeLayerControl;
  const renderer = L.canvas({ padding: 0.3 });
  const tbody = document.querySelector("#wg-diff-table tbody");
  const count = document.getElementById("wg-diff-count");
  let diff, gridsA, gridsB;
  try {
    [diff, gridsA, gridsB] = await Promise.all([api("GET", `/plans/${PAGE.planA}/diff/${PAGE.planB}`),
      api("GET", `/plans/${PAGE.planA}/grids.geojson?display=1`), api("GET", `/plans/${PAGE.planB}/grids.geojson?display=1`)]);
  } catch (err) {
    count.textContent = "比较失败";
    showError(err, "比较方案");
    return;
  }
  const codes = new Map();
  for (const f of gridsA.features.concat(gridsB.features)) codes.set(f.properties.grid_id, f.properties.code || f.properties.grid_id);
  const layerB = L.geoJSON(H.toDisplay(gridsB), {
    renderer, style: (f) => Object.assign(H.gridStyleFor(f.properties, null), { fillOpacity: 0.3 }),
    onEachFeature: (f, l) => l.bindTooltip(`新版本 ${esc(f.properties.code || f.properties.grid_id)} · ${esc(f.properties.households)} 户`, { sticky: true }),
  }).addTo(map);
  const layerA = L.geoJSON(H.toDisplay(gridsA), {
    renderer, interactive: false,
    style: () => ({ color: "#222", weight: 2, dashArray: "6 5", fill: false, opacity: 0.9 }),
  }).addTo(map);
  const moved = L.geoJSON(H.toDisplay(diff.features || { type: "FeatureCollection", features: [] }), {
    renderer, style: () => ({ color: "#7a0044", weight: 1.2, fillColor: CFG.colors.moved, fillOpacity: 0.9 }),
    onEachFeature: (f, l) => l.bindTooltip(`楼栋 ${esc(f.properties.name || f.properties.building_id)}<br>${esc(codes.get(f.properties.from) || f.properties.from || "")} → ${esc(codes.get(f.properties.to) || f.properties.to || "")}`, { sticky: true }),
  }).addTo(map);
  control.addOverlay(layerB, "新版本网格");
  control.addOverlay(layerA, "原版本边界");
  control.addOverlay(moved, "换网格的楼栋");
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
  const fit = moved.getLayers().length ? moved.getBounds() : layerB.getBounds();
  if (fit.isValid()) map.fitBounds(fit.pad(0.5), { padding: [30, 30], maxZoom: 16 });
  document.getElementById("wg-loading").hidden = true;
  H.communityLayer(map, control, PAGE.planB);
  requestAnimationFrame(() => { window.wanggePlannerReady = performance.now(); document.body.dataset.ready = "1"; });
};
