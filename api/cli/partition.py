"""``wangge partition``: divide buildings into grids and write a GeoPackage plus the report."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click
import pandas as pd
from tqdm import tqdm

from geo.errors import WanggeError
from geo.partition import partition_grids
from geo.readers import read_layer
from geo.settings import DEFAULTS

__all__ = ["COMMANDS", "partition_command"]

log = logging.getLogger(__name__)
_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def _read(path: Path | None, kind: str, field_map: dict[str, str] | None = None):
    if path is None:
        return None
    return read_layer(path, kind=kind, field_map=field_map)


def _buildings(path: Path, households_field: str | None):
    fmap = {households_field: "households"} if households_field else None
    b = read_layer(path, kind="buildings", field_map=fmap)
    if "households" not in b.columns or pd.to_numeric(b["households"], errors="coerce").isna().any():
        from geo.households import estimate_households

        b = estimate_households(b)
    return b


@click.command("partition", help="Divide buildings into grids (网格划分) and write OUT.gpkg + report.")
@click.option("--buildings", "buildings_path", type=_FILE, required=True, help="Buildings file.")
@click.option("--communities", "communities_path", type=_FILE, help="Community polygons (社区).")
@click.option("--streets", "streets_path", type=_FILE, help="Street lines.")
@click.option("--compounds", "compounds_path", type=_FILE, help="Residential compounds (小区).")
@click.option("--households-field", help="Column of the buildings file holding households.")
@click.option("--min", "min_h", type=int, help="Fewest households per grid (setting grid_min_households).")
@click.option("--max", "max_h", type=int, help="Most households per grid (setting grid_max_households).")
@click.option("--target", type=int, help="Target households per grid.")
@click.option("--micro", is_flag=True, help="Micro-grids (微网格, 50–80 households).")
@click.option("--seed", type=int, default=DEFAULTS["partition_seed"], show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output GeoPackage (layers grids, buildings).")
def partition_command(buildings_path: Path, communities_path: Path | None, streets_path: Path | None,
                      compounds_path: Path | None, households_field: str | None, min_h: int | None,
                      max_h: int | None, target: int | None, micro: bool, seed: int, output: Path) -> None:
    try:
        with tqdm(total=100, desc="网格划分", unit="%") as bar:
            bar.set_postfix_str("读取")
            b = _buildings(buildings_path, households_field)
            c = _read(communities_path, "communities")
            s = _read(streets_path, "streets")
            k = _read(compounds_path, "compounds")
            bar.update(10)

            def progress(step: str, frac: float) -> None:
                bar.set_postfix_str(step)
                bar.update(max(0, int(frac * 100) - bar.n))

            res = partition_grids(b, c, streets=s, compounds=k, min_households=min_h, max_households=max_h,
                                  target_households=target, micro=micro, seed=seed, progress=progress)
            bar.update(100 - bar.n)
    except WanggeError as exc:
        raise click.ClickException(str(exc)) from None
    _write(res, b, output)
    r = res.report
    click.echo(f"{r['grids']} 个网格, {r['households']} 户; 户数达标 {r['share_in_range']:.1%}; "
               f"不可行社区 {len(r['infeasible_communities'])} -> {output}")


def _write(res, buildings, output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.exists():
        output.unlink()
    res.grids[["grid_id", "community_id", "code", "households", "geometry"]].to_file(
        output, layer="grids", driver="GPKG")
    bl = buildings[["building_id", "geometry"]].copy()
    bl["grid_id"] = res.assignment.reindex(bl["building_id"].astype(str)).to_numpy()
    bl.to_file(output, layer="buildings", driver="GPKG")
    stem = output.with_suffix("")
    res.grids.drop(columns="geometry").to_csv(f"{stem}.report.csv", index=False)
    Path(f"{stem}.report.json").write_text(json.dumps(res.report, ensure_ascii=False, indent=2, default=str),
                                           encoding="utf-8")


COMMANDS = [partition_command]
