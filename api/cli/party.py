"""``wangge party``: centre-household links and the coverage of the grids by party cells (支部建在网格上)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from api import db

__all__ = ["COMMANDS", "party_group"]

EXIT_PROBLEMS = 2


@click.group("party", help="Party cells: 网格党支部/党小组 coverage, 党员中心户 links.")
def party_group() -> None:
    pass


@party_group.command("link", help="""Link every 党员中心户 to the households it looks after.

\b
Same grid, shortest walk along the streets (straight line where the network cannot say,
labelled), MIN to MAX households per centre, solved exactly; links fixed by hand are kept.
Reports unlinked households, centres under MIN or over MAX and grids needing more centres.
""")
@click.option("--min", "min_links", type=click.IntRange(min=0), default=None,
              help="Fewest households per centre (default: setting party_link_min).")
@click.option("--max", "max_links", type=click.IntRange(min=1), default=None,
              help="Most households per centre (default: setting party_link_max).")
@with_appcontext
def link_command(min_links: int | None, max_links: int | None) -> None:
    from api.party.service import link_households

    settings = current_app.config["WANGGE"]
    low = settings["party_link_min"] if min_links is None else min_links
    high = settings["party_link_max"] if max_links is None else max_links
    if low > high:
        raise click.UsageError(f"need 0 <= min_links <= max_links; got --min {low} --max {high}")
    with db.session_scope() as s:
        result = link_households(s, settings=settings, min_links=low, max_links=high)
    by_method = result.links["method"].value_counts().to_dict()
    click.echo(f"已结对 linked {len(result.links)} 户 households "
               f"(步行 walk {by_method.get('walk', 0)}, 直线 straight {by_method.get('straight', 0)}, "
               f"固定 fixed {by_method.get('fixed', 0)}); 未结对 unlinked {len(result.unlinked)}")
    bad = result.centres[result.centres["status"] != "ok"]
    for r in bad.itertuples():
        label = "超负荷 overloaded" if r.status == "overloaded" else "不足 under minimum"
        click.echo(f"  中心户 centre {r.centre} ({r.grid}): {r.linked} 户 {label}")
    need = result.grids[result.grids["centres_needed"] > 0]
    for r in need.itertuples():
        click.echo(f"  网格 {r.grid}: {r.unlinked} 户未结对，还需 {r.centres_needed} 个党员中心户 more centres needed")


@party_group.command("check", help="Grids without a 网格党支部/党小组, branches across communities, cells without secretary.")
@with_appcontext
def check_command() -> None:
    from api.party.service import coverage

    with db.session_scope() as s:
        report = coverage(s)
    total = len(report["grids"])
    click.echo(f"{total - len(report['without_cell'])} / {total} 个网格有党支部或党小组 grids with a party cell")
    for key in report["without_cell"]:
        click.echo(f"  无党组织 no party cell: {key}")
    for b in report["spanning_branches"]:
        click.echo(f"  跨社区党支部 branch across communities: {b['name']} ({'、'.join(b['communities'])})")
    for o in report["without_secretary"]:
        click.echo(f"  缺书记 no secretary: {o['name']}")
    if report["without_cell"] or report["spanning_branches"] or report["without_secretary"]:
        raise SystemExit(EXIT_PROBLEMS)


COMMANDS = [party_group]
