"""The import pipeline in pure form: layers in, one validated workspace out (or nothing).

:func:`prepare_layers` validates every layer (:func:`geo.validate.validate_layer`),
picks the metric CRS, estimates missing households, assigns each building its
community and compound, and runs the cross-layer checks. Any blocking problem raises
:class:`~geo.errors.ValidationFailed` carrying the full report, so callers write
nothing. :func:`prepare_files` does the same starting from file paths.

Examples
--------
>>> import geopandas as gpd, shapely
>>> b = gpd.GeoDataFrame({"building_id": ["B1", "B2"], "floors": [6, 3]},
...     geometry=[shapely.box(121.000, 31.000, 121.0003, 31.0002),
...               shapely.box(121.001, 31.000, 121.0013, 31.0002)], crs=4326)
>>> ws = prepare_layers({"buildings": b})
>>> list(ws.layers["buildings"]["community_id"]), ws.approximate_communities
(['all', 'all'], ('all',))
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from geo.columns import recognise_columns
from geo.crs import CRSInput, local_metric_crs, to_metric
from geo.errors import LayerError
from geo.households import estimate_households
from geo.layers import SCHEMAS
from geo.readers import read_layer
from geo.settings import DEFAULTS
from geo.validate import (
    Issue,
    ValidationReport,
    building_community_issues,
    validate_layer,
    validate_workspace,
)
from geo.value_limits import value_limit_issues
from geo.zones import ZoneAssignment, assign_zones

__all__ = ["APPROXIMATE_COMMUNITY_ID", "PreparedWorkspace", "prepare_layers", "prepare_files", "read_files"]

logger = logging.getLogger(__name__)

#: Id and name of the one community made up when no communities layer is given.
APPROXIMATE_COMMUNITY_ID = "all"
APPROXIMATE_COMMUNITY_NAME = "全域"


@dataclass(frozen=True)
class PreparedWorkspace:
    """Canonical layers (EPSG:4326) ready to store, the metric CRS and the report."""

    layers: dict[str, gpd.GeoDataFrame]
    metric_crs: CRS
    report: ValidationReport

    @property
    def approximate_communities(self) -> tuple[str, ...]:
        """Ids of communities made up by the import rather than given (label them so)."""
        return tuple(str(i.feature_id) for i in self.report.issues if i.code == "approximate_community")


def prepare_layers(
    sources: Mapping[str, gpd.GeoDataFrame],
    *,
    settings: Mapping[str, Any] | None = None,
) -> PreparedWorkspace:
    """Validate, normalise and link the layers of one import.

    Parameters
    ----------
    sources : mapping of layer name to GeoDataFrame
        ``buildings`` is required; ``communities``, ``compounds``, ``streets`` and
        ``service_points`` are optional. Inputs are not modified.
    settings : mapping, optional
        Overrides of :data:`geo.settings.DEFAULTS` (``local_crs``,
        ``repair_invalid_geometry``, household estimation, tolerances, limits).

    Returns
    -------
    PreparedWorkspace
        Buildings carry ``households`` (estimated where missing), ``community_id``
        and, when compounds are given, ``compound_id``. Without a communities layer
        one community ``全域`` covers the buildings, flagged ``approximate_community``.

    Raises
    ------
    ValidationFailed
        Any blocking issue; ``exc.report`` holds every issue, ``exc.issues`` the errors.
    LayerError
        An unknown layer name.
    """
    opts = {**DEFAULTS, **(settings or {})}
    layers, report = _validate_each(sources, opts)
    report.raise_for_errors()
    buildings = layers["buildings"]
    metric_crs = local_metric_crs(buildings, configured=opts["local_crs"])
    bm = to_metric(buildings, crs=metric_crs)
    buildings = _with_households(buildings, bm, opts, unknown_use=_unknown_use(sources.get("buildings")))
    if "communities" not in layers:
        layers["communities"] = _approximate_community(bm, metric_crs, opts)
        report += ValidationReport((_approximate_issue(),))
    metric = {name: to_metric(gdf, crs=metric_crs) for name, gdf in layers.items()
              if name in ("communities", "compounds")}
    buildings, found = _assign_zones(buildings, bm.geometry.to_numpy(), metric, opts)
    layers["buildings"] = buildings
    # buildings are checked from the assignment just made, the other layers here
    report += validate_workspace(metric, metric_crs=metric_crs,
                                 building_outside_tolerance_m=opts["building_outside_tolerance_m"],
                                 community_overlap_tolerance_m2=opts["community_overlap_tolerance_m2"])
    report += ValidationReport(tuple(building_community_issues(
        found, building_ids=buildings["building_id"].to_numpy(dtype=object),
        community_ids=metric["communities"]["community_id"].to_numpy(dtype=object),
        tolerance_m=opts["building_outside_tolerance_m"])))
    report.raise_for_errors()
    logger.info("prepared workspace: %s; %d households (%d buildings estimated); metric CRS %s; "
                "%d repaired, %d warnings",
                ", ".join(f"{len(g):,} {n}" for n, g in layers.items()),
                int(buildings["households"].fillna(0).sum()),
                int(buildings["households_estimated"].fillna(False).sum()),
                metric_crs.to_string(), len(report.repaired), len(report.warnings))
    return PreparedWorkspace(layers=layers, metric_crs=metric_crs, report=report)


def prepare_files(
    paths: Mapping[str, str | Path],
    *,
    field_maps: Mapping[str, Mapping[str, str]] | None = None,
    declared_crs: CRSInput | Mapping[str, CRSInput] | None = None,
    coord_system: str | Mapping[str, str] = "wgs84",
    source_layers: Mapping[str, str] | None = None,
    settings: Mapping[str, Any] | None = None,
    encoding: str | Mapping[str, str] | None = None,
) -> PreparedWorkspace:
    """Read every file with :func:`geo.readers.read_layer`, then :func:`prepare_layers`.

    Parameters
    ----------
    paths : mapping of layer name to file path
    field_maps : mapping of layer name to ``{source column: canonical column}``, optional
    declared_crs : CRS-like or mapping of layer name to CRS-like, optional
        CRS assumed for files that carry none.
    coord_system : ``"wgs84"``, ``"gcj02"`` or ``"bd09"``, or a mapping per layer
        Coordinate system of lon/lat input (Chinese web maps use GCJ-02 / BD-09).
    source_layers : mapping of layer name to the layer inside the file, optional
        For multi-layer files (GeoPackage); by default the layer named after the kind.
    settings : mapping, optional
        As for :func:`prepare_layers`; ``max_upload_mb`` limits file size.
    encoding : str or mapping per layer, optional
        Text encoding of the files; default UTF-8 with GBK (GB18030) detected.

    Raises
    ------
    ReadError, CRSError
        A file cannot be read; ValidationFailed as for :func:`prepare_layers`.
    """
    opts = {**DEFAULTS, **(settings or {})}
    sources, notes = read_files(paths, field_maps=field_maps, declared_crs=declared_crs,
                                coord_system=coord_system, source_layers=source_layers,
                                encoding=encoding, max_mb=opts["max_upload_mb"])
    prepared = prepare_layers(sources, settings=opts)
    return dataclasses.replace(prepared, report=notes + prepared.report)


def read_files(
    paths: Mapping[str, str | Path],
    *,
    field_maps: Mapping[str, Mapping[str, str]] | None = None,
    declared_crs: CRSInput | Mapping[str, CRSInput] | None = None,
    coord_system: str | Mapping[str, str] = "wgs84",
    source_layers: Mapping[str, str] | None = None,
    encoding: str | Mapping[str, str] | None = None,
    max_mb: float = DEFAULTS["max_upload_mb"],
) -> tuple[dict[str, gpd.GeoDataFrame], ValidationReport]:
    """Read each file with :func:`geo.readers.read_layer` and recognise its columns.

    Explicit renames (*field_maps*) apply first; then :func:`geo.columns.recognise_columns`
    maps common names (``Floor``, ``height``, ``kind`` …) and chooses each layer's id.
    Every choice is a ``columns_recognised`` issue in the returned report. Options as for
    :func:`prepare_files`.
    """
    _check_names(paths)
    sources: dict[str, gpd.GeoDataFrame] = {}
    notes: list[Issue] = []
    for name, path in paths.items():
        fmap = (field_maps or {}).get(name)
        gdf = read_layer(
            path, kind=name, layer=(source_layers or {}).get(name), field_map=fmap,
            declared_crs=_per_layer(declared_crs, name), encoding=_per_layer(encoding, name),
            coord_system=_per_layer(coord_system, name) or "wgs84", max_mb=max_mb,
        )
        sources[name], found = recognise_columns(gdf, kind=name, mapped=fmap)
        sources[name].attrs = gdf.attrs
        notes += found
    return sources, ValidationReport(tuple(notes))


def _per_layer(value: Any, name: str) -> Any:
    return value.get(name) if isinstance(value, Mapping) else value


def _check_names(sources: Mapping[str, Any]) -> None:
    unknown = [n for n in sources if n not in SCHEMAS]
    if unknown:
        raise LayerError(f"unknown layer(s) {', '.join(map(repr, unknown))}; use {', '.join(SCHEMAS)}")


def _validate_each(sources: Mapping[str, gpd.GeoDataFrame],
                   opts: Mapping[str, Any]) -> tuple[dict[str, gpd.GeoDataFrame], ValidationReport]:
    _check_names(sources)
    report = ValidationReport()
    if "buildings" not in sources:
        report += ValidationReport((Issue("buildings", None, "missing_layer", "no buildings layer given",
                                          "import a buildings layer (楼栋): grids are built from buildings"),))
    layers: dict[str, gpd.GeoDataFrame] = {}
    for name in SCHEMAS:  # canonical order: communities before buildings
        if name in sources:
            layers[name], found = validate_layer(
                sources[name], kind=name, repair=opts["repair_invalid_geometry"],
                max_floors=opts["max_building_floors"], max_height_m=opts["max_building_height_m"])
            report += found
            report += value_limit_issues(name, sources[name],
                                         max_households_per_building=opts["max_households_per_building"],
                                         max_id_length=opts["max_id_length"])
    return layers, report


def _unknown_use(given: gpd.GeoDataFrame | None) -> np.ndarray | None:
    """Rows whose file gave no building use (validation has since defaulted it to residential)."""
    if given is None:
        return None
    if "use" not in given.columns:
        return np.ones(len(given), dtype=bool)
    use = given["use"].astype("string").str.strip()
    return (use.isna() | (use == "")).fillna(True).to_numpy(dtype=bool)


def _with_households(buildings: gpd.GeoDataFrame, bm: gpd.GeoDataFrame, opts: Mapping[str, Any], *,
                     unknown_use: np.ndarray | None = None) -> gpd.GeoDataFrame:
    """Buildings with ``households`` and ``households_estimated`` filled in.

    Rows of *unknown_use* are estimated as use unknown, so that the
    ``residential_max_height_m`` rule (untagged towers are not homes) applies to them
    although validation has defaulted their use to residential.
    """
    if unknown_use is not None and len(unknown_use) == len(bm):
        bm = bm.assign(use=bm["use"].astype("object").where(~unknown_use, None))
    est = estimate_households(bm, floor_height_m=opts["floor_height_m"],
                              dwelling_area_m2=opts["dwelling_area_m2"], default_floors=opts["default_floors"],
                              min_footprint_m2=opts["household_min_footprint_m2"],
                              residential_max_height_m=opts["residential_max_height_m"])
    out = buildings.copy()
    out["households"] = pd.array(est["households"].to_numpy(), dtype="Int64")
    out["households_estimated"] = pd.array(est["households_estimated"].to_numpy(), dtype="boolean")
    return out


def _approximate_community(bm: gpd.GeoDataFrame, metric_crs: CRS, opts: Mapping[str, Any]) -> gpd.GeoDataFrame:
    """One community, 全域: the convex hull of the buildings grown by the outside tolerance."""
    hull = shapely.convex_hull(shapely.multipoints(shapely.get_coordinates(bm.geometry.to_numpy())))
    area = shapely.buffer(hull, max(opts["building_outside_tolerance_m"], 0.0))
    community = gpd.GeoDataFrame({"community_id": [APPROXIMATE_COMMUNITY_ID], "name": [APPROXIMATE_COMMUNITY_NAME]},
                                 geometry=[area], crs=metric_crs).to_crs(4326)
    layer, _ = validate_layer(community, kind="communities")
    return layer


def _approximate_issue() -> Issue:
    return Issue("communities", APPROXIMATE_COMMUNITY_ID, "approximate_community",
                 f"no communities layer: one approximate community {APPROXIMATE_COMMUNITY_NAME} covers "
                 "all buildings (convex hull)",
                 "import the real community boundaries (社区边界) so grids nest in communities", "warning")


def _assign_zones(buildings: gpd.GeoDataFrame, bgeoms: np.ndarray, metric: Mapping[str, gpd.GeoDataFrame],
                  opts: Mapping[str, Any]) -> tuple[gpd.GeoDataFrame, ZoneAssignment]:
    """Buildings with ``community_id`` (always from geometry) and ``compound_id`` (filled in),
    and the community assignment."""
    out = buildings.copy()
    communities = metric["communities"]
    found = assign_zones(bgeoms, communities.geometry.to_numpy(), tolerance_m=opts["building_outside_tolerance_m"],
                         overlap_m2=opts["community_overlap_tolerance_m2"])
    out["community_id"] = _ids_at(communities["community_id"], found.zone)
    logger.info("assigned %d of %d buildings to %d communities", int((found.zone >= 0).sum()), len(out),
                len(communities))
    compounds = metric.get("compounds")
    if compounds is not None:
        # a building belongs to the compound holding its representative point or most of it
        inside = assign_zones(bgeoms, compounds.geometry.to_numpy(), tolerance_m=0.0,
                              overlap_m2=opts["community_overlap_tolerance_m2"], min_share=0.5)
        out["compound_id"] = out["compound_id"].fillna(_ids_at(compounds["compound_id"], inside.zone))
        logger.info("%d buildings lie in %d compounds", int(out["compound_id"].notna().sum()), len(compounds))
    return out, found


def _ids_at(ids: pd.Series, index: np.ndarray) -> pd.Series:
    """``ids[index]`` as a str Series, null where *index* is -1."""
    values = np.array(ids.astype(object).where(ids.notna(), None), dtype=object)
    picked = np.where(index >= 0, values[np.maximum(index, 0)] if len(values) else None, None)
    return pd.Series(picked, dtype="str")
