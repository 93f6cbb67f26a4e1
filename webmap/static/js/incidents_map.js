// Incident maps (offline: no tiles): the active grid outlines with cases as circle markers
// coloured by state. Popups are built with textContent: case text never runs as script.
(function () {
  "use strict";
  var COLORS = { reported: "#e67e22", accepted: "#f1c40f", dispatched: "#2980b9", handling: "#8e44ad",
                 feedback: "#16a085", closed: "#27ae60", evaluated: "#2ecc71", visited: "#1abc9c",
                 rejected: "#7f8c8d", cancelled: "#95a5a6" };

  var HINTS = { open: "网格底色：未结案件数（颜色越深越多）", count: "网格底色：符合筛选的案件数（颜色越深越多）",
                rate: "网格底色：每千户案件数（符合筛选的案件 ÷ 户数 × 1000；无户数的网格不着色）" };

  function gridStyler(fc, shade) {
    // Choropleth per grid: open cases, filtered cases, or filtered cases per 1,000 households,
    // scaled to the largest value on the map.
    var top = 0;
    fc.features.forEach(function (f) { top = Math.max(top, +f.properties[shade] || 0); });
    return function (f) {
      var v = +f.properties[shade] || 0;
      return { color: "#2c6fbb", weight: 1, fillColor: "#c0392b", fillOpacity: top ? 0.05 + 0.55 * v / top : 0.05 };
    };
  }

  function gridLayer(map, url, fit, shade) {
    return fetch(url, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (fc) {
      var layer = L.geoJSON(fc, { style: gridStyler(fc, shade || "open") }).addTo(map);
      if (fit && fc.features.length) { map.fitBounds(layer.getBounds()); }
      return layer;
    });
  }

  var small = document.getElementById("wg-case-map");
  if (small) {
    var ll = L.latLng(+small.dataset.lat, +small.dataset.lon);
    var m1 = L.map(small, { attributionControl: false }).setView(ll, 17);
    gridLayer(m1, small.dataset.grids, false);
    L.circleMarker(ll, { radius: 8, color: "#c0392b", fillOpacity: 0.8 }).addTo(m1);
  }

  var el = document.getElementById("wg-incident-map");
  if (!el) { return; }
  // maxZoom: markercluster needs one, and without tiles no layer gives it.
  var map = L.map(el, { attributionControl: false, zoomSnap: 0.25, preferCanvas: true, maxZoom: 20 });
  // The view comes with the page (bbox= of the address, else the active grids' extent): grids and
  // cases are then fetched for that view only, in parallel.
  var view = (el.dataset.view || "").split(",").map(Number);
  if (view.length === 4 && view.every(isFinite)) {
    map.fitBounds([[view[1], view[0]], [view[3], view[2]]]);
  } else {
    map.setView([31.23, 121.47], 13);
  }
  // Clusters when leaflet.markercluster is served (vendored), plain markers otherwise.
  var cases = (L.markerClusterGroup ? L.markerClusterGroup({ disableClusteringAtZoom: 17, maxClusterRadius: 40 })
                                    : L.layerGroup()).addTo(map);
  window.wanggeIncidentMap = map;
  var filter = document.getElementById("wg-map-filter");
  var count = document.getElementById("wg-map-count");

  function popup(p) {
    var div = document.createElement("div");
    var a = document.createElement("a");
    a.href = el.dataset.caseUrl.replace(/0$/, String(p.id));
    a.textContent = "#" + p.id + " " + p.category;
    var s = document.createElement("div");
    s.textContent = p.state_label + (p.overdue ? "（已超期）" : "") + (p.supervise ? "（督办）" : "");
    div.appendChild(a);
    div.appendChild(s);
    return div;
  }

  var shade = document.getElementById("wg-shade"), heatBox = document.getElementById("wg-heat");
  var grids = null, heat = null, points = [], latest = 0;

  function drawHeat() {
    // Leaflet.heat (bundled with folium, served locally) over the cases of the view.
    if (heat) { map.removeLayer(heat); heat = null; }
    if (heatBox.checked && L.heatLayer) {
      heat = L.heatLayer(points, { radius: 22, blur: 18, maxZoom: 17 }).addTo(map);
    }
    el.dataset.heat = heat ? String(points.length) : "";
  }

  function viewParams() {
    var b = map.getBounds();
    var params = new URLSearchParams(new FormData(filter));
    params.set("bbox", [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].join(","));
    return params;
  }

  function loadGrids(params, mine) {
    return gridLayer(map, el.dataset.grids + "?" + params.toString(), false, shade.value).then(function (layer) {
      if (mine !== latest) { map.removeLayer(layer); return; }  // a newer view is on its way
      if (grids) { map.removeLayer(grids); }
      grids = layer;
      grids.bringToBack();
      document.getElementById("wg-shade-hint").textContent = HINTS[shade.value];
      el.dataset.shade = shade.value;
    });
  }

  function load(params, mine) {
    return fetch(el.dataset.cases + "?" + params.toString(), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (fc) {
        if (mine !== latest) { return; }
        cases.clearLayers();
        points = fc.features.map(function (f) { return [f.geometry.coordinates[1], f.geometry.coordinates[0]]; });
        drawHeat();
        var markers = fc.features.map(function (f) {
          var p = f.properties, c = f.geometry.coordinates;
          return L.circleMarker([c[1], c[0]], { radius: p.overdue ? 7 : 5, weight: p.overdue ? 2 : 1,
                                                 color: p.overdue ? "#c0392b" : "#333", fillColor: COLORS[p.state] || "#555",
                                                 fillOpacity: 0.85 }).bindPopup(popup(p));
        });
        // One bulk add: markercluster clusters them in one pass (one by one re-clusters every time).
        if (cases.addLayers) { cases.addLayers(markers); } else { markers.forEach(function (m) { cases.addLayer(m); }); }
        count.textContent = "本视图 " + fc.features.length + " 件" + (fc.truncated ? "（仅显示最新部分，请放大）" : "");
        el.dataset.count = String(fc.features.length);
      });
  }

  function refresh() {
    // Grids and cases of the view in parallel; data-loaded="1" once both are drawn (the latest view only).
    var mine = ++latest, params = viewParams();
    el.dataset.loaded = "";
    return Promise.all([loadGrids(params, mine), load(params, mine)]).then(function () {
      if (mine === latest) { el.dataset.loaded = "1"; }
    });
  }

  refresh().then(function () { map.on("moveend", refresh); });
  filter.addEventListener("change", function (e) {
    if (e.target === heatBox) { drawHeat(); return; }
    refresh();
  });
})();
