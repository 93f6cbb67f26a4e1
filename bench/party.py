"""Benchmark: linking 党员中心户 to households for a street office of ~100 k households.

A synthetic district (``geo.synthetic``) gives buildings, households per building and
streets; buildings are cut into grids of about 400 households (west to east within each
community); one household in ten is a centre household. Timed: walk graph, distance
function and :func:`geo.party.linking.link_centres` (exact assignment per grid).
Bar (issue 15): < 30 s.

Usage::

    .venv/bin/python bench/party.py [--buildings 2250]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd


def _grids(buildings: pd.DataFrame, per_grid: int = 400) -> pd.Series:
    order = buildings.sort_values(["community_id", "x"])
    cum = order.groupby("community_id")["households"].cumsum()
    return (order["community_id"].astype(str) + ":" + (cum // per_grid).astype(int).astype(str)).reindex(buildings.index)


def main(argv: list[str] | None = None) -> int:
    from geo.crs import to_metric
    from geo.network import walk_graph_from_streets
    from geo.party.distance import building_distance
    from geo.party.linking import link_centres
    from geo.prepare import prepare_layers
    from geo.synthetic import synthetic_district

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buildings", type=int, default=2250)
    args = parser.parse_args(argv)
    layers = prepare_layers(synthetic_district(args.buildings, seed=42).layers).layers
    buildings = to_metric(layers["buildings"])
    buildings = buildings[buildings["households"].fillna(0) > 0].reset_index(drop=True)
    buildings["x"] = buildings.geometry.centroid.x
    buildings["households"] = buildings["households"].astype(int)
    buildings["grid"] = _grids(buildings)
    rep = np.repeat(np.arange(len(buildings)), buildings["households"].to_numpy())
    households = pd.DataFrame({"household": np.arange(len(rep)), "grid": buildings["grid"].to_numpy()[rep],
                               "building": buildings["building_id"].to_numpy()[rep]})
    rng = np.random.default_rng(42)
    centres = households[rng.random(len(households)) < 0.1].rename(columns={"household": "centre"})
    t0 = time.perf_counter()
    graph = walk_graph_from_streets(layers["streets"], crs=buildings.crs)
    distance = building_distance(buildings, graph)
    t1 = time.perf_counter()
    result = link_centres(households, centres, distance)
    t2 = time.perf_counter()
    print("| households | grids | centres | linked | unlinked | graph+snap s | link s | total s | bar |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| {len(households)} | {households['grid'].nunique()} | {len(centres)} | {len(result.links)} | "
          f"{len(result.unlinked)} | {t1 - t0:.1f} | {t2 - t1:.1f} | {t2 - t0:.1f} | < 30 s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
