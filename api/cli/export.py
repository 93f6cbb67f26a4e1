"""``wangge export``: write a plan version as GeoPackage, GeoJSON, Shapefile zip, KML, CSV or XLSX."""

from __future__ import annotations

import io
import logging
import zipfile
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from api import audit
from api.db import session_scope
from api.errors import RequestError
from api.plans.exports import EXPORT_FORMATS, HEADER_STYLES, export_plan
from api.plans.state import plan_bounds
from api.plans.store import get_plan

__all__ = ["COMMANDS", "export_command"]

log = logging.getLogger(__name__)


@click.command("export", help="""Export plan PLAN_ID (grids with codes, building assignments, statistics).

\b
--format shp writes NAME.zip when -o ends in .zip, else a folder NAME/ holding
grids.shp and buildings.shp with their .shx/.dbf/.prj/.cpg. CSV and XLSX have
Chinese headers and values unless --headers canonical.
""")
@click.argument("plan_id", type=int)
@click.option("--format", "fmt", type=click.Choice(list(EXPORT_FORMATS)), default="gpkg", show_default=True,
              help="gpkg (grids + buildings layers), geojson (one layer), shp (zip or folder), kml, csv, xlsx.")
@click.option("--layer", type=click.Choice(["grids", "buildings"]), default="grids", show_default=True,
              help="Layer written by --format geojson.")
@click.option("--headers", type=click.Choice(list(HEADER_STYLES)), default="zh", show_default=True,
              help="CSV/XLSX column names: zh (中文表头) or canonical (grid_id, households …).")
@click.option("-o", "--output", "out", type=click.Path(path_type=Path), required=True,
              help="Output file (for shp: NAME.zip, or a folder NAME).")
@with_appcontext
def export_command(plan_id: int, fmt: str, layer: str, headers: str, out: Path) -> None:
    """Write plan *plan_id* to *out* and audit the export."""
    try:
        with session_scope(write=False) as session:  # a read: a running server's writers go on
            plan = get_plan(session, plan_id)
            result = export_plan(session, plan_id, fmt, bounds=plan_bounds(plan, current_app.config["WANGGE"]),
                                 layer=layer, headers=headers)
        written = _write(result.data, out, shapefile=fmt == "shp")
        audit.record_read(user="cli", action="plan.export", target=f"plan:{plan_id}",
                          detail={"format": fmt, "bytes": len(result.data), "path": str(written[0].parent
                                  if len(written) > 1 else written[0])})
    except RequestError as exc:
        raise click.ClickException(f"{exc.message}（{exc.fix}）") from None
    if len(written) == 1:
        click.echo(f"方案 {plan_id} 已导出 exported: {written[0]} ({len(result.data):,} bytes, {fmt})")
        return
    click.echo(f"方案 {plan_id} 已导出 exported to folder {written[0].parent} ({fmt}, {len(written)} files):")
    for path in written:
        click.echo(f"  {path.name} ({path.stat().st_size:,} bytes)")


def _write(data: bytes, out: Path, *, shapefile: bool) -> list[Path]:
    """Write *data* to *out*; a Shapefile zip goes to NAME.zip or is unpacked into folder NAME."""
    if not shapefile or out.suffix.lower() == ".zip":
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
        return [out]
    folder = out.with_suffix("") if out.suffix.lower() == ".shp" else out
    if folder.exists() and not folder.is_dir():
        raise click.ClickException(f"{folder} exists and is not a folder; choose another -o (e.g. plan.zip)")
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        zf.extractall(folder)
        return [folder / n for n in sorted(zf.namelist())]


COMMANDS = [export_command]
