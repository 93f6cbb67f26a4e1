"""Grid plans in the service (issue 4): versions, cells, manual edits, jobs, exports.

- :mod:`api.plans.state` — the in-memory plan (cells + adjacency, per-process cache
  invalidated by version) and the live per-grid numbers and rule checks;
- :mod:`api.plans.store` — persistence: saving a partition, copies, publish/rollback, diff;
- :mod:`api.plans.edits` — edit operations as reversible deltas, undo/redo;
- :mod:`api.plans.rebase` — a stale plan (made before a re-import) on the current workspace;
- :mod:`api.plans.jobs` — background partition jobs with progress and cancel;
- :mod:`api.plans.exports` — GeoPackage, GeoJSON, Shapefile, KML, CSV, XLSX;
- :mod:`api.plans.routes` — the JSON routes of ``docs/PLANNER_API.md``;
- :mod:`api.plans.pages` — the HTML pages (plan list, plan map, diff) and the map's context layers.
"""

from __future__ import annotations

__all__: list[str] = []
