/* The plan page's building selection: buildings of the view, click and box/polygon selection,
 * and the neighbouring grids a selection may move to.
 */
import { api } from "./api.js";
import { $, CFG, esc, fmtInt } from "./core.js";
import { pointInLayer, toDisplay, toServer, viewBbox } from "./mapsetup.js";
import { showError } from "./messages.js";

/** Add the selection functions to the page context *P* (see plan_page.js). */
export function install(P) {
  const { S, map, planId, EDIT, renderer, tbody, gridLayer, buildingLayer, labelLayer, violationLayer, highlight,
    selectionShape } = P;
  const updateButtons = (...a) => P.updateButtons(...a);

  // ---------------------------------------------------------------- buildings
  const bStyle = (id) => (S.selection.has(id)
    ? { color: "#8a6d00", weight: 1.5, fillColor: CFG.colors.selected, fillOpacity: 0.95 }
    : { color: CFG.colors.building, weight: 0.6, fillColor: "#ffffff", fillOpacity: 0.8 });
  let bLoaded = null;
  async function refreshBuildings(force) {
    if (map.getZoom() < CFG.buildingsMinZoom) { buildingLayer.clearLayers(); bLoaded = null; return; }
    if (!force && bLoaded && bLoaded.contains(map.getBounds())) return;
    const box = viewBbox(map, 0.3);
    let fc;
    try { fc = toDisplay(await api("GET", `/plans/${planId}/buildings.geojson?bbox=${box.param}`)); } catch (err) {
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
  /** Select the loaded buildings inside a drawn box/polygon (none loaded: move by the shape itself). */
  function selectWithin(drawn) {
    S.selection.clear();
    buildingLayer.eachLayer((l) => {
      const p = l.feature.properties;
      if (pointInLayer(l.getBounds().getCenter(), drawn)) S.selection.set(p.building_id, { grid_id: p.grid_id, layer: l });
    });
    buildingLayer.eachLayer((l) => l.setStyle(bStyle(l.feature.properties.building_id)));
    S.polygon = toServer(drawn.toGeoJSON().geometry);
    selectionShape.clearLayers();
    selectionShape.addData(drawn.toGeoJSON());
    if (S.selection.size) S.polygon = null;
    updateSelection();
  }

  Object.assign(P, { refreshBuildings, clearSelection, updateTargets, updateSelection, selectWithin });
}
