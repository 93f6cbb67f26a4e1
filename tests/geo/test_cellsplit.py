"""geo.cellsplit: a cell divided so exactly the moving buildings go, every footprint whole."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import box

from geo.cellsplit import insert_vertices, overlap_partners, split_cell
from geo.errors import LayerError

CELL = box(0, 0, 10, 10)


def _whole(split, footprints: pd.Series) -> None:
    """Both sides tile the cell, and each footprint lies whole on its own side."""
    assert shapely.coverage_is_valid([split.piece, split.rest])
    assert split.piece.area + split.rest.area == pytest.approx(CELL.area, rel=1e-12)
    for b, fp in footprints.items():
        side = split.piece if b in split.moving else split.rest
        assert side.covers(fp), b


def test_a_terrace_of_touching_buildings_splits_between_two_walls() -> None:
    fp = pd.Series({f"t{i}": box(1 + 2 * i, 2, 3 + 2 * i, 8) for i in range(4)})  # shared walls
    split = split_cell(CELL, fp, ["t2"])
    assert split.moving == ("t2",) and split.dragged == ()
    _whole(split, fp)


def test_an_l_shaped_building_wrapping_a_neighbour() -> None:
    fp = pd.Series({"l": shapely.union(box(1, 1, 9, 3), box(1, 1, 3, 9)), "n": box(4, 4, 8, 8)})
    for chosen in (["l"], ["n"]):
        split = split_cell(CELL, fp, chosen)
        assert split.moving == tuple(chosen)
        _whole(split, fp)


def test_overlapping_footprints_are_one_unit() -> None:
    fp = pd.Series({"a": box(1, 1, 4, 9), "b": box(3.5, 1, 6, 9), "c": box(7, 1, 9, 9)})
    split = split_cell(CELL, fp, ["a"])
    assert split.moving == ("a", "b") and split.dragged == ("b",)
    _whole(split, fp)
    assert split_cell(CELL, fp.drop("c"), ["a"]) is None  # the unit is the whole cell: nothing to split


def _inside(split, footprints: pd.Series) -> pd.Series:
    """Share of every footprint on its own side of the split."""
    return pd.Series({b: (split.piece if b in split.moving else split.rest).intersection(fp).area / fp.area
                      for b, fp in footprints.items()})


# A podium (64 m²) and a tower standing over its eastern edge: 0.3 m² shared, 30 % of the
# tower, 0.47 % of the podium
PODIUM, TOWER = box(1, 1, 9, 9), box(8.7, 4, 9.7, 5)


@pytest.mark.parametrize("chosen", ["tower", "podium"])
def test_a_small_overlap_goes_to_the_smaller_building_so_either_moves_alone(chosen: str) -> None:
    fp = pd.Series({"podium": PODIUM, "tower": TOWER})
    split = split_cell(CELL, fp, [chosen])
    assert split.moving == (chosen,) and split.dragged == ()
    inside = _inside(split, fp)
    assert inside["tower"] == pytest.approx(1.0)  # the shared area stays with the tower
    assert 0.99 <= inside["podium"] < 1.0  # the podium gives up 0.47 %
    assert shapely.coverage_is_valid([split.piece, split.rest])
    assert overlap_partners(fp, [chosen]).empty


def test_a_larger_building_gives_up_at_most_one_percent_to_all_its_overlaps() -> None:
    towers = {f"t{k}": box(8.7, y, 9.7, y + h) for k, (y, h) in enumerate([(2, 1), (4, 1), (6, 1.1)])}
    fp = pd.Series({"podium": PODIUM, **towers})  # 0.30 + 0.30 + 0.33 m² of 0.64 allowed
    split = split_cell(CELL, fp, ["t0", "t1"])
    assert split.moving == ("t0", "t1")
    assert _inside(split, fp).min() >= 0.99
    split = split_cell(CELL, fp, ["t2"])  # the largest overlap is the one over the budget
    assert split.moving == ("podium", "t2") and split.dragged == ("podium",)
    partners = overlap_partners(fp, ["t2"])
    assert partners[["building_id", "with_id"]].values.tolist() == [["podium", "t2"]]
    assert partners.loc[0, "share"] == pytest.approx(0.3)
    assert partners.loc[0, "larger_share"] == pytest.approx(0.33 / 64)


def test_a_tower_inside_its_podium_moves_with_it_and_says_why() -> None:
    fp = pd.Series({"podium": PODIUM, "tower": box(3, 3, 5, 5), "other": box(9.2, 1, 9.8, 3)})
    split = split_cell(CELL, fp, ["tower"])
    assert split.moving == ("podium", "tower") and split.dragged == ("podium",)
    _whole(split, fp)
    partners = overlap_partners(fp, ["tower"])
    assert partners.to_dict("records") == [{"building_id": "podium", "with_id": "tower", "share": 1.0,
                                            "larger_share": 4 / 64}]


def test_footprints_outside_the_cell_are_refused() -> None:
    fp = pd.Series({"a": box(1, 1, 4, 9), "far": box(11, 1, 14, 9)})
    with pytest.raises(LayerError, match=r"split_cell: footprints far are not inside the cell; re-base"):
        split_cell(CELL, fp, ["a"])
    with pytest.raises(LayerError, match="none of the selected buildings is in this cell"):
        split_cell(CELL, fp.drop("far"), ["zz"])


NEIGHBOURS = np.array([box(10, 0, 20, 10), box(0, -10, 10, 0), box(0, 10, 10, 20)], dtype=object)


def test_the_divide_meets_the_outline_at_the_cells_own_vertices() -> None:
    fp = pd.Series({"a": box(1, 1, 4, 9), "b": box(6, 1, 9, 9)})
    split = split_cell(CELL, fp, ["b"])
    _whole(split, fp)
    assert shapely.coverage_is_valid([split.piece, split.rest, *NEIGHBOURS])  # neighbours need no change
    assert (insert_vertices(NEIGHBOURS, [split.piece, split.rest], CELL) == NEIGHBOURS).all()


def test_a_footprint_on_the_outline_adds_vertices_the_neighbours_get() -> None:
    fp = pd.Series({"a": box(1, 1, 4, 9), "b": box(6, 0, 9, 9)})  # b stands on the southern edge
    split = split_cell(CELL, fp, ["b"])
    _whole(split, fp)
    assert not shapely.coverage_is_valid([split.piece, split.rest, *NEIGHBOURS])  # (6 0) and (9 0) are new
    fixed = insert_vertices(NEIGHBOURS, [split.piece, split.rest], CELL)
    assert shapely.coverage_is_valid([split.piece, split.rest, *fixed])
    assert all(f.equals(n) for f, n in zip(fixed, NEIGHBOURS, strict=True))  # same shapes, more vertices
