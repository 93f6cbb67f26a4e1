"""``wangge patrol``: import track files, bind tracker devices, coverage reports (巡查)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import click
import pandas as pd
from flask import current_app
from flask.cli import with_appcontext

from api import audit, db
from api.localtime import local_text
from api.patrol.reports import BY_CHOICES, PERIODS, coverage_report, unvisited_report
from api.patrol.store import (
    PatrolError,
    bind_device,
    devices_listing,
    grids_for,
    import_tracks,
    user_by_name,
)
from geo.errors import ReadError
from geo.patrol.readers import read_track
from geo.spreadsheet import table_bytes

__all__ = ["COMMANDS", "patrol_group", "demo_patrol"]

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_COLUMNS_ZH = {"grid": "网格", "worker": "网格员", "period": "周期起始日", "buildings_total": "楼栋总数",
               "buildings_visited": "已巡楼栋", "households_total": "户数", "households_visited": "已巡户数",
               "building_coverage": "楼栋覆盖率", "household_coverage": "户覆盖率", "first_visit": "首次巡查",
               "last_visit": "最后巡查", "street_total_m": "街巷总长(米)", "street_walked_m": "已走街巷(米)",
               "street_share": "街巷覆盖率", "building_id": "楼栋编号"}


@click.group("patrol", help="Patrol (巡查): track files, tracker devices, coverage per grid / worker / day.")
def patrol_group() -> None:
    pass


@patrol_group.command("import", help="""Import track files for one worker.

\b
Formats: GPX, CSV/XLSX (lon/lat/time columns, 经度/纬度/时间 also understood), GeoJSON or
GeoPackage points with a time, GeoLife .plt. Declare --coords gcj02|bd09 for Gaode/Baidu
coordinates. Times without a zone are read in the patrol_timezone setting. Fixes already
stored (same worker and time) are skipped, so re-importing a file changes nothing.
""")
@click.option("--worker", required=True, help="Username of the worker who walked the tracks.")
@click.option("--coords", type=click.Choice(["wgs84", "gcj02", "bd09"]), default="wgs84", show_default=True,
              help="Coordinate system of CSV/XLSX/GeoJSON lon/lat.")
@click.argument("files", nargs=-1, required=True, type=_FILE)
@with_appcontext
def import_command(worker: str, coords: str, files: tuple[Path, ...]) -> None:
    settings = current_app.config["WANGGE"]
    try:
        tracks = [read_track(f, coords=coords, naive_tz=settings["patrol_timezone"]) for f in files]
        with db.session_scope() as s:
            stored, skipped = import_tracks(s, worker, [(f.name, t) for f, t in zip(files, tracks, strict=True)],
                                            by="cli", grids=grids_for(s, settings, {}), settings=settings)
    except (ReadError, PatrolError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"已导入 {stored} 个定位点，跳过已有 {skipped} 个 / stored {stored} fixes, skipped {skipped} already present")


@patrol_group.command("bind", help="Bind a tracker app's device id to a worker (unknown devices are refused).")
@click.argument("device_id")
@click.argument("username")
@click.option("--label", default=None, help="A note, e.g. the phone model.")
@with_appcontext
def bind_command(device_id: str, username: str, label: str | None) -> None:
    try:
        with db.session_scope() as s:
            bind_device(s, device_id, username, by="cli", label=label)
    except PatrolError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"设备 {device_id} 已绑定到 {username}")


@patrol_group.command("devices", help="List bound devices and the unknown devices that were refused.")
@with_appcontext
def devices_command() -> None:
    with db.session_scope() as s:
        listing = devices_listing(s)
    for d in listing["devices"]:
        click.echo(f"{d['device_id']}\t{d['username']}\t{'启用' if d['active'] else '停用'}")
    for u in listing["unknown"]:
        click.echo(f"{u['device_id']}\t未绑定（已拒收 {u['attempts']} 次，最近 {local_text(u['last_seen'])}）")


def _write_table(table: pd.DataFrame, out: Path, sheet: str = "巡查覆盖率") -> None:
    frame = table.copy()
    for col in ("first_visit", "last_visit"):
        if col in frame:
            frame[col] = frame[col].dt.tz_convert(current_app.config["WANGGE"]["patrol_timezone"]).dt.tz_localize(None)
    frame = frame.rename(columns=_COLUMNS_ZH)
    out.write_bytes(table_bytes(frame, "xlsx" if out.suffix.lower() == ".xlsx" else "csv", sheet_name=sheet))


def _table_path(out: Path | None, option: str) -> None:
    if out is not None and out.suffix.lower() not in (".csv", ".xlsx"):
        raise click.BadParameter(f"{out.name}: use a .csv or .xlsx file name", param_hint=option)


@patrol_group.command("coverage", help="""Patrol coverage (buildings and households visited / total) from stored fixes.

