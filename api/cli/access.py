"""``wangge access``: the 15-minute service circle for a set of layer files."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd
import pyogrio
from tqdm import tqdm

from api.cli.layers import LayerOptions, cli_settings, echo_notes, file_paths, layer_options
from geo.access import service_circle_analysis
from geo.errors import WanggeError
from geo.lifecircle import LEVEL_LABELS_ZH, dropped_categories, normalise_categories

__all__ = ["COMMANDS", "access_command"]

log = logging.getLogger(__name__)
#: Exit code of an analysis refused for bad input.
EXIT_BAD_INPUT = 2
_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def _levels(text: str | None, settings: dict[str, Any]) -> tuple[float, ...]:
    if not text:
        return tuple(float(x) for x in settings["walk_levels_m"])
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise click.BadParameter(f"{text!r}: write distances in metres like 300,500,1000",
                                 param_hint="--levels") from None


def _read_inputs(paths: dict[str, Path], opts: LayerOptions, settings: dict[str, Any],
                 raw_categories: bool) -> tuple[Any, Any, Any, pd.DataFrame, Any]:
    """Buildings (households estimated), streets, services with canonical categories, the
    dropped categories and the read report, read and validated as ``wangge import`` does."""
    from geo.prepare import prepare_files  # heavy: load only when used

    prepared = prepare_files(paths, settings=settings, **opts.read_kwargs())
    p = prepared.layers["service_points"]
    if p["category"].isna().all():
        raise click.ClickException(
            "服务点图层没有类别 (the services layer has no category values; columns: "
            f"{', '.join(map(str, p.columns))}); name the column with --category-field COLUMN "
            "or --field services:COLUMN=category")
    dropped = pd.DataFrame({"category": [], "points": []})
    if not raw_categories:
        mapped = normalise_categories(p, category_field="category")
        dropped = dropped_categories(p["category"], mapped)
        p = p.assign(category=mapped)
    layers = prepared.layers
    return layers["buildings"], layers["streets"], p, dropped, prepared.report


def _echo_dropped(dropped: pd.DataFrame, total: int) -> None:
    if dropped.empty:
        return
    click.secho(f"未识别类别，已剔除 {int(dropped['points'].sum())} / {total} 个服务点 "
                "(dropped: category not in the life-circle checklist; map it with --field or use "
                "--raw-categories):", fg="yellow", err=True)
    for row in dropped.itertuples(index=False):
        click.echo(f"  {row.category}: {row.points}", err=True)


@click.command("access", help="15分钟生活圈: walking distance from every building to each "
               "facility category; writes OUT.gpkg (layers buildings, coverage, dropped_categories).")
@click.option("--buildings", "buildings_path", type=_FILE, required=True, help="Buildings file.")
@click.option("--streets", "streets_path", type=_FILE, required=True, help="Street lines.")
@click.option("--services", "services_path", type=_FILE, required=True, help="Service points.")
@click.option("--category-field", metavar="COLUMN",
              help="Column of the services naming the facility category (default: category, "
                   "or kind/amenity/type/类型 when there is none).")
@click.option("--raw-categories", is_flag=True,
              help="Use the category values as they are (default: map OSM tags, English and "
                   "Chinese type names to the life-circle checklist and list what is dropped).")
@click.option("--levels", help="Walking distances in metres, e.g. 300,500,1000 "
              "(setting walk_levels_m).")
@layer_options
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output GeoPackage (layers buildings, coverage, dropped_categories, suggested_sites).")
@click.option("--suggest", "suggest_k", type=int, metavar="K",
              help="Also suggest K new sites per category (建议新址, layer suggested_sites): those "
                   "that newly cover the most households within the category's own level.")
@click.option("--suggest-category", "suggest_categories", multiple=True, metavar="CATEGORY",
              help="Only suggest sites for this category (repeatable; default: every category).")
def access_command(buildings_path: Path, streets_path: Path, services_path: Path,
                   category_field: str | None, raw_categories: bool, levels: str | None,
                   layers: tuple[str, ...], fields: tuple[str, ...], declared_crs: str | None,
                   coords: str, encoding: str | None, output: Path, suggest_k: int | None,
                   suggest_categories: tuple[str, ...]) -> None:
    settings = cli_settings()
    levels_m = _levels(levels, settings)
    if suggest_k is not None:
        _check_suggest(suggest_k, settings)
    opts = LayerOptions.parse(layers, fields, crs=declared_crs, coords=coords, encoding=encoding)
    opts = opts.with_field("service_points", category_field, "category")
    paths = file_paths({"buildings": buildings_path, "streets": streets_path, "services": services_path})
    try:
        with tqdm(total=3, desc="15分钟生活圈", unit="step") as bar:
            bar.set_postfix_str("读取")
            b, s, p, dropped, report = _read_inputs(paths, opts, settings, raw_categories)
            bar.update(1)
            bar.set_postfix_str("步行网络与距离")
            res = service_circle_analysis(
                b, s, p, levels_m=levels_m, category_field="category",
                snap_tolerance_m=settings["walk_snap_tolerance_m"], max_snap_m=settings["walk_max_snap_m"],
                excluded_classes=tuple(settings["walk_excluded_road_classes"]))
            bar.update(1)
            bar.set_postfix_str("写出")
            _write(res, dropped, output)
            bar.update(1)
        suggestions = ([] if suggest_k is None
                       else _suggest(res, suggest_k, suggest_categories, output, settings))
    except WanggeError as exc:
        click.secho("分析失败 / access failed:", fg="red", err=True)
        for issue in getattr(exc, "issues", None) or [exc]:
            click.echo(f"  - {issue}", err=True)
        raise SystemExit(EXIT_BAD_INPUT) from None
    echo_notes(report)
    _echo_dropped(dropped, len(p))
    _echo_summary(res, output)
    for suggestion in suggestions:
        _echo_suggestion(suggestion)


def _check_suggest(k: int, settings: Mapping[str, Any]) -> None:
    from api.access.suggest import check_k

    try:
        check_k(k, max_sites=int(settings["maxcover_max_sites"]), option="--suggest")
    except WanggeError as exc:
        raise click.BadParameter(str(exc), param_hint="--suggest") from None


def _suggest(res, k: int, categories: tuple[str, ...], output: Path, settings: Mapping[str, Any]) -> list:
    """Suggest *k* sites per category; append them to *output* as layer ``suggested_sites``."""
    import pandas as pd

    from api.access.suggest import suggest_new_sites

    wanted = list(categories) or list(res.summary["categories"])
    out = [suggest_new_sites(res, c, k, settings=settings, option="--suggest")
           for c in tqdm(wanted, desc="建议新址 new sites", unit="category")]
    frames = [s.sites.assign(level_m=s.level_m).to_crs(4326) for s in out if len(s.sites)]
    if frames:
        pyogrio.write_dataframe(pd.concat(frames, ignore_index=True), output, layer="suggested_sites",
                                driver="GPKG")
    return out


def _echo_suggestion(s) -> None:
    adds = "、".join(f"#{int(r.rank)} +{r.households_added:,.0f}" for r in s.sites.itertuples())
    click.echo(f"建议新址 {s.category} ({s.level_m:g} m): {len(s.sites)} 处新覆盖 "
               f"{s.newly_covered_households:,.0f} / {s.uncovered_households:,.0f} 户未覆盖 "
               f"({s.method}); 每处新增户数 {adds or '无'}")


def _write(res, dropped: pd.DataFrame, output: Path) -> None:
    keep = ["building_id", *[c for c in res.buildings.columns
                             if c.startswith(("dist_", "complete_"))], "geometry"]
    if output.exists():
        output.unlink()
    res.buildings[keep].to_crs(4326).to_file(output, layer="buildings", driver="GPKG")
    pyogrio.write_dataframe(res.coverage, output, layer="coverage", driver="GPKG")
    pyogrio.write_dataframe(dropped.astype({"category": "str", "points": "int64"}), output,
                            layer="dropped_categories", driver="GPKG")


def _echo_summary(res, output: Path) -> None:
    sm = res.summary
    net = sm["network"] or {}
    click.echo(f"步行网络: {net.get('nodes', 0)} 节点, {net.get('edges', 0)} 路段, "
               f"{net.get('components', 0)} 个连通分量; 接缝 {net.get('snapped_gaps', 0)} 处")
    click.echo(f"楼栋 {sm['buildings']} (未接入路网 {sm['unsnapped_buildings']}), "
               f"服务点 {sm['services']} (未接入 {sm['unsnapped_services']}), "
               f"类别 {len(sm['categories'])}")
    for rank, (lv, share) in enumerate(sm["complete_share"].items(), start=1):
        share_text = "无户数" if np.isnan(share) else f"{share:.1%}"
        click.echo(f"{LEVEL_LABELS_ZH.get(rank, f'{lv:g} m')} ({lv:g} m) 完整覆盖户数比例: "
                   f"{share_text}")
    click.echo(f"-> {output}")


COMMANDS = (access_command,)
