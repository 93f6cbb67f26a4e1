"""``wangge boards``: print grid notice boards (网格公示牌) as PDF/PNG, list what is missing."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from tqdm import tqdm

from api import db

__all__ = ["COMMANDS", "boards_group"]

EXIT_MISSING = 2


@click.group("boards", help="Grid notice boards (网格公示牌): A3/A4 PDF and PNG, one grid or all.")
def boards_group() -> None:
    pass


@boards_group.command("print", help="""Print the boards of one grid, a community or all active grids.

\b
Writes <grid code>.pdf|png per grid into DIR, plus boards-all.pdf (every board, merged)
and boards.zip. Grids missing mandatory fields (网格长, phone, party cell, …) are listed and
not printed; the command then exits 2. --drafts prints them with 待补充 instead.
""")
@click.option("--grid", "grid", default=None, help="One grid code.")
@click.option("--community", default=None, help="Every grid of one community (community id).")
@click.option("--all", "every", is_flag=True, help="Every active grid.")
@click.option("--size", type=click.Choice(["A3", "A4"]), default="A3", show_default=True)
@click.option("--orientation", type=click.Choice(["portrait", "landscape"]), default="portrait", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["pdf", "png", "both"]), default="pdf", show_default=True)
@click.option("--drafts", is_flag=True, help="Print incomplete boards with 待补充 where fields are missing.")
@click.option("-o", "--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder (created).")
@with_appcontext
def print_command(grid: str | None, community: str | None, every: bool, size: str, orientation: str, fmt: str,
                  drafts: bool, out: Path) -> None:
    from api.boards.jobs import photo_dir, select_grids
    from api.boards.service import print_batch
    from api.boards.sources import load_sources
    from api.grids.service import GridNotFound

    settings = current_app.config["WANGGE"]
    with db.session_scope() as s:
        try:
            keys = select_grids(s, grid=grid, community=community, every=every)
        except (ValueError, GridNotFound) as exc:
            raise click.UsageError(str(exc).strip("'\"")) from None
        src = load_sources(s, keys=keys)
    with tqdm(total=len(keys), desc="公示牌 boards", unit="grid", disable=len(keys) < 2) as bar:
        result = print_batch(src, keys, out, settings=settings, photo_dir=photo_dir(current_app.instance_path, settings),
                             size=size, orientation=orientation, fmt=fmt, drafts=drafts,
                             progress=lambda done, total: bar.update(1))
    from api.boards.versions import record_prints

    with db.session_scope() as s:
        record_prints(s, result.versions, size=size, orientation=orientation, user="cli")
    click.echo(f"已生成 printed {len(result.printed)} 块公示牌 boards -> {out}")
    if result.refused:
        click.secho(f"{len(result.refused)} 个网格缺少必填内容，未打印 / grids missing mandatory fields, not printed "
                    "(补全后重印，或用 --drafts 打印草稿):", fg="red", err=True)
        for key, missing in result.refused.items():
            click.echo(f"  {key}: " + "；".join(missing), err=True)
        raise SystemExit(EXIT_MISSING)


@boards_group.command("check", help="List the active grids whose boards miss mandatory fields (nothing printed).")
@with_appcontext
def check_command() -> None:
    from api.boards.pages import board_status

    with db.session_scope() as s:
        rows = board_status(s)
    bad = [r for r in rows if r["missing"]]
    for r in bad:
        click.echo(f"{r['key']}: " + "；".join(r["missing"]))
    click.echo(f"{len(rows) - len(bad)} / {len(rows)} 个网格可打印 printable")
    if bad:
        raise SystemExit(EXIT_MISSING)


@boards_group.command("stale", help="List grids whose printed boards are out of date (boundary, staff or content changed).")
@with_appcontext
def stale_command() -> None:
    from api.boards.jobs import photo_dir
    from api.boards.versions import stale_boards

    settings = current_app.config["WANGGE"]
    with db.session_scope() as s:
        report = stale_boards(s, settings=settings, photo_dir=photo_dir(current_app.instance_path, settings))
    for row in report["stale"]:
        click.echo(f"需重印 reprint {row['key']}: {row['reason']}")
    click.echo(f"{len(report['stale'])} 块需重印 out of date; {len(report['never'])} 个网格从未打印 never printed")


COMMANDS = [boards_group]
