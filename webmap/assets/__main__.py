"""``python -m webmap.assets``: install the pinned browser assets into ``static/vendor``."""

from __future__ import annotations

import logging
import sys

from webmap.assets.install import AssetInstallError, install_assets

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        install_assets()
    except AssetInstallError as exc:
        print(f"webmap.assets: {exc}", file=sys.stderr)
        sys.exit(1)
