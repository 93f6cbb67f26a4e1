"""Map controls and page furniture shared by the map builders: static HTML controls, the metric
scale, phone folding, the layer registry for page scripts, and the maps' CSS."""

from __future__ import annotations

import html

import folium
from folium.elements import MacroElement
from folium.template import Template

__all__ = [
    "MAP_CSS",
    "PHONE_MEDIA",
    "LayerRegistry",
    "MapControl",
    "MetricScale",
    "PhoneCollapse",
    "collapsible_html",
]

#: Screens this narrow (phones) start with legends and the layer list folded away.
PHONE_MEDIA = "(max-width: 640px)"

MAP_CSS = """<style>
.wg-legend, .wg-label { background: rgba(255,255,255,.94); padding: 8px 10px; border-radius: 6px;
  box-shadow: 0 1px 4px rgba(0,0,0,.3); font: 12px/1.5 "Noto Sans CJK SC", "Source Han Sans SC",
  "Microsoft YaHei", "PingFang SC", sans-serif; color: #222; }
/* the open layer list (top right, ~290 px with 7 layers) stays clear of the legend (bottom right): at
   1280x800 a 60vh legend covered its last row */
.wg-legend { max-height: min(60vh, calc(100vh - 350px)); overflow-y: auto; min-width: 130px; }
.wg-legend-title { font-weight: 700; font-size: 13px; margin-bottom: 2px; }
.wg-legend-sub { font-weight: 600; margin-top: 6px; }
.wg-legend-note { color: #666; font-size: 11px; }
.wg-swatch { display: inline-block; width: 18px; height: 12px; margin-right: 6px; vertical-align: -1px; }
.wg-legend-cols { display: grid; grid-template-columns: auto auto; column-gap: 10px; }
.wg-community-name { transform: translate(-50%, -50%); white-space: nowrap; font-weight: 700;
  font-size: 13px; color: #1f4e9c; text-shadow: 0 0 3px #fff, 0 0 3px #fff, 0 0 3px #fff; }
.wg-label { background: #fff3cd; border: 1px solid #e0b84c; color: #6b4e00; max-width: 420px; }
.leaflet-container { background: #f4f3ef; font-family: "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; }
</style>"""


class MapControl(MacroElement):
    """A Leaflet control holding static HTML (legend, data label) at *position*.

    *body* is HTML: every data value in it must be escaped by the caller.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function() {
            var ctl = L.control({position: {{ this.position|tojson }}});
            ctl.onAdd = function() {
                var div = L.DomUtil.create("div", {{ this.css_class|tojson }});
                div.innerHTML = {{ this.body|tojson }};
                {%- if this.fold_on_phone %}
                div.querySelectorAll("details").forEach(function (d) {
                    d.open = !window.matchMedia({{ this.phone_media|tojson }}).matches;
                });
                {%- endif %}
                L.DomEvent.disableClickPropagation(div);
                L.DomEvent.disableScrollPropagation(div);
                return div;
            };
            ctl.addTo({{ this._parent.get_name() }});
        })();
        {% endmacro %}
        """
    )

    def __init__(self, body: str, *, position: str, css_class: str, fold_on_phone: bool = False) -> None:
        super().__init__()
        self._name = "MapControl"
        self.body = body
        self.position = position
        self.css_class = css_class
        self.fold_on_phone = fold_on_phone  # its <details> start closed on phone-sized screens
        self.phone_media = PHONE_MEDIA


class MetricScale(MacroElement):
    """A metric-only scale bar (Leaflet's default also shows feet and miles)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        L.control.scale({imperial: false, maxWidth: 160}).addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self) -> None:
        super().__init__()
        self._name = "MetricScale"


class PhoneCollapse(MacroElement):
    """Fold *control* (a layer control shown open) on phone-sized screens; a tap opens it,
    a tap on the map folds it again."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        if (window.matchMedia({{ this.phone_media|tojson }}).matches) {
            {{ this.control.get_name() }}.collapse();
            {{ this._parent.get_name() }}.on("click", function () { {{ this.control.get_name() }}.collapse(); });
        }
        {% endmacro %}
        """
    )

    def __init__(self, control: folium.LayerControl) -> None:
        super().__init__()
        self._name = "PhoneCollapse"
        self.control = control
        self.phone_media = PHONE_MEDIA


class LayerRegistry(MacroElement):
    """Expose the map and its layers as ``window.wanggeMap`` / ``window.wanggeLayers``."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        window.wanggeMap = {{ this._parent.get_name() }};
        window.wanggeLayers = {
        {%- for key, layer in this.layers.items() %}
            {{ key|tojson }}: {{ layer.get_name() }},
        {%- endfor %}
        };
        {% endmacro %}
        """
    )

    def __init__(self, layers: dict[str, MacroElement]) -> None:
        super().__init__()
        self._name = "LayerRegistry"
        self.layers = layers


def collapsible_html(title: str, body: str) -> str:
    """*body* (HTML) under a title that folds it (``<details>``); *title* is escaped."""
    return (f'<details open><summary class="wg-legend-title">{html.escape(title)}</summary>'
            f"{body}</details>")
