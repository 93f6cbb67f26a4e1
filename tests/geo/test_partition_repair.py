"""Boundary repair of geo.partition.repair: whole parts of street blocks change grid."""

from __future__ import annotations

import numpy as np
import pytest

from geo.partition.repair import absorb_empty, components, consolidate, smooth, violation
from geo.partition.solve import Piece


def _two_blocks(n: int = 6, inner: float = 10.0, street: float = 1.0) -> Piece:
    """Two street blocks side by side: units 0..n-1 in a row (block X), n..2n-1 beside them
    (block Y); neighbours in a row share a boundary off the streets, facing units a street."""
    row = [(i, i + 1) for i in range(n - 1)]
    u = [a for a, _ in row] + [a + n for a, _ in row] + list(range(n))
    v = [b for _, b in row] + [b + n for _, b in row] + [i + n for i in range(n)]
    cost = [inner] * (2 * (n - 1)) + [street] * n
    off = [25.0] * (2 * (n - 1)) + [0.0] * n
    return Piece(np.full(2 * n, 100.0), np.array(u), np.array(v), np.array(cost), np.array(off))


def _cut(piece: Piece, lab: np.ndarray) -> float:
    return float(piece.cost @ (lab[piece.u] != lab[piece.v]))


def _connected(piece: Piece, lab: np.ndarray) -> bool:
    same = lab[piece.u] == lab[piece.v]
    comp = components(piece.n, piece.u[same], piece.v[same])
    return all(len(np.unique(comp[lab == g])) == 1 for g in np.unique(lab))


@pytest.mark.parametrize("hi", [800, 700])
def test_parts_of_blocks_move_whole_where_single_moves_do_not_pay(hi: int) -> None:
    piece = _two_blocks()
    # grid 0: x0..x3 and y0, y1; grid 1: x4, x5 and y2..y5 — each reaches into the other's block
    start = np.array([0, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 1])
    smoothed = smooth(piece, start, lo=300, hi=hi)
    assert _cut(piece, smoothed) >= 20.0  # single moves stop at a left/right split of both blocks
    lab = consolidate(piece, smoothed, lo=300, hi=hi)
    assert len(set(lab[:6])) == len(set(lab[6:])) == 1 and lab[0] != lab[6]  # a grid per block
    assert _cut(piece, lab) == 6.0
    assert violation(np.bincount(lab, weights=piece.weight), 300, hi).sum() == 0


def test_a_move_that_costs_more_once_back_in_range_is_refused() -> None:
    p = _two_blocks()
    piece = Piece(np.r_[np.full(6, 150.0), np.full(6, 50.0)], p.u, p.v, p.cost, p.off)
    # grid 0: x0..x3 (600); grid 1: x4, x5 and block Y (600). Block X whole in grid 0 holds 900:
    # the chain must hand back two of its units, a cut as dear as the one it removed
    start = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1])
    lab = consolidate(piece, start, lo=550, hi=650)
    np.testing.assert_array_equal(lab, start)


def test_without_off_street_lengths_nothing_moves() -> None:
    p = _two_blocks()
    piece = Piece(p.weight, p.u, p.v, p.cost)
    start = np.array([0, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(consolidate(piece, start, lo=300, hi=800), start)


@pytest.mark.parametrize("seed", range(8))
def test_random_plans_stay_connected_in_bounds_and_get_cheaper(seed: int) -> None:
    rng = np.random.default_rng(seed)
    side = 12  # a lattice of units; streets every 4 rows and columns make 3×3 blocks
    idx = np.arange(side * side).reshape(side, side)
    h = np.c_[idx[:, :-1].ravel(), idx[:, 1:].ravel()]
    v = np.c_[idx[:-1, :].ravel(), idx[1:, :].ravel()]
    street_h = (np.arange(side - 1) % 4 == 3)[None, :].repeat(side, 0).ravel()
    street_v = (np.arange(side - 1) % 4 == 3)[:, None].repeat(side, 1).ravel()
    uv = np.r_[h, v]
    on_street = np.r_[street_h, street_v]
    cost = np.where(on_street, 0.25, 1.0) * 10
    off = np.where(on_street, 0.0, 10.0)
    weight = rng.integers(20, 80, side * side).astype(float)
    piece = Piece(weight, uv[:, 0], uv[:, 1], cost, off)
    # start: vertical strips of about 400 households, a little ragged
    order = np.lexsort((idx.ravel() // side + rng.integers(0, 3, side * side), idx.ravel() % side))
    lab = np.empty(side * side, dtype=np.int64)
    lab[order] = np.minimum((np.cumsum(weight[order]) / 400).astype(int), int(weight.sum() // 400) - 1)
    same = lab[piece.u] == lab[piece.v]
    comp = components(piece.n, piece.u[same], piece.v[same])
    _, lab = np.unique(comp, return_inverse=True)  # contiguous start: one grid per strip piece
    before = violation(np.bincount(lab, weights=weight), 250, 550)
    out = consolidate(piece, lab, lo=250, hi=550)
    assert _connected(piece, out)
    after = violation(np.bincount(out, weights=weight, minlength=len(before)), 250, 550)
    assert (after <= before + 1e-9).all()
    assert set(np.unique(out)) == set(np.unique(lab))  # no grid vanishes
    assert _cut(piece, out) < _cut(piece, lab)


def _offices_in_block_x() -> tuple[Piece, np.ndarray]:
    """Two blocks; x4, x5 hold no households (offices) and sit in block Y's grid."""
    p = _two_blocks()
    piece = Piece(np.r_[np.full(4, 100.0), 0.0, 0.0, np.full(6, 100.0)], p.u, p.v, p.cost, p.off)
    return piece, np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1])


def test_units_without_households_join_the_grid_that_cuts_least() -> None:
    piece, start = _offices_in_block_x()
    lab = absorb_empty(piece, start)
    np.testing.assert_array_equal(lab, [0] * 6 + [1] * 6)  # the boundary is the street
    assert _cut(piece, lab) == 6.0 < _cut(piece, start)
    np.testing.assert_array_equal(np.bincount(lab, weights=piece.weight), np.bincount(start, weights=piece.weight))


def test_units_without_households_never_join_a_closed_grid() -> None:
    piece, start = _offices_in_block_x()
    np.testing.assert_array_equal(absorb_empty(piece, start, closed=frozenset({0})), start)


def test_units_without_households_stay_when_leaving_would_split_their_grid() -> None:
    # path 0 - 1 - 2 - 3 and a dear edge 0 - 2: unit 2 (no households) links 1 and 3 of grid 1
    piece = Piece(np.array([100.0, 100.0, 0.0, 100.0]), np.array([0, 1, 2, 0]), np.array([1, 2, 3, 2]),
                  np.array([1.0, 1.0, 1.0, 10.0]), np.array([0.0, 0.0, 0.0, 25.0]))
    start = np.array([0, 1, 1, 1])
    np.testing.assert_array_equal(absorb_empty(piece, start), start)
    assert _connected(piece, start)
