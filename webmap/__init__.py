"""Presentation: folium map builders, Jinja templates, static assets, printable boards."""

from __future__ import annotations

from pathlib import Path

__all__ = ["TEMPLATE_DIR", "STATIC_DIR"]

TEMPLATE_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

# Before any folium element renders: imported data must never be evaluated as Jinja.
from webmap.inert import install as _install_inert_json  # noqa: E402

_install_inert_json()
