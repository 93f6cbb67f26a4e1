"""Incidents (事件), pure domain: categories, working-day calendar and SLA, the workflow, metrics.

No Flask, SQLAlchemy or folium here (DOMAIN.md §6): :mod:`api.incidents` persists cases and
calls these functions. Modules: :mod:`.categories`, :mod:`.workcalendar`, :mod:`.workflow`,
:mod:`.metrics`.
"""

from __future__ import annotations

__all__: list[str] = []
