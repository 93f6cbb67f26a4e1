// 我的巡查: own grids, today's track, visited / unvisited buildings, due visits with one-tap recording.
(function () {
  "use strict";
  var root = document.getElementById("patrol-my");
  var msg = document.getElementById("patrol-msg");
  var map = L.map("patrol-map", { attributionControl: false, zoomSnap: 0.25, preferCanvas: true });
  var csrf = (document.querySelector("meta[name=csrf-token]") || {}).content || "";
  var STATUS = { overdue: "已逾期", due: "待走访", done: "已走访" };
  // Clock times in the app's display_timezone (base.html's meta), not the browser's.
  var timeZone = (document.querySelector('meta[name="wangge-timezone"]') || {}).content || undefined;

  function get(url) {
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      return r.json().then(function (body) { if (!r.ok) { throw new Error(body.error ? body.error.message : r.status); } return body; });
    });
  }

  function pct(a, b) { return b ? (100 * a / b).toFixed(1) + "%" : "—"; }

  var lastFix = null;  // [lon, lat] of today's newest track point: where the worker stood, without GPS

  function drawDay(day) {
    day.tracks.forEach(function (f) {
      var c = f.geometry.type === "Point" ? [f.geometry.coordinates] : f.geometry.coordinates;
      if (c.length) { lastFix = c[c.length - 1]; }
    });
    var grids = L.geoJSON(day.grids, { style: { color: "#c0392b", weight: 2, fillOpacity: 0.05 } }).addTo(map);
    L.geoJSON(day.buildings, { style: function (f) {
      return { color: f.properties.visited ? "#27ae60" : "#e67e22", weight: 1, fillOpacity: 0.6 };
    } }).addTo(map);
    L.geoJSON(day.tracks, { style: { color: "#2c3e50", weight: 3 } }).addTo(map);
    if (day.grids.length) { map.fitBounds(grids.getBounds(), { padding: [8, 8] }); } else { map.setView([39.9, 116.4], 12); }
    if (day.grids.length) { loadIncidents(grids.getBounds()); } else { root.dataset.incidents = "0"; }
    var s = day.summary;
    document.getElementById("patrol-summary").textContent = day.grids.length
      ? "今日已巡 " + s.buildings_visited + "/" + s.buildings_total + " 栋（" + pct(s.buildings_visited, s.buildings_total) +
        "），户覆盖 " + pct(s.households_visited, s.households_total) + "，走过街巷 " + Math.round(s.street_walked_m) +
        "/" + Math.round(s.street_total_m) + " 米"
      : "您还没有负责的网格：请规划员在登记册中关联您的账号。";
    drawProposals(day.proposed_visits);
    if (day.grids.length) { loadVisits(); loadRoute(null); } else { noGrid(); }
    root.dataset.visited = String(s.buildings_visited);
    root.dataset.buildings = String(day.buildings.length);
    root.dataset.loaded = "1";
  }

  // Stops near a key household due a visit: the worker confirms, the visit is recorded where they stood.
  function drawProposals(rows) {
    var list = document.getElementById("patrol-proposed");
    list.textContent = "";
    rows.forEach(function (p) {
      var li = document.createElement("li");
      li.className = "wg-proposed";
      var text = document.createElement("span");
      var at = new Date(p.start);
      text.textContent = p.name + " · " + p.category + " · " + at.toLocaleTimeString("zh-CN", { hour: "2-digit", minute: "2-digit", timeZone: timeZone }) +
        " 起在附近停留 " + Math.round(p.minutes) + " 分钟";
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = "确认走访";
      button.addEventListener("click", function () {
        button.disabled = true;
        send({ keyperson_id: p.keyperson_id, lon: p.lon, lat: p.lat, note: "停留 " + Math.round(p.minutes) + " 分钟，本人确认" })
          .then(function () { msg.textContent = "已确认对 " + p.name + " 的走访"; li.remove(); loadVisits(); })
          .catch(function (e) { msg.textContent = e.message; button.disabled = false; });
      });
      li.appendChild(text);
      li.appendChild(button);
      list.appendChild(li);
    });
    if (!rows.length) { list.innerHTML = "<li>暂无（在重点人员楼栋附近停留满设定时长后出现）</li>"; }
  }

  // JSON, or a multipart form when a photo goes with the visit.
  function send(body, photo) {
    var init = { method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrf } };
    if (photo) {
      var form = new FormData();
      Object.keys(body).forEach(function (k) { form.append(k, body[k]); });
      form.append("photo", photo);
      init.body = form;
    } else {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(root.dataset.recordUrl, init).then(function (r) {
      if (r.ok) { return r; }
      return r.json().then(function (b) { throw new Error("记录失败：" + (b.error ? b.error.message : r.status)); },
                           function () { throw new Error("记录失败（" + r.status + "）"); });
    });
  }

  function position() {
    return new Promise(function (resolve) {
      if (!navigator.geolocation) { resolve(null); return; }
      navigator.geolocation.getCurrentPosition(function (p) { resolve(p.coords); }, function () { resolve(null); },
                                               { timeout: 5000, maximumAge: 60000 });
    });
  }

  function recordVisit(kp, button) {
    button.disabled = true;
    position().then(function (c) {
      var note = document.getElementById("patrol-visit-note");
      var photo = document.getElementById("patrol-visit-photo");
      var body = { keyperson_id: kp.id, note: note.value.trim() };
      if (c) { body.lon = c.longitude; body.lat = c.latitude; }
      return send(body, photo.files.length ? photo.files[0] : null);
    }).then(function () {
      msg.textContent = "已记录对 " + kp.name + " 的走访";
      document.getElementById("patrol-visit-note").value = "";
      document.getElementById("patrol-visit-photo").value = "";
      loadVisits();
    }).catch(function (e) { msg.textContent = e.message; button.disabled = false; });
  }

  function loadVisits() {
    var list = document.getElementById("patrol-visits");
    get(root.dataset.visitsUrl).then(function (body) {
      list.textContent = "";
      body.rows.forEach(function (kp) {
        var li = document.createElement("li");
        li.className = "wg-visit wg-visit-" + kp.status;
        var text = document.createElement("span");
        text.innerHTML = "";
        text.textContent = kp.name + " · " + kp.category + " · ";
        var st = document.createElement("b");
        st.className = "wg-status-" + kp.status;
        st.textContent = STATUS[kp.status] + (kp.due_date ? "（应于 " + kp.due_date + "）" : "（从未走访）");
        text.appendChild(st);
        var button = document.createElement("button");
        button.type = "button";
        button.textContent = "记录走访";
        button.addEventListener("click", function () { recordVisit(kp, button); });
        li.appendChild(text);
        li.appendChild(button);
        list.appendChild(li);
      });
      if (!body.rows.length) { list.innerHTML = "<li>本网格暂无重点人员</li>"; }
      root.dataset.visitsLoaded = "1";
      return loadHistory();
    }).catch(function (e) { list.innerHTML = ""; msg.textContent = e.message; root.dataset.visitsLoaded = "1"; });
  }

  function loadHistory() {
    return window.wgVisitHistory(root.dataset.historyUrl, document.querySelector("#patrol-history tbody"))
      .then(function (n) { root.dataset.history = String(n); });
  }

  // Open incidents of the own grids (and assigned or reported by the worker) in view: tap to open the case.
  function loadIncidents(bounds) {
    var bbox = [bounds.getWest(), bounds.getSouth(), bounds.getEast(), bounds.getNorth()].join(",");
    get(root.dataset.incidentsUrl + "?state=open&bbox=" + bbox).then(function (fc) {
      fc.features.forEach(function (f) {
        var p = f.properties;
        var link = document.createElement("a");
        link.href = root.dataset.caseUrl.replace(/0$/, String(Number(p.id)));
        link.textContent = "事件 #" + p.id + " · " + p.category + " · " + p.state_label + (p.overdue ? "（已超期）" : "");
        L.circleMarker([f.geometry.coordinates[1], f.geometry.coordinates[0]],
                       { radius: 7, color: "#fff", weight: 2, fillColor: p.overdue ? "#7b241c" : "#c0392b", fillOpacity: 1 })
          .bindPopup(link).addTo(map);
      });
      root.dataset.incidents = String(fc.features.length);
    }).catch(function (e) { msg.textContent = e.message; root.dataset.incidents = "error"; });
  }

  var routeLayer = null;

  // Suggested loop: the street line, numbered stops in walking order, length and minutes.
  function drawRoute(r) {
    if (routeLayer) { map.removeLayer(routeLayer); }
    routeLayer = L.layerGroup().addTo(map);
    if (r.path) { L.geoJSON(r.path, { style: { color: "#2980b9", weight: 4, opacity: 0.8, dashArray: "6 6" } }).addTo(routeLayer); }
    r.stops.forEach(function (st) {
      var icon = L.divIcon({ className: "wg-route-stop", html: String(Number(st.order)), iconSize: [20, 20] });
      L.marker([st.lat, st.lon], { icon: icon, title: st.reason === "due" ? "待走访" : "未巡" }).addTo(routeLayer);
    });
    var due = r.stops.filter(function (st) { return st.reason === "due"; }).length;
    document.getElementById("patrol-route").textContent = r.stops.length
      ? "建议路线：" + r.stops.length + " 处（待走访 " + due + "），环线 " + (r.length_m / 1000).toFixed(2) + " 公里，约 " +
        Math.round(r.minutes) + " 分钟" + (r.unreachable.length ? "；" + r.unreachable.length + " 处无道路可达" : "")
      : "今日没有待巡的楼栋";
    root.dataset.routeStops = String(r.stops.length);
  }

  function loadRoute(coords) {
    var url = root.dataset.routeUrl + (coords ? "?lon=" + coords.longitude + "&lat=" + coords.latitude : "");
    return get(url).then(drawRoute).catch(function (e) {
      document.getElementById("patrol-route").textContent = "无法规划路线：" + e.message;
      root.dataset.routeStops = "error";
    });
  }

  document.getElementById("patrol-route-here").addEventListener("click", function () {
    position().then(function (c) {
      if (!c) { msg.textContent = "无法获取当前位置，路线从第一处楼栋出发"; }
      loadRoute(c);
    });
  });

  // One tap: the report form opens with the point where the worker stands (GPS, else today's last fix).
  document.getElementById("patrol-report-here").addEventListener("click", function () {
    position().then(function (c) {
      var at = c ? [c.longitude, c.latitude] : lastFix;
      window.location.href = root.dataset.reportUrl + (at ? "?lon=" + at[0].toFixed(7) + "&lat=" + at[1].toFixed(7) : "");
    });
  });

  // A worker with no grid yet has no key persons and no loop: say so instead of asking the API (it answers 400).
  function noGrid() {
    document.getElementById("patrol-visits").innerHTML = "<li>没有负责的网格，暂无待走访重点人员</li>";
    document.getElementById("patrol-route").textContent = "没有负责的网格，暂无建议路线";
    document.getElementById("patrol-route-here").disabled = true;
    document.querySelector("#patrol-history tbody").innerHTML = "<tr><td colspan=\"6\">暂无走访记录</td></tr>";
    root.dataset.visitsLoaded = "1";
    root.dataset.routeStops = "0";
  }

  get(root.dataset.dayUrl).then(drawDay).catch(function (e) { msg.textContent = e.message; root.dataset.loaded = "error"; });
})();
