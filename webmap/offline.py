"""folium without a CDN: point every element's JS/CSS links at our ``static/vendor`` copies.

folium elements carry class-level ``default_js`` / ``default_css`` lists of ``(name, url)``
pointing at public CDNs; offline (government intranets) such a page is blank. :func:`localize`
gives each element of a map *instance* its own lists of local URLs (the classes are never
mutated), and :func:`assert_offline` checks a rendered page loads nothing from the internet.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import folium
from branca.element import Element
from folium.elements import JSCSSMixin

__all__ = [
    "VENDOR_URL",
    "LOCAL_ASSETS",
    "DROPPED_ASSETS",
    "OfflineAssetError",
    "localize",
    "offline_map",
    "external_urls",
    "assert_offline",
    "FOLIUM_BUNDLED",
    "bundled_asset",
    "LEAFLET_ZH",
]

#: URL prefix under which Flask serves ``webmap/static/vendor``.
VENDOR_URL = "/static/vendor"

#: folium resource name -> file under ``static/vendor`` (see ``webmap.assets.install``).
LOCAL_ASSETS: dict[str, str] = {
    # folium.Map
    "leaflet": "leaflet/leaflet.js",
    "jquery": "jquery/jquery.min.js",
    "bootstrap": "bootstrap/js/bootstrap.bundle.min.js",
    "awesome_markers": "leaflet.awesome-markers/leaflet.awesome-markers.js",
    "leaflet_css": "leaflet/leaflet.css",
    "bootstrap_css": "bootstrap/css/bootstrap.min.css",
    "awesome_markers_font_css": "fontawesome-free/css/all.min.css",
    "awesome_markers_css": "leaflet.awesome-markers/leaflet.awesome-markers.css",
    # folium.plugins.GeoMan
    "leaflet_geoman_js": "leaflet-geoman-free/leaflet-geoman.js",
    "leaflet_geoman_css": "leaflet-geoman-free/leaflet-geoman.css",
    # folium.plugins.MarkerCluster
    "markerclusterjs": "leaflet.markercluster/leaflet.markercluster.js",
    "markerclustercss": "leaflet.markercluster/MarkerCluster.css",
    "markerclusterdefaultcss": "leaflet.markercluster/MarkerCluster.Default.css",
}

#: Browser assets shipped inside the folium package itself (served at ``/vendor/folium/<name>``):
#: folium's HeatMap plugin links Leaflet.heat from a CDN copy of this very file.
FOLIUM_BUNDLED: dict[str, str] = {"leaflet-heat.js": "leaflet_heat.min.js"}

#: Leaflet's control texts in Chinese (zoom, layers, attribution tooltip), a file of ``static/``
#: loaded right after Leaflet on every map page.
LEAFLET_ZH = "js/leaflet_zh.js"

#: Resources folium links that we leave out: Bootstrap 3 glyphicons (use ``prefix="fa"``
#: icons instead) and folium's marker-rotation patch loaded from GitHub.
DROPPED_ASSETS: frozenset[str] = frozenset({"glyphicons_css", "awesome_rotate_css"})

_URL = re.compile(r"""https?://[^\s"'()<>\\]+""")
#: XML namespace identifiers look like URLs but are never fetched.
_NAMESPACES = ("http://www.w3.org/",)


class OfflineAssetError(ValueError):
    """An element links a CDN resource that has no local copy."""


def _local(links: list[tuple[str, str]], owner: str, vendor_url: str) -> list[tuple[str, str]]:
    out = []
    for name, url in links:
        if name in DROPPED_ASSETS:
            continue
        if name in LOCAL_ASSETS:
            out.append((name, f"{vendor_url}/{LOCAL_ASSETS[name]}"))
        elif url.startswith(("http://", "https://", "//")):
            raise OfflineAssetError(
                f"{owner}: resource {name!r} ({url}) has no local copy; add the npm package to "
                "webmap/assets/package.json, its files to VENDOR_FILES and the name to "
                "webmap.offline.LOCAL_ASSETS, or do not use this plugin"
            )
        else:
            out.append((name, url))
    return out


def _with_leaflet_zh(links: list[tuple[str, str]], vendor_url: str) -> list[tuple[str, str]]:
    """*links* with :data:`LEAFLET_ZH` right after Leaflet (once; ``static/`` is *vendor_url*'s parent)."""
    if any(name == "leaflet_zh" for name, _ in links):
        return links
    at = next((i + 1 for i, (name, _) in enumerate(links) if name == "leaflet"), len(links))
    static_url = vendor_url.rstrip("/").rsplit("/", 1)[0]
    return [*links[:at], ("leaflet_zh", f"{static_url}/{LEAFLET_ZH}"), *links[at:]]


def _walk(element: Element):
    yield element
    for child in list(element._children.values()):
        yield from _walk(child)


def localize(element: Element, *, vendor_url: str = VENDOR_URL) -> Element:
    """Give *element* and all its descendants local ``default_js``/``default_css``; return it.

    Call it once the map is complete (after every plugin is added), e.g. right before
    rendering. Raises :class:`OfflineAssetError` naming any resource with no local copy.
    """
    for node in _walk(element):
        if isinstance(node, JSCSSMixin):
            owner = type(node).__name__
            # Instance attributes shadow the class lists, so other maps are not affected.
            node.default_js = _local(list(node.default_js), owner, vendor_url)
            if isinstance(node, folium.Map):
                node.default_js = _with_leaflet_zh(node.default_js, vendor_url)
            node.default_css = _local(list(node.default_css), owner, vendor_url)
    return element


def offline_map(*, vendor_url: str = VENDOR_URL, **kwargs: Any) -> folium.Map:
    """A ``folium.Map`` with no tiles by default and every asset served from *vendor_url*.

    Keyword arguments go to ``folium.Map``; ``tiles`` defaults to ``None`` (blank background).
    Plugins added later are localised by calling :func:`localize` on the map before rendering.
    """
    kwargs.setdefault("tiles", None)
    return localize(folium.Map(**kwargs), vendor_url=vendor_url)


def external_urls(html: str) -> list[str]:
    """Every http(s) URL in *html* (scripts, stylesheets, tile templates, links), sorted.

    Strict on purpose: an offline page has no reason to name any internet address.
    """
    return sorted({u for u in _URL.findall(html) if not u.startswith(_NAMESPACES)})


def assert_offline(html: str) -> None:
    """Raise ``AssertionError`` listing the internet URLs a rendered page would load."""
    found = external_urls(html)
    if found:
        raise AssertionError(
            f"page loads {len(found)} asset(s) from the internet: {', '.join(found[:10])}; "
            "call webmap.offline.localize(map) before rendering"
        )


def bundled_asset(name: str) -> Path:
    """Path of the folium-bundled asset *name* (see :data:`FOLIUM_BUNDLED`), or :class:`OfflineAssetError`."""
    if name not in FOLIUM_BUNDLED:
        raise OfflineAssetError(f"no bundled asset {name!r}; known: {', '.join(FOLIUM_BUNDLED)}")
    path = Path(folium.__file__).resolve().parent / "templates" / FOLIUM_BUNDLED[name]
    if not path.is_file():
        raise OfflineAssetError(f"{path} is missing from the installed folium; reinstall folium")
    return path
