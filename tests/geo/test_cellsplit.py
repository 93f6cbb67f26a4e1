"""geo.cellsplit: a cell divided so exactly the moving buildings go, every footprint whole."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import box

from geo.cellsplit import insert_vertices, split_cell
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
