"""``wangge import`` (files into the workspace) and ``wangge demo`` (a demo workspace)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from api import db
from api.cli.layers import LayerOptions, echo_notes, layer_options
from api.users import DEMO_PASSWORD, ensure_demo_users
from api.workspace import ImportSummary, import_workspace, workspace_stats
from geo.errors import ValidationFailed, WanggeError
from geo.layers import SCHEMAS

__all__ = ["COMMANDS", "import_command", "demo_command"]

log = logging.getLogger(__name__)

#: Exit code of an import refused for bad input (nothing written).
EXIT_BAD_INPUT = 2
LAYER_OPTIONS: dict[str, str] = {
    "communities": "communities", "buildings": "buildings", "streets": "streets",
    "compounds": "compounds", "services": "service_points",
}
_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@contextmanager
def _stage(label: str) -> Iterator[None]:
    """A one-step progress bar with elapsed time for a step that reports no progress itself."""
    with logging_redirect_tqdm(), tqdm(total=1, desc=label, unit="step", leave=True,
                                       bar_format="{desc}: {elapsed}{postfix}") as bar:
        yield
        bar.update(1)


def _print_failure(exc: WanggeError) -> None:
    click.secho("导入失败，未写入任何数据 / import failed, nothing was written:", fg="red", err=True)
    if isinstance(exc, ValidationFailed):
        click.echo(f"{len(exc.issues)} 个阻断问题 / blocking problem(s) (layer #id: problem: fix):", err=True)
        for issue in exc.issues:
            click.echo(f"  - {issue}", err=True)
    else:
        click.echo(f"  - {exc}", err=True)


def _print_summary(summary: ImportSummary, prepared: Any, *, stats: dict[str, Any]) -> None:
    click.secho(f"导入完成 / import done (import run {summary.import_run_id}, "
                f"{summary.seconds:.1f} s):", fg="green")
    for kind, n in summary.counts.items():
        click.echo(f"  {SCHEMAS[kind].label_zh} {kind}: {n:,}")
    click.echo(f"  户数 households: {stats['households']:,}")
    approximate = getattr(prepared, "approximate_communities", ())
    if approximate:
        click.secho(f"  社区边界为近似 / approximate communities (no boundaries given): "
                    f"{', '.join(approximate)}", fg="yellow")
    click.echo(f"  已自动修复 repaired: {summary.repaired}, 提示 warnings: {summary.warnings}")
    warnings = [i for i in getattr(prepared.report, "warnings", ()) if i.code != "columns_recognised"]
    for issue in warnings[:10]:
        click.echo(f"  ! {issue}")
    if summary.warnings > 10:
        click.echo(f"  ... {summary.warnings - 10} more warnings in import run {summary.import_run_id}")


def _store(prepared: Any, *, user: str, sources: dict[str, Any], replace: bool,
           note: str | None) -> tuple[ImportSummary, dict[str, Any]]:
    total = sum(len(g) for g in prepared.layers.values())
    with logging_redirect_tqdm(), db.session_scope() as session, \
            tqdm(total=total, desc="写入 inserting", unit="row", unit_scale=True) as bar:
        summary = import_workspace(session, prepared, user=user, sources=sources, replace=replace,
                                   note=note, progress=bar.update)
    with db.session_scope() as session:
        stats = workspace_stats(session)
    return summary, stats


def _run_prepare(prepare: Callable[[], Any]) -> Any:
    """Run *prepare*; on bad input print every problem and exit 2 (nothing written)."""
    try:
        with _stage("读取并校验 reading + validating"):
            return prepare()
    except WanggeError as exc:
        _print_failure(exc)
        raise SystemExit(EXIT_BAD_INPUT) from None


@click.command("import", help="""Import layers into the workspace (导入图层).

\b
Give at least --buildings (楼栋). Files: GeoPackage, GeoJSON, zipped Shapefile,
CSV with lon/lat, OSM PBF. The workspace is replaced by the import unless
--append is given. Bad input is reported problem by problem (layer, id,
problem, fix) with exit code 2, and nothing is written.

\b
Example:
  wangge import --communities 社区.gpkg --buildings 楼栋.shp.zip \\
      --field buildings:楼号=building_id --field buildings:户数=households \\
      --coords gcj02
