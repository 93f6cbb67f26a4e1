"""Hostile text for the stored-XSS tests: names that are markup, script, template or URL syntax.

Every value starts with a plain Chinese prefix and a number so a test can find where it is
shown and check that it appears there literally, character for character.
"""

from __future__ import annotations

from collections.abc import Mapping

import geopandas as gpd
import numpy as np
import pandas as pd

__all__ = ["PAYLOADS", "hostile", "hostile_layers", "injected"]

#: One of each kind of injection a name from an imported file can carry.
PAYLOADS: tuple[str, ...] = (
    "<img src=x onerror=alert(1)>",
    '"><script>alert(2)</script>',
    "javascript:alert(3)",
    "{{7*7}}${7*7}",
    "</script><svg onload=alert(4)>",
    "'\"\\ <b>粗</b> &amp; &lt;i&gt;",
)
#: Text columns per layer that reach a page, and the prefix of their hostile values.
TEXT_FIELDS: dict[str, dict[str, str]] = {
    "communities": {"name": "社区"},
    "compounds": {"name": "小区"},
    "streets": {"name": "道路"},
    "buildings": {"name": "楼"},
    "service_points": {"name": "服务点"},
}


def hostile(prefix: str, i: int) -> str:
    """The *i*-th hostile value with *prefix* (payloads in turn)."""
    return f"{prefix}{i}{PAYLOADS[i % len(PAYLOADS)]}"


def injected(text: str) -> bool:
    """True when *text* (rendered HTML) holds one of the payloads as live markup."""
    lowered = text.lower()
    return any(tag in lowered for tag in ("<img src=x", "<script>alert", "<svg onload", "<b>粗</b>"))


def hostile_layers(layers: Mapping[str, gpd.GeoDataFrame], *,
                   categories: tuple[str, ...] = ()) -> dict[str, gpd.GeoDataFrame]:
    """*layers* with every shown text field hostile; service points whose index is a multiple
    of 3 get a hostile ``category`` too (the others keep theirs, or take *categories* in turn)."""
    out = {k: g.copy() for k, g in layers.items()}
    for kind, fields in TEXT_FIELDS.items():
        if kind not in out:
            continue
        for column, prefix in fields.items():
            out[kind][column] = [hostile(prefix, i) for i in range(len(out[kind]))]
    points = out.get("service_points")
    if points is not None and len(points):
        n = len(points)
        base = (pd.Series([categories[i % len(categories)] for i in range(n)], index=points.index)
                if categories else points["category"].astype(object))
        hostile_cat = pd.Series([hostile("类别", i) for i in range(n)], index=points.index)
        points["category"] = hostile_cat.where(np.arange(n) % 3 == 0, base)
    return out
