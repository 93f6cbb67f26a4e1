"""geo.partition.cells_out: the cells a partition returns tile its grids exactly."""

from __future__ import annotations

import numpy as np
import shapely

from geo.partition import partition_grids
from geo.synthetic import synthetic_district


def test_cells_tile_every_grid_and_map_every_building() -> None:
    d = synthetic_district(600, seed=5)
    r = partition_grids(d.buildings, d.communities, streets=d.streets, compounds=d.compounds)
    cells = r.cells
    assert cells is not None and r.building_cell is not None
    assert cells.crs == r.grids.crs
    assert cells["cell_id"].is_unique
    assert set(r.building_cell.index) == set(d.buildings["building_id"])
    assert set(r.building_cell) <= set(cells["cell_id"])
    by_grid = cells.groupby("grid_id")
    grids = r.grids.set_index("grid_id")
    assert (by_grid["households"].sum().reindex(grids.index) == grids["households"]).all()
    assert (by_grid["buildings"].sum().reindex(grids.index) == grids["buildings"]).all()
    metric = cells.to_crs(cells.estimate_utm_crs())
    gm = r.grids.to_crs(metric.crs).set_index("grid_id")
    for gid, grp in metric.groupby("grid_id"):
        union = shapely.coverage_union_all(grp.geometry.values)
        assert union.symmetric_difference(gm.geometry[gid]).area < 1e-3, gid
    # a building's cell is in the building's grid
    cell_grid = cells.set_index("cell_id")["grid_id"]
    assert np.array_equal(r.building_cell.map(cell_grid).to_numpy(),
                          r.assignment.reindex(r.building_cell.index).to_numpy())
