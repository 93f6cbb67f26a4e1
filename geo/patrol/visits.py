"""Key-person visits (重点人员走访): due, overdue or done, from the visit interval and the last visit.

Rule: the next visit is due ``visit_days`` after the last one (a key person never visited
is overdue). Status on *today*: ``overdue`` when the due date has passed, ``due`` when it
falls within ``patrol_visit_due_soon_days``, else ``done``.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from geo.errors import LayerError
from geo.settings import DEFAULTS

__all__ = ["VISIT_STATUSES", "visit_status"]

#: Values of the ``status`` column, most urgent first.
VISIT_STATUSES: tuple[str, ...] = ("overdue", "due", "done")


def visit_status(
    keypersons: pd.DataFrame,
    last_visit: pd.Series,
    *,
    today: date,
    due_soon_days: int = DEFAULTS["patrol_visit_due_soon_days"],
) -> pd.DataFrame:
    """*keypersons* (``id``, ``visit_days``) with ``last_visit``, ``due_date`` and ``status``.

    *last_visit* maps key-person id to the local date of the last visit.

    Examples
    --------
    >>> kp = pd.DataFrame({"id": [1, 2, 3], "visit_days": [7, 30, 7]})
    >>> last = pd.Series({1: date(2024, 5, 1), 2: date(2024, 5, 1)})
    >>> visit_status(kp, last, today=date(2024, 5, 10))["status"].tolist()
    ['overdue', 'done', 'overdue']
    """
    if (keypersons["visit_days"] <= 0).any():
        bad = keypersons.loc[keypersons["visit_days"] <= 0, "id"].tolist()
        raise LayerError(f"visit_status: key person(s) {bad} have visit_days <= 0; set a positive visit interval")
    out = keypersons.copy()
    last = pd.to_datetime(out["id"].map(last_visit))
    due = last + pd.to_timedelta(out["visit_days"], unit="D")
    day = pd.Timestamp(today)
    status = np.where(last.isna() | (due < day), "overdue",
                      np.where(due <= day + pd.Timedelta(days=due_soon_days), "due", "done"))
    out["last_visit"] = last.dt.date
    out["due_date"] = due.dt.date
    out["status"] = status
    return out
