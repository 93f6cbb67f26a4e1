"""Assemble the synthetic district: layout, buildings, communities, streets, service points."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer

from geo.errors import LayerError
from geo.layers import BUILDING_USES, LAYER_NAMES, ROAD_CLASSES, SCHEMAS
from geo.settings import DEFAULTS
from geo.synthetic._buildings import (
    OLDTOWN,
    TYPOLOGIES,
    Buildings,
    Lattice,
    assign_typologies,
    buildings_on,
)
from geo.synthetic._layout import (
    MINOR,
    Blocks,
    Grid,
    blocks_from_grid,
    grid_from_area,
    runs_by_households,
)
from geo.synthetic._names import join, numerals, place_stems, street_office_stems
from geo.synthetic._services import Points, points_from
from geo.synthetic._streets import Segments, line_names, segments_from

__all__ = ["SyntheticDistrict", "synthetic_district", "LABEL"]

log = logging.getLogger(__name__)

LABEL = "合成示例数据 (synthetic)"
MIN_BUILDINGS = 100
COMMUNITY_HOUSEHOLDS = 3500  # households per community when n_communities is not given
COMMUNITIES_PER_OFFICE = 12  # communities per street office (街道)
MAX_OFFICES = 999  # the street part of a 12-digit admin code has three digits
INITIAL_DENSITY = 1000.0  # first guess of buildings per km², refined by _layout
SLACK = 0.10  # lattice may exceed n_buildings by this share; the surplus is thinned out
MAX_ATTEMPTS = 12
_DTYPES = {"str": "str", "int": "int64", "float": "float64", "bool": "bool"}
_WALLED = np.asarray([t.walled for t in TYPOLOGIES])
_USE = np.asarray([BUILDING_USES.index(t.use) for t in TYPOLOGIES])


@dataclass(frozen=True, eq=False)
class SyntheticDistrict:
    """A generated street office: the five canonical layers in EPSG:4326.

    Attributes
    ----------
    communities, buildings, streets, compounds, service_points : geopandas.GeoDataFrame
        Columns and dtypes exactly as :data:`geo.layers.SCHEMAS`.
    metric_crs : str
        The UTM zone the district was built in (``"EPSG:32651"`` near Suzhou).
    label : str
        Shown wherever the data is shown, so nobody mistakes it for real data.
    """

    communities: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame
    streets: gpd.GeoDataFrame
    compounds: gpd.GeoDataFrame
    service_points: gpd.GeoDataFrame
    metric_crs: str
    label: str = LABEL

    @property
    def layers(self) -> dict[str, gpd.GeoDataFrame]:
        """The five layers by canonical name."""
        return {name: getattr(self, name) for name in LAYER_NAMES}


def _layout(n_buildings: int, seed: int) -> tuple[np.random.Generator, Grid, Blocks, Lattice]:
    """Grid, blocks and lattice holding between n and n·(1+SLACK) building slots."""
    area = n_buildings / INITIAL_DENSITY * 1e6
    for attempt in range(MAX_ATTEMPTS):
        rng = np.random.default_rng(seed)
        grid = grid_from_area(rng, area)
        blocks = blocks_from_grid(grid)
        lat = assign_typologies(rng, blocks, n_buildings)
        slots = int(lat.counts.sum())
        log.debug("layout attempt %d: %.2f km², %d blocks, %d slots", attempt, area / 1e6, blocks.size, slots)
        if n_buildings <= slots <= n_buildings * (1 + SLACK):
            return rng, grid, blocks, lat
        area *= n_buildings * (1 + SLACK / 2) / max(slots, 1)
    if slots < n_buildings:
        raise LayerError(f"synthetic buildings: layout found {slots} slots for {n_buildings} buildings; "
                         "try another seed")
    return rng, grid, blocks, lat


def _metric_frame(centre: tuple[float, float]) -> tuple[CRS, Transformer, float, float]:
    lon, lat = centre
    if not (-180 <= lon <= 180 and -80 <= lat <= 84):
        raise LayerError(f"synthetic communities: centre {centre} is not a lon/lat position; "
                         "pass (lon, lat) in degrees, e.g. (120.62, 31.30)")
    zone = int((lon + 180.0) // 6.0) % 60 + 1
    crs = CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)
    to_wgs84 = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    cx, cy = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    return crs, to_wgs84, float(cx), float(cy)


def _frame(layer: str, columns: dict[str, object], geometry: np.ndarray) -> gpd.GeoDataFrame:
    """GeoDataFrame of *layer* with the canonical column order and dtypes."""
    data = {c.name: pd.Series(columns[c.name], dtype=_DTYPES[c.dtype]) for c in SCHEMAS[layer].columns}
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geometry, crs="EPSG:4326"))


def _ids(prefix: str, count: int, width: int) -> np.ndarray:
    digits = np.strings.zfill(np.arange(1, count + 1).astype(str), max(width, len(str(count))))
    return np.strings.add(prefix, digits)


class _Projector:
    """Builds WGS84 geometries from metric coordinates around the district centre."""

    def __init__(self, transformer: Transformer, cx: float, cy: float) -> None:
        self.transformer, self.cx, self.cy = transformer, cx, cy

    def xy(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.transformer.transform(x + self.cx, y + self.cy)

    def boxes(self, x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray) -> np.ndarray:
        lon, lat = self.xy(np.stack([x0, x1, x1, x0], axis=1), np.stack([y0, y0, y1, y1], axis=1))
        ring = np.stack([lon, lat], axis=2)
        return shapely.polygons(np.concatenate([ring, ring[:, :1]], axis=1))

    def lines(self, coords: np.ndarray) -> np.ndarray:
        lon, lat = self.xy(coords[..., 0], coords[..., 1])
        return shapely.linestrings(np.stack([lon, lat], axis=2))

    def geometries(self, geoms: np.ndarray) -> np.ndarray:
        return shapely.transform(geoms, lambda xy: np.column_stack(self.xy(xy[:, 0], xy[:, 1])))


def _cell_of(tree: shapely.STRtree, points: np.ndarray) -> np.ndarray:
    """Index of a block cell each point lies in or on (-1 outside the district)."""
    found = np.full(points.size, -1, dtype=np.int64)
    point, cell = tree.query(points, predicate="intersects")
    found[point] = cell
    return found


def _community_polygons(blocks: Blocks, community: np.ndarray, seg: Segments) -> np.ndarray:
    """Community outlines (metric): polygonize the roads that separate two communities.

    The roads are noded, so this is one GEOS call instead of one union per community;
    falls back to unions of the block cells if the faces do not match the communities.
    """
    cells = shapely.box(blocks.x0, blocks.y0, blocks.x1, blocks.y1)
    tree = shapely.STRtree(cells)
    n_comm = int(community.max()) + 1
    coords = seg.coords[seg.road_class <= MINOR]
    mid, step = coords.mean(axis=1), coords[:, 1] - coords[:, 0]
    normal = np.column_stack([-step[:, 1], step[:, 0]]) / np.hypot(step[:, 0], step[:, 1])[:, None]
    sides = [_cell_of(tree, shapely.points(mid + k * normal)) for k in (1.0, -1.0)]
    label = [np.where(side >= 0, community[np.maximum(side, 0)], -1) for side in sides]
    faces = shapely.get_parts(shapely.polygonize(shapely.linestrings(coords[label[0] != label[1]])))
    owner = community[np.maximum(_cell_of(tree, shapely.point_on_surface(faces)), 0)]
    if faces.size == n_comm and np.unique(owner).size == n_comm:
        polygons = np.empty(n_comm, dtype=object)
        polygons[owner] = faces
        return polygons
    log.warning("community outlines: %d faces for %d communities; using unions", faces.size, n_comm)
    bounds = np.flatnonzero(np.diff(community)) + 1
    return np.asarray([shapely.union_all(part) for part in np.split(cells, bounds)])


def _communities(blocks: Blocks, community: np.ndarray, seg: Segments, proj: _Projector,
                 stems: np.ndarray, office: np.ndarray, office_stems: np.ndarray,
                 county_code: str) -> gpd.GeoDataFrame:
    polygons = _community_polygons(blocks, community, seg)
    n = polygons.size
    rank = np.arange(n) - np.searchsorted(office, office)
    office_code = np.strings.zfill((office + 1).astype(str), 3)
    admin = join(county_code, office_code, np.strings.zfill((rank + 1).astype(str), 3))
    return _frame("communities", {
        "community_id": _ids("C", n, 4), "name": join(stems, "社区"),
        "street_id": join("S", office_code), "street_name": join(office_stems[office], "街道"),
        "admin_code": admin,
    }, proj.geometries(polygons))


def _compounds(rng: np.random.Generator, blocks: Blocks, lat: Lattice, community: np.ndarray,
               stems: np.ndarray, proj: _Projector) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """Walled compounds (one per compound block) and the compound index of every block."""
    walled = np.flatnonzero(_WALLED[lat.kind])
    comm = community[walled]
    rank = np.arange(walled.size) - np.searchsorted(comm, comm) + 1
    suffix = np.where(rng.random(walled.size) < 0.5, "村", "小区")
    index = np.full(blocks.size, -1, dtype=np.int64)
    index[walled] = np.arange(walled.size)
    geometry = proj.boxes(blocks.x0[walled] + blocks.inset_w[walled], blocks.y0[walled] + blocks.inset_s[walled],
                          blocks.x1[walled] - blocks.inset_e[walled], blocks.y1[walled] - blocks.inset_n[walled])
    frame = _frame("compounds", {
        "compound_id": _ids("K", walled.size, 5), "name": join(stems[comm], numerals(rank), suffix),
    }, geometry)
    return frame, index


def _buildings(b: Buildings, blocks: Blocks, compound_index: np.ndarray,
               compound_ids: np.ndarray, community_ids: np.ndarray, community: np.ndarray,
               names_of_lines: np.ndarray, proj: _Projector) -> gpd.GeoDataFrame:
    rank = (np.arange(b.size) - np.searchsorted(b.block, b.block) + 1).astype(str)
    old = b.kind == OLDTOWN
    south_road = names_of_lines[blocks.south[b.block]].astype(str)
    name = np.where(old, join(south_road, rank, "号"), join(rank, "号楼"))
    comp = compound_index[b.block]
    compound_id = np.full(b.size, None, dtype=object)
    compound_id[comp >= 0] = compound_ids[comp[comp >= 0]]
    return _frame("buildings", {
        "building_id": _ids("B", b.size, 7), "name": name,
        "use": np.asarray(BUILDING_USES)[_USE[b.kind]], "floors": b.floors,
        "height_m": np.round(b.height_m, 1), "households": b.households,
        "households_estimated": np.zeros(b.size, dtype=bool), "compound_id": compound_id,
        "community_id": community_ids[community[b.block]],
    }, proj.boxes(b.x0, b.y0, b.x1, b.y1))


def synthetic_district(
    n_buildings: int,
    *,
    seed: int = 42,
    centre: tuple[float, float] = (120.62, 31.30),
    n_communities: int | None = None,
    county_code: str = "320508",
    floor_height_m: float = DEFAULTS["floor_height_m"],
) -> SyntheticDistrict:
    """A seeded synthetic street office (街道) with exactly *n_buildings* buildings.

    Parameters
    ----------
    n_buildings : int
        Buildings to generate (at least 100); blocks are added until they fit.
    seed : int
        Same seed, same district (identical frames).
    centre : tuple of float
        ``(lon, lat)`` of the district centre; the default is Suzhou's old town.
    n_communities : int, optional
        Communities to cut the district into; default one per ~3,500 households.
    county_code : str
        Six-digit county code (GB/T 2260) heading every community's admin code.
    floor_height_m : float
        Storey height; ``height_m`` is floors times this plus a parapet.

    Returns
    -------
    SyntheticDistrict

    Examples
    --------
    >>> d = synthetic_district(1000, seed=1)
    >>> len(d.buildings)
    1000
    """
    _check_arguments(n_buildings, county_code, n_communities)
    crs, to_wgs84, cx, cy = _metric_frame(centre)
    proj = _Projector(to_wgs84, cx, cy)
    rng, grid, blocks, lat = _layout(n_buildings, seed)
    b = buildings_on(rng, lat, n_buildings, floor_height_m=floor_height_m)
    per_block = np.bincount(b.block, weights=b.households, minlength=blocks.size)
    wanted = n_communities or max(1, round(per_block.sum() / COMMUNITY_HOUSEHOLDS))
    community = runs_by_households(per_block, min(wanted, blocks.size))
    n_comm = int(community.max()) + 1
    if n_communities is not None and n_comm != n_communities:
        log.warning("synthetic communities: made %d of the %d asked for (%d blocks, the largest "
                    "holds %d households); pass more buildings", n_comm, n_communities, blocks.size,
                    int(per_block.max()))
    n_off = min(MAX_OFFICES, -(-n_comm // COMMUNITIES_PER_OFFICE))
    office = np.arange(n_comm) * n_off // n_comm
    stems, office_stems = place_stems(rng, n_comm), street_office_stems(rng, n_off)
    names_of_lines = line_names(rng, grid)
    seg = segments_from(grid, blocks, lat, names_of_lines)
    communities = _communities(blocks, community, seg, proj, stems, office, office_stems, county_code)
    compounds, compound_index = _compounds(rng, blocks, lat, community, stems, proj)
    buildings = _buildings(b, blocks, compound_index, compounds["compound_id"].to_numpy(),
                           communities["community_id"].to_numpy(), community, names_of_lines, proj)
    pts = points_from(rng, blocks, lat, seg, community=community, community_stems=stems,
                      office=office[community], office_stems=office_stems)
    district = SyntheticDistrict(communities, buildings, _streets(seg, proj), compounds,
                                 _points(pts, proj), crs.to_string())
    log.info("synthetic district (seed %d): %d buildings, %d households, %d communities in %d "
             "street office(s), %d compounds, %d street segments, %d service points", seed,
             len(buildings), int(b.households.sum()), n_comm, n_off, len(compounds),
             len(district.streets), len(district.service_points))
    return district


def _check_arguments(n_buildings: int, county_code: str, n_communities: int | None) -> None:
    if n_buildings < MIN_BUILDINGS:
        raise LayerError(f"synthetic buildings: n_buildings={n_buildings} is too small; "
                         f"pass at least {MIN_BUILDINGS}")
    if not (len(county_code) == 6 and county_code.isdigit()):
        raise LayerError(f"synthetic communities: county_code {county_code!r} is not 6 digits; "
                         "pass a GB/T 2260 county code such as '320508'")
    if n_communities is not None and n_communities < 1:
        raise LayerError(f"synthetic communities: n_communities={n_communities}; pass 1 or more")


def _streets(seg: Segments, proj: _Projector) -> gpd.GeoDataFrame:
    n = seg.road_class.size
    return _frame("streets", {
        "street_id": _ids("R", n, 6), "name": seg.name,
        "road_class": np.asarray(ROAD_CLASSES)[seg.road_class], "foot": np.ones(n, dtype=bool),
    }, proj.lines(seg.coords))


def _points(pts: Points, proj: _Projector) -> gpd.GeoDataFrame:
    return _frame("service_points", {
        "point_id": _ids("P", pts.x.size, 5), "name": pts.name, "category": pts.category,
    }, shapely.points(np.column_stack(proj.xy(pts.x, pts.y))))
