"""Tooltips that show data as text: imported names are hostile, never HTML."""

from __future__ import annotations

import folium
from folium.template import Template

__all__ = ["TextTooltip", "text_tooltip"]


class TextTooltip(folium.GeoJsonTooltip):
    """A GeoJSON tooltip that shows every property value as text, never as HTML.

    folium's own tooltip joins the values into an HTML string and sets ``innerHTML``, so a
    name imported as ``<img src=x onerror=…>`` runs as script (stored XSS). This one builds
    the same table with DOM nodes and ``textContent``; the data stay unescaped in the page.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        {{ this._parent.get_name() }}.bindTooltip(function (layer) {
            var props = (layer.feature && layer.feature.properties) || {};
            var fields = {{ this.fields|tojson }}, aliases = {{ this.aliases|tojson }};
            var div = L.DomUtil.create("div"), table = L.DomUtil.create("table", "", div);
            fields.forEach(function (field, i) {
                var row = table.insertRow(), v = props[field];
                {%- if this.labels %}
                L.DomUtil.create("th", "", row).textContent = aliases[i];
                {%- endif %}
                row.insertCell().textContent = v === null || v === undefined ? ""
                    : typeof v === "object" ? JSON.stringify(v) : String(v);
            });
            return div;
        }, {{ this.tooltip_options|tojavascript }});
        {% endmacro %}
        """
    )


def text_tooltip(fields: list[str], aliases: list[str]) -> TextTooltip:
    """A sticky tooltip that shows each property as text (imported names are hostile)."""
    return TextTooltip(fields=fields, aliases=aliases, sticky=True, localize=False)
