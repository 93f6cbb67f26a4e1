"""Fixtures of the map builder tests."""

from __future__ import annotations

import geopandas as gpd
import pytest

from tests.webmap.factories import make_layers


@pytest.fixture
def small_layers() -> dict[str, gpd.GeoDataFrame]:
    return make_layers(60)
