"""folium pages must load nothing from the internet (government intranets have no CDN)."""

from __future__ import annotations

from pathlib import Path

import folium
import pytest
from folium import plugins

from webmap.assets import install
from webmap.offline import (
    LEAFLET_ZH,
    LOCAL_ASSETS,
    OfflineAssetError,
    assert_offline,
    external_urls,
    localize,
    offline_map,
)


def test_default_folium_page_loads_from_cdn() -> None:
    html = folium.Map(tiles=None).get_root().render()
    with pytest.raises(AssertionError, match=r"asset\(s\) from the internet: .*cdn\.jsdelivr"):
        assert_offline(html)


def test_offline_map_has_no_internet_url() -> None:
    html = offline_map(location=[31.3, 120.6], zoom_start=14).get_root().render()
    assert_offline(html)
    assert '<script src="/static/vendor/leaflet/leaflet.js"></script>' in html
    assert "/static/vendor/fontawesome-free/css/all.min.css" in html
    assert "glyphicons" not in html


def test_leaflet_texts_in_chinese_load_right_after_leaflet_once() -> None:
    """Leaflet's "Zoom in" / "Layers" tooltips are English: its Chinese texts follow it, under any root."""
    m = localize(offline_map(vendor_url="/sub/static/vendor"), vendor_url="/sub/static/vendor")
    html = m.get_root().render()
    leaflet = html.index('<script src="/sub/static/vendor/leaflet/leaflet.js"></script>')
    zh = html.index(f'<script src="/sub/static/{LEAFLET_ZH}"></script>')
    assert leaflet < zh and html.count(LEAFLET_ZH) == 1
    assert not any(name == "leaflet_zh" for name, _ in folium.Map.default_js)
    assert (Path(install.__file__).parents[1] / "static" / LEAFLET_ZH).is_file()


def test_localize_leaves_folium_classes_untouched() -> None:
    before = list(folium.Map.default_js)
    offline_map().get_root().render()
    assert folium.Map.default_js == before
    assert folium.Map.default_js[0][1].startswith("https://")


def test_plugins_used_are_localized() -> None:
    m = folium.Map(tiles=None)
    plugins.GeoMan().add_to(m)
    plugins.MarkerCluster(locations=[[31.3, 120.6]]).add_to(m)
    html = localize(m, vendor_url="/app/static/vendor").get_root().render()
    assert_offline(html)
    assert "/app/static/vendor/leaflet-geoman-free/leaflet-geoman.js" in html
    assert "/app/static/vendor/leaflet.markercluster/MarkerCluster.Default.css" in html


def test_plugin_without_local_copy_is_refused() -> None:
    m = folium.Map(tiles=None)
    plugins.Fullscreen().add_to(m)
    with pytest.raises(OfflineAssetError, match=r"Fullscreen: resource 'Control.Fullscreen.js'.*no local copy"):
        localize(m)


def test_tile_url_counts_as_internet() -> None:
    m = offline_map(tiles="OpenStreetMap")
    urls = external_urls(m.get_root().render())
    assert "https://tile.openstreetmap.org/{z}/{x}/{y}.png" in urls
    assert "https://www.openstreetmap.org/copyright" in urls


def test_every_local_asset_is_installed_by_the_manifest() -> None:
    dests = [dest for _, _, dest in install.VENDOR_FILES]
    missing = [p for p in LOCAL_ASSETS.values() if not any(p == d or p.startswith(d + "/") for d in dests)]
    assert missing == []


def _fake_node_modules(root: Path) -> None:
    for package, source, _ in install.VENDOR_FILES:
        path = root / "node_modules" / package / source
        if "." in Path(source).name:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"/* {package} {source} */")
        else:  # a directory (images, webfonts)
            path.mkdir(parents=True, exist_ok=True)
            (path / "a.png").write_bytes(b"png")


def test_install_copies_manifest_and_second_run_is_a_no_op(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assets = tmp_path / "assets"
    vendor = tmp_path / "static" / "vendor"
    assets.mkdir()
    (assets / "package-lock.json").write_text('{"lockfileVersion": 3}')
    _fake_node_modules(assets)
    calls: list[Path] = []
    monkeypatch.setattr(install, "_npm_ci", calls.append)
    assert install.install_assets(assets_dir=assets, vendor_dir=vendor) is True
    assert (vendor / "leaflet" / "leaflet.js").read_text() == "/* leaflet dist/leaflet.js */"
    assert (vendor / "fontawesome-free" / "webfonts" / "a.png").exists()
    assert install.install_assets(assets_dir=assets, vendor_dir=vendor) is False
    assert calls == [assets]
    (assets / "package-lock.json").write_text('{"lockfileVersion": 3, "changed": true}')
    assert install.vendor_is_current(assets_dir=assets, vendor_dir=vendor) is False


def test_install_names_missing_package_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "package-lock.json").write_text("{}")
    monkeypatch.setattr(install, "_npm_ci", lambda _: None)
    with pytest.raises(install.AssetInstallError, match=r"leaflet: dist/leaflet.js not found"):
        install.install_assets(assets_dir=tmp_path, vendor_dir=tmp_path / "vendor")


def test_install_without_npm_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "package-lock.json").write_text("{}")
    monkeypatch.setattr(install.shutil, "which", lambda _: None)
    with pytest.raises(install.AssetInstallError, match=r"npm not found on PATH.*apt-get install -y npm"):
        install.install_assets(assets_dir=tmp_path, vendor_dir=tmp_path / "vendor")
