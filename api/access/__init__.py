"""The 15-minute service circle (issue 5): the ``/access`` page and JSON routes, suggested new sites."""

from __future__ import annotations

__all__: list[str] = []
