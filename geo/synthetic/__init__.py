"""Seeded synthetic street office (街道) for demos, tests and benchmarks.

:func:`synthetic_district` builds a district that looks like a Chinese street office:
an arterial grid of major roads (~400–800 m super-blocks) subdivided by secondary and
minor roads; walled residential compounds (小区) of south-facing slab blocks (板楼) and
towers (塔楼) with lanes between the rows; an old-town core of low-rise houses with
alleys; campuses (schools, hospital, market, offices) without households, which become
exclusive grids; communities (社区) as runs of whole blocks of ~3,500 households whose
boundaries follow street centre lines; service points of the 15-minute circle.
Everything is vectorised (numpy + shapely 2): a million buildings take well under a
minute. :func:`write_district` writes the five layers into one GeoPackage; ``python -m
geo.synthetic --buildings 1000000 -o district.gpkg`` does both from the shell.
"""

from __future__ import annotations

from geo.synthetic._district import LABEL, SyntheticDistrict, synthetic_district
from geo.synthetic._io import main, write_district

__all__ = ["LABEL", "SyntheticDistrict", "synthetic_district", "write_district", "main"]
