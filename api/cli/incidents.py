"""``wangge incidents``: import work orders, metrics, categories, holidays, API keys, escalation."""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd
from flask import current_app
from flask.cli import with_appcontext

from api import audit, db
from geo.errors import LayerError, ReadError, ValidationFailed
from geo.spreadsheet import table_bytes

__all__ = ["COMMANDS", "incidents_group"]

EXIT_BAD_INPUT = 2
_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_BY = {"grid": "grid_code", "community": "community_id", "worker": "assignee", "category": "category",
       "source": "source"}


@click.group("incidents", help="Incidents (事件): import work orders, metrics, categories, holidays, Open311 keys.")
def incidents_group() -> None:
    pass


def _refuse(message: str, lines: list[str] | None = None) -> None:
    click.secho(message, fg="red", err=True)
    for line in lines or []:
        click.echo(f"  {line}", err=True)
    raise SystemExit(EXIT_BAD_INPUT)


@incidents_group.command("import", help="""Import work orders: 12345 hotline (XLSX/CSV/JSON), our case CSV, or Open311 JSON.

\b
12345 headers: 工单编号, 诉求内容, 类别, 地址 and/or 经度/纬度 (or 坐标 "lon,lat"), 受理时间, 时限
(3个工作日 / 24小时 / 2天), 状态. Rows already imported (same 工单编号) are skipped. Every bad
row is listed (row, column, problem, fix) and nothing is written.
""")
@click.option("--format", "fmt", type=click.Choice(["12345", "csv", "open311"]), required=True)
@click.argument("file", type=_FILE)
@click.option("--user", default="cli", show_default=True, help="Name recorded as the importer.")
@with_appcontext
def import_command(fmt: str, file: Path, user: str) -> None:
    from api.incidents.importer import import_workorders
    from geo.incidents.workorders import read_workorders

    try:
        frame = read_workorders(file, fmt)
        with db.session_scope() as s:
            result = import_workorders(s, frame, fmt, settings=current_app.config["WANGGE"], user=user)
    except ValidationFailed as exc:
        _refuse(f"导入失败，未写入任何数据 / import refused, nothing written: {len(exc.issues)} 个问题",
                [str(p) for p in exc.issues])
    except (LayerError, ReadError) as exc:
        _refuse(f"导入失败 / import failed: {exc}")
    click.echo(f"{result.rows} 行 rows: 新增 inserted {result.inserted}, 重复跳过 skipped {result.skipped}, "
               f"待定位 pending location {len(result.pending)}")


