"""Absurd household counts and hostile ids are refused on import (geo.value_limits, issue 16 §7)."""

from __future__ import annotations

import pytest

from geo.errors import ValidationFailed
from geo.prepare import prepare_layers
from geo.value_limits import value_limit_issues
from tests.geo.test_prepare import block, frame


def _buildings(ids: list[str], households: list[float | None]):
    return frame("building_id", ids, [block(10 + 30 * i, 10, 20, 10) for i in range(len(ids))],
                 floors=[3] * len(ids), households=households)


def test_prepare_refuses_a_trillion_households_and_a_hostile_id() -> None:
    hostile = "B" * 5000 + "\x00\n"
    layers = {"buildings": _buildings(["ok", hostile, "huge", "tab\tid"], [10, 5, 10**12, 3])}
    with pytest.raises(ValidationFailed) as info:
        prepare_layers(layers)
    found = {(i.code, i.feature_id[:12]) for i in info.value.report.errors}
    assert ("households_too_many", "huge") in found
    assert ("id_too_long", "B" * 12) in found
    assert ("id_control_character", "tab?id") in found
    message = next(str(i) for i in info.value.report.errors if i.code == "households_too_many")
    assert "max_households_per_building=5000" in message and "\x00" not in str(info.value.report.errors)


def test_bounds_are_settings() -> None:
    b = _buildings(["a" * 20, "b"], [60, 40])
    assert value_limit_issues("buildings", b).codes() == set()
    report = value_limit_issues("buildings", b, max_households_per_building=50, max_id_length=10)
    assert report.codes() == {"households_too_many", "id_too_long"}
    with pytest.raises(ValidationFailed, match="more than max_id_length=10"):
        report.raise_for_errors()
    assert prepare_layers({"buildings": b}).report.ok
