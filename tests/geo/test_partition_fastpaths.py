"""The fast paths of geo.partition give what the plain scipy/shapely routes give."""

from __future__ import annotations

import numpy as np
import pytest

from geo.partition.planar import arrangement_from_segments, rings_of_cycles, trace_cycles
from geo.partition.solve import Piece


@pytest.mark.parametrize("seed", range(5))
def test_adjacency_matches_scipy_csr(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 40
    pairs = {tuple(sorted(p)) for p in rng.integers(0, n, (120, 2)).tolist() if p[0] != p[1]}
    uv = np.array(sorted(pairs, key=lambda _: rng.random()))
    cost = rng.random(len(uv)) * 10
    piece = Piece(np.ones(n), uv[:, 0], uv[:, 1], cost)
    want = piece.csr(cost)
    indptr, indices, data = piece.adjacency(cost)
    np.testing.assert_array_equal(indptr, want.indptr)
    np.testing.assert_array_equal(indices, want.indices)
    np.testing.assert_allclose(data, want.data)


def test_rings_with_cached_next_pointer_match() -> None:
    grid = [(x, 0.0, x, 3.0) for x in range(4)] + [(0.0, y, 3.0, y) for y in range(4)]
    seg = np.array(grid, dtype=float)
    arr = arrangement_from_segments(seg, np.ones(len(seg), dtype=np.int64))
    cycle, area, nxt = trace_cycles(arr.xy, arr.eu, arr.ev, return_next=True)
    wanted = np.flatnonzero(area > 0)
    assert len(wanted) == 9
    plain = rings_of_cycles(arr.xy, arr.eu, arr.ev, cycle, wanted)
    cached = rings_of_cycles(arr.xy, arr.eu, arr.ev, cycle, wanted, nxt=nxt)
    assert all(a.equals_exact(b, 0) for a, b in zip(plain, cached, strict=True))
    np.testing.assert_array_equal(arr.nxt, nxt)


def test_ends_a_hair_apart_across_a_rounding_step_still_close_a_face() -> None:
    # a square whose last side ends 2e-9 m from where the first begins, on either side of a
    # rounding boundary of the 1e-4 m vertex grid (0.5 grid steps): one vertex, one face
    half = 0.5e-4
    seg = np.array([[half + 1e-9, 0.0, 10.0, 0.0], [10.0, 0.0, 10.0, 10.0], [10.0, 10.0, 0.0, 10.0],
                    [0.0, 10.0, half - 1e-9, 0.0]])
    arr = arrangement_from_segments(seg, np.ones(len(seg), dtype=np.int64))
    assert len(arr.xy) == 4
    assert np.isclose(arr.face_area[arr.face_area > 0].sum(), 100.0, rtol=1e-4)
