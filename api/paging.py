"""Server-side pagination of list pages: the page number of a request and one page of rows.

Lists that grow with the city (notice boards of every grid, the audit log) show
``list_page_size`` rows per page; the pager keeps the page's filters in its links
(``webmap/templates/_pager.html``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from api.errors import RequestError

__all__ = ["Page", "page_number", "page_of"]

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """Rows of one page, its number (1-based), the page size and the total number of rows."""

    items: list[T]
    number: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        """Number of pages (1 for an empty list, so "第 1 / 1 页" reads right)."""
        return max(1, math.ceil(self.total / self.size))

    @property
    def offset(self) -> int:
        """Rows before this page."""
        return (self.number - 1) * self.size


def page_number(args: Mapping[str, Any]) -> int:
    """The ``page`` query argument (default 1); anything but a positive whole number is a 400."""
    raw = str(args.get("page") or "1").strip()
    if not raw.isdigit() or int(raw) < 1 or len(raw) > 9:
        raise RequestError(400, "bad_page", f"页码 page={raw!r} 无效", "页码须为正整数，例如 page=2", field="page")
    return int(raw)


def page_of(rows: Sequence[T], number: int, size: int) -> Page[T]:
    """Page *number* of *rows* (*size* rows a page); a number past the end gives the last page."""
    size = max(1, int(size))
    last = max(1, math.ceil(len(rows) / size))
    number = min(number, last)
    start = (number - 1) * size
    return Page(items=list(rows[start:start + size]), number=number, size=size, total=len(rows))
