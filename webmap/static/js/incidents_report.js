// 上报事件 (phone): pin on an offline map of the active grids or "locate me", category search,
// and a draft kept in the browser (localStorage) until the report is sent.
(function () {
  "use strict";
  var form = document.getElementById("wg-report-form");
  if (!form) { return; }
  var lon = document.getElementById("wg-lon"), lat = document.getElementById("wg-lat");
  var label = document.getElementById("wg-point-label");
  var el = document.getElementById("wg-report-map");
  var map = L.map(el, { attributionControl: false, zoomSnap: 0.25 }).setView([31.23, 121.47], 13);
  var marker = null;
  window.wanggeReportMap = map;  // tests and the page's own helpers reach the map here
  var DRAFT = "wangge-incident-draft";

  function setPoint(latlng, how) {
    lon.value = latlng.lng.toFixed(7);
    lat.value = latlng.lat.toFixed(7);
    if (marker) { marker.setLatLng(latlng); } else { marker = L.marker(latlng).addTo(map); }
    label.textContent = how + "：" + lon.value + ", " + lat.value;
    saveDraft();
  }

  // The map opens on the reporter's own grids (staff: the grids they serve), else on every grid;
  // then on where the phone is, when it tells us and that is on the map.
  var own = JSON.parse(el.dataset.own || "[]");
  function isOwn(feature) { return own.indexOf((feature.properties || {}).key) >= 0; }

  function showWhereIAm(bounds) {
    if (!navigator.geolocation || (lon.value && lat.value)) { return; }
    navigator.geolocation.getCurrentPosition(function (pos) {
      var ll = L.latLng(pos.coords.latitude, pos.coords.longitude);
      if (!bounds.pad(0.2).contains(ll)) { return; }  // far from every grid: keep the grids in view
      L.circleMarker(ll, { radius: 7, color: "#fff", weight: 2, fillColor: "#1a73e8", fillOpacity: 1 })
        .bindTooltip("我的位置").addTo(map);
      map.setView(ll, Math.max(map.getZoom(), 17));
      label.textContent = "地图已移到您的位置：点选事发位置，或按“定位我的位置”";
    }, function () { /* refused or unavailable: the grids stay in view */ },
    { enableHighAccuracy: true, timeout: 10000, maximumAge: 60000 });
  }

  fetch(el.dataset.grids, { credentials: "same-origin" })
    .then(function (r) { return r.json(); })
    .then(function (fc) {
      var layer = L.geoJSON(fc, { style: function (f) {
        return isOwn(f) ? { color: "#d9480f", weight: 3, fillOpacity: 0.08 }
                        : { color: "#2c6fbb", weight: 1, fillOpacity: 0.05 };
      } }).addTo(map);
      var mine = L.featureGroup(layer.getLayers().filter(function (l) { return isOwn(l.feature); }));
      var bounds = mine.getLayers().length ? mine.getBounds() : (fc.features.length ? layer.getBounds() : null);
      if (bounds) { map.fitBounds(bounds); }
      el.dataset.view = mine.getLayers().length ? "own" : "all";
      if (lon.value && lat.value) { setPoint(L.latLng(+lat.value, +lon.value), "已选位置"); }
      el.dataset.loaded = "1";
      if (bounds) { showWhereIAm(layer.getBounds()); }
    });
  map.on("click", function (e) { setPoint(e.latlng, "已选位置"); });

  document.getElementById("wg-locate-me").addEventListener("click", function () {
    if (!navigator.geolocation) { label.textContent = "此浏览器不支持定位，请在地图上点选"; return; }
    label.textContent = "正在定位…（需 HTTPS）";
    navigator.geolocation.getCurrentPosition(function (pos) {
      var ll = L.latLng(pos.coords.latitude, pos.coords.longitude);
      map.setView(ll, 17);
      setPoint(ll, "当前位置");
    }, function (err) { label.textContent = "定位失败（" + err.message + "），请在地图上点选"; },
    { enableHighAccuracy: true, timeout: 15000 });
  });

  var search = document.getElementById("wg-cat-search"), select = document.getElementById("wg-category");
  search.addEventListener("input", function () {
    var q = search.value.trim();
    var first = null;
    Array.prototype.forEach.call(select.options, function (o) {
      var show = !q || o.textContent.indexOf(q) >= 0;
      o.hidden = !show;
      if (show && !first) { first = o; }
    });
    if (first && (select.selectedIndex < 0 || select.options[select.selectedIndex].hidden)) { first.selected = true; }
  });

  function saveDraft() {
    var d = { category: select.value, description: form.description.value, address: form.address.value,
              lon: lon.value, lat: lat.value };
    try { localStorage.setItem(DRAFT, JSON.stringify(d)); } catch (e) { /* private mode: no draft */ }
  }
  function loadDraft() {
    var raw = null;
    try { raw = localStorage.getItem(DRAFT); } catch (e) { return; }
    if (!raw || form.description.value) { return; }
    var d = JSON.parse(raw);
    if (d.category) { select.value = d.category; }
    form.description.value = d.description || "";
    form.address.value = d.address || "";
    // a point given by the link (patrol map: "report here") wins over the draft's
    if (d.lon && d.lat && !lon.value) { lon.value = d.lon; lat.value = d.lat; }
    document.getElementById("wg-draft-note").textContent = "已恢复未发送的草稿";
  }
  loadDraft();
  form.addEventListener("input", saveDraft);
  form.addEventListener("change", saveDraft);
  form.addEventListener("submit", function () {
    if (!navigator.onLine) { return; }
    try { localStorage.removeItem(DRAFT); } catch (e) { /* ignore */ }
  });
})();
