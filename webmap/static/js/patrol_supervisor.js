// 巡查督导: coverage ranking and choropleth per grid for a period, workers' last known positions,
// one worker's track of a day with a time slider, today's geofence alerts as a list and on the map.
(function () {
  "use strict";
  var root = document.getElementById("patrol-sup");
  var msg = document.getElementById("sup-msg");
  var map = L.map("sup-map", { attributionControl: false, preferCanvas: true }).setView([39.9, 116.4], 12);
  var layer = null;
  var gridLayer = null;
  var grids = null;
  var posLayer = L.layerGroup().addTo(map);
  var alertLayer = L.layerGroup().addTo(map);
  var ALERT = { outside: "离开网格", stationary: "长时间停留", silent: "长时间无定位" };
  // Days and clock times in the patrol time zone (patrol days, shift hours; base.html's display zone
  // otherwise), never UTC or the browser's own zone.
  var zoneMeta = document.querySelector('meta[name="wangge-timezone"]');
  var timeZone = root.dataset.timezone || (zoneMeta ? zoneMeta.content : undefined);
  var today = new Intl.DateTimeFormat("sv-SE", { timeZone: timeZone }).format(new Date());
  document.querySelectorAll("input[type=date]").forEach(function (i) { i.value = today; });

  function get(url) {
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      return r.json().then(function (b) { if (!r.ok) { throw new Error(b.error ? b.error.message : r.status); } return b; });
    });
  }
  function pct(x) { return x === null ? "—" : (100 * x).toFixed(1) + "%"; }
  // Threshold colours of the usual patrol scoring (>= 95 % full points, 85-94 %, 60-84 %, below).
  function colour(x) {
    if (x === null || x === undefined) { return "#bdc3c7"; }
    return x >= 0.95 ? "#27ae60" : x >= 0.85 ? "#f1c40f" : x >= 0.6 ? "#e67e22" : "#c0392b";
  }

  function gridOutlines() {
    if (grids) { return Promise.resolve(grids); }
    return get(root.dataset.gridsUrl).then(function (g) { grids = g; return g; });
  }

  function choropleth(rows) {
    var byGrid = {};
    rows.forEach(function (r) { byGrid[r.grid] = r; });
    return gridOutlines().then(function (g) {
      if (gridLayer) { map.removeLayer(gridLayer); }
      gridLayer = L.geoJSON(g, {
        style: function (f) {
          var r = byGrid[f.properties.key];
          // Before any track is stored, no grid has been measured: grey (no data), not red (0 %).
          var measured = root.dataset.hasTracks === "1" && r;
          return { color: "#555", weight: 1, fillOpacity: 0.55, fillColor: colour(measured ? r.building_coverage : null) };
        },
        onEachFeature: function (f, l) {
          var r = byGrid[f.properties.key];
          l.bindTooltip(document.createTextNode((f.properties.name || f.properties.key) + "：" +
                                                (r && root.dataset.hasTracks === "1" ? pct(r.building_coverage) : "无数据")));
          l.on("click", function () { showVisits(f.properties.key); });
        }
      }).addTo(map);
      gridLayer.bringToBack();
      if (g.features.length) { map.fitBounds(gridLayer.getBounds(), { padding: [8, 8] }); }
      root.dataset.choropleth = String(g.features.filter(function (f) { return byGrid[f.properties.key]; }).length);
      root.dataset.measured = root.dataset.hasTracks === "1" ? root.dataset.choropleth : "0";
    });
  }

  document.getElementById("coverage-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var q = new URLSearchParams(new FormData(ev.target)).toString();
    get(root.dataset.coverageUrl + "?" + q).then(function (body) {
      var rows = body.rows.slice().sort(function (a, b) { return (b.building_coverage || 0) - (a.building_coverage || 0); });
      var tbody = document.querySelector("#coverage-rank tbody");
      tbody.textContent = "";
      rows.forEach(function (r, i) {
        var tr = document.createElement("tr");
        [i + 1, r.grid, r.buildings_visited + "/" + r.buildings_total, pct(r.building_coverage), pct(r.household_coverage),
         r.street_share === undefined ? "—" : pct(r.street_share)]
          .forEach(function (v) { var td = document.createElement("td"); td.textContent = v; tr.appendChild(td); });
        tbody.appendChild(tr);
      });
      msg.textContent = "定位点 " + body.fixes_in + " 个";
      return choropleth(body.rows);
    }).catch(function (e) { msg.textContent = e.message; });
  });

  function loadPositions() {
    return get(root.dataset.positionsUrl).then(function (body) {
      posLayer.clearLayers();
      body.workers.forEach(function (w) {
        var age = Math.round((Date.now() - new Date(w.t).getTime()) / 60000);
        L.circleMarker([w.lat, w.lon], { radius: 7, color: "#fff", weight: 2, fillColor: "#8e44ad", fillOpacity: 1 })
          .bindTooltip(document.createTextNode(w.name + "（" + (w.grid || "网格外") + "）" + age + " 分钟前"))
          .addTo(posLayer);
      });
      root.dataset.positions = String(body.workers.length);
    }).catch(function (e) { msg.textContent = e.message; });
  }
  document.getElementById("positions-refresh").addEventListener("click", loadPositions);

  // Times in the patrol time zone (shift hours, patrol days), whatever the browser's own zone.
  function hhmm(iso) {
    return new Date(iso).toLocaleTimeString("zh-CN", { hour: "2-digit", minute: "2-digit", hour12: false, timeZone: timeZone });
  }

  // Today's geofence alerts: one row each, and a marker where it was raised (none for a worker never seen).
  function alertRow(a) {
    var tr = document.createElement("tr");
    [a.worker, ALERT[a.kind] || a.kind, hhmm(a.start), hhmm(a.end), Math.round(a.minutes)]
      .forEach(function (v) { var td = document.createElement("td"); td.textContent = v; tr.appendChild(td); });
    if (a.lat !== null && a.lon !== null) {
      var ll = [a.lat, a.lon];
      L.circleMarker(ll, { radius: 8, color: "#000", weight: 2, fillColor: "#e74c3c", fillOpacity: 0.9 })
        .bindTooltip(document.createTextNode(a.worker + "：" + (ALERT[a.kind] || a.kind) + " " + Math.round(a.minutes) +
                                             " 分钟（" + hhmm(a.start) + "–" + hhmm(a.end) + "）"))
        .addTo(alertLayer);
      tr.className = "wg-alert-row";
      tr.addEventListener("click", function () { map.setView(ll, 17); });
    }
    return tr;
  }

  function loadAlerts() {
    return get(root.dataset.alertsUrl).then(function (body) {
      alertLayer.clearLayers();
      var tbody = document.querySelector("#alerts-table tbody");
      tbody.textContent = "";
      body.alerts.forEach(function (a) { tbody.appendChild(alertRow(a)); });
      if (!body.alerts.length) { tbody.innerHTML = "<tr><td colspan='5'>今日暂无告警</td></tr>"; }
      root.dataset.alerts = String(body.alerts.length);
    }).catch(function (e) { msg.textContent = e.message; root.dataset.alerts = "error"; });
  }
  document.getElementById("alerts-refresh").addEventListener("click", loadAlerts);

  // Key persons of one grid: due, overdue and done (masked by the register's rules; the view is audited).
  var VISIT = { overdue: "已逾期", due: "待走访", done: "已走访" };
  var visitsForm = document.getElementById("visits-form");
  function showVisits(key) {
    visitsForm.grid.value = key;
    return get(root.dataset.visitsUrl + "?grid=" + encodeURIComponent(key)).then(function (body) {
      var tbody = document.querySelector("#visits-table tbody");
      tbody.textContent = "";
      body.rows.forEach(function (kp) {
        var tr = document.createElement("tr");
        tr.className = "wg-visit-" + kp.status;
        [kp.name, kp.category, VISIT[kp.status] || kp.status, kp.due_date || "—", kp.last_visit || "从未走访"]
          .forEach(function (v) { var td = document.createElement("td"); td.textContent = v; tr.appendChild(td); });
        tbody.appendChild(tr);
      });
      if (!body.rows.length) { tbody.innerHTML = "<tr><td colspan='5'>本网格暂无重点人员</td></tr>"; }
      root.dataset.visits = String(body.rows.length);
      return showHistory(key);
    }).catch(function (e) { msg.textContent = e.message; root.dataset.visits = "error"; });
  }
  function showHistory(key) {
    var tbody = document.querySelector("#visit-history tbody");
    return window.wgVisitHistory(root.dataset.historyUrl + "?grid=" + encodeURIComponent(key), tbody)
      .then(function (n) { root.dataset.history = String(n); });
  }
  visitsForm.addEventListener("submit", function (ev) { ev.preventDefault(); showVisits(visitsForm.grid.value.trim()); });

  // Time slider: the track up to the chosen fix, and a marker where the worker was then.
  var slider = document.getElementById("track-time");
  var label = document.getElementById("track-time-label");
  var fixes = [];
  var here = null;
  function showUntil(k) {
    if (layer) { map.removeLayer(layer); }
    var lines = [];
    var current = null;
    fixes.slice(0, k + 1).forEach(function (f) {
      if (f.session !== current) { lines.push([]); current = f.session; }
      lines[lines.length - 1].push(f.ll);
    });
    layer = L.polyline(lines, { color: "#2c3e50", weight: 3 }).addTo(map);
    if (here) { map.removeLayer(here); }
    if (fixes.length) {
      here = L.circleMarker(fixes[k].ll, { radius: 6, color: "#2980b9", fillOpacity: 1 }).addTo(map);
      label.textContent = hhmm(fixes[k].t);
    }
    root.dataset.trackShown = String(k + 1);
  }
  slider.addEventListener("input", function () { showUntil(Number(slider.value)); });

  document.getElementById("track-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var q = new URLSearchParams(new FormData(ev.target)).toString();
    get(root.dataset.trackUrl + "?" + q).then(function (body) {
      fixes = [];
      body.sessions.forEach(function (s) {
        s.coordinates.forEach(function (c, i) { fixes.push({ ll: [c[1], c[0]], t: s.times[i], session: s.session }); });
      });
      slider.max = String(Math.max(fixes.length - 1, 0));
      slider.value = slider.max;
      slider.disabled = fixes.length < 2;
      showUntil(fixes.length - 1);
      if (fixes.length) { map.fitBounds(layer.getBounds(), { padding: [8, 8] }); } else { label.textContent = "—"; }
      msg.textContent = body.user + " " + body.date + "：" + body.sessions.length + " 段轨迹，" + fixes.length + " 个定位点";
    }).catch(function (e) { msg.textContent = e.message; });
  });

  loadPositions();
  loadAlerts();
  // Open on today's coverage: the grids on the map and the ranking, not an empty map.
  document.getElementById("coverage-form").requestSubmit();
})();
