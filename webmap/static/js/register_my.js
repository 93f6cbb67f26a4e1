// 我的网格: draw each of the worker's grids on an offline Leaflet map (no tiles needed).
(function () {
  "use strict";
  document.querySelectorAll(".wg-my-map").forEach(function (el) {
    var map = L.map(el, { attributionControl: false, zoomSnap: 0.25 });
    fetch(el.dataset.url, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (grid) {
        var layer = L.geoJSON(grid.geometry, { style: { color: "#c0392b", weight: 2, fillOpacity: 0.12 } }).addTo(map);
        map.fitBounds(layer.getBounds(), { padding: [8, 8] });
        el.dataset.loaded = "1";
      });
  });
})();
