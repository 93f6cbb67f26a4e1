"""``wangge db copy`` (move a workspace to another database), ``wangge backup`` and ``wangge restore``.

``db copy`` is added to the ``db`` group defined with ``wangge serve`` (``db upgrade``, ``db current``).
"""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

from api import db
from api.backup import BackupError, backup, restore
from api.cli.serve import db_group
from api.dbcopy import TargetNotEmpty, copy_database, format_fingerprints

__all__ = ["COMMANDS", "copy_command", "backup_command", "restore_command"]

#: Exit code when the target refused (not empty) or a tool failed: nothing was changed.
EXIT_REFUSED = 2
#: Exit code when the data arrived but a fingerprint differs.
EXIT_DIFFERENT = 1


def _engine():
    return db.get_db().engine


def _echo_check(lines: list[str], equal: bool) -> None:
    for line in lines:
        click.echo(line)
    if equal:
        click.secho("一致 / identical: every table's row count and checksums match", fg="green")
    else:
        click.secho("不一致 / DIFFERENT: see the tables marked DIFFERENT", fg="red", err=True)


@db_group.command("copy", help="Copy every table of this workspace's database into another one, "
                               "then compare row counts and checksums (geometry included) table by table.")
@click.option("--to", "target_url", required=True, metavar="URL",
              help="Target database, e.g. postgresql+psycopg://user:pass@host/db (schema created if missing).")
@click.option("--from", "source_url", default=None, metavar="URL",
              help="Source database (default: this app's, i.e. WANGGE_DATABASE_URL or instance/wangge.db).")
@click.option("--force", is_flag=True, help="Replace the rows a non-empty target already holds.")
@with_appcontext
def copy_command(target_url: str, source_url: str | None, force: bool) -> None:
    source = db.make_engine(source_url) if source_url else _engine()
    target = db.make_engine(target_url)
    try:
        report = copy_database(source, target, force=force)
    except TargetNotEmpty as exc:
        raise click.exceptions.Exit(_refuse(str(exc))) from None
    finally:
        target.dispose()
        if source_url:
            source.dispose()
    click.echo(f"复制 copied {report.rows:,} rows: {source.url.render_as_string()} -> {target.url.render_as_string()}")
    _echo_check(format_fingerprints(report.source, report.target), report.equal)
    if not report.equal:
        raise click.exceptions.Exit(EXIT_DIFFERENT)


def _refuse(message: str) -> int:
    click.secho(f"未执行 / refused, nothing changed: {message}", fg="red", err=True)
    return EXIT_REFUSED


@click.command("backup", help="Back up the database while the app runs: a consistent snapshot in FILE "
                              "(SQLite file, or pg_dump custom format) plus FILE.manifest.json with "
                              "every table's row count and checksums.")
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Backup file to write (its manifest goes beside it).")
@with_appcontext
def backup_command(output: Path) -> None:
    try:
        result = backup(_engine(), output)
    except BackupError as exc:
        raise click.exceptions.Exit(_refuse(str(exc))) from None
    rows = sum(t.rows for t in result.tables)
    click.echo(f"备份完成 / backup done ({result.backend}): {rows:,} rows in {len(result.tables)} tables")
    click.echo(f"  {result.path}  ({result.path.stat().st_size:,} bytes)")
    click.echo(f"  {result.manifest}")


@click.command("restore", help="Restore a backup made by `wangge backup` into this app's database and "
                               "verify every table against the backup's manifest.")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace the data the database already holds.")
@with_appcontext
def restore_command(file: Path, force: bool) -> None:
    try:
        result = restore(_engine(), file, force=force)
    except (TargetNotEmpty, BackupError) as exc:
        raise click.exceptions.Exit(_refuse(str(exc))) from None
    click.echo(f"恢复 restored {sum(t.rows for t in result.found):,} rows from {file}")
    _echo_check(format_fingerprints(result.expected, result.found), result.equal)
    if not result.equal:
        raise click.exceptions.Exit(EXIT_DIFFERENT)


# `db copy` joins the `db` group of api.cli.serve (upgrade, current, revision).
COMMANDS = [backup_command, restore_command]
