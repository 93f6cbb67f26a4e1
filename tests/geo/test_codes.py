"""Grid codes: DB11 and CJ/T 349 schemes, ordering, validation."""

from __future__ import annotations

import geopandas as gpd
import pytest
from shapely.geometry import box

from geo.codes import grid_codes, grid_sequence, validate_grid_code
from geo.errors import LayerError

CRS = "EPSG:32651"


def _grids(n_cols: int = 3, n_rows: int = 2) -> gpd.GeoDataFrame:
    geoms, ids = [], []
    for r in range(n_rows):
        for col in range(n_cols):
            geoms.append(box(col * 100, -r * 100, col * 100 + 100, -r * 100 + 100))
            ids.append(f"g{r}{col}")
    return gpd.GeoDataFrame({"grid_id": ids[::-1], "community_id": "C1"}, geometry=geoms[::-1], crs=CRS)


def test_sequence_runs_west_to_east_then_north_to_south() -> None:
    g = _grids()
    seq = grid_sequence(g).set_axis(g["grid_id"])
    assert seq.sort_values().index.tolist() == ["g00", "g01", "g02", "g10", "g11", "g12"]


def test_db11_codes_from_admin_code() -> None:
    g = _grids()
    c = gpd.GeoDataFrame({"community_id": ["C1"], "admin_code": ["320508001002"]}, geometry=[box(0, -100, 300, 100)], crs=CRS)
    codes = grid_codes(g, c, scheme="db11").set_axis(g["grid_id"])
    assert codes["g00"] == "320508001002001" and codes["g12"] == "320508001002006"
    assert codes.is_unique and codes.str.len().eq(15).all()


def test_cjt349_codes_and_single_grid_community() -> None:
    g = _grids()
    one = gpd.GeoDataFrame({"grid_id": ["x"], "community_id": ["C2"]}, geometry=[box(1000, 0, 1100, 100)], crs=CRS)
    both = gpd.GeoDataFrame(list(g.to_dict("records")) + list(one.to_dict("records")), geometry="geometry", crs=CRS)
    c = gpd.GeoDataFrame({"community_id": ["C1", "C2"], "street_id": ["S1", "S1"]},
                         geometry=[box(0, -100, 300, 100), box(1000, 0, 1100, 100)], crs=CRS)
    codes = grid_codes(both, c, scheme="cjt349", county="310101", object_class="100000").set_axis(both["grid_id"])
    assert codes["x"] == "100000" + "310101" + "001" + "002" + "00"
    assert codes["g00"].endswith("00100101") and codes.str.len().eq(20).all()


@pytest.mark.parametrize(
    ("code", "scheme", "match"),
    [
        ("32050800100100", "db11", "has 14 digits"),
        ("32050800100100x", "db11", "ASCII digits"),
        ("320508001001000", "db11", "sequence 000"),
        ("320508001001001", "gb", "unknown scheme"),
    ],
)
def test_validate_grid_code_errors(code: str, scheme: str, match: str) -> None:
    with pytest.raises(LayerError, match=match):
        validate_grid_code(code, scheme)


def test_validate_grid_code_parts() -> None:
    assert validate_grid_code("10000031010100100201", "cjt349")["community"] == "002"


def test_unknown_community_raises() -> None:
    with pytest.raises(LayerError, match="no such community"):
        grid_codes(_grids(), gpd.GeoDataFrame({"community_id": ["Z"]}, geometry=[box(0, 0, 1, 1)], crs=CRS))


def test_more_than_999_communities_without_admin_codes_is_a_clear_error() -> None:
    n = 1000
    grids = gpd.GeoDataFrame({"grid_id": [f"g{i}" for i in range(n)], "community_id": [f"C{i:04d}" for i in range(n)]},
                             geometry=[box(i * 10, 0, i * 10 + 10, 10) for i in range(n)], crs=CRS)
    communities = grids.rename(columns={"grid_id": "name"})
    with pytest.raises(LayerError, match="community 'C0999' needs a 3-digit number .* 1000 communities .* admin_code"):
        grid_codes(grids, communities)
    communities["street_id"] = [f"S{i // 500}" for i in range(n)]  # two streets of 500: numbers fit
    codes = grid_codes(grids, communities)
    assert codes.is_unique and codes.str.len().eq(15).all()
