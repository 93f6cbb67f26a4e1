"""Map features sent packed: attributes as columns, coordinates as integer steps, unpacked in the browser.

A GeoJSON feature repeats its keys and writes every vertex as two decimal degrees
(``[120.601734, 31.287398]``, 24 characters): the 3,000 buildings of the demo map were 0.8 MB
of its 1.7 MB page, and parsing them was most of the time before the map was drawn. Packed,
each vertex is its step from the previous one in millionths of a degree (``514,10``: the
precision the maps round to anyway), each attribute one array, and a short script rebuilds the
same FeatureCollection for ``L.GeoJSON.addData``.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from folium.elements import MacroElement
from folium.template import Template

__all__ = ["SCALE", "pack_features", "PackedFeatures"]

#: Coordinates are sent in units of 1 / SCALE degree (~0.1 m, the display precision of every map).
SCALE = 1_000_000

#: Rebuilds the FeatureCollection of :func:`pack_features` (kept in step with it) and adds it to the layer.
_UNPACK_JS = """
(function (layer, p) {
  var bx = p.base[0], by = p.base[1], scale = p.scale;
  function line(a) {
    var out = [], x = bx, y = by;
    for (var i = 0; i < a.length; i += 2) { x += a[i]; y += a[i + 1]; out.push([x / scale, y / scale]); }
    return out;
  }
  function coords(type, g) {
    if (type === "Point") { return line(g)[0]; }
    if (type === "LineString" || type === "MultiPoint") { return line(g); }
    if (type === "Polygon" || type === "MultiLineString") { return g.map(line); }
    return g.map(function (poly) { return poly.map(line); });
  }
  function geometry(type, g) {
    if (type === "GeometryCollection") {
      return {type: type, geometries: g.map(function (part) { return geometry(part[0], part[1]); })};
    }
    return {type: type, coordinates: coords(type, g)};
  }
  var names = Object.keys(p.props), features = [];
  for (var i = 0; i < p.types.length; i++) {
    var props = {};
    for (var k = 0; k < names.length; k++) { props[names[k]] = p.props[names[k]][i]; }
    var type = p.kinds[p.types[i]];
    features.push({type: "Feature", properties: props, geometry: geometry(type, p.geoms[i])});
  }
  layer.addData({type: "FeatureCollection", features: features});
})"""


def _steps(coords: np.ndarray, base: np.ndarray) -> list[int]:
    """``[x0, y0, dx1, dy1, …]`` of one coordinate sequence, in 1 / SCALE degree from *base*."""
    units = np.rint(coords[:, :2] * SCALE).astype(np.int64) - base
    steps = np.vstack([units[:1], np.diff(units, axis=0)])
    return steps.ravel().tolist()


def _packed_geometry(geom: Any, base: np.ndarray) -> Any:
    kind = geom.geom_type
    if kind in ("Point", "LineString"):
        return _steps(shapely.get_coordinates(geom), base)
    if kind == "MultiPoint":
        return _steps(shapely.get_coordinates(geom), base)
    if kind == "Polygon":
        rings = [geom.exterior, *geom.interiors]
        return [_steps(shapely.get_coordinates(r), base) for r in rings]
    if kind == "MultiLineString":
        return [_steps(shapely.get_coordinates(part), base) for part in geom.geoms]
    if kind == "MultiPolygon":
        return [_packed_geometry(part, base) for part in geom.geoms]
    if kind == "GeometryCollection":
        return [[part.geom_type, _packed_geometry(part, base)] for part in geom.geoms]
    raise ValueError(f"pack_features: cannot pack a {kind}; expected a shapely geometry of GeoJSON's types")


def pack_features(frame: gpd.GeoDataFrame) -> dict[str, Any]:
    """*frame* (EPSG:4326, no empty geometry) packed for :class:`PackedFeatures`.

    Attributes become one list per column (missing values as ""), geometries integer steps.

    Examples
    --------
    >>> from shapely.geometry import Point
    >>> packed = pack_features(gpd.GeoDataFrame({"name": ["甲"]}, geometry=[Point(120.5, 31.25)], crs=4326))
    >>> packed["props"], packed["kinds"], packed["geoms"]
    ({'name': ['甲']}, ['Point'], [[0, 0]])
    """
    geoms = frame.geometry.to_numpy()
    base = (np.rint(np.asarray(frame.total_bounds[:2]) * SCALE).astype(np.int64) if len(frame)
            else np.zeros(2, dtype=np.int64))
    kinds = sorted({g.geom_type for g in geoms})
    code = {k: i for i, k in enumerate(kinds)}
    props = {str(c): frame[c].astype(object).where(frame[c].notna(), "").tolist()
             for c in frame.columns.drop(frame.geometry.name)}
    return {"base": base.tolist(), "scale": SCALE, "kinds": kinds, "types": [code[g.geom_type] for g in geoms],
            "geoms": [_packed_geometry(g, base) for g in geoms], "props": props}


class PackedFeatures(MacroElement):
    """Adds packed features (:func:`pack_features`) to its parent ``L.GeoJSON`` layer in the browser."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        """ + _UNPACK_JS + """({{ this._parent.get_name() }}, {{ this.packed|tojson }});
        {% endmacro %}
        """
    )

    def __init__(self, packed: dict[str, Any]) -> None:
        super().__init__()
        self._name = "PackedFeatures"
        self.packed = packed

