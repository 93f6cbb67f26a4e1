"""``make bundle``: one archive to install Wangge on a machine with no network (issue 17 §4).

    python scripts/bundle.py [--out dist]        # -> dist/wangge-bundle-<version>-<python>-<platform>.tar

The archive holds:

- ``wheels/``: a wheel of Wangge itself (with the built JS/CSS assets of
  ``webmap/static/vendor``: run ``python -m webmap.assets`` first) and of every dependency,
  for this Python and platform, pinned to the versions installed in the building
  environment (the ones the tests ran with); pip's cache is reused, so a second build
  downloads nothing;
- ``assets/vendor/``: the same JS/CSS files, for a web server that serves static files itself;
- ``debian-packages.txt``: the Debian packages to install from the local mirror, with the
  versions of the building machine (from ``scripts/system-deps.sh``);
- ``install.sh``: ``sh install.sh VENV`` makes a virtual environment and installs from
  ``wheels/`` with ``pip --no-index`` (no network, no npm); ``SHA256SUMS`` of every file.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: What the Wangge wheel is built from (copied to a clean folder first: no caches, no bench output).
SOURCES = ("api", "geo", "webmap", "pyproject.toml", "README.md")
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "node_modules", "screenshots")
#: Debian packages a server needs beyond scripts/system-deps.sh's (which are for tests and boards).
SERVER_PACKAGES = ("python3", "python3-venv")

INSTALL_SH = r"""#!/bin/sh
# Install Wangge from this bundle with no network: sh install.sh [VENV]   (default: ./.venv)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
VENV=${1:-.venv}
PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if v == (@MAJOR@, @MINOR@) else
    f"this bundle is for Python @MAJOR@.@MINOR@, {sys.executable} is {v[0]}.{v[1]}: set PYTHON=python@MAJOR@.@MINOR@")'
"$PYTHON" -m venv "$VENV"
# --isolated: no pip.conf or PIP_* variable may add an index; --no-index: nothing is downloaded
"$VENV/bin/python" -m pip --isolated install --no-index --no-cache-dir --find-links "$HERE/wheels" wangge
"$VENV/bin/wangge" --help >/dev/null
missing=""
while read -r pkg _; do
  case "$pkg" in ''|'#'*) continue ;; esac
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done < "$HERE/debian-packages.txt"
[ -z "$missing" ] || echo "install.sh: Debian packages not installed (install them from the local mirror):$missing" >&2
echo "Wangge installed in $VENV: $VENV/bin/wangge demo && $VENV/bin/wangge serve --prod (docs/DEPLOY.md)"
"""


def _run(*cmd: str, timeout_s: float | None = None) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, timeout=timeout_s)


def bundle_name() -> str:
    """``wangge-bundle-<version>-cp<XY>-<platform>``: wheels only fit this Python and platform."""
    with (ROOT / "pyproject.toml").open("rb") as fh:
        version = tomllib.load(fh)["project"]["version"]
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    return f"wangge-bundle-{version}-{tag}-{sysconfig.get_platform().replace('-', '_')}"


def constraints() -> str:
    """``name==version`` of every distribution installed here (pins what the tests ran with)."""
    lines = set()
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name and name.lower() != "wangge":
            lines.add(f"{name}=={dist.version}")
    return "\n".join(sorted(lines, key=str.lower)) + "\n"


def debian_packages() -> str:
    """The Debian package list: server packages plus scripts/system-deps.sh's, with local versions."""
    script = (ROOT / "scripts" / "system-deps.sh").read_text(encoding="utf-8")
    names = list(SERVER_PACKAGES) + [n for n in re.findall(r"missing\+=\(([\w.+-]+)\)", script)
                                     if n not in SERVER_PACKAGES]
    out = ["# Debian packages of a Wangge server (install from the local mirror), with the versions",
           f"# of the machine that built this bundle ({platform.platform()}).",
           "# python3 + python3-venv: to install; fonts-noto-cjk + poppler-utils: notice boards;",
           "# the rest: the test suite (chromium, redis-server, zbar-tools)."]
    for name in names:
        query = subprocess.run(["dpkg-query", "-W", "-f=${Version}", name], capture_output=True, text=True,
                               check=False)
        out.append(f"{name} {query.stdout.strip() or '(not installed here)'}")
    return "\n".join(out) + "\n"


def _source_copy(into: Path) -> Path:
    src = into / "src"
    src.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=_IGNORE)
        else:
            shutil.copy2(path, src / name)
    return src


def build(out: Path, *, timeout_s: float | None = None) -> Path:
    """Build the bundle archive in *out*; its path.

    *timeout_s* bounds each pip step (``subprocess.TimeoutExpired`` after it; default: none).
    """
    vendor = ROOT / "webmap" / "static" / "vendor"
    if not (vendor / "leaflet" / "leaflet.js").exists():
        raise SystemExit(f"{vendor} is not built: run `python -m webmap.assets` (or `make assets`) first")
    name = bundle_name()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wangge-bundle-") as tmp:
        work = Path(tmp)
        stage = work / name
        wheels = stage / "wheels"
        wheels.mkdir(parents=True)
        src = _source_copy(work)
        (work / "constraints.txt").write_text(constraints(), encoding="utf-8")
        pip = (sys.executable, "-m", "pip")
        _run(*pip, "wheel", "--no-deps", "--wheel-dir", str(wheels), str(src), timeout_s=timeout_s)
        _run(*pip, "download", "--dest", str(wheels), "--only-binary", ":all:", "--constraint",
             str(work / "constraints.txt"), str(src), timeout_s=timeout_s)
        shutil.copytree(vendor, stage / "assets" / "vendor")
        (stage / "debian-packages.txt").write_text(debian_packages(), encoding="utf-8")
        script = INSTALL_SH.replace("@MAJOR@", str(sys.version_info.major)).replace("@MINOR@",
                                                                                  str(sys.version_info.minor))
        (stage / "install.sh").write_text(script, encoding="utf-8")
        (stage / "install.sh").chmod(0o755)
        files = sorted(p for p in stage.rglob("*") if p.is_file())
        sums = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(stage)}" for p in files]
        (stage / "SHA256SUMS").write_text("\n".join(sums) + "\n", encoding="utf-8")
        archive = out / f"{name}.tar"
        with tarfile.open(archive, "w") as tar:  # wheels are compressed already
            tar.add(stage, arcname=name)
    n_wheels = len(list(p for p in files if p.suffix == ".whl"))
    print(f"bundle: {archive} ({archive.stat().st_size / 1e6:.0f} MB, {n_wheels} wheels)")
    return archive


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "dist", help="folder of the archive (default: dist/)")
    build(ap.parse_args(argv).out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
