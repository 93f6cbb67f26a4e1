"""Install the pinned npm packages and copy the files the pages load into ``static/vendor``.

The versions live in ``package.json`` / ``package-lock.json`` beside this module; ``npm ci``
installs exactly the locked tree into ``webmap/assets/node_modules`` and :data:`VENDOR_FILES`
says which files (plus the fonts and images their CSS references) are copied to
``webmap/static/vendor/<package>/``. A stamp holding the hash of the lock file and of the
manifest makes a second run instant.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
from pathlib import Path

__all__ = [
    "ASSETS_DIR",
    "VENDOR_DIR",
    "VENDOR_FILES",
    "AssetInstallError",
    "assets_fingerprint",
    "install_assets",
    "vendor_is_current",
]

logger = logging.getLogger(__name__)

ASSETS_DIR = Path(__file__).resolve().parent
VENDOR_DIR = ASSETS_DIR.parent / "static" / "vendor"
STAMP_NAME = ".stamp"

#: (npm package, path inside the package, destination under ``static/vendor``).
#: Directories are copied whole (Leaflet's layer icons, Font Awesome's webfonts, ...),
#: keeping the relative paths the CSS files use.
VENDOR_FILES: tuple[tuple[str, str, str], ...] = (
    ("leaflet", "dist/leaflet.js", "leaflet/leaflet.js"),
    ("leaflet", "dist/leaflet.css", "leaflet/leaflet.css"),
    ("leaflet", "dist/images", "leaflet/images"),
    ("jquery", "dist/jquery.min.js", "jquery/jquery.min.js"),
    ("bootstrap", "dist/js/bootstrap.bundle.min.js", "bootstrap/js/bootstrap.bundle.min.js"),
    ("bootstrap", "dist/css/bootstrap.min.css", "bootstrap/css/bootstrap.min.css"),
    ("leaflet.awesome-markers", "dist/leaflet.awesome-markers.js",
     "leaflet.awesome-markers/leaflet.awesome-markers.js"),
    ("leaflet.awesome-markers", "dist/leaflet.awesome-markers.css",
     "leaflet.awesome-markers/leaflet.awesome-markers.css"),
    ("leaflet.awesome-markers", "dist/images", "leaflet.awesome-markers/images"),
    ("@fortawesome/fontawesome-free", "css/all.min.css", "fontawesome-free/css/all.min.css"),
    ("@fortawesome/fontawesome-free", "webfonts", "fontawesome-free/webfonts"),
    ("@fortawesome/fontawesome-free", "LICENSE.txt", "fontawesome-free/LICENSE.txt"),
    ("@geoman-io/leaflet-geoman-free", "dist/leaflet-geoman.js",
     "leaflet-geoman-free/leaflet-geoman.js"),
    ("@geoman-io/leaflet-geoman-free", "dist/leaflet-geoman.css",
     "leaflet-geoman-free/leaflet-geoman.css"),
    ("leaflet.markercluster", "dist/leaflet.markercluster.js",
     "leaflet.markercluster/leaflet.markercluster.js"),
    ("leaflet.markercluster", "dist/MarkerCluster.css", "leaflet.markercluster/MarkerCluster.css"),
    ("leaflet.markercluster", "dist/MarkerCluster.Default.css",
     "leaflet.markercluster/MarkerCluster.Default.css"),
)


class AssetInstallError(RuntimeError):
    """npm is missing or failed, or a file the manifest names is not in the package."""


def assets_fingerprint(*, assets_dir: Path = ASSETS_DIR) -> str:
    """SHA-256 of the lock file and the copy manifest: what the vendor folder must match."""
    digest = hashlib.sha256((assets_dir / "package-lock.json").read_bytes())
    digest.update(repr(VENDOR_FILES).encode())
    return digest.hexdigest()


def vendor_is_current(*, assets_dir: Path = ASSETS_DIR, vendor_dir: Path = VENDOR_DIR) -> bool:
    """True when *vendor_dir* holds every manifest file and its stamp matches the lock."""
    stamp = vendor_dir / STAMP_NAME
    if not stamp.is_file() or stamp.read_text().strip() != assets_fingerprint(assets_dir=assets_dir):
        return False
    return all((vendor_dir / dest).exists() for _, _, dest in VENDOR_FILES)


def _npm_ci(assets_dir: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise AssetInstallError(
            "npm not found on PATH; install Node.js and npm (Debian: apt-get install -y npm) "
            "and run `python -m webmap.assets` again"
        )
    cmd = [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--prefer-offline"]
    logger.info("running %s in %s", " ".join(cmd[1:]), assets_dir)
    proc = subprocess.run(cmd, cwd=assets_dir, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise AssetInstallError(
            f"`npm ci` failed in {assets_dir} (exit {proc.returncode}); check access to the npm "
            f"registry (npm config get registry) and that package-lock.json matches "
            f"package.json:\n{tail}"
        )


def _copy_manifest(node_modules: Path, target: Path) -> int:
    copied = 0
    for package, source, dest in VENDOR_FILES:
        src = node_modules / package / source
        out = target / dest
        if not src.exists():
            raise AssetInstallError(
                f"{package}: {source} not found in {node_modules / package}; the manifest "
                f"VENDOR_FILES in {__file__} does not match the locked version"
            )
        out.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, out)
            copied += sum(1 for p in out.rglob("*") if p.is_file())
        else:
            shutil.copy2(src, out)
            copied += 1
    return copied


def install_assets(
    *, assets_dir: Path = ASSETS_DIR, vendor_dir: Path = VENDOR_DIR, force: bool = False
) -> bool:
    """Install the locked npm packages and fill *vendor_dir*; return False if already current.

    Raises
    ------
    AssetInstallError
        npm is missing or fails, or a manifest file is absent from its package.
    """
    if not force and vendor_is_current(assets_dir=assets_dir, vendor_dir=vendor_dir):
        logger.info("vendor assets are current (%s)", vendor_dir)
        return False
    _npm_ci(assets_dir)
    staging = vendor_dir.with_name(vendor_dir.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    count = _copy_manifest(assets_dir / "node_modules", staging)
    (staging / STAMP_NAME).write_text(assets_fingerprint(assets_dir=assets_dir) + "\n")
    shutil.rmtree(vendor_dir, ignore_errors=True)
    staging.rename(vendor_dir)
    logger.info("installed %d vendor files from %d manifest entries into %s",
                count, len(VENDOR_FILES), vendor_dir)
    return True
