/* The plan page's edits: the toolbar, drawing tools (Leaflet-Geoman, loaded on demand),
 * edit requests with live rule results, undo/redo, versions, publish and rollback.
 */
import { api } from "./api.js";
import { $, $$, CFG, PAGE, esc, fmtInt } from "./core.js";
import { partitionForm, watchJob } from "./jobs.js";
import { toDisplay, toServer } from "./mapsetup.js";
import { confirmDialog, message, showError } from "./messages.js";

/** Add the edit functions to the page context *P* (see plan_page.js). */
export function install(P) {
  const { S, map, planId, EDIT, renderer, tbody, gridLayer, buildingLayer, labelLayer, violationLayer, highlight,
    selectionShape } = P;
  const removeGrid = (...a) => P.removeGrid(...a);
  const upsertGrid = (...a) => P.upsertGrid(...a);
  const restyle = (...a) => P.restyle(...a);
  const renderTable = (...a) => P.renderTable(...a);
  const rowOf = (...a) => P.rowOf(...a);
  const refreshLabels = (...a) => P.refreshLabels(...a);
  const refreshViolationTips = (...a) => P.refreshViolationTips(...a);
  const updateSummary = (...a) => P.updateSummary(...a);
  const clearSelection = (...a) => P.clearSelection(...a);
  const refreshBuildings = (...a) => P.refreshBuildings(...a);
  const selectWithin = (...a) => P.selectWithin(...a);
  const updateSelection = (...a) => P.updateSelection(...a);
  const loadPlan = (...a) => P.loadPlan(...a);
  const reloadWith = (...a) => P.reloadWith(...a);

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
    for (const f of toDisplay({ features: resp.grids || [] }).features) { upsertGrid(f); touched.add(f.properties.grid_id); }
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
  function initDrawing() {
    map.pm.setLang("zh");
    map.on("pm:create", (e) => {
      const tool = S.tool;
      map.removeLayer(e.layer);
      setTool(null);
      if (tool === "split") {
        if (!S.selectedGrid) { message("请先选择要拆分的网格", "warn"); return; }
        edit({ op: "split", grid_id: S.selectedGrid, line: toServer(e.layer.toGeoJSON().geometry) }, "拆分网格");
      } else selectWithin(e.layer);
    });
  }
  /** What each toolbar button (data-action) does. */
  function toolbarActions() {
    return {
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
  }
  /** The re-partition panel: submit runs the job, then reloads the plan (or opens the new one). */
  function initRepartition() {
    const panel = $("#wg-partition-panel"), form = $("#wg-partition-form");
    if (!panel) return;
    const read = partitionForm(form);
    panel.querySelector("[data-close]").addEventListener("click", () => { panel.hidden = true; });
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        const { job_id: jobId } = await api("POST", `/plans/${planId}/repartition`, Object.assign({ version: S.version }, read()));
        const job = await watchJob(jobId, panel.querySelector("#wg-job"));
        if (job.state !== "done") { message(`重新划分${job.state === "cancelled" ? "已取消" : "失败：" + (job.message || "")}`, job.state === "cancelled" ? "warn" : "error"); return; }
        if (job.plan_id && Number(job.plan_id) !== Number(planId)) { window.location.href = `${PAGE.pages}/${job.plan_id}`; return; }
        await loadPlan(false);
        message("重新划分完成（锁定的网格保持不变）", "ok");
      } catch (err) { showError(err, "重新划分"); }
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
    const actions = toolbarActions();
    $$("#wg-toolbar [data-action]").forEach((b) => b.addEventListener("click", () => actions[b.dataset.action]()));
    if (EDIT) document.addEventListener("keydown", (ev) => {
      if (ev.target.closest("input, textarea, select") || !(ev.ctrlKey || ev.metaKey)) return;
      if (ev.key === "z" && !ev.shiftKey) { ev.preventDefault(); actions.undo(); }
      if (ev.key === "y" || (ev.key === "z" && ev.shiftKey)) { ev.preventDefault(); actions.redo(); }
    });
    initRepartition();
    updateSelection();
  }

  Object.assign(P, { updateButtons, loadGeoman, initToolbar });
}
