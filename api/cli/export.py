"""``wangge export``: write a plan version as GeoPackage, GeoJSON, Shapefile zip, KML, CSV or XLSX."""

from __future__ import annotations

import logging
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from api import audit
from api.db import session_scope
from api.plans.exports import EXPORT_FORMATS, export_plan
from api.plans.state import PlanRequestError, plan_bounds
from api.plans.store import get_plan

__all__ = ["COMMANDS", "export_command"]

log = logging.getLogger(__name__)


@click.command("export", help="Export plan PLAN_ID (grids with codes, building assignments, statistics).")
@click.argument("plan_id", type=int)
@click.option("--format", "fmt", type=click.Choice(list(EXPORT_FORMATS)), default="gpkg", show_default=True,
              help="gpkg (grids + buildings layers), geojson (one layer), shp (zip), kml, csv, xlsx.")
@click.option("--layer", type=click.Choice(["grids", "buildings"]), default="grids", show_default=True,
              help="Layer written by --format geojson.")
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output file.")
@with_appcontext
def export_command(plan_id: int, fmt: str, layer: str, out: Path) -> None:
    """Write plan *plan_id* to *out* and audit the export."""
    try:
        with session_scope(write=False) as session:  # a read: a running server's writers go on
            plan = get_plan(session, plan_id)
            result = export_plan(session, plan_id, fmt, bounds=plan_bounds(plan, current_app.config["WANGGE"]),
                                 layer=layer)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(result.data)
        audit.record_read(user="cli", action="plan.export", target=f"plan:{plan_id}",
                          detail={"format": fmt, "bytes": len(result.data), "path": str(out)})
    except PlanRequestError as exc:
        raise click.ClickException(f"{exc.message}（{exc.fix}）") from None
    click.echo(f"方案 {plan_id} 已导出 exported: {out} ({len(result.data):,} bytes, {fmt})")


COMMANDS = [export_command]
