"""Issues and reports: what validation found, one line per problem.

An :class:`Issue` names the layer, the feature id, a stable ``code``, the problem and
the fix; a :class:`ValidationReport` holds them all (``docs/VALIDATION.md`` lists the codes).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from geo.errors import ValidationFailed

__all__ = ["SEVERITIES", "Issue", "ValidationReport"]


#: ``error`` blocks the import, ``repaired`` was fixed automatically, ``warning`` is advice.
SEVERITIES: tuple[str, ...] = ("error", "repaired", "warning")


@dataclass(frozen=True)
class Issue:
    """One problem found in one feature (or in a whole layer when ``feature_id`` is None)."""

    layer: str
    feature_id: str | None
    code: str
    problem: str
    fix: str
    severity: str = "error"

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"Issue severity must be one of {SEVERITIES}; got {self.severity!r}")

    def __str__(self) -> str:
        where = self.layer if self.feature_id is None else f"{self.layer} #{self.feature_id}"
        return f"{where}: {self.problem}: {self.fix}"


@dataclass(frozen=True)
class ValidationReport:
    """Every issue an import produced, errors first in :attr:`errors`."""

    issues: tuple[Issue, ...] = ()

    @property
    def errors(self) -> tuple[Issue, ...]:
        return tuple(i for i in self.issues if i.severity == "error")

    @property
    def repaired(self) -> tuple[Issue, ...]:
        return tuple(i for i in self.issues if i.severity == "repaired")

    @property
    def warnings(self) -> tuple[Issue, ...]:
        return tuple(i for i in self.issues if i.severity == "warning")

    @property
    def ok(self) -> bool:
        """True when nothing blocks the import."""
        return not self.errors

    def __add__(self, other: ValidationReport) -> ValidationReport:
        return ValidationReport(self.issues + other.issues)

    def codes(self) -> set[str]:
        return {i.code for i in self.issues}

    def to_records(self) -> list[dict[str, Any]]:
        """Issues as plain dicts (for JSON, CSV or a DataFrame)."""
        return [asdict(i) for i in self.issues]

    def summary(self) -> dict[str, int]:
        """Number of issues per code, most frequent first."""
        return dict(Counter(i.code for i in self.issues).most_common())

    def raise_for_errors(self) -> None:
        """Raise :class:`~geo.errors.ValidationFailed` (with ``.report``) if any error."""
        if self.errors:
            exc = ValidationFailed(list(self.errors))
            exc.report = self  # type: ignore[attr-defined]
            raise exc
