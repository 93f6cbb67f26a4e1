"""Buildings of the synthetic district: one typology per block, laid out on a lattice.

Each block gets a typology (slab compound, tower compound, old-town low-rise, or a
non-residential campus). Buildings sit on a regular lattice inside the block, inset by
the road half widths (the compound wall) and a setback, so no building ever reaches a
street, a wall or a neighbouring block. Everything is computed on flat numpy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geo.synthetic._layout import Blocks

__all__ = ["Typology", "TYPOLOGIES", "Lattice", "assign_typologies", "lattice_for", "Buildings", "buildings_on"]


@dataclass(frozen=True)
class Typology:
    """How one kind of block is built up (footprints, spacing, storeys)."""

    key: str
    use: str
    width_m: tuple[float, float]  # east–west footprint, drawn once per block
    depth_m: tuple[float, float]  # north–south footprint
    gap_x_m: float  # between buildings east–west
    gap_y_m: float  # between rows (sunlight spacing for housing)
    setback_m: float  # from the compound wall / block edge
    floors: tuple[int, int]  # inclusive, drawn per building
    max_cols: int
    max_rows: int
    fill: float = 1.0  # smallest share of its lattice cell a footprint covers
    walled: bool = False  # a residential compound (小区) with walls and internal lanes


#: The building typologies. Slabs (板楼): 6 storeys, ~60 x 12 m rows facing south, 2 units
#: per floor per entrance, one entrance per ~20 m. Towers (塔楼): 18–33 storeys, 4–8 units
#: per floor. Old town: 1–3 storeys, 1–4 households, irregular small footprints.
TYPOLOGIES: tuple[Typology, ...] = (
    Typology("slab", "residential", (45, 75), (11, 13), 12, 22, 10, (5, 7), 8, 12, walled=True),
    Typology("tower", "residential", (22, 28), (20, 26), 30, 45, 15, (18, 33), 5, 4, walled=True),
    Typology("oldtown", "residential", (10, 15), (8, 12), 3, 4, 4, (1, 3), 60, 60, fill=0.65),
    Typology("school", "school", (50, 70), (14, 18), 25, 30, 15, (3, 5), 2, 3),
    Typology("hospital", "hospital", (40, 60), (20, 30), 20, 20, 15, (5, 12), 3, 2),
    Typology("market", "market", (40, 70), (30, 45), 20, 20, 10, (1, 2), 2, 1),
    Typology("office", "office", (30, 40), (25, 35), 25, 25, 15, (10, 25), 3, 3),
    Typology("commercial", "commercial", (30, 60), (15, 25), 15, 15, 10, (2, 5), 3, 2),
)
KEYS = {t.key: k for k, t in enumerate(TYPOLOGIES)}
SLAB, TOWER, OLDTOWN = KEYS["slab"], KEYS["tower"], KEYS["oldtown"]
OLDTOWN_SHARE = 0.2  # share of buildings in the old-town core around the centre
NONRES_SHARE = 0.12  # share of the other blocks that are campuses (schools, hospitals…)
NONRES_FIRST = ("school", "hospital", "market", "office")  # each present once if possible
NONRES_MIX = ("school", "school", "commercial", "office", "market", "hospital")
TOWER_SHARE = (0.05, 0.4)  # tower probability at the centre and its increase to the edge
SLAB_ENTRANCE_M = 20.0  # one entrance (单元) per this much slab length
SLAB_UNITS_PER_FLOOR = 2
TOWER_UNITS = ((4, 6, 8), (0.5, 0.35, 0.15))  # units per floor and their probabilities


@dataclass
class Lattice:
    """Per-block lattice: footprint, pitch, first cell corner, columns and rows."""

    kind: np.ndarray
    w: np.ndarray
    d: np.ndarray
    px: np.ndarray
    py: np.ndarray
    sx: np.ndarray
    sy: np.ndarray
    nc: np.ndarray
    nr: np.ndarray

    @property
    def counts(self) -> np.ndarray:
        return self.nc * self.nr


def _table(field: str) -> np.ndarray:
    return np.asarray([getattr(t, field) for t in TYPOLOGIES], dtype=float)


def lattice_for(blocks: Blocks, kind: np.ndarray, uw: np.ndarray, ud: np.ndarray) -> Lattice:
    """Lattice of each block for typology *kind*, footprints drawn from *uw*, *ud* in [0, 1)."""
    lo_w, hi_w = _table("width_m").T
    lo_d, hi_d = _table("depth_m").T
    w = lo_w[kind] + uw * (hi_w[kind] - lo_w[kind])
    d = lo_d[kind] + ud * (hi_d[kind] - lo_d[kind])
    gx, gy, setback = _table("gap_x_m")[kind], _table("gap_y_m")[kind], _table("setback_m")[kind]
    ix0, ix1 = blocks.x0 + blocks.inset_w + setback, blocks.x1 - blocks.inset_e - setback
    iy0, iy1 = blocks.y0 + blocks.inset_s + setback, blocks.y1 - blocks.inset_n - setback
    nc = np.floor((ix1 - ix0 + gx) / (w + gx)).clip(0, _table("max_cols")[kind]).astype(np.int64)
    nr = np.floor((iy1 - iy0 + gy) / (d + gy)).clip(0, _table("max_rows")[kind]).astype(np.int64)
    sx = ix0 + (ix1 - ix0 - (nc * w + (nc - 1).clip(0) * gx)) / 2.0
    sy = iy0 + (iy1 - iy0 - (nr * d + (nr - 1).clip(0) * gy)) / 2.0
    return Lattice(kind=kind, w=w, d=d, px=w + gx, py=d + gy, sx=sx, sy=sy, nc=nc, nr=nr)


def assign_typologies(rng: np.random.Generator, blocks: Blocks, n_buildings: int) -> Lattice:
    """Choose each block's typology and return its lattice.

    The blocks nearest the centre become the old town until it holds about
    ``OLDTOWN_SHARE`` of *n_buildings*; a share of the rest become campuses; the others
    are slab or tower compounds, towers more likely towards the edge.
    """
    n = blocks.size
    uw, ud, u_tower = rng.random(n), rng.random(n), rng.random(n)
    cx, cy = (blocks.x0 + blocks.x1) / 2.0, (blocks.y0 + blocks.y1) / 2.0
    dist = np.hypot(cx, cy)
    radial = dist / max(float(dist.max()), 1.0)
    kind = np.where(u_tower < TOWER_SHARE[0] + TOWER_SHARE[1] * radial, TOWER, SLAB)
    old = lattice_for(blocks, np.full(n, OLDTOWN), uw, ud).counts
    by_dist = np.argsort(dist, kind="stable")
    in_core = np.cumsum(old[by_dist]) <= OLDTOWN_SHARE * n_buildings
    kind[by_dist[in_core]] = OLDTOWN
    rest = np.flatnonzero(kind != OLDTOWN)
    n_campus = int(round(NONRES_SHARE * rest.size))
    if rest.size >= 3 * len(NONRES_FIRST):
        n_campus = max(n_campus, len(NONRES_FIRST))
    campus = rng.choice(rest, size=n_campus, replace=False)
    mix = rng.choice(len(NONRES_MIX), size=n_campus)
    uses = [NONRES_FIRST[k] if k < len(NONRES_FIRST) else NONRES_MIX[m] for k, m in enumerate(mix)]
    kind[campus] = [KEYS[u] for u in uses]
    return lattice_for(blocks, kind, uw, ud)


@dataclass
class Buildings:
    """Flat arrays of every building, sorted by block."""

    block: np.ndarray
    x0: np.ndarray
    y0: np.ndarray
    x1: np.ndarray
    y1: np.ndarray
    kind: np.ndarray
    floors: np.ndarray
    height_m: np.ndarray
    households: np.ndarray

    @property
    def size(self) -> int:
        return int(self.block.size)


def _cells(lat: Lattice, n_buildings: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Block and cell index of each kept lattice cell after thinning to *n_buildings*."""
    counts = lat.counts
    block = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
    cell = np.arange(block.size, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    surplus = block.size - n_buildings
    if surplus > 0:
        residential = np.flatnonzero(np.isin(lat.kind[block], (SLAB, TOWER, OLDTOWN)))
        drop = rng.choice(residential, size=min(surplus, residential.size), replace=False)
        keep = np.ones(block.size, dtype=bool)
        keep[drop] = False
        block, cell = block[keep], cell[keep]
    return block, cell


def _households(rng: np.random.Generator, kind: np.ndarray, floors: np.ndarray, w: np.ndarray) -> np.ndarray:
    hh = np.zeros(kind.size, dtype=np.int64)
    slab = kind == SLAB
    entrances = np.maximum(1, np.rint(w[slab] / SLAB_ENTRANCE_M)).astype(np.int64)
    hh[slab] = floors[slab] * entrances * SLAB_UNITS_PER_FLOOR
    tower = kind == TOWER
    units = rng.choice(np.asarray(TOWER_UNITS[0]), size=int(tower.sum()), p=TOWER_UNITS[1])
    hh[tower] = floors[tower] * units
    old = kind == OLDTOWN
    hh[old] = np.clip(floors[old] + rng.integers(-1, 2, int(old.sum())), 1, 4)
    return hh


def buildings_on(rng: np.random.Generator, lat: Lattice, n_buildings: int, *, floor_height_m: float) -> Buildings:
    """Buildings on every lattice cell, thinned at random to exactly *n_buildings*."""
    block, cell = _cells(lat, n_buildings, rng)
    kind = lat.kind[block]
    col, row = cell % lat.nc[block], cell // lat.nc[block]
    w, d = lat.w[block], lat.d[block]
    fill = _table("fill")[kind]
    fw = w * rng.uniform(fill, 1.0)
    fd = d * rng.uniform(fill, 1.0)
    x0 = lat.sx[block] + col * lat.px[block] + rng.random(block.size) * (w - fw)
    y0 = lat.sy[block] + row * lat.py[block] + rng.random(block.size) * (d - fd)
    lo, hi = _table("floors").T.astype(np.int64)
    floors = lo[kind] + (rng.random(block.size) * (hi[kind] - lo[kind] + 1)).astype(np.int64)
    height = floors * floor_height_m + rng.uniform(0.3, 1.5, block.size)
    hh = _households(rng, kind, floors, w)
    return Buildings(block=block, x0=x0, y0=y0, x1=x0 + fw, y1=y0 + fd, kind=kind,
                     floors=floors, height_m=height, households=hh)
