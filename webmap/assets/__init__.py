"""Pinned browser assets: ``package.json``/``package-lock.json`` and their installer.

``python -m webmap.assets`` installs them from npm into ``webmap/static/vendor/``
(see :mod:`webmap.assets.install`). Nothing third-party is committed.
"""

from __future__ import annotations

__all__: list[str] = []
