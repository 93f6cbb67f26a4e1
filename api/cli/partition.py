"""``wangge partition``: divide buildings into grids and write a GeoPackage plus the report."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import click
import pandas as pd
from tqdm import tqdm

from api.cli.layers import LayerOptions, cli_settings, echo_notes, file_paths, layer_options
from geo.errors import WanggeError
from geo.partition import PartitionOptions, partition_grids
from geo.spreadsheet import formula_safe

__all__ = ["COMMANDS", "partition_command", "partition_settings"]

log = logging.getLogger(__name__)
#: Exit code of a partition refused for bad input.
EXIT_BAD_INPUT = 2
_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def _prepare(paths: dict[str, Path], opts: LayerOptions, settings: dict[str, Any]) -> Any:
    """Read, recognise and validate the files as ``wangge import`` does: households are
    estimated in the local metric CRS from floors or height where the file has none."""
    from geo.prepare import prepare_files  # heavy: load only when used

    return prepare_files(paths, settings=settings, **opts.read_kwargs())


def partition_settings(settings: dict[str, Any], *, micro: bool = False) -> dict[str, Any]:
    """Keyword arguments of ``partition_grids`` taken from the settings table."""
    pre = "micro_grid" if micro else "grid"
    return {"min_households": settings[f"{pre}_min_households"], "max_households": settings[f"{pre}_max_households"],
            "target_households": settings[f"{pre}_target_households"], "seed": settings["partition_seed"],
            "exclusive_uses": tuple(settings["exclusive_uses"]), "code_scheme": settings["grid_code_scheme"],
            "workers": settings["partition_workers"], "shard_buildings": settings["partition_shard_buildings"],
            "options": PartitionOptions.from_settings(settings)}


def _print_failure(exc: WanggeError) -> None:
    click.secho("网格划分失败 / partition failed:", fg="red", err=True)
    for issue in getattr(exc, "issues", None) or [exc]:
        click.echo(f"  - {issue}", err=True)


@click.command("partition", help="Divide buildings into grids (网格划分) and write OUT.gpkg + report.")
@click.option("--buildings", "buildings_path", type=_FILE, required=True, help="Buildings file.")
@click.option("--communities", "communities_path", type=_FILE, help="Community polygons (社区).")
@click.option("--streets", "streets_path", type=_FILE, help="Street lines.")
@click.option("--compounds", "compounds_path", type=_FILE, help="Residential compounds (小区).")
@click.option("--households-field", metavar="COLUMN",
              help="Column of the buildings file holding households (= --field buildings:COLUMN=households).")
@layer_options
@click.option("--min", "min_h", type=int, help="Fewest households per grid (setting grid_min_households).")
@click.option("--max", "max_h", type=int, help="Most households per grid (setting grid_max_households).")
@click.option("--target", type=int, help="Target households per grid.")
@click.option("--micro", is_flag=True, help="Micro-grids (微网格, 50–80 households).")
@click.option("--seed", type=int, help="Random seed (setting partition_seed).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output GeoPackage (layers grids, buildings).")
def partition_command(buildings_path: Path, communities_path: Path | None, streets_path: Path | None,
                      compounds_path: Path | None, households_field: str | None, layers: tuple[str, ...],
                      fields: tuple[str, ...], declared_crs: str | None, coords: str, encoding: str | None,
                      min_h: int | None, max_h: int | None, target: int | None, micro: bool,
                      seed: int | None, output: Path) -> None:
    opts = LayerOptions.parse(layers, fields, crs=declared_crs, coords=coords, encoding=encoding)
    opts = opts.with_field("buildings", households_field, "households")
    paths = file_paths({"buildings": buildings_path, "communities": communities_path,
                        "streets": streets_path, "compounds": compounds_path})
    settings = cli_settings()
    try:
        with tqdm(total=100, desc="网格划分", unit="%") as bar:
            bar.set_postfix_str("读取")
            prepared = _prepare(paths, opts, settings)
            bar.update(10)

            def progress(step: str, frac: float) -> None:
                bar.set_postfix_str(step)
                bar.update(max(0, int(frac * 100) - bar.n))

            layers_ = prepared.layers
            given = {"min_households": min_h, "max_households": max_h, "target_households": target,
                     "seed": seed}
            kwargs = partition_settings(settings, micro=micro) | {k: v for k, v in given.items() if v is not None}
            res = partition_grids(
                layers_["buildings"], layers_["communities"] if communities_path else None,
                streets=layers_.get("streets"), compounds=layers_.get("compounds"), micro=micro,
                progress=progress, **kwargs)
            bar.update(100 - bar.n)
    except WanggeError as exc:
        _print_failure(exc)
        raise SystemExit(EXIT_BAD_INPUT) from None
    echo_notes(prepared.report)
    b = prepared.layers["buildings"]
    _write(res, b, output)
    r = res.report
    click.echo(f"{r['grids']} 个网格, {r['households']} 户 (估算 {int(b['households_estimated'].sum())} 栋); "
               f"户数达标 {r['share_in_range']:.1%}; 不可行社区 {len(r['infeasible_communities'])} -> {output}")


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
    # community ids come from people's files: no cell a spreadsheet would run as a formula
    formula_safe(pd.DataFrame(res.grids.drop(columns="geometry"))).to_csv(f"{stem}.report.csv", index=False)
    Path(f"{stem}.report.json").write_text(json.dumps(res.report, ensure_ascii=False, indent=2, default=str),
                                           encoding="utf-8")


COMMANDS = [partition_command]