def _period(value: str, tz: str, name: str) -> pd.Timestamp:
    try:
        t = pd.Timestamp(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date; write 2026-01-01", param_hint=name) from None
    return t.tz_localize(tz) if t.tzinfo is None else t


@incidents_group.command("metrics", help="结案率, 按期结案率, 返工率, 延期率 and mean handling time of the cases due in [FROM, TO).")
@click.option("--from", "start", required=True, help="First day of the period (local date, e.g. 2026-01-01).")
@click.option("--to", "end", required=True, help="Day after the period (exclusive).")
@click.option("--by", type=click.Choice(list(_BY)), default=None, help="Group by this scope (default: all cases).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the table to this .xlsx or .csv file (else print it).")
@with_appcontext
def metrics_command(start: str, end: str, by: str | None, output: Path | None) -> None:
    from api.incidents.metrics import metrics_in_db
    from geo.incidents.metrics import METRIC_LABELS

    tz = current_app.config["WANGGE"]["incident_timezone"]
    lo, hi = _period(start, tz, "--from"), _period(end, tz, "--to")
    if hi <= lo:
        raise click.BadParameter("--to must be after --from", param_hint="--to")
    with db.session_scope(write=False) as s:
        table = metrics_in_db(s, start=lo, end=hi, by=_BY[by] if by else None).rename(columns=METRIC_LABELS)
    if output is None:
        click.echo(table.to_string())
    elif output.suffix.lower() in (".csv", ".xlsx"):
        output.write_bytes(table_bytes(table, output.suffix.lower()[1:], sheet_name="事件考核指标", index=True))
    else:
        raise click.BadParameter(f"unknown output type {output.suffix!r}; use .xlsx or .csv", param_hint="-o")
    if output is not None:
        click.echo(f"{len(table)} 行 rows -> {output}")


@incidents_group.command("export", help="""Status export back to the hotline: the cases of a source in the 12345 sheet shape.

\b
Columns: 工单编号, 类别, 诉求内容, 地址, 经度, 纬度, 受理时间, 时限, 状态 (the hotline's words:
待受理/已受理/已派遣/处理中/已办结/不予受理/已注销), 所属网格, 案件编号, 办结时间, 办理结果.
The file reads back with `wangge incidents import --format 12345`.
""")
@click.option("--format", "fmt", type=click.Choice(["12345"]), default="12345", show_default=True)
@click.option("--source", type=click.Choice(["12345", "csv", "open311", "worker", "public"]), default="12345",
              show_default=True, help="Which intake channel's cases to export.")
@click.option("--from", "start", default=None, help="Reported on or after this local date (e.g. 2026-01-01).")
@click.option("--to", "end", default=None, help="Reported before this local date.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Write to this .xlsx, .csv or .json file.")
@with_appcontext
def export_command(fmt: str, source: str, start: str | None, end: str | None, output: Path) -> None:
    from api.incidents.exports import EXPORT_TYPES, export_bytes, workorder_status

    kind = output.suffix.lower().lstrip(".")
    if kind not in EXPORT_TYPES:
        raise click.BadParameter(f"unknown output type {output.suffix!r}; use .xlsx, .csv or .json", param_hint="-o")
    settings = current_app.config["WANGGE"]
    lo = _period(start, settings["incident_timezone"], "--from").to_pydatetime() if start else None
    hi = _period(end, settings["incident_timezone"], "--to").to_pydatetime() if end else None
    with db.session_scope(write=False) as s:
        table = workorder_status(s, settings=settings, source=source, start=lo, end=hi)
    output.write_bytes(export_bytes(table, kind))
    click.echo(f"{len(table)} 条工单 work orders ({fmt}) -> {output}")


@incidents_group.command("categories", help="Load a category table (CSV/XLSX: 代码, 类型, 大类名称, 小类名称, 等级, 时限, 时限单位, 责任部门, 必填项).")
@click.argument("file", type=_FILE, required=False)
@click.option("--export", "export", type=click.Path(dir_okay=False, path_type=Path), help="Write the current table here instead.")
@with_appcontext
def categories_command(file: Path | None, export: Path | None) -> None:
    from api.incidents.tables import load_categories, replace_categories
    from geo.incidents.categories import category_frame, read_categories

    if export is not None:
        with db.session_scope() as s:
            table = category_frame(tuple(load_categories(s).values()))
        export.write_bytes(table_bytes(table, "xlsx" if export.suffix.lower() == ".xlsx" else "csv",
                                       sheet_name="事件类别"))
        click.echo(f"{len(table)} categories -> {export}")
        return
    if file is None:
        raise click.UsageError("give a FILE to load, or --export OUT")
    try:
        cats = read_categories(file)
    except (LayerError, ReadError) as exc:
        _refuse(f"类别表有误，未写入 / category table refused: {exc}")
    with db.session_scope() as s:
        click.echo(f"{replace_categories(s, cats)} categories loaded")


@incidents_group.command("calendar", help="Load the holiday calendar (CSV/XLSX: 日期, 类型 = 休 holiday or 班 make-up working day).")
@click.argument("file", type=_FILE)
@with_appcontext
def calendar_command(file: Path) -> None:
    from api.incidents.tables import replace_calendar
    from geo.incidents.workcalendar import read_calendar

    try:
        cal = read_calendar(file, timezone=current_app.config["WANGGE"]["incident_timezone"])
    except (LayerError, ReadError) as exc:
        _refuse(f"日历有误，未写入 / calendar refused: {exc}")
    with db.session_scope() as s:
        n = replace_calendar(s, cal)
    click.echo(f"{len(cal.holidays)} holidays, {len(cal.workdays)} make-up working days ({n} rows)")


@incidents_group.command("escalate", help="Run the 督办 escalation job once and tell assignees of due-soon and overdue cases (schedule it, e.g. every 15 minutes).")
@with_appcontext
def escalate_command() -> None:
    from api.incidents.cases import escalate_overdue
    from api.incidents.notify import scan_due

    with db.session_scope() as s:
        n = escalate_overdue(s, settings=current_app.config["WANGGE"])
        due = scan_due(s, settings=current_app.config["WANGGE"])
    click.echo(f"{n} case(s) escalated, {due} due-soon/overdue notice(s)")


@incidents_group.group("notify", help="Notifications: send the outbox (SMS / WeChat) and look at it.")
def notify_group() -> None:
    pass


@notify_group.command("send", help="Send the due outbox messages through notify_sender (run it every minute, or --loop).")
@click.option("--loop", "every", type=click.FloatRange(1, 3600), default=None,
              help="Keep running: send, then wait this many seconds, until stopped.")
@with_appcontext
def notify_send(every: float | None) -> None:
    import time

    from api.incidents.outbox import SenderError, drain_outbox, load_sender

    settings = current_app.config["WANGGE"]
    try:
        sender = load_sender(settings["notify_sender"], settings)
    except SenderError as exc:
        _refuse(str(exc))
    while True:
        counts = drain_outbox(db.session_scope, sender, settings=settings)
        click.echo(", ".join(f"{k} {v}" for k, v in counts.items()))
        if every is None:
            return
        time.sleep(every)


@notify_group.command("status", help="Outbox messages per status, and the failed ones with their errors.")
@click.option("--retry", is_flag=True, help="Queue the failed messages again (after fixing the gateway).")
@with_appcontext
def notify_status(retry: bool) -> None:
    from api.incidents.outbox import outbox_summary, retry_failed

    with db.session_scope(write=retry) as s:
        if retry:
            click.echo(f"{retry_failed(s)} failed message(s) queued again")
        summary = outbox_summary(s)
    click.echo(", ".join(f"{k} {v}" for k, v in sorted(summary["counts"].items())) or "outbox empty")
    for m in summary["failed"]:
        click.echo(f"  #{m.id} {m.channel} -> {m.username}: {m.attempts} attempts, {m.last_error}")


@incidents_group.command("demo", help="A year of synthetic incidents (合成数据) in the published grids (once; needs a published plan).")
@click.option("--per-grid-week", type=click.FloatRange(0.1, 500), default=3.0, show_default=True,
              help="Cases per grid per week.")
@click.option("--seed", type=int, default=42, show_default=True)
@with_appcontext
def demo_command(per_grid_week: float, seed: int) -> None:
    demo_incidents(per_grid_week=per_grid_week, seed=seed)


def demo_incidents(*, per_grid_week: float = 3.0, seed: int = 42) -> None:
    """Make the demo incidents and say what happened (also called by `wangge demo`)."""
    from api.incidents.demo import demo_cases

    with db.session_scope() as s:
        n = demo_cases(s, settings=current_app.config["WANGGE"], per_grid_week=per_grid_week, seed=seed)
    if n is None:
        click.echo("尚无已发布的网格方案，暂不生成演示事件 / no published plan yet: run `wangge incidents demo` after publishing")
    elif n == 0:
        click.echo("演示事件已存在 / demo incidents exist, skipped")
    else:
        click.secho(f"合成事件 synthetic incidents: {n}（一年，含超期、返工、延期）", fg="yellow")


@incidents_group.group("apikey", help="Open311 API keys (only their hash is stored).")
def apikey_group() -> None:
    pass


@apikey_group.command("create", help="Create a key for client NAME and print it (shown only once).")
@click.argument("name")
@with_appcontext
def apikey_create(name: str) -> None:
    from api.incidents.keys import KeyError311, create_key

    try:
        with db.session_scope() as s:
            key = create_key(s, name)
            audit.record(s, user="cli", action="incidents.apikey_create", target=f"open311:{name}", detail={})
    except KeyError311 as exc:
        _refuse(str(exc))
    click.echo(key)


@apikey_group.command("revoke", help="Revoke the key of client NAME.")
@click.argument("name")
@with_appcontext
def apikey_revoke(name: str) -> None:
    from api.incidents.keys import KeyError311, revoke_key

    try:
        with db.session_scope() as s:
            revoke_key(s, name)
            audit.record(s, user="cli", action="incidents.apikey_revoke", target=f"open311:{name}", detail={})
    except KeyError311 as exc:
        _refuse(str(exc))
    click.echo(f"revoked {name}")


COMMANDS = [incidents_group]
