"""``wangge register``: import register sheets, grant unmask, load categories, demo register (网格登记册)."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from api import audit, db
from api.models import PlanVersion, User
from api.register.crypto import cipher_for
from geo.errors import LayerError, ReadError, ValidationFailed
from geo.register.columns import KINDS, parse_field_options

__all__ = ["COMMANDS", "register_group"]

EXIT_BAD_INPUT = 2
_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def _cipher() -> object:
    return cipher_for(current_app.instance_path, current_app.config["WANGGE"])


@click.group("register", help="The grid register (网格登记册): staff, residents, key persons, party organisation.")
def register_group() -> None:
    pass


@register_group.command("import", help="""Import a register sheet (XLSX or CSV in UTF-8/GBK/GB18030).

\b
Chinese headers (姓名, 身份证号, 联系电话, 楼栋编号, 地址, 单元, 门牌, 经度, 纬度, ...) are
recognised; map others with --field SRC=DST. Rows are matched to buildings by building id,
standard address or lon/lat (declare --coords gcj02|bd09 for Gaode/Baidu coordinates).
Every bad row is listed (row, problem, fix) and nothing is written; re-imports update.
""")
@click.option("--kind", type=click.Choice(KINDS), required=True, help="What the sheet holds.")
@click.argument("file", type=_FILE)
@click.option("--field", "fields", multiple=True, help="Column mapping SRC=DST, e.g. --field 户主=name (repeatable).")
@click.option("--coords", type=click.Choice(["wgs84", "gcj02", "bd09", "cgcs2000"]), default="wgs84",
              show_default=True, help="Coordinate system of lon/lat columns.")
@click.option("--user", default="cli", show_default=True, help="Name recorded in the audit log.")
@with_appcontext
def import_command(kind: str, file: Path, fields: tuple[str, ...], coords: str, user: str) -> None:
    from api.register.importer import import_sheet
    from geo.register.sheets import read_register_sheet

    try:
        field_map = parse_field_options(fields)
        sheet = read_register_sheet(file, kind=kind, field_map=field_map)
        with db.session_scope() as s:
            result = import_sheet(s, kind, sheet, cipher=_cipher(), settings=current_app.config["WANGGE"],
                                  user=user, field_map=field_map, coords=coords, source=file.name)
    except ValidationFailed as exc:
        click.secho(f"导入失败，未写入任何数据 / import refused, nothing written: {len(exc.issues)} 个问题", fg="red",
                    err=True)
        for p in exc.issues:
            click.echo(f"  {p}", err=True)
        raise SystemExit(EXIT_BAD_INPUT) from None
    except (LayerError, ReadError) as exc:
        click.secho(f"导入失败 / import failed: {exc}", fg="red", err=True)
        raise SystemExit(EXIT_BAD_INPUT) from None
    click.echo(f"{kind}: {result.rows} 行 rows, 新增 inserted {result.inserted}, 更新 updated {result.updated}")


@register_group.command("grant", help="Grant a permission beyond the role: unmask (see ID numbers and phones in clear).")
@click.argument("username")
@click.argument("permission", type=click.Choice(["unmask"]))
@click.option("--revoke", is_flag=True, help="Take the permission away instead.")
@with_appcontext
def grant_command(username: str, permission: str, revoke: bool) -> None:
    from api.register.models import RegisterGrant

    with db.session_scope() as s:
        user = s.scalar(select(User).where(User.username == username))
        if user is None:
            raise click.ClickException(f"用户 {username} 不存在 / no such user; create it with `wangge users create`")
        grant = s.scalar(select(RegisterGrant).where(RegisterGrant.user_id == user.id,
                                                     RegisterGrant.permission == permission))
        if revoke and grant is not None:
            s.delete(grant)
        elif not revoke and grant is None:
            s.add(RegisterGrant(user_id=user.id, permission=permission, granted_by="cli"))
        audit.record(s, user="cli", action="register.revoke" if revoke else "register.grant",
                     target=f"user:{username}", detail={"permission": permission})
    click.echo(f"{'已撤销 revoked' if revoke else '已授权 granted'} {permission} -> {username}")


@register_group.command("categories", help="Load the key-person category table (CSV: 代码,名称,低风险走访天数,高风险走访天数).")
@click.argument("file", type=_FILE)
@with_appcontext
def categories_command(file: Path) -> None:
    from api.register.models import KeyPersonCategory
    from geo.register.categories import read_categories

    try:
        cats = read_categories(file)
    except LayerError as exc:
        raise click.ClickException(str(exc)) from None
    with db.session_scope() as s:
        for c in cats:
            s.merge(KeyPersonCategory(**c.__dict__))
        audit.record(s, user="cli", action="register.categories", target="categories", detail={"count": len(cats)})
    click.echo(f"{len(cats)} 个类别 categories loaded")


@register_group.command("demo", help="Synthetic register for the demo (合成数据): people, key persons, party, staff.")
@click.option("--publish", is_flag=True, help="Publish the newest plan first when no plan is active (demo only).")
@click.option("--seed", type=int, default=42, show_default=True)
@with_appcontext
def demo_command(publish: bool, seed: int) -> None:
    from api.grids.service import active_plans
    from api.plans.store import publish as publish_plan
    from api.register.demo import demo_people, demo_staff

    settings = current_app.config["WANGGE"]
    with db.session_scope() as s:
        if publish and not active_plans(s):
            newest = s.scalar(select(PlanVersion).order_by(PlanVersion.id.desc()).limit(1))
            if newest is not None:
                publish_plan(s, newest, user="demo")
                click.echo(f"演示：已发布方案 plan {newest.id} published")
        people = demo_people(s, cipher=_cipher(), settings=settings, seed=seed)
        staff = demo_staff(s, cipher=_cipher(), settings=settings, seed=seed)
        from api.register.models import RegisterGrant

        admin = s.scalar(select(User).where(User.username == "admin"))
        if admin is not None and s.scalar(select(RegisterGrant.id).where(RegisterGrant.user_id == admin.id)) is None:
            s.add(RegisterGrant(user_id=admin.id, permission="unmask", granted_by="demo"))
    click.secho(f"合成登记册 synthetic register: {people or '已存在 exists'}; 工作人员 staff {staff}", fg="yellow")


COMMANDS = [register_group]
