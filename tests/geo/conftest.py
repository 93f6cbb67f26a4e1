"""Small fixture layers and files for the geo reader tests, written to tmp_path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import osmium
import pytest
from osmium.osm.mutable import Node, Relation, Way
from shapely.geometry import box

# Three residential buildings near the North Bund, Shanghai (WGS84).
_X0, _Y0 = 121.4950, 31.2500


@pytest.fixture
def small_buildings() -> gpd.GeoDataFrame:
    """Three building footprints with Chinese names, in EPSG:4326."""
    return gpd.GeoDataFrame(
        {
            "bid": ["b1", "b2", "b3"],
            "名称": ["梅园一号楼", "崂山二村3号", "乳山四村5号"],
            "层数": [6, 18, 3],
        },
        geometry=[box(_X0 + i * 0.001, _Y0, _X0 + i * 0.001 + 0.0004, _Y0 + 0.0003) for i in range(3)],
        crs="EPSG:4326",
    )


@pytest.fixture
def write_zip() -> Callable[..., Path]:
    """Write ``{member name: bytes}`` into a zip file and return its path."""
    import zipfile

    def _write(path: Path, members: dict[str, bytes]) -> Path:
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in members.items():
                zf.writestr(name, data)
        return path

    return _write


def _square_nodes(first_id: int, x: float, y: float, size: float) -> list[Node]:
    corners = [(x, y), (x + size, y), (x + size, y + size), (x, y + size)]
    return [Node(id=first_id + i, location=c) for i, c in enumerate(corners)]


@pytest.fixture
def osm_pbf(tmp_path: Path) -> Path:
    """A tiny OSM PBF written with pyosmium: buildings, streets, POIs and a compound."""
    path = tmp_path / "tiny.osm.pbf"
    writer = osmium.SimpleWriter(str(path))
    try:
        nodes = (
            _square_nodes(1, _X0, _Y0, 0.0004)  # building way 100
            + _square_nodes(11, _X0 + 0.001, _Y0, 0.0004)  # multipolygon relation 7
            + _square_nodes(21, _X0 + 0.002, _Y0, 0.0004)  # clinic polygon way 102
            + _square_nodes(31, _X0 - 0.001, _Y0 - 0.001, 0.003)  # compound way 103
            + _square_nodes(41, _X0 + 0.003, _Y0, 0.0004)  # building=yes + amenity=school
        )
        nodes += [
            Node(id=51, location=(_X0, _Y0 - 0.0005)),
            Node(id=52, location=(_X0 + 0.003, _Y0 - 0.0005)),
            Node(id=60, location=(_X0 + 0.0005, _Y0 + 0.0008),
                 tags={"amenity": "kindergarten", "name": "北外滩幼儿园"}),
            Node(id=61, location=(_X0 + 0.0015, _Y0 + 0.0008), tags={"shop": "convenience"}),
            Node(id=62, location=(_X0 + 0.0025, _Y0 + 0.0008), tags={"amenity": "bench"}),
            Node(id=63, location=(_X0 + 0.0035, _Y0 + 0.0008),
                 tags={"highway": "bus_stop", "name": "东大名路站"}),
        ]
        for node in sorted(nodes, key=lambda n: n.id):
            writer.add_node(node)
        ways = [
            Way(id=100, nodes=[1, 2, 3, 4, 1],
                tags={"building": "apartments", "building:levels": "6", "name": "1号楼"}),
            Way(id=101, nodes=[11, 12, 13, 14, 11]),
            Way(id=102, nodes=[21, 22, 23, 24, 21], tags={"amenity": "clinic", "name": "卫生站"}),
            Way(id=103, nodes=[31, 32, 33, 34, 31], tags={"landuse": "residential", "name": "梅园小区"}),
            Way(id=104, nodes=[41, 42, 43, 44, 41], tags={"building": "yes", "amenity": "school"}),
            Way(id=200, nodes=[51, 52], tags={"highway": "primary", "name": "东大名路"}),
            Way(id=201, nodes=[1, 51], tags={"highway": "footway", "foot": "no"}),
            Way(id=202, nodes=[51, 2], tags={"highway": "motorway"}),
            Way(id=203, nodes=[52, 12], tags={"railway": "rail"}),
            Way(id=204, nodes=[52, 13], tags={"railway": "subway"}),
            Way(id=205, nodes=[2, 52], tags={"waterway": "river", "name": "虹口港"}),
            Way(id=206, nodes=[51, 999], tags={"highway": "residential"}),  # node 999 missing
            Way(id=207, nodes=[3, 52], tags={"highway": "construction"}),
        ]
        for way in ways:
            writer.add_way(way)
        writer.add_relation(Relation(
            id=7, members=[("w", 101, "outer")],
            tags={"type": "multipolygon", "building": "school", "height": "12 m"},
        ))
    finally:
        writer.close()
    return path
