/* Leaflet's own control texts in Chinese: loaded right after leaflet.js on every map page (folium
 * maps get it from webmap.offline.localize, the hand-written map pages from their template).
 * Leaflet ships "Zoom in", "Zoom out", "Layers" and an English attribution tooltip. */
(function () {
  "use strict";
  if (!window.L) return;
  L.Control.Zoom.mergeOptions({ zoomInTitle: "放大", zoomOutTitle: "缩小" });
  const prefix = L.Control.Attribution.prototype.options.prefix;
  if (typeof prefix === "string") {
    L.Control.Attribution.mergeOptions({
      prefix: prefix.replace("A JavaScript library for interactive maps", "Leaflet：开源交互式地图库"),
    });
  }
  const initLayout = L.Control.Layers.prototype._initLayout;
  L.Control.Layers.include({
    _initLayout: function () {
      initLayout.call(this);
      if (this._layersLink) {
        this._layersLink.title = "图层";
        this._layersLink.setAttribute("aria-label", "图层");
      }
    },
  });
}());
