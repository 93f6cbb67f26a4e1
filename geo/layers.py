"""Canonical layers: the documented schema every import is normalised to.

Each layer is a GeoDataFrame in WGS84 (EPSG:4326) for storage, with the columns
below. Computation happens in a local metric CRS (:func:`geo.crs.local_metric_crs`).
Ids are strings, unique within their layer.

=============== ===================== =============================================
layer           geometry              columns (``*`` required)
=============== ===================== =============================================
communities     Polygon/MultiPolygon  community_id*, name, street_id, street_name,
                                      admin_code (12-digit statistical code)
buildings       Polygon/MultiPolygon  building_id*, name, use, floors, height_m,
                                      households, households_estimated,
                                      compound_id, community_id
streets         LineString            street_id*, name, road_class, foot
compounds       Polygon/MultiPolygon  compound_id*, name
service_points  Point                 point_id*, name, category
=============== ===================== =============================================
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Column", "LayerSchema", "SCHEMAS", "LAYER_NAMES", "ROAD_CLASSES", "BUILDING_USES"]


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str  # "str", "int", "float", "bool"
    required: bool = False
    unit: str = ""
    help: str = ""


@dataclass(frozen=True)
class LayerSchema:
    name: str
    label_zh: str
    geometry_types: tuple[str, ...]
    id_column: str
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]


#: Street classes, strongest barrier first. ``major`` roads are the strongest grid
#: boundaries; ``path`` and ``lane`` the weakest; ``rail`` and ``water`` are not walkable.
ROAD_CLASSES: tuple[str, ...] = ("major", "secondary", "minor", "lane", "path", "rail", "water")

#: Building uses. Only ``residential`` buildings get estimated households; schools,
#: hospitals, offices, markets and industry can become exclusive grids (专属网格).
BUILDING_USES: tuple[str, ...] = (
    "residential", "commercial", "office", "school", "hospital", "industrial",
    "market", "public", "other",
)

POLYGONS = ("Polygon", "MultiPolygon")

SCHEMAS: dict[str, LayerSchema] = {
    "communities": LayerSchema(
        "communities", "社区", POLYGONS, "community_id",
        (
            Column("community_id", "str", True, help="Unique community id."),
            Column("name", "str", help="Community name, e.g. 梅园社区."),
            Column("street_id", "str", help="Street office (街道) id."),
            Column("street_name", "str", help="Street office name."),
            Column("admin_code", "str", help="12-digit statistical division code (GB/T 2260 + street + community)."),
        ),
    ),
    "buildings": LayerSchema(
        "buildings", "楼栋", POLYGONS, "building_id",
        (
            Column("building_id", "str", True, help="Unique building id."),
            Column("name", "str", help="Building name or number, e.g. 3号楼."),
            Column("use", "str", help=f"One of {', '.join(BUILDING_USES)}; default residential."),
            Column("floors", "int", unit="floors", help="Storeys above ground."),
            Column("height_m", "float", unit="m", help="Height above ground."),
            Column("households", "int", unit="households", help="Households; estimated when missing."),
            Column("households_estimated", "bool", help="True when households were estimated, not given."),
            Column("compound_id", "str", help="Residential compound (小区) the building belongs to."),
            Column("community_id", "str", help="Community containing the building (set on import)."),
        ),
    ),
    "streets": LayerSchema(
        "streets", "道路", ("LineString", "MultiLineString"), "street_id",
        (
            Column("street_id", "str", True, help="Unique street segment id."),
            Column("name", "str", help="Street name."),
            Column("road_class", "str", help=f"One of {', '.join(ROAD_CLASSES)}; default minor."),
            Column("foot", "bool", help="Walkable; default True except rail and water."),
        ),
    ),
    "compounds": LayerSchema(
        "compounds", "小区", POLYGONS, "compound_id",
        (
            Column("compound_id", "str", True, help="Unique compound id."),
            Column("name", "str", help="Compound name, e.g. 梅一小区."),
        ),
    ),
    "service_points": LayerSchema(
        "service_points", "服务点", ("Point",), "point_id",
        (
            Column("point_id", "str", True, help="Unique service point id."),
            Column("name", "str", help="Name."),
            Column("category", "str", help="Facility category, e.g. kindergarten, clinic (see geo.access)."),
        ),
    ),
}

LAYER_NAMES: tuple[str, ...] = tuple(SCHEMAS)
