"""Service points of the synthetic district (the facilities of the 15-minute circle).

Campus blocks give their own facility (a school block a kindergarten or school, a
hospital block a community health centre, a market block a food market). Each community
and each street office gets the facilities of its level at random blocks inside it, with
some left out so that coverage analysis finds gaps. Bus stops sit on the sidewalks of
major roads. Points lie inside the setback strip of a block (never on a street or in a
building).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geo.synthetic._buildings import KEYS, Lattice
from geo.synthetic._layout import MAJOR, Blocks
from geo.synthetic._names import join
from geo.synthetic._streets import Segments

__all__ = ["Points", "points_from"]

#: (category, name suffix, expected count per unit). Fractions are probabilities.
PER_COMMUNITY: tuple[tuple[str, str, float], ...] = (
    ("community_service_station", "社区服务站", 1.0),
    ("health_station", "社区卫生服务站", 0.9),
    ("elderly_daycare", "日间照料中心", 0.7),
    ("kindergarten", "幼儿园", 0.4),
    ("convenience_store", "便利店", 2.0),
    ("public_toilet", "公共厕所", 1.5),
    ("sports_ground", "健身广场", 0.3),
)
PER_STREET_OFFICE: tuple[tuple[str, str, float], ...] = (
    ("street_service_centre", "街道便民服务中心", 1.0),
    ("police_station", "派出所", 1.0),
    ("culture_centre", "文化活动中心", 1.0),
    ("community_health_centre", "社区卫生服务中心", 1.0),
    ("middle_school", "中学", 1.0),
    ("primary_school", "实验小学", 1.0),
    ("elderly_care_home", "颐养院", 1.0),
    ("food_market", "菜市场", 1.0),
    ("sports_ground", "体育公园", 1.0),
)
CAMPUS: dict[int, tuple[tuple[str, str], ...]] = {
    KEYS["school"]: (("kindergarten", "幼儿园"), ("primary_school", "小学"), ("middle_school", "中学")),
    KEYS["hospital"]: (("community_health_centre", "社区卫生服务中心"),),
    KEYS["market"]: (("food_market", "农贸市场"),),
    KEYS["commercial"]: (("convenience_store", "超市"),),
}
BUS_STOP_SHARE = 0.5  # share of major road segments with a bus stop
BUS_STOP_OFFSET_M = 16.0  # from the centre line, on the sidewalk (inside the road half width)
WALL_OFFSET_M = 3.0  # points sit this far inside the southern block edge's wall


@dataclass
class Points:
    x: np.ndarray
    y: np.ndarray
    category: np.ndarray  # object
    name: np.ndarray  # object


def _in_block(rng: np.random.Generator, blocks: Blocks, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = blocks.x0[b] + blocks.inset_w[b], blocks.x1[b] - blocks.inset_e[b]
    x = lo + (hi - lo) * rng.uniform(0.2, 0.8, b.size)
    return x, blocks.y0[b] + blocks.inset_s[b] + WALL_OFFSET_M


def _per_unit(rng: np.random.Generator, unit_of_block: np.ndarray, stems: np.ndarray,
              table: tuple[tuple[str, str, float], ...]) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Blocks hosting each facility of *table* in every unit (community or street office)."""
    n_units = stems.size
    first = np.searchsorted(unit_of_block, np.arange(n_units))
    size = np.bincount(unit_of_block, minlength=n_units)
    hosts, cats, names = [], [], []
    for category, suffix, rate in table:
        count = rng.poisson(rate, n_units) if rate != 1.0 else np.ones(n_units, dtype=np.int64)
        unit = np.repeat(np.arange(n_units), count)
        hosts.append(first[unit] + (rng.random(unit.size) * size[unit]).astype(np.int64))
        cats += [category] * unit.size
        names.append(join(stems[unit], suffix))
    return np.concatenate(hosts), cats, np.concatenate(names)


def _campus(rng: np.random.Generator, lat: Lattice, stems_of_block: np.ndarray) -> tuple[np.ndarray, list[str], np.ndarray]:
    hosts, cats, names = [], [], []
    for kind, options in CAMPUS.items():
        b = np.flatnonzero((lat.kind == kind) & (lat.counts > 0))
        pick = rng.integers(0, len(options), b.size)
        hosts.append(b)
        cats += [options[k][0] for k in pick]
        names.append(join(stems_of_block[b], np.asarray([o[1] for o in options])[pick]))
    return np.concatenate(hosts), cats, np.concatenate(names)


def _bus_stops(rng: np.random.Generator, seg: Segments) -> Points:
    major = np.flatnonzero((seg.road_class == MAJOR) & (rng.random(seg.road_class.size) < BUS_STOP_SHARE))
    mid = seg.coords[major].mean(axis=1)
    horizontal = seg.coords[major, 0, 1] == seg.coords[major, 1, 1]
    # On the side facing the district centre, so stops on the outer ring stay inside.
    across = np.where(horizontal, mid[:, 1], mid[:, 0])
    side = np.where(across > 0, -1.0, 1.0) * BUS_STOP_OFFSET_M
    x = mid[:, 0] + np.where(horizontal, 0.0, side)
    y = mid[:, 1] + np.where(horizontal, side, 0.0)
    names = join(seg.name[major].astype(str), "站")
    return Points(x=x, y=y, category=np.full(major.size, "bus_stop", dtype=object), name=names.astype(object))


def points_from(rng: np.random.Generator, blocks: Blocks, lat: Lattice, seg: Segments, *,
                community: np.ndarray, community_stems: np.ndarray,
                office: np.ndarray, office_stems: np.ndarray) -> Points:
    """Every service point; *community* and *office* give each block's unit (snake runs)."""
    h1, c1, n1 = _campus(rng, lat, community_stems[community])
    h2, c2, n2 = _per_unit(rng, community, community_stems, PER_COMMUNITY)
    h3, c3, n3 = _per_unit(rng, office, office_stems, PER_STREET_OFFICE)
    hosts = np.concatenate([h1, h2, h3])
    x, y = _in_block(rng, blocks, hosts)
    bus = _bus_stops(rng, seg)
    return Points(
        x=np.concatenate([x, bus.x]), y=np.concatenate([y, bus.y]),
        category=np.concatenate([np.asarray(c1 + c2 + c3, dtype=object), bus.category]),
        name=np.concatenate([np.concatenate([n1, n2, n3]).astype(object), bus.name]),
    )
