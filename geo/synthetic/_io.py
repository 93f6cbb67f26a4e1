"""Writing a synthetic district to disk, and the ``python -m geo.synthetic`` command."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import resource
import time
from collections.abc import Sequence
from pathlib import Path

import pyogrio

from geo.errors import LayerError
from geo.layers import LAYER_NAMES
from geo.synthetic._district import SyntheticDistrict, synthetic_district

__all__ = ["write_district", "main"]

log = logging.getLogger(__name__)

MULTI_LAYER_DRIVERS = ("GPKG", "SQLite")


def write_district(
    district: SyntheticDistrict,
    path: Path,
    *,
    driver: str = "GPKG",
    use_arrow: bool | None = None,
) -> Path:
    """Write the five layers of *district* into one file, replacing it if it exists.

    Parameters
    ----------
    district : SyntheticDistrict
    path : Path
        Output file, e.g. ``district.gpkg``.
    driver : str
        A GDAL driver that holds several layers in one file (``GPKG`` or ``SQLite``).
    use_arrow : bool, optional
        Write through Arrow (faster); default: when pyarrow is installed.

    Returns
    -------
    Path
        *path*.
    """
    if driver not in MULTI_LAYER_DRIVERS:
        raise LayerError(f"write_district: driver {driver!r} cannot hold the five layers in one "
                         f"file; use one of {', '.join(MULTI_LAYER_DRIVERS)}")
    if use_arrow is None:
        use_arrow = importlib.util.find_spec("pyarrow") is not None
    path = Path(path)
    if path.exists():
        log.info("replacing %s", path)
        path.unlink()
    for name in LAYER_NAMES:
        frame = district.layers[name]
        started = time.perf_counter()
        pyogrio.write_dataframe(frame, path, layer=name, driver=driver, use_arrow=use_arrow)
        log.info("wrote %s: %d features in %.1f s", name, len(frame), time.perf_counter() - started)
    return path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m geo.synthetic",
        description="Generate a seeded synthetic street office and write it to a GeoPackage.",
    )
    parser.add_argument("--buildings", type=int, default=10_000, help="number of buildings")
    parser.add_argument("--seed", type=int, default=42, help="random seed")
    parser.add_argument("--communities", type=int, default=None, help="number of communities")
    parser.add_argument("--centre", type=float, nargs=2, default=(120.62, 31.30),
                        metavar=("LON", "LAT"), help="district centre in degrees")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output .gpkg")
    parser.add_argument("--no-arrow", action="store_true", help="write without pyarrow")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: generate, write, log timings and peak memory; returns the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(name)s %(message)s")
    started = time.perf_counter()
    district = synthetic_district(args.buildings, seed=args.seed, centre=tuple(args.centre),
                                  n_communities=args.communities)
    generated = time.perf_counter()
    log.info("generated in %.1f s, peak RSS %.0f MB", generated - started, _peak_mb())
    write_district(district, args.output, use_arrow=False if args.no_arrow else None)
    log.info("wrote %s in %.1f s, peak RSS %.0f MB", args.output, time.perf_counter() - generated,
             _peak_mb())
    return 0


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