""")
@click.option("--communities", type=_FILE, help="Community boundaries (社区边界), polygons.")
@click.option("--buildings", type=_FILE, help="Building footprints (楼栋), polygons. Required.")
@click.option("--streets", type=_FILE, help="Streets and lanes (道路), lines.")
@click.option("--compounds", type=_FILE, help="Residential compounds (小区), polygons.")
@click.option("--services", type=_FILE, help="Service points (服务点), points.")
@layer_options
@click.option("--append", is_flag=True, help="Add to the workspace instead of replacing it (追加).")
@click.option("--user", default="cli", show_default=True, help="Name recorded in the import log.")
@with_appcontext
def import_command(communities: Path | None, buildings: Path | None, streets: Path | None,
                   compounds: Path | None, services: Path | None, layers: tuple[str, ...],
                   fields: tuple[str, ...], declared_crs: str | None, coords: str, encoding: str | None,
                   append: bool, user: str) -> None:
    given = {"communities": communities, "buildings": buildings, "streets": streets,
             "compounds": compounds, "services": services}
    paths = {LAYER_OPTIONS[opt]: path for opt, path in given.items() if path is not None}
    if "buildings" not in paths:
        raise click.UsageError("give the buildings file with --buildings (楼栋图层必填)")
    opts = LayerOptions.parse(layers, fields, crs=declared_crs, coords=coords, encoding=encoding)
    sources = {"kind": "files", "files": {k: str(p) for k, p in paths.items()},
               "layers": opts.layers, "fields": opts.fields, "crs": declared_crs, "coords": coords,
               "encoding": encoding}
    from geo.prepare import prepare_files  # geo's import pipeline is heavy: load it only when used

    prepared = _run_prepare(lambda: prepare_files(paths, settings=current_app.config["WANGGE"],
                                                  **opts.read_kwargs()))
    echo_notes(prepared.report, err=False)
    try:
        summary, stats = _store(prepared, user=user, sources=sources, replace=not append, note=None)
    except WanggeError as exc:
        _print_failure(exc)
        raise SystemExit(EXIT_BAD_INPUT) from None
    _print_summary(summary, prepared, stats=stats)


def _synthetic(n_buildings: int, seed: int) -> tuple[Any, dict[str, Any], str]:
    from geo.prepare import prepare_layers
    from geo.synthetic import synthetic_district

    with _stage(f"生成合成街道 generating synthetic district ({n_buildings:,} buildings)"):
        district = synthetic_district(n_buildings, seed=seed)
    prepared = _run_prepare(lambda: prepare_layers(district.layers, settings=current_app.config["WANGGE"]))
    note = "合成演示数据（程序生成的街道，非真实数据，仅供演示）"
    return prepared, {"kind": "synthetic", "buildings": n_buildings, "seed": seed}, note


def _from_osm(pbf: Path) -> tuple[Any, dict[str, Any], str]:
    from geo.prepare import prepare_files

    paths = {"buildings": pbf, "streets": pbf, "service_points": pbf}
    prepared = _run_prepare(lambda: prepare_files(paths, settings=current_app.config["WANGGE"]))
    note = f"OpenStreetMap 演示数据 demo data from {pbf.name}; 社区边界为近似 communities approximated"
    return prepared, {"kind": "osm", "file": str(pbf)}, note


def _print_demo_users(created: list[str]) -> None:
    if not created:
        return
    click.secho(f"演示账号 demo users created (password {DEMO_PASSWORD!r}; 仅供演示 demo only, "
                "change with `wangge users set-password` or disable before real use):", fg="yellow")
    for name in created:
        click.echo(f"  {name} / {DEMO_PASSWORD}")


@click.command("demo", help="""Build a demo workspace (演示数据) and demo users.

\b
Without --osm the workspace is a seeded synthetic street office (合成数据, clearly
labelled synthetic). With --osm the buildings, streets and service points come from an
OpenStreetMap extract and the community boundary is approximated (labelled so).
Demo users admin, planner, worker and viewer are created if missing, all with the
demo password printed below (demo only).
""")
@click.option("--buildings", "n_buildings", type=click.IntRange(10, 5_000_000), default=3000,
              show_default=True, help="Number of synthetic buildings (楼栋数).")
@click.option("--seed", type=int, default=42, show_default=True, help="Random seed of the synthetic district.")
@click.option("--osm", type=_FILE, help="Build from an OSM PBF extract instead of synthetic data.")
@click.option("--if-missing", is_flag=True, help="Do nothing if the workspace already has buildings.")
@click.option("--force", is_flag=True, help="Replace a workspace that already has buildings.")
@with_appcontext
def demo_command(n_buildings: int, seed: int, osm: Path | None, if_missing: bool, force: bool) -> None:
    started = time.perf_counter()
    with db.session_scope() as session:
        has_data = not workspace_stats(session)["empty"]
        created = ensure_demo_users(session)
    _print_demo_users(created)
    if has_data and if_missing and not force:
        click.echo("工作区已有数据，跳过 / workspace already has data, skipped (--if-missing)")
        return
    if has_data and not force:
        raise click.ClickException("工作区已有数据 / the workspace already has data: "
                                   "use --force to replace it or --if-missing to keep it")
    prepared, sources, note = _from_osm(osm) if osm else _synthetic(n_buildings, seed)
    summary, stats = _store(prepared, user="demo", sources=sources, replace=True, note=note)
    click.secho(note, fg="yellow")
    _print_summary(summary, prepared, stats=stats)
    _demo_register()
    _demo_incidents()
    _demo_patrol()
    click.echo(f"完成 done in {time.perf_counter() - started:.1f} s; start the map with `wangge serve`")


def _demo_register() -> None:
    """Synthetic households, residents, key persons and party committees (staff follow a published plan)."""
    from api.register.crypto import cipher_for
    from api.register.demo import demo_people

    with db.session_scope() as session:
        counts = demo_people(session, cipher=cipher_for(current_app.instance_path, current_app.config["WANGGE"]),
                             settings=current_app.config["WANGGE"])
    click.secho(f"合成登记册 synthetic register (region-99 fake ID numbers): {counts}", fg="yellow")


def _demo_incidents() -> None:
    """A year of synthetic incidents, when a plan is already published (else `wangge incidents demo` later)."""
    from api.cli.incidents import demo_incidents

    demo_incidents()


def _demo_patrol() -> None:
    """A month of synthetic patrol tracks, when workers serve grids of a published plan (else `wangge patrol demo` later)."""
    from api.cli.patrol import demo_patrol

    if not demo_patrol():
        click.echo("尚无关联网格的网格员，暂不生成演示巡查轨迹 / no worker serves a grid yet: run `wangge patrol demo` "
                   "after publishing a plan and `wangge register demo`")


COMMANDS = [import_command, demo_command]
