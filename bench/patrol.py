"""Benchmark: patrol coverage, ours (one compiled pass, numba) vs a geopandas buffer + sjoin baseline.

Synthetic city in a metric CRS: N buildings (5-30 m boxes on a jittered lattice) and F
fixes as random walks of workers (1.2 m/s, a fix every 10 s, sessions of 100-600 fixes).
Ours: :func:`geo.patrol.coverage.visits_from_tracks` (track segments as coordinate arrays,
footprints binned in a grid, exact segment-to-ring distances and the per-session fold in one
numba-compiled pass, on ``--threads-coverage`` threads, default every core). A warm-up call on a
tiny city first loads (or compiles, on a fresh checkout) the compiled code, as a server does once
at start; its time is printed apart, not counted. Baseline: the way one writes it with
geopandas, made exact: segments as a GeoDataFrame, buildings buffered by ``patrol_visit_m``
widened so the buffer polygon (chords of the arcs) contains the true distance zone,
``gpd.sjoin(predicate="intersects")``, the exact shapely distance of each joined pair kept when
<= ``patrol_visit_m``, then the same groupby. The bench asserts that both give the same
(building, worker, session) visits with the same first/last times to the second, and prints
wall and CPU time of each and both ratios (the machine may be shared: CPU time is the steadier).

Intake (``--intake-seconds S``): the real app (SQLite, a published 3,000-building district so
each fix is located in its grid) served by ``wangge serve --prod`` on loopback (``--workers``,
``--threads`` to try other shapes; ``--server dev`` for the development server); 8 phones send
OsmAnd GET fixes at 200 fixes/s in total for S seconds, open-loop (``bench/openloop.py``:
latency from each fix's due time, a connection per fix unless ``--keep-alive``); prints
acknowledged vs stored (every acknowledged fix looked up), the latency percentiles and the CPU
per fix of the server and of the client.

Usage::

    .venv/bin/python bench/patrol.py                       # 1 M fixes x 100 k buildings
    PYTHONPATH=. .venv/bin/python bench/patrol.py          # from a worktree (its geo/, not main's)
    .venv/bin/python bench/patrol.py --fixes 100000 --buildings 10000
    .venv/bin/python bench/patrol.py --skip-coverage --intake-seconds 60 --geolife ''
    .venv/bin/python bench/patrol.py --skip-coverage       # GeoLife vs movingpandas only

GeoLife (``--geolife PATH``, on by default): cleaning and stop detection on 164,531 real fixes,
ours vs movingpandas' ``OutlierCleaner`` and ``TrajectoryStopDetector`` (bench extra).
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.patrol.coverage import track_segments, visits_from_tracks

CRS = "EPSG:32650"


def city(n_buildings: int, n_fixes: int, seed: int = 1) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Buildings on a jittered lattice and random-walk tracks over the same area."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n_buildings)))
    spacing = 40.0
    i = np.arange(n_buildings)
    x0 = (i % side) * spacing + rng.uniform(0, 8, n_buildings)
    y0 = (i // side) * spacing + rng.uniform(0, 8, n_buildings)
    w, h = rng.uniform(5, 30, n_buildings), rng.uniform(5, 30, n_buildings)
    buildings = gpd.GeoDataFrame({"building_id": i.astype(str)}, geometry=shapely.box(x0, y0, x0 + w, y0 + h), crs=CRS)
    lengths = rng.integers(100, 600, n_fixes // 100 + 1)
    lengths = lengths[np.cumsum(lengths) <= n_fixes]
    lengths = np.append(lengths, n_fixes - lengths.sum())
    lengths = lengths[lengths > 0]
    session = np.repeat(np.arange(len(lengths)), lengths)
    start = rng.uniform(0, side * spacing, (len(lengths), 2))
    heading = np.cumsum(rng.normal(0, 0.3, n_fixes))
    step = np.column_stack([np.cos(heading), np.sin(heading)]) * 12.0
    first = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    step[first] = 0.0
    walk = np.cumsum(step, axis=0)
    walk -= np.repeat(walk[first], lengths, axis=0)
    xy = walk + np.repeat(start, lengths, axis=0)
    offset = np.arange(n_fixes) - np.repeat(first, lengths)
    t = pd.Timestamp("2024-05-06 01:00", tz="UTC") + pd.to_timedelta(offset * 10 + session % 24 * 600, unit="s")
    fixes = pd.DataFrame({"worker": (session % 200).astype(str), "session": session, "t": t,
                          "x": xy[:, 0], "y": xy[:, 1]})
    return buildings, fixes


# Segments of the round buffer's arcs per quarter circle (shapely's and geopandas' default).
QUAD_SEGS = 16


def baseline(fixes: pd.DataFrame, buildings: gpd.GeoDataFrame, visit_m: float) -> pd.DataFrame:
    """Buffer + sjoin, the usual geopandas recipe, made exact.

    A buffer's arcs are chords inside the true circle of radius *r* (by ``r (1 - cos(pi / 4q))``
    at ``q`` segments per quarter circle): buffered by *visit_m* it misses pieces at the very edge.
    So footprints are buffered by ``visit_m / cos(pi / 4q)`` (plus 1 mm), a polygon that contains
    every point within *visit_m*; ``sjoin`` finds candidate (piece, footprint) pairs, the exact
    shapely distance keeps those within *visit_m*, and the same fold per session gives first/last.
    """
    geoms, start, end = track_segments(fixes)
    segs = gpd.GeoDataFrame({"worker": fixes["worker"].to_numpy()[start], "session": fixes["session"].to_numpy()[start],
                             "first": fixes["t"].to_numpy()[start], "last": fixes["t"].to_numpy()[end]},
                            geometry=geoms, crs=buildings.crs)
    margin = visit_m / np.cos(np.pi / (4 * QUAD_SEGS)) + 1e-3
    zones = gpd.GeoDataFrame({"building_id": buildings["building_id"]},
                             geometry=buildings.buffer(margin, quad_segs=QUAD_SEGS), crs=buildings.crs)
    joined = gpd.sjoin(segs, zones, predicate="intersects", how="inner")
    exact = shapely.distance(joined.geometry.to_numpy(),
                             buildings.geometry.to_numpy()[joined["index_right"].to_numpy()]) <= visit_m
    out = joined.loc[exact].groupby(["building_id", "worker", "session"], as_index=False).agg(
        first=("first", "min"), last=("last", "max"))
    for col in ("first", "last"):
        out[col] = pd.to_datetime(out[col], utc=True)
    return out


def compare(a: pd.DataFrame, b: pd.DataFrame) -> tuple[int, int, int]:
    """(only ours, only baseline, same keys with different first or last time to the second)."""
    keys = ["building_id", "worker", "session"]
    m = a.merge(b, on=keys, how="outer", indicator=True, suffixes=("_a", "_b"))
    both = m["_merge"] == "both"
    diff = both & ((m["first_a"].dt.floor("s") != m["first_b"].dt.floor("s"))
                   | (m["last_a"].dt.floor("s") != m["last_b"].dt.floor("s")))
    return int((m["_merge"] == "left_only").sum()), int((m["_merge"] == "right_only").sum()), int(diff.sum())


def _intake_world(folder: Path, phones: int, n_buildings: int) -> tuple[list[str], list[int], tuple[float, ...]]:
    """A published district (``bench/incidents.py``'s), *phones* workers with a bound phone each; ids and bounds."""
    from incidents import _app, prepare
    from sqlalchemy import select

    from api.db import dispose, session_scope
    from api.grids.service import active_grids
    from api.models import User
    from api.patrol.store import bind_device
    from api.users import create_user

    prepare(n_buildings, folder)
    app = _app(folder)
    run = time.strftime("%H%M%S")
    devices = [f"phone-{run}-{k}" for k in range(phones)]
    with app.app_context(), session_scope() as s:
        for k, device in enumerate(devices):
            create_user(s, f"w{run}-{k}", "bench-password-1", role="worker")
            bind_device(s, device, f"w{run}-{k}", by="bench")
        users = [int(s.scalar(select(User.id).where(User.username == f"w{run}-{k}"))) for k in range(phones)]
        bounds = tuple(float(b) for b in active_grids(s).total_bounds)
    dispose(app)
    return devices, users, bounds


def intake(seconds: float, *, rate: float = 200.0, phones: int = 8, n_buildings: int = 3000, server: str = "prod",
           workers: int | None = None, threads: int | None = None, keep_alive: bool = False) -> None:
    """Loopback intake at *rate* fixes/s for *seconds*: acknowledged vs stored, latency percentiles.

    The app serves a published district (fixes are located in its grids) through ``wangge serve
    --prod`` (or the development server); the phones' fixes are sent open-loop by
    ``bench/openloop.py``, each on its own connection unless *keep_alive*: fix *i* comes from
    phone ``i % phones``, walking across the district. Every acknowledged fix must be stored.
    """
    from urllib.parse import urlencode

    import openloop
    import prodserver
    from incidents import OUT, _app
    from sqlalchemy import select

    from api.db import dispose, session_scope
    from api.patrol.models import PatrolFix

    folder = OUT.parent / "patrol_intake"
    devices, users, (x0, y0, x1, y1) = _intake_world(folder, phones, n_buildings)
    t0 = int(time.time()) - 3600
    rng = np.random.default_rng(5)
    walk = np.cumsum(rng.normal(0, 2e-5, (int(rate * seconds) + 1, 2)), axis=0)
    lon = x0 + np.mod(walk[:, 0] - x0 + (x1 - x0) / 2, x1 - x0)
    lat = y0 + np.mod(walk[:, 1] - y0 + (y1 - y0) / 2, y1 - y0)

    def fix(i: int, shift: int = 0) -> openloop.Request:
        q = {"id": devices[i % phones], "lat": round(lat[i], 7), "lon": round(lon[i], 7),
             "timestamp": t0 + shift + i // phones,
             "accuracy": 5, "speed": 1.2, "batt": 80}
        return openloop.Request("GET", "/api/patrol/osmand?" + urlencode(q))

    srv = prodserver.start(folder, server=server, workers=workers, threads=threads)
    try:
        # Warm-up (not counted, its fixes a day earlier): each worker builds its grid index on its first fix.
        openloop.run("127.0.0.1", srv.port, lambda i: fix(i, -86400), rate=20.0, seconds=3.0)
        cpu0 = srv.cpu_s()
        done = openloop.run("127.0.0.1", srv.port, fix, rate=rate, seconds=seconds, keep_alive=keep_alive)
        server_cpu = srv.cpu_s() - cpu0
    finally:
        prodserver.stop(srv)
    acked = {(users[r.i % phones], t0 + r.i // phones) for r in done.results if r.status == 200}
    app = _app(folder)
    with app.app_context(), session_scope(write=False) as s:
        rows = s.execute(select(PatrolFix.user_id, PatrolFix.t).where(PatrolFix.user_id.in_(users),
                                                                       PatrolFix.t >= datetime.fromtimestamp(t0, UTC))).all()
    dispose(app)
    stored = {(u, int(t.timestamp())) for u, t in rows}
    out = openloop.summary(done)
    print(f"intake ({srv.shape}): {out['requests']:,} fixes at {rate:.0f}/s for {seconds:.0f} s from {phones} phones "
          f"({'keep-alive' if keep_alive else 'a connection per fix'}); acknowledged {len(acked):,}, stored "
          f"{len(stored):,}, acknowledged but missing {len(acked - stored)}; errors {out['errors']} "
          f"{out['error_kinds'] or ''}; latency from the due time ms p50 {out['p50_ms']} p90 {out['p90_ms']} "
          f"p99 {out['p99_ms']} p99.9 {out['p99.9_ms']} max {out['max_ms']}; CPU per fix: server "
          f"{server_cpu * 1000 / max(out['requests'], 1):.2f} ms, client {out['client_cpu_ms_per_request']} ms; "
          f"load average {os.getloadavg()[0]:.1f}")


GEOLIFE = "/work/shared/datasets/geolife_beijing_10users.gpkg"


def _intervals_iou(a: pd.DataFrame, b: pd.DataFrame) -> tuple[float, float, float]:
    """Stop time shared by both detectors over the time either marks (per worker), in hours: (both, a, b)."""
    both = tot_a = tot_b = 0.0
    for w in set(a["worker"]) | set(b["worker"]):
        xa = a.loc[a["worker"] == w, ["start", "end"]].to_numpy("datetime64[s]").astype(np.int64)
        xb = b.loc[b["worker"] == w, ["start", "end"]].to_numpy("datetime64[s]").astype(np.int64)
        tot_a += float((xa[:, 1] - xa[:, 0]).sum())
        tot_b += float((xb[:, 1] - xb[:, 0]).sum())
        for s0, s1 in xa:
            both += float(np.clip(np.minimum(s1, xb[:, 1]) - np.maximum(s0, xb[:, 0]), 0, None).sum())
    return both / 3600, tot_a / 3600, tot_b / 3600


def _mpd_stops(tc, radius_m: float, min_s: float) -> pd.DataFrame:  # noqa: ANN001 - a TrajectoryCollection
    import movingpandas as mpd

    ranges = mpd.TrajectoryStopDetector(tc).get_stop_time_ranges(max_diameter=radius_m,
                                                                 min_duration=pd.Timedelta(seconds=min_s))
    return pd.DataFrame({"worker": [str(r.traj_id).split("|")[0] for r in ranges],
                         "start": pd.to_datetime([r.t_0 for r in ranges], utc=True),
                         "end": pd.to_datetime([r.t_n for r in ranges], utc=True)})


def geolife(path: str, *, max_speed_kmh: float = 60.0, radius_m: float = 30.0, min_s: float = 300.0) -> None:
    """Cleaning and stop detection on GeoLife fixes: ours vs movingpandas (OutlierCleaner, TrajectoryStopDetector).

    Same fixes, same speed limit, same stop diameter and duration; movingpandas works per GeoLife
    trajectory in UTM 50N. Ours: every shift hour open (GeoLife is not a patrol). Agreement of
    cleaning: fixes kept/dropped by each; of stops: stop time both mark over stop time each marks.
    """
    import warnings

    import movingpandas as mpd

    from geo.patrol.clean import clean_fixes
    from geo.patrol.stops import detect_stops
    from geo.settings import DEFAULTS

    raw = gpd.read_file(path)
    raw["rid"] = np.arange(len(raw))
    raw["worker"] = raw["user_id"].astype(str)
    raw["t"] = pd.to_datetime(raw["t"], utc=True)
    fixes = pd.DataFrame({"worker": raw["worker"], "t": raw["t"], "lon": raw["lon"], "lat": raw["lat"], "rid": raw["rid"]})
    t = time.perf_counter()
    cleaned = clean_fixes(fixes, crs=CRS, max_speed_kmh=max_speed_kmh, shift_start="00:00", shift_end="24:00",
                          now=raw["t"].max() + pd.Timedelta(days=1))
    t_clean = time.perf_counter() - t
    t = time.perf_counter()
    ours_stops, _ = detect_stops(cleaned.fixes, radius_m=radius_m, min_duration_s=min_s)
    t_stops = time.perf_counter() - t
    # movingpandas keeps naive times (it drops the zone with a warning): hand it naive UTC.
    g = raw.to_crs(CRS).assign(traj=raw["worker"] + "|" + raw["traj_id"].astype(str),
                               t=raw["t"].dt.tz_localize(None)).set_index("t")
    t = time.perf_counter()
    tc = mpd.TrajectoryCollection(g[["traj", "rid", "geometry"]], traj_id_col="traj")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Cleaning failed … returning original trajectory" for 1-2 fix pieces
        mclean = mpd.OutlierCleaner(tc).clean(v_max=max_speed_kmh, units=("km", "h"))
    t_mclean = time.perf_counter() - t
    t = time.perf_counter()
    m_stops = _mpd_stops(mclean, radius_m, min_s)
    t_mstops = time.perf_counter() - t
    kept_ours = set(cleaned.fixes["rid"])
    kept_mpd = set(pd.concat([tr.df["rid"] for tr in mclean.trajectories]))
    every = set(raw["rid"])
    both_kept = len(kept_ours & kept_mpd)
    only_ours_dropped = len(kept_mpd - kept_ours)
    only_mpd_dropped = len(kept_ours - kept_mpd)
    both_dropped = len(every - kept_ours - kept_mpd)
    shared, h_ours, h_mpd = _intervals_iou(ours_stops, m_stops)
    print(f"GeoLife {len(raw):,} fixes, {raw['worker'].nunique()} people; speed limit {max_speed_kmh:g} km/h, "
          f"stops >= {min_s:g} s within {radius_m:g} m")
    print(f"{'step':<26}{'ours s':>9}{'movingpandas s':>16}{'ratio':>8}")
    print(f"{'cleaning':<26}{t_clean:>9.2f}{t_mclean:>16.2f}{t_mclean / t_clean:>7.0f}x")
    print(f"{'stop detection':<26}{t_stops:>9.2f}{t_mstops:>16.2f}{t_mstops / t_stops:>7.0f}x")
    print(f"cleaning: both keep {both_kept:,}, both drop {both_dropped:,}, only ours drops {only_ours_dropped:,}, "
          f"only movingpandas drops {only_mpd_dropped:,}; our drop reasons "
          f"{ {k: v for k, v in cleaned.dropped.items() if v} }")
    print(f"stops: ours {len(ours_stops):,} ({h_ours:.1f} h), movingpandas {len(m_stops):,} ({h_mpd:.1f} h); "
          f"time marked by both {shared:.1f} h = {100 * shared / max(h_ours, 1e-9):.0f} % of ours, "
          f"{100 * shared / max(h_mpd, 1e-9):.0f} % of movingpandas'")
    # Like for like: movingpandas on trajectories split where ours splits sessions (gaps > patrol_session_gap_s),
    # so neither counts the time between two fixes an hour apart as a stay.
    t = time.perf_counter()
    split = mpd.ObservationGapSplitter(mclean).split(gap=pd.Timedelta(seconds=DEFAULTS["patrol_session_gap_s"]))
    m_split = _mpd_stops(split, radius_m, min_s)
    t_split = time.perf_counter() - t
    shared, _, h_split = _intervals_iou(ours_stops, m_split)
    print(f"stops, movingpandas on trajectories split at gaps > {DEFAULTS['patrol_session_gap_s']} s as ours "
          f"({t_split:.1f} s): {len(m_split):,} ({h_split:.1f} h); both {shared:.1f} h = "
          f"{100 * shared / max(h_ours, 1e-9):.0f} % of ours, {100 * shared / max(h_split, 1e-9):.0f} % of movingpandas'")


def coverage(buildings: gpd.GeoDataFrame, fixes: pd.DataFrame, visit_m: float, threads: int) -> None:
    """Ours vs the exact buffer + sjoin baseline: times, CPU, ratio; the two visit tables must be equal."""
    t = time.perf_counter()
    visits_from_tracks(*reversed(city(100, 1000)), visit_m=visit_m, threads=threads)
    print(f"warm-up on 1,000 fixes x 100 buildings, not timed (a server loads the compiled code once at start): "
          f"{time.perf_counter() - t:.2f} s")
    t, c = time.perf_counter(), time.process_time()
    ours = visits_from_tracks(fixes, buildings, visit_m=visit_m, threads=threads)
    t_ours, c_ours = time.perf_counter() - t, time.process_time() - c
    t, c = time.perf_counter(), time.process_time()
    base = baseline(fixes, buildings, visit_m)
    t_base, c_base = time.perf_counter() - t, time.process_time() - c
    only_a, only_b, diff = compare(ours, base)
    same = only_a == only_b == diff == 0
    print(f"{'method':<34}{'seconds':>10}{'CPU s':>10}{'visits':>12}")
    print(f"{f'ours (compiled pass, {threads or os.cpu_count()} threads)':<34}{t_ours:>10.2f}{c_ours:>10.2f}{len(ours):>12,}")
    print(f"{'geopandas buffer + sjoin, exact':<34}{t_base:>10.2f}{c_base:>10.2f}{len(base):>12,}")
    print(f"speed-up {t_base / t_ours:.1f}x (CPU time {c_base / c_ours:.1f}x); identical: {'yes' if same else 'NO'} "
          f"({len(ours):,} visits; only ours {only_a}, only baseline {only_b}, first/last time differs {diff}); "
          f"load average {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores shared)")
    met = t_ours < 5.0 and t_base / t_ours >= 10.0
    print(f"bar (< 5 s and >= 10x the baseline, identical): {'met' if met and same else 'NOT met'}")
    if not same:
        raise SystemExit("ours and the exact geopandas baseline disagree")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixes", type=int, default=1_000_000)
    ap.add_argument("--buildings", type=int, default=100_000)
    ap.add_argument("--visit-m", type=float, default=20.0)
    ap.add_argument("--intake-seconds", type=float, default=0.0, help="also run the loopback intake bench")
    ap.add_argument("--intake-rate", type=float, default=200.0, help="fixes per second of the intake bench")
    ap.add_argument("--server", choices=["prod", "dev"], default="prod",
                    help="intake served by `wangge serve --prod` (gunicorn, the production path) or the dev server")
    ap.add_argument("--workers", type=int, default=None, help="web worker processes (default: server_workers)")
    ap.add_argument("--threads", type=int, default=None, help="threads per web worker (default: server_threads)")
    ap.add_argument("--keep-alive", action="store_true", help="phones reuse connections (default: one per fix)")
    ap.add_argument("--skip-coverage", action="store_true")
    ap.add_argument("--threads-coverage", type=int, default=0,
                    help="threads of our coverage pass (patrol_coverage_threads; 0 = every core)")
    ap.add_argument("--geolife", default=GEOLIFE, help="GeoLife fixes for the movingpandas comparison ('' to skip)")
    args = ap.parse_args()
    if args.geolife:
        geolife(args.geolife)
    if args.intake_seconds > 0:
        intake(args.intake_seconds, rate=args.intake_rate, server=args.server, workers=args.workers,
               threads=args.threads, keep_alive=args.keep_alive)
    if args.skip_coverage:
        return
    t = time.perf_counter()
    buildings, fixes = city(args.buildings, args.fixes)
    print(f"city: {len(buildings):,} buildings, {len(fixes):,} fixes, {fixes['session'].nunique():,} sessions "
          f"({time.perf_counter() - t:.1f} s to generate)")
    coverage(buildings, fixes, args.visit_m, args.threads_coverage)


if __name__ == "__main__":
    main()
