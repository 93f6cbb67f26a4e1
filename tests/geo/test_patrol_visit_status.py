"""Due / overdue / done of key-person visits, at the boundaries."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from geo.errors import LayerError
from geo.patrol.visits import visit_status

TODAY = date(2024, 5, 10)


@pytest.mark.parametrize(("last", "days", "status"), [
    (None, 7, "overdue"),                 # never visited
    (date(2024, 5, 2), 7, "overdue"),     # due 05-09, yesterday
    (date(2024, 5, 3), 7, "due"),         # due today
    (date(2024, 5, 6), 7, "due"),         # due 05-13: within 3 days
    (date(2024, 5, 7), 7, "done"),        # due 05-14
    (date(2024, 2, 15), 90, "due"),       # quarterly: due 05-15, within 5 days
])
def test_status_boundaries(last: date | None, days: int, status: str) -> None:
    kp = pd.DataFrame({"id": [1], "visit_days": [days]})
    lv = pd.Series({1: last}) if last else pd.Series(dtype=object)
    got = visit_status(kp, lv, today=TODAY, due_soon_days=3 if days < 90 else 5)
    assert got["status"].tolist() == [status]


def test_due_date_and_bad_interval() -> None:
    kp = pd.DataFrame({"id": [1, 2], "visit_days": [30, 7]})
    got = visit_status(kp, pd.Series({1: date(2024, 4, 20)}), today=TODAY)
    assert got["due_date"].tolist()[0] == date(2024, 5, 20)
    with pytest.raises(LayerError, match=r"key person\(s\) \[2\] have visit_days <= 0; set a positive"):
        visit_status(pd.DataFrame({"id": [1, 2], "visit_days": [7, 0]}), pd.Series(dtype=object), today=TODAY)
