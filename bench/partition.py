"""Benchmark of the grid partition engine (a script, not a test): prints a table.

    .venv/bin/python bench/partition.py [--quick] [--sizes 5000 20000 100000 1000000]

Wangge only for now; the peers of issue 3 (pymetis, spopt MaxP/Skater, GerryChain,
momepy + libpysal + pymetis) are not wired in yet.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from geo.partition import partition_grids
from geo.synthetic import synthetic_district


def _row(name: str, n: int, seconds: float, res) -> str:
    g = res.grids
    plain = g[~g["exclusive"] & (g["households"] > 0) & ~g["flags"].str.contains("oversize_unit|empty")]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    multi = int((g.geom_type != "Polygon").sum())
    return (f"| {name} | {n:,} | {seconds:.1f} | {peak:.2f} | {res.report['share_in_range']:.3f} | {multi} | "
            f"{plain['polsby_popper'].mean():.3f} | {np.nanmean(plain['street_share']):.3f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="skip the 1 M row")
    ap.add_argument("--sizes", type=int, nargs="*", default=[5000, 20000, 100000, 1000000])
    args = ap.parse_args()
    sizes = [s for s in args.sizes if not (args.quick and s >= 1_000_000)]
    print("| data | buildings | wall s | peak GB | share in range | non-polygon grids | mean PP | street share (graph) |")
    print("|---|---|---|---|---|---|---|---|")
    for n in sizes:
        d = synthetic_district(n, seed=1)
        t = time.perf_counter()
        res = partition_grids(d.buildings, d.communities, streets=d.streets, compounds=d.compounds)
        print(_row("synthetic wangge", n, time.perf_counter() - t, res), flush=True)


if __name__ == "__main__":
    main()
