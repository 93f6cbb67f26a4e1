"""Rendered map pages kept per app process, keyed by everything they are drawn from.

A folium map page costs 0.5-1.5 s to build and serialise on the demo, although what it is
drawn from changes only with an import, a publish or a register edit. Each page names its
inputs in a key (ids and version counters, or a digest of the rows it reads); equal keys,
equal pages, so a changed input is a new key and never a stale page. A few keys are kept
per page kind (base-map settings or a path prefix may differ between requests).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import Any, TypeVar

from flask import current_app

__all__ = ["cached", "digest", "page_cache_clear"]

T = TypeVar("T")

_EXTENSION = "wangge_page_cache"
_LOCK = threading.Lock()


def _store(kind: str) -> OrderedDict[Hashable, Any]:
    stores: dict[str, OrderedDict[Hashable, Any]] = current_app.extensions.setdefault(_EXTENSION, {})
    return stores.setdefault(kind, OrderedDict())


def cached(kind: str, key: Hashable, build: Callable[[], T], *, keep: int = 4) -> T:
    """The value of *build* for *key* among the app's pages of *kind*, built once per key.

    Parameters
    ----------
    kind
        The page ("map", "access", "party"): each kind keeps its own *keep* newest keys.
    key
        Everything the value is drawn from; a changed input must change the key.
    build
        Makes the value (outside the lock: two first requests may both build it once).
    """
    with _LOCK:
        store = _store(kind)
        if key in store:
            store.move_to_end(key)
            return store[key]  # type: ignore[no-any-return]
    value = build()
    with _LOCK:
        store = _store(kind)
        store[key] = value
        while len(store) > keep:
            store.popitem(last=False)
    return value


def digest(rows: Iterable[Iterable[Any]]) -> str:
    """A short SHA-256 of *rows* (each row's values by ``repr``): a key part for rows read as they are."""
    h = hashlib.sha256()
    for row in rows:
        h.update(repr(tuple(row)).encode())
        h.update(b"\n")
    return h.hexdigest()[:32]


def page_cache_clear(kind: str | None = None) -> None:
    """Forget the app's cached pages (of *kind*, else all): for tests and benches measuring a cold build."""
    with _LOCK:
        stores: dict[str, OrderedDict[Hashable, Any]] = current_app.extensions.setdefault(_EXTENSION, {})
        for name in [kind] if kind is not None else list(stores):
            stores.pop(name, None)
