"""Street layout of the synthetic district: arterial grid, super-blocks, blocks, communities.

Coordinates are metres in a local frame centred on the district (x east, y north).
Major roads form a rectilinear grid of super-blocks (~400–800 m); each super-block is
split by secondary/minor roads into ``kx × ky`` blocks (the cells between road centre
lines, which tile the district exactly). Blocks are ordered along a snake that visits
every block once with consecutive blocks sharing an edge, so any run of consecutive
blocks is a connected union: communities are such runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geo.layers import ROAD_CLASSES

__all__ = ["ROAD_HALF_WIDTH_M", "Grid", "Blocks", "grid_from_area", "blocks_from_grid", "runs_by_households"]

MAJOR, SECONDARY, MINOR, LANE, PATH = (ROAD_CLASSES.index(c) for c in ("major", "secondary", "minor", "lane", "path"))

#: Half width of each road class from centre line to compound wall, sidewalk included (m).
ROAD_HALF_WIDTH_M: dict[int, float] = {MAJOR: 20.0, SECONDARY: 12.0, MINOR: 7.0}

SUPER_BLOCK_M = 575.0  # mean arterial spacing; each spacing is drawn in ±20 % of it
BLOCK_M = (180.0, 260.0)  # a super-block side is cut into round(side / U(BLOCK_M)) blocks
SPLIT_JITTER = 0.12  # internal road position jitter, share of a block side
SECONDARY_SHARE = 0.4  # share of internal roads that are secondary rather than minor


@dataclass
class Grid:
    """Road lines of the arterial grid and of the super-block subdivisions.

    Lines are axis-parallel: ``orient`` 0 runs east–west at ``y = c`` from ``t0`` to
    ``t1`` along x; 1 runs north–south at ``x = c`` along y. Line ids: vertical majors
    ``0..nx``, horizontal majors ``nx+1..nx+ny+1``, then internal vertical splits, then
    internal horizontal splits.
    """

    nx: int
    ny: int
    xs: np.ndarray
    ys: np.ndarray
    kx: np.ndarray
    ky: np.ndarray
    vx: np.ndarray
    vstart: np.ndarray
    hy: np.ndarray
    hstart: np.ndarray
    start_up: np.ndarray  # per strip: first column of the snake runs north
    orient: np.ndarray
    c: np.ndarray
    t0: np.ndarray
    t1: np.ndarray
    road_class: np.ndarray

    @property
    def base_v(self) -> int:
        return self.nx + self.ny + 2

    @property
    def base_h(self) -> int:
        return self.base_v + self.vx.size


@dataclass
class Blocks:
    """Blocks (cells between road centre lines) in snake order."""

    x0: np.ndarray
    x1: np.ndarray
    y0: np.ndarray
    y1: np.ndarray
    sb: np.ndarray
    west: np.ndarray  # line ids of the four edges
    east: np.ndarray
    south: np.ndarray
    north: np.ndarray
    inset_w: np.ndarray  # road half widths along the four edges
    inset_e: np.ndarray
    inset_s: np.ndarray
    inset_n: np.ndarray

    @property
    def size(self) -> int:
        return int(self.x0.size)


def _axis(rng: np.random.Generator, count: int, spacing: float) -> np.ndarray:
    widths = spacing * rng.uniform(0.8, 1.2, count)
    edges = np.concatenate([[0.0], np.cumsum(widths)])
    return edges - edges[-1] / 2.0


def _splits(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Internal split positions (k-1 per super-block, jittered equal cuts) and start offsets."""
    count = k - 1
    start = np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64)
    owner = np.repeat(np.arange(k.size), count)
    local = np.arange(owner.size) - start[owner] + 1
    jitter = rng.uniform(-SPLIT_JITTER, SPLIT_JITTER, owner.size)
    pos = lo[owner] + (hi[owner] - lo[owner]) * (local + jitter) / k[owner]
    return pos, start


def _fix_parity(kx: np.ndarray, nx: int, ny: int) -> np.ndarray:
    """Make every strip but the first and last have an odd number of block columns.

    A strip's snake starts at the south of its first column and must end at the north of
    its last one to continue into the next strip, which needs an odd column count.
    """
    kx = kx.reshape(ny, nx).copy()
    for j in range(1, ny - 1):
        if kx[j].sum() % 2 == 0:
            i = nx - 1 if j % 2 == 0 else 0
            kx[j, i] = 2 if kx[j, i] == 3 else kx[j, i] + 1
    return kx.ravel()


