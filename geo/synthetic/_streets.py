"""Street network of the synthetic district, noded at every junction.

Lines are axis-parallel (see :class:`geo.synthetic._layout.Grid`). Each junction is
registered on every line it touches, so the segments returned meet end to end: a walk
network can be built from their endpoints without further noding. Compound lanes and
old-town paths run in the gaps between building rows and columns, from the centre line
of one bounding road to the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geo.synthetic._buildings import OLDTOWN, TYPOLOGIES, Lattice
from geo.synthetic._layout import LANE, MAJOR, MINOR, PATH, SECONDARY, Blocks, Grid
from geo.synthetic._names import join, road_stems

__all__ = ["Segments", "line_names", "segments_from"]

_WALLED = np.asarray([t.walled for t in TYPOLOGIES])
_SUFFIX = {MAJOR: "路", SECONDARY: "街", MINOR: "巷"}


@dataclass
class Segments:
    """Street segments: coordinates (metres), class code, name (None for lanes/paths)."""

    coords: np.ndarray  # (n, 2, 2)
    road_class: np.ndarray
    name: np.ndarray  # object array


@dataclass
class _Lines:
    orient: np.ndarray
    c: np.ndarray
    t0: np.ndarray
    t1: np.ndarray
    road_class: np.ndarray
    block: np.ndarray  # owning block of internal lines, -1 for roads


def _internal_lines(blocks: Blocks, lat: Lattice) -> tuple[_Lines, np.ndarray]:
    """Lanes/paths inside blocks; returns lines and, per block, its north–south line (or -1)."""
    walled, old = _WALLED[lat.kind], lat.kind == OLDTOWN
    # East–west: one lane in the middle row gap of a compound, a path in every other gap of
    # the old town (gap g lies between rows g-1 and g).
    n_ew = np.where(walled & (lat.nr >= 2), 1, 0) + np.where(old, lat.nr // 2, 0)
    b_ew = np.repeat(np.arange(blocks.size), n_ew)
    k = np.arange(b_ew.size) - np.repeat(np.cumsum(n_ew) - n_ew, n_ew)
    gap = np.where(old[b_ew], 2 * k + 1, lat.nr[b_ew] // 2)
    y_ew = lat.sy[b_ew] + gap * lat.py[b_ew] - (lat.py[b_ew] - lat.d[b_ew]) / 2.0
    has_ns = (walled | old) & (lat.nc >= 2)
    b_ns = np.flatnonzero(has_ns)
    x_ns = lat.sx[b_ns] + (lat.nc[b_ns] // 2) * lat.px[b_ns] - (lat.px[b_ns] - lat.w[b_ns]) / 2.0
    cls_ew = np.where(old[b_ew], PATH, LANE)
    cls_ns = np.where(old[b_ns], PATH, LANE)
    lines = _Lines(
        orient=np.concatenate([np.zeros(b_ew.size), np.ones(b_ns.size)]).astype(np.int8),
        c=np.concatenate([y_ew, x_ns]),
        t0=np.concatenate([blocks.x0[b_ew], blocks.y0[b_ns]]),
        t1=np.concatenate([blocks.x1[b_ew], blocks.y1[b_ns]]),
        road_class=np.concatenate([cls_ew, cls_ns]).astype(np.int8),
        block=np.concatenate([b_ew, b_ns]),
    )
    ns_of_block = np.full(blocks.size, -1, dtype=np.int64)
    ns_of_block[b_ns] = b_ew.size + np.arange(b_ns.size)
    return lines, ns_of_block


def _grid_junctions(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """(line id, position) of every junction between grid roads."""
    nx, ny = grid.nx, grid.ny
    vi, hj = np.meshgrid(np.arange(nx + 1), np.arange(ny + 1), indexing="ij")
    ids = [vi.ravel(), nx + 1 + hj.ravel()]
    pos = [grid.ys[hj.ravel()], grid.xs[vi.ravel()]]
    nsb = grid.kx.size
    v_owner = np.repeat(np.arange(nsb), grid.kx - 1)
    h_owner = np.repeat(np.arange(nsb), grid.ky - 1)
    for owner, coord, offset in ((v_owner, grid.vx, nx + 1), (h_owner, grid.hy, 0)):
        # Ends of internal splits on the two majors they join (T junctions).
        line_a = offset + (owner // nx if offset else owner % nx)
        ids += [line_a, line_a + 1]
        pos += [coord, coord]
    # Internal vertical x internal horizontal splits of the same super-block.
    reps = (grid.ky - 1)[v_owner]
    v = np.repeat(np.arange(v_owner.size), reps)
    h = grid.hstart[v_owner[v]] + np.arange(v.size) - np.repeat(np.cumsum(reps) - reps, reps)
    ids += [grid.base_v + v, grid.base_h + h]
    pos += [grid.hy[h], grid.vx[v]]
    return np.concatenate(ids), np.concatenate(pos)


def _block_junctions(blocks: Blocks, inner: _Lines, ns_of_block: np.ndarray,
                     base: int) -> tuple[np.ndarray, np.ndarray]:
    ew = np.flatnonzero(inner.orient == 0)
    ns = np.flatnonzero(inner.orient == 1)
    b_ew, b_ns = inner.block[ew], inner.block[ns]
    crossing = ew[ns_of_block[b_ew] >= 0]
    cross_ns = ns_of_block[inner.block[crossing]]
    ids = [blocks.west[b_ew], blocks.east[b_ew], blocks.south[b_ns], blocks.north[b_ns],
           base + crossing, base + cross_ns]
    pos = [inner.c[ew], inner.c[ew], inner.c[ns], inner.c[ns],
           inner.c[cross_ns], inner.c[crossing]]
    return np.concatenate(ids), np.concatenate(pos)


def line_names(rng: np.random.Generator, grid: Grid) -> np.ndarray:
    """Name of every grid road line: majors 人民路 (unique), internal 青溪街 / 青溪巷."""
    n_major = grid.nx + grid.ny + 2
    n_internal = grid.road_class.size - n_major
    majors = join(road_stems(rng, n_major), "路")
    pool = road_stems(rng, max(64, int(np.sqrt(max(n_internal, 1))) * 8))
    internal = pool[rng.integers(0, pool.size, n_internal)]
    suffix = np.where(grid.road_class[n_major:] == SECONDARY, _SUFFIX[SECONDARY], _SUFFIX[MINOR])
    return np.concatenate([majors, join(internal, suffix)]).astype(object)


def segments_from(grid: Grid, blocks: Blocks, lat: Lattice, names_of_lines: np.ndarray) -> Segments:
    """Every road, lane and path as segments split at all junctions."""
    inner, ns_of_block = _internal_lines(blocks, lat)
    base = grid.road_class.size
    orient = np.concatenate([grid.orient, inner.orient])
    # Rounded like the junction positions, so lines meet at bit-identical coordinates.
    c = np.round(np.concatenate([grid.c, inner.c]), 3)
    t0, t1 = np.concatenate([grid.t0, inner.t0]), np.concatenate([grid.t1, inner.t1])
    cls = np.concatenate([grid.road_class, inner.road_class])
    gid, gpos = _grid_junctions(grid)
    bid, bpos = _block_junctions(blocks, inner, ns_of_block, base)
    every = np.arange(c.size)
    line = np.concatenate([every, every, gid, bid])
    pos = np.round(np.concatenate([t0, t1, gpos, bpos]), 3)
    order = np.lexsort((pos, line))
    line, pos = line[order], pos[order]
    fresh = np.ones(line.size, dtype=bool)
    fresh[1:] = (line[1:] != line[:-1]) | (pos[1:] != pos[:-1])
    line, pos = line[fresh], pos[fresh]
    seg = np.flatnonzero(line[1:] == line[:-1])
    seg_line, ta, tb = line[seg], pos[seg], pos[seg + 1]
    horizontal = orient[seg_line] == 0
    cc = c[seg_line]
    coords = np.empty((seg.size, 2, 2))
    coords[:, 0, 0] = np.where(horizontal, ta, cc)
    coords[:, 0, 1] = np.where(horizontal, cc, ta)
    coords[:, 1, 0] = np.where(horizontal, tb, cc)
    coords[:, 1, 1] = np.where(horizontal, cc, tb)
    names = np.concatenate([names_of_lines, np.full(inner.c.size, None, dtype=object)])
    return Segments(coords=coords, road_class=cls[seg_line], name=names[seg_line])
