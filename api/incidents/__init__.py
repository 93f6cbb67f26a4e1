"""Incidents (事件): persistence, the case service, JSON routes, Open311 and the CLI (issue 13)."""

from __future__ import annotations

__all__: list[str] = []
