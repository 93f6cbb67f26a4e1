"""Map features from GeoDataFrames: display frames (simplified, rounded, few columns), GeoJSON
collections, streets merged per name and class, and layers styled by a few classes sent packed."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from folium.utilities import get_obj_in_upper_tree

from webmap.packed import PackedFeatures, pack_features

__all__ = [
    "ClassStyledGeoJson",
    "class_styled",
    "display_frame",
    "feature_collection",
    "layers_bounds",
    "merged_lines",
]

_M_PER_DEGREE = 111_320.0


def display_frame(gdf: gpd.GeoDataFrame, columns: list[str], *, simplify_m: float) -> gpd.GeoDataFrame:
    """Only *columns* (missing ones as empty), simplified geometry, coordinates rounded to ~0.1 m."""
    out = gpd.GeoDataFrame(
        {c: gdf[c] if c in gdf.columns else pd.Series([None] * len(gdf), index=gdf.index) for c in columns},
        geometry=gdf.geometry.values, crs=gdf.crs,
    ).reset_index(drop=True)
    out = out[~(out.geometry.isna() | out.geometry.is_empty)]
    geoms = out.geometry.values
    if simplify_m > 0:
        geoms = shapely.simplify(geoms, simplify_m / _M_PER_DEGREE, preserve_topology=True)
    out.geometry = shapely.set_precision(geoms, 1e-6, mode="pointwise")
    return out


def feature_collection(gdf: gpd.GeoDataFrame, *, ids: bool = True) -> dict[str, Any]:
    """A GeoJSON FeatureCollection, no bboxes; ids = index labels (folium's style map keys on them) if *ids*."""
    frame = gdf.copy()
    for col in frame.columns.drop(frame.geometry.name):
        frame[col] = frame[col].astype(object).where(frame[col].notna(), "")
    return frame.to_geo_dict(show_bbox=False, drop_id=not ids)


class ClassStyledGeoJson(folium.GeoJson):
    """A GeoJSON layer whose features carry a class code ``s``, styled from a table of a few classes.

    folium writes a style function as a JavaScript ``switch`` over every feature's id, and
    Leaflet calls it once per feature: on the 3,000-building demo map that switch of 3,000
    string cases per call was most of the page's script time. Here the switch has one case
    per class. The features reach the page packed (:mod:`webmap.packed`, a third of the bytes);
    ``data`` keeps them as GeoJSON on the Python side.
    """

    def __init__(self, data: dict[str, Any], *, styles: Mapping[str, dict[str, Any]],
                 packed: dict[str, Any], **kwargs: Any) -> None:
        self.class_styles = {code: dict(style) for code, style in styles.items()}
        super().__init__(data, style_function=lambda f: self.class_styles[f["properties"]["s"]], **kwargs)
        PackedFeatures(packed).add_to(self)

    def find_identifier(self) -> str:
        """Features are styled by their class: they need no id (folium would otherwise add one to each)."""
        return "feature.properties.s"

    def render(self, **kwargs: Any) -> None:
        by_style: dict[str, list[str]] = {}
        for code, style in self.class_styles.items():
            by_style.setdefault(json.dumps(style, sort_keys=True), []).append(code)
        default = next(iter(by_style))
        self.parent_map = get_obj_in_upper_tree(self, folium.Map)
        self.style_map = {k: v for k, v in by_style.items() if k != default} | {"default": default}
        # The layer's own script with no features (they are sent packed), then its children (tooltip,
        # packed features) with the features back: folium's tooltip checks its fields against them.
        features, self.data = self.data, {"type": "FeatureCollection", "features": []}
        children, self._children = self._children, OrderedDict()
        try:
            super(folium.GeoJson, self).render(**kwargs)  # folium's own render would map every feature again
        finally:
            self.data, self._children = features, children
        for child in self._children.values():
            child.render(**kwargs)


def class_styled(frame: gpd.GeoDataFrame, classes: pd.Series, table: Mapping[Any, dict[str, Any]],
                 **kwargs: Any) -> ClassStyledGeoJson:
    """*frame* as a :class:`ClassStyledGeoJson`, each feature styled by ``table[classes[i]]``."""
    codes = {value: str(i) for i, value in enumerate(table)}
    coded = frame.assign(s=classes.map(codes).to_numpy())
    return ClassStyledGeoJson(feature_collection(coded, ids=False),
                              styles={codes[k]: style for k, style in table.items()},
                              packed=pack_features(coded), **kwargs)


def _joined(lines: shapely.MultiLineString) -> shapely.Geometry:
    """*lines* joined end to end; as they are when nothing joins (line_merge drops zero-length lines,
    and a street of one such line would become an empty collection)."""
    merged = shapely.line_merge(lines)
    return lines if merged.is_empty else merged


def merged_lines(frame: gpd.GeoDataFrame, by: list[str]) -> gpd.GeoDataFrame:
    """One feature per value of *by* (missing values as ""), its lines joined end to end.

    A street layer is the walk network's edges: thousands of two-point lines whose feature
    overhead and repeated names were 500 KB of the 1.7 MB demo map page; merged by name and
    class they draw the same lines from a third of the bytes and a tenth of the Leaflet layers.
    """
    keyed = frame.assign(**{c: frame[c].astype(object).where(frame[c].notna(), "") for c in by})
    lines = keyed[by].join(keyed.geometry.explode(index_parts=False).rename("line"))
    lines = lines[shapely.get_type_id(lines["line"].to_numpy()) == 1]  # LineStrings (explode of a multi)
    groups = lines.groupby(by, sort=True)["line"].agg(lambda g: _joined(shapely.multilinestrings(g.to_numpy())))
    out = groups.index.to_frame(index=False)
    return gpd.GeoDataFrame(out, geometry=list(groups.to_numpy()), crs=frame.crs)


def layers_bounds(layers: Mapping[str, gpd.GeoDataFrame]) -> list[list[float]] | None:
    """``[[south, west], [north, east]]`` around every non-empty layer (Leaflet's order), else None."""
    frames = [g for g in layers.values() if g is not None and len(g)]
    if not frames:
        return None
    b = np.array([g.total_bounds for g in frames])
    return [[float(b[:, 1].min()), float(b[:, 0].min())], [float(b[:, 3].max()), float(b[:, 2].max())]]
