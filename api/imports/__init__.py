"""Import in the browser (issue 10): the ``/import`` page, ``/api/imports/*`` and the import job."""

from __future__ import annotations

__all__: list[str] = []
