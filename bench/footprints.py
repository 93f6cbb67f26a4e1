"""Whole buildings in their grid (issue 10 §1): prints a table.

    .venv/bin/python bench/footprints.py                 # Suzhou, Bund, synthetic 5 k
    .venv/bin/python bench/footprints.py --sizes 5000 20000

Each dataset is prepared exactly as ``bench/partition.py`` prepares it (Suzhou Gusu with
households from ``Floor``; the Bund through ``geo.osm.read_osm_extract``; the synthetic
district of ``geo.synthetic``, seed 42, cached in ``bench/out/``), partitioned with
``partition_grids`` and measured with ``geo.partition.quality.footprint_share_inside``:
the share of buildings with at least 99 % / 95 % of their footprint area inside their own
grid, the worst building, and the touching / overlapping footprint pairs of the input.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from partition import _bund, _suzhou, _synthetic  # noqa: E402

from geo.partition import partition_grids  # noqa: E402
from geo.partition.quality import footprint_share_inside  # noqa: E402

HEADER = ("| data | buildings | touching pairs | overlapping pairs | ≥ 99 % inside | ≥ 95 % inside "
          "| < 95 % (count) | worst | partition s |")
RULE = "|" + "---|" * 9


def footprint_pairs(b: gpd.GeoDataFrame) -> tuple[int, int]:
    """Pairs of footprints that touch (no shared area) and that overlap (shared area > 0)."""
    g = b.geometry.values
    qi, qj = shapely.STRtree(g).query(g, predicate="intersects")
    keep = qi < qj
    qi, qj = qi[keep], qj[keep]
    shared = shapely.area(shapely.intersection(g[qi], g[qj]))
    return int((shared <= 1e-6).sum()), int((shared > 1e-6).sum())


def measure(name: str, layers: dict) -> str:
    b = layers["buildings"].reset_index(drop=True)
    t = time.perf_counter()
    res = partition_grids(b, layers.get("communities"), streets=layers.get("streets"),
                          compounds=layers.get("compounds"))
    wall = time.perf_counter() - t
    share = footprint_share_inside(b, res.grids, res.assignment).dropna()
    touch, over = footprint_pairs(b)
    n = len(share)
    return (f"| {name} | {len(b):,} | {touch:,} | {over:,} | {(share >= 0.99).mean():.4f} "
            f"| {(share >= 0.95).mean():.4f} | {int((share < 0.95).sum()):,} of {n:,} "
            f"| {float(np.min(share)):.3f} | {wall:.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[5000], help="synthetic district sizes")
    args = ap.parse_args()
    print(HEADER)
    print(RULE)
    sets = [("Suzhou Gusu", _suzhou), ("Shanghai Bund", _bund)]
    sets += [(f"synthetic {n:,}", lambda n=n: _synthetic(n)) for n in args.sizes]
    for name, load in sets:
        print(measure(name, load()), flush=True)


if __name__ == "__main__":
    main()