def grid_from_area(rng: np.random.Generator, area_m2: float) -> Grid:
    """Arterial grid covering about *area_m2*, with subdivided super-blocks."""
    side = float(np.sqrt(area_m2))
    nx = max(1, round(side / SUPER_BLOCK_M))
    ny = max(1, round(area_m2 / (nx * SUPER_BLOCK_M**2)))
    spacing = float(np.sqrt(area_m2 / (nx * ny)))
    xs, ys = _axis(rng, nx, spacing), _axis(rng, ny, spacing)
    i, j = np.arange(nx * ny) % nx, np.arange(nx * ny) // nx
    w, h = np.diff(xs)[i], np.diff(ys)[j]
    kx = np.clip(np.rint(w / rng.uniform(*BLOCK_M, i.size)), 1, 3).astype(np.int64)
    ky = np.clip(np.rint(h / rng.uniform(*BLOCK_M, i.size)), 1, 3).astype(np.int64)
    kx = _fix_parity(kx, nx, ny)
    vx, vstart = _splits(rng, xs[i], xs[i + 1], kx)
    hy, hstart = _splits(rng, ys[j], ys[j + 1], ky)
    strip_cols = kx.reshape(ny, nx).sum(axis=1)
    start_up = np.ones(ny, dtype=bool)
    start_up[0] = ny == 1 or strip_cols[0] % 2 == 1
    v_owner, h_owner = np.repeat(np.arange(i.size), kx - 1), np.repeat(np.arange(i.size), ky - 1)
    internal = np.where(rng.random(vx.size + hy.size) < SECONDARY_SHARE, SECONDARY, MINOR)
    orient = np.concatenate([np.ones(nx + 1), np.zeros(ny + 1), np.ones(vx.size), np.zeros(hy.size)])
    return Grid(
        nx=nx, ny=ny, xs=xs, ys=ys, kx=kx, ky=ky, vx=vx, vstart=vstart, hy=hy, hstart=hstart,
        start_up=start_up, orient=orient.astype(np.int8),
        c=np.concatenate([xs, ys, vx, hy]),
        t0=np.concatenate([np.full(nx + 1, ys[0]), np.full(ny + 1, xs[0]), ys[j[v_owner]], xs[i[h_owner]]]),
        t1=np.concatenate([np.full(nx + 1, ys[-1]), np.full(ny + 1, xs[-1]), ys[j[v_owner] + 1], xs[i[h_owner] + 1]]),
        road_class=np.concatenate([np.full(nx + ny + 2, MAJOR), internal]).astype(np.int8),
    )


def _snake_order(grid: Grid, sb: np.ndarray, col: np.ndarray, row: np.ndarray) -> np.ndarray:
    """Permutation putting blocks in snake order (strip by strip, column by column)."""
    nx = grid.nx
    j = sb // nx
    east = j % 2 == 0
    sb_all = np.arange(grid.kx.size)
    si, sj = sb_all % nx, sb_all // nx
    trav = np.where(sj % 2 == 0, si, nx - 1 - si)
    by_trav = np.lexsort((trav, sj))
    ksorted = grid.kx[by_trav]
    before_sorted = np.cumsum(ksorted) - ksorted
    strip_base = before_sorted[np.searchsorted(sj[by_trav], np.arange(grid.ny))]
    cols_before = np.empty_like(before_sorted)
    cols_before[by_trav] = before_sorted - strip_base[sj[by_trav]]
    colkey = cols_before[sb] + np.where(east, col, grid.kx[sb] - 1 - col)
    first_up = grid.start_up[j]
    up = (colkey % 2 == 0) == first_up
    rowkey = np.where(up, row, grid.ky[sb] - 1 - row)
    return np.lexsort((rowkey, colkey, j))


def _edge_lines(grid: Grid, sb: np.ndarray, col: np.ndarray, row: np.ndarray) -> tuple[np.ndarray, ...]:
    i, j = sb % grid.nx, sb // grid.nx
    kx, ky = grid.kx[sb], grid.ky[sb]
    vbase, hbase = grid.base_v + grid.vstart[sb], grid.base_h + grid.hstart[sb]
    west = np.where(col == 0, i, vbase + col - 1)
    east = np.where(col == kx - 1, i + 1, vbase + col)
    south = np.where(row == 0, grid.nx + 1 + j, hbase + row - 1)
    north = np.where(row == ky - 1, grid.nx + 2 + j, hbase + row)
    return west, east, south, north


def blocks_from_grid(grid: Grid) -> Blocks:
    """Every block of *grid*, in snake order."""
    nblocks = grid.kx * grid.ky
    sb = np.repeat(np.arange(nblocks.size), nblocks)
    local = np.arange(sb.size) - np.repeat(np.cumsum(nblocks) - nblocks, nblocks)
    col, row = local % grid.kx[sb], local // grid.kx[sb]
    order = _snake_order(grid, sb, col, row)
    sb, col, row = sb[order], col[order], row[order]
    west, east, south, north = _edge_lines(grid, sb, col, row)
    half = np.zeros(len(ROAD_CLASSES))
    for cls, width in ROAD_HALF_WIDTH_M.items():
        half[cls] = width
    return Blocks(
        x0=grid.c[west], x1=grid.c[east], y0=grid.c[south], y1=grid.c[north], sb=sb,
        west=west, east=east, south=south, north=north,
        inset_w=half[grid.road_class[west]], inset_e=half[grid.road_class[east]],
        inset_s=half[grid.road_class[south]], inset_n=half[grid.road_class[north]],
    )


def runs_by_households(households: np.ndarray, count: int) -> np.ndarray:
    """Cut a sequence of blocks into at most *count* consecutive runs of ~equal households.

    Each block goes to the run containing the midpoint of its household range, so runs
    are contiguous along the snake; labels are renumbered 0..k-1 without gaps.
    """
    total = float(households.sum())
    if total <= 0 or count <= 1:
        return np.zeros(households.size, dtype=np.int64)
    mid = np.cumsum(households) - households / 2.0
    label = np.minimum((mid * count / total).astype(np.int64), count - 1)
    return np.unique(label, return_inverse=True)[1].astype(np.int64)
