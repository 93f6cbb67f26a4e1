// 巡查督导: coverage ranking per grid for a period, one worker's track of a day on the map.
(function () {
  "use strict";
  var root = document.getElementById("patrol-sup");
  var msg = document.getElementById("sup-msg");
  var map = L.map("sup-map", { attributionControl: false, preferCanvas: true }).setView([39.9, 116.4], 12);
  var layer = null;
  var today = new Date().toISOString().slice(0, 10);
  document.querySelectorAll("input[type=date]").forEach(function (i) { i.value = today; });

  function get(url) {
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      return r.json().then(function (b) { if (!r.ok) { throw new Error(b.error ? b.error.message : r.status); } return b; });
    });
  }
  function pct(x) { return x === null ? "—" : (100 * x).toFixed(1) + "%"; }

  document.getElementById("coverage-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var q = new URLSearchParams(new FormData(ev.target)).toString();
    get(root.dataset.coverageUrl + "?" + q).then(function (body) {
      var rows = body.rows.slice().sort(function (a, b) { return (b.building_coverage || 0) - (a.building_coverage || 0); });
      var tbody = document.querySelector("#coverage-rank tbody");
      tbody.textContent = "";
      rows.forEach(function (r, i) {
        var tr = document.createElement("tr");
        [i + 1, r.grid, r.buildings_visited + "/" + r.buildings_total, pct(r.building_coverage), pct(r.household_coverage)]
          .forEach(function (v) { var td = document.createElement("td"); td.textContent = v; tr.appendChild(td); });
        tbody.appendChild(tr);
      });
      msg.textContent = "定位点 " + body.fixes_in + " 个";
    }).catch(function (e) { msg.textContent = e.message; });
  });

  document.getElementById("track-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var q = new URLSearchParams(new FormData(ev.target)).toString();
    get(root.dataset.trackUrl + "?" + q).then(function (body) {
      if (layer) { map.removeLayer(layer); }
      var lines = body.sessions.map(function (s) { return s.coordinates.map(function (c) { return [c[1], c[0]]; }); });
      layer = L.polyline(lines, { color: "#2c3e50", weight: 3 }).addTo(map);
      if (lines.length) { map.fitBounds(layer.getBounds(), { padding: [8, 8] }); }
      msg.textContent = body.user + " " + body.date + "：" + body.sessions.length + " 段轨迹";
    }).catch(function (e) { msg.textContent = e.message; });
  });
})();
