"""The ``wangge`` command line: one click group, one module per command group."""

from __future__ import annotations

import click
from flask.cli import FlaskGroup

__all__ = ["main"]


def _create_app():
    from api import create_app

    return create_app()


@click.group(
    cls=FlaskGroup,
    create_app=_create_app,
    add_default_commands=False,
    add_version_option=False,
    set_debug_flag=False,
    help="Wangge 网格: community grid governance. Run `wangge COMMAND --help` for each command.",
)
def main() -> None:
    pass


def _register() -> None:
    from api.cli import (
        access,
        boards,
        db,
        export,
        imports,
        incidents,
        partition,
        party,
        patrol,
        plans,
        register,
        serve,
        users,
        worker,
    )

    for module in (imports, serve, users, partition, plans, access, export, worker, register, boards, party, patrol, incidents,
                   db):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