\b
A building is visited when a cleaned track passes within patrol_visit_m of its footprint.
--by grid: one row per grid; worker: per worker over their grids; day: per grid and day.
--period day|week|month splits each grid's or worker's rows (weeks start on Monday,
months on the 1st); --unvisited also writes the buildings not visited in the range
(per worker: the buildings of their grids they did not pass).
""")
@click.option("--from", "start", required=True, type=click.DateTime(["%Y-%m-%d"]), help="First day (local).")
@click.option("--to", "end", required=True, type=click.DateTime(["%Y-%m-%d"]), help="Last day (local), inclusive.")
@click.option("--by", type=click.Choice(BY_CHOICES), default="grid", show_default=True)
@click.option("--period", type=click.Choice(PERIODS), default=None,
              help="Rows per day, week or month (default: all the range; day for --by day).")
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="OUT.csv or OUT.xlsx")
@click.option("--unvisited", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the unvisited buildings to this .csv or .xlsx.")
@with_appcontext
def coverage_command(start: datetime, end: datetime, by: str, period: str | None, out: Path,
                     unvisited: Path | None) -> None:
    _table_path(out, "-o")
    _table_path(unvisited, "--unvisited")
    d0, d1 = start.date(), end.date()
    if d1 < d0:
        raise click.BadParameter(f"--to {d1} is before --from {d0}; swap them", param_hint="--to")
    settings = current_app.config["WANGGE"]
    with db.session_scope() as s:
        rep = coverage_report(s, settings=settings, start=d0, end=d1, by=by, period=period, now=datetime.now(UTC))
        audit.record(s, user="cli", action="patrol.coverage_export", target=out.name,
                     detail={"from": d0.isoformat(), "to": d1.isoformat(), "by": by, "period": period,
                             "rows": len(rep.table)})
    _write_table(rep.table, out)
    dropped = ", ".join(f"{k} {v}" for k, v in rep.cleaned.dropped.items() if v)
    click.echo(f"{len(rep.table)} 行写入 {out}；定位点 {rep.cleaned.n_input} 个，剔除：{dropped or '无'}")
    if unvisited is not None:
        missed = unvisited_report(rep, start=d0, end=d1, tz=settings["patrol_timezone"])
        _write_table(missed, unvisited, sheet="未巡楼栋")
        click.echo(f"未巡楼栋 {len(missed)} 栋写入 {unvisited}")


@patrol_group.command("purge", help="Delete raw fixes older than the retention period (patrol_retention_days).")
@click.option("--days", type=click.IntRange(min=1), default=None,
              help="Keep this many days instead of the patrol_retention_days setting.")
@with_appcontext
def purge_command(days: int | None) -> None:
    from datetime import timedelta

    from api.patrol.store import purge_fixes

    keep = days if days is not None else int(current_app.config["WANGGE"]["patrol_retention_days"])
    if keep <= 0:
        click.echo("patrol_retention_days = 0: 保留全部定位点，未删除 / keeping every fix")
        return
    before = datetime.now(UTC) - timedelta(days=keep)
    with db.session_scope() as s:
        n = purge_fixes(s, before)
    click.echo(f"已删除 {before:%Y-%m-%d %H:%M} UTC 之前的 {n} 个定位点 / deleted {n} fixes older than {keep} days")


@patrol_group.command("demo", help="""A month of synthetic patrol tracks for every worker account linked to a grid.


