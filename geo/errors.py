"""Exceptions raised by ``geo``: one-line subclasses of built-ins.

``api`` turns every ``WanggeError`` into one JSON error shape in one place.
Messages name the layer, the feature id, the problem and the fix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from geo.issues import Issue

__all__ = [
    "WanggeError",
    "LayerError",
    "ValidationFailed",
    "CRSError",
    "ReadError",
    "InfeasiblePlan",
]


class WanggeError(Exception):
    """Base class of every error ``geo`` raises on purpose.

    ``code`` is the error's catalogue code when it has one (read errors:
    docs/VALIDATION.md) and ``params`` the values its message names, so a caller can word it
    for its own users (``api`` in Chinese, for web forms) without parsing the English text.
    """

    code: str | None = None
    params: dict[str, str] = {}

    def __init__(self, message: str, *, code: str | None = None, params: dict[str, str] | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.params = dict(params or {})


class LayerError(WanggeError, ValueError):
    """A layer cannot be used as given (schema, geometry type, CRS, values)."""


class CRSError(LayerError):
    """A layer has no CRS, a geographic CRS where metres are needed, or an unknown one."""


class ReadError(WanggeError, OSError):
    """A file could not be read (missing, unreadable, wrong format or encoding, too large)."""


class InfeasiblePlan(WanggeError, ValueError):
    """No plan can satisfy the hard constraints; the message says why."""


class ValidationFailed(LayerError):
    """Validation found blocking problems; ``issues`` holds every one of them."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = list(issues)
        head = "; ".join(str(i) for i in self.issues[:5])
        more = f" (+{len(self.issues) - 5} more)" if len(self.issues) > 5 else ""
        super().__init__(f"{len(self.issues)} blocking problem(s): {head}{more}")
