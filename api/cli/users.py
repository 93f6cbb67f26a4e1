"""``wangge users``: create, list, change password, disable, enable and unlock accounts (用户管理)."""

from __future__ import annotations

import sys
from collections.abc import Callable

import click
from flask.cli import with_appcontext
from sqlalchemy.orm import Session

from api import audit, db
from api.models import ROLES
from api.users import UserError, create_user, list_users, set_active, set_password, unlock_user

__all__ = ["COMMANDS", "users_group"]


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("密码 password", hide_input=True, confirmation_prompt=True)


def _run(action: str, target: str, work: Callable[[Session], object], detail: dict | None = None) -> None:
    """Run *work(session)* in one transaction with an audit row; user errors exit 1 with the message."""
    try:
        with db.session_scope() as session:
            work(session)
            audit.record(session, user="cli", action=action, target=target, detail=detail or {})
    except UserError as exc:
        raise click.ClickException(str(exc)) from None


@click.group("users", help="Manage user accounts (用户管理): roles admin, planner, worker, viewer.")
def users_group() -> None:
    pass


@users_group.command("create", help="Create a user (新建用户). The password is asked twice, or read from stdin.")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True,
              help="admin 管理员, planner 规划员, worker 网格员, viewer 只读.")
@click.option("--name", "display_name", help="Display name, e.g. 张三.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@with_appcontext
def create(username: str, role: str, display_name: str | None, password_stdin: bool) -> None:
    password = _read_password(password_stdin)
    _run("user.create", f"user:{username}",
         lambda s: create_user(s, username, password, role=role, display_name=display_name),
         detail={"role": role})
    click.echo(f"已创建用户 created user {username} ({role})")


@users_group.command("list", help="List users (用户列表).")
@with_appcontext
def list_command() -> None:
    with db.session_scope() as session:
        users = list_users(session)
        click.echo(f"{'username':<20} {'role':<8} {'active':<6} {'locked until':<26} name")
        for u in users:
            locked = u.locked_until.isoformat(timespec="seconds") if u.locked_until else "-"
            click.echo(f"{u.username:<20} {u.role:<8} {'yes' if u.active else 'no':<6} {locked:<26} "
                       f"{u.display_name or ''}")


@users_group.command("set-password", help="Set a new password (重置密码); also unlocks the account.")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@with_appcontext
def set_password_command(username: str, password_stdin: bool) -> None:
    password = _read_password(password_stdin)
    _run("user.set_password", f"user:{username}", lambda s: set_password(s, username, password))
    click.echo(f"已更新密码 password changed for {username}")


def _activation_command(name: str, *, active: bool, help_text: str, done: str) -> click.Command:
    @users_group.command(name, help=help_text)
    @click.argument("username")
    @with_appcontext
    def command(username: str) -> None:
        _run(f"user.{name}", f"user:{username}", lambda s: set_active(s, username, active=active))
        click.echo(f"{done} {username}")

    return command


disable = _activation_command("disable", active=False, done="已停用 disabled",
                              help_text="Disable a user (停用): they can no longer log in.")
enable = _activation_command("enable", active=True, done="已启用 enabled",
                             help_text="Enable a disabled user again (启用).")


@users_group.command("unlock", help="Lift login lock-outs and delays of a user from every client (解锁).")
@click.argument("username")
@with_appcontext
def unlock_command(username: str) -> None:
    lifted: list[int] = []
    _run("user.unlock", f"user:{username}", lambda s: lifted.append(unlock_user(s, username)))
    click.echo(f"已解锁 unlocked {username} ({lifted[0]} lock(s) lifted)")


COMMANDS = [users_group]