Each day each worker walks between a share of their grid's buildings (a different share
per worker; GPS noise, one silent gap, two outliers for cleaning to remove), today up to
now. Register grid workers of other grids get demo accounts worker2, … until --workers
accounts serve a grid. Needs a published plan and the register (`wangge register demo`
after publishing). Days a worker already has demo tracks on are left as they are.
""")
@click.option("--days", type=click.IntRange(min=1, max=366), default=30, show_default=True)
@click.option("--until", "until", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Last day (default: today, walked up to now).")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--workers", type=click.IntRange(min=0, max=50), default=6, show_default=True,
              help="Demo worker accounts (worker2, …) given to register grid workers until this many serve a grid.")
@with_appcontext
def demo_command(days: int, until: datetime | None, seed: int, workers: int) -> None:
    if not demo_patrol(days=days, until=until.date() if until else None, seed=seed, workers=workers):
        raise click.ClickException(_NO_WORKER)


_NO_WORKER = ("没有关联网格的网格员账号 / no worker account serves a grid: publish a plan and run "
              "`wangge register demo` first")


def demo_patrol(*, days: int = 30, until: date | None = None, seed: int = 42, workers: int = 6) -> bool:
    """Store and report the demo tracks (also called by `wangge demo`); False when no worker account serves a grid."""
    from api.patrol.demo import demo_tracks, ensure_demo_workers
    from api.users import DEMO_PASSWORD

    settings = current_app.config["WANGGE"]
    with db.session_scope() as s:
        made = ensure_demo_workers(s, workers)
    if made:
        click.secho(f"演示网格员账号 demo worker accounts: {', '.join(made)} (password {DEMO_PASSWORD!r}; 仅供演示 demo only)",
                    fg="yellow")
    with db.session_scope() as s:
        counts = demo_tracks(s, settings=settings, days=days, until=until, seed=seed)
    for user, n in counts.items():
        click.echo(f"{user}: {n} 个合成定位点 synthetic fixes（{days} 天巡查轨迹）")
    return bool(counts)


@patrol_group.command("route", help="""Suggested patrol loop of one grid on the walk network (巡查路线).

\b
Stops: buildings of key persons due or overdue a visit, plus the grid's other buildings
(those --worker has not passed that day, when given); --due-only keeps the due ones.
Prints the stops in walking order with distances, the loop length, minutes at
walk_speed_mps and the gap to a lower bound (1-tree); -o writes GeoJSON (loop + stops).
""")
@click.option("--grid", "key", required=True, help="Grid code.")
@click.option("--due-only", is_flag=True, help="Only buildings of key persons due or overdue a visit.")
@click.option("--worker", default=None, help="Leave out the buildings this worker already passed that day.")
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Day (default: today).")
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="OUT.geojson")
@with_appcontext
def route_command(key: str, due_only: bool, worker: str | None, day: datetime | None, out: Path | None) -> None:
    import json
    from zoneinfo import ZoneInfo

    from api.grids.service import GridNotFound
    from api.patrol.route import route_of_grid
    from geo.errors import LayerError

    settings = current_app.config["WANGGE"]
    d = day.date() if day else datetime.now(ZoneInfo(settings["patrol_timezone"])).date()
    try:
        with db.session_scope() as s:
            user = user_by_name(s, worker) if worker else None
            audit.record(s, user="cli", action="patrol.route_view", target=f"grid:{key}", detail={"date": d.isoformat()})
            r = route_of_grid(s, key, d, settings=settings, user=user, due_only=due_only)
    except (GridNotFound, LayerError, PatrolError) as exc:
        raise click.ClickException(str(exc).strip("'\"")) from None
    for st in r["stops"]:
        click.echo(f"{st['order']:>4}  {st['building_id']:<24} {'待走访' if st['reason'] == 'due' else '未巡'}"
                   f"  +{st['leg_m']:.0f} m  累计 {st['cumulative_m']:.0f} m")
    click.echo(f"网格 {key} {d}: {len(r['stops'])} 个点，环线 {r['length_m']:.0f} m，约 {r['minutes']:.0f} 分钟；"
               f"下界 {r['lower_bound_m']:.0f} m（差距 {100 * r['gap']:.1f}%）；无法到达 {len(r['unreachable'])} 个")
    if out is not None:
        features = [{"type": "Feature", "geometry": r["path"], "properties": {"length_m": r["length_m"]}}] if r["path"] else []
        features += [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [st["lon"], st["lat"]]},
                      "properties": {k: st[k] for k in ("order", "building_id", "reason", "leg_m")}} for st in r["stops"]]
        out.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False), "utf-8")
        click.echo(f"写入 {out}")


COMMANDS = (patrol_group,)
