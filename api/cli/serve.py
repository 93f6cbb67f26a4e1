"""``wangge serve`` (run the web app) and ``wangge db`` (database migrations)."""

from __future__ import annotations

import os

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from werkzeug.serving import run_simple

from api import db
from api.jobs import start_consumer
from api.jobs.queue import abandon_running
from api.requestlog import MaskedRequestHandler
from api.workspace import workspace_stats

__all__ = ["COMMANDS", "serve", "db_group"]


@click.command("serve", help="Run the Wangge web app (启动服务) on this machine; stop it with Ctrl+C.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 makes it reachable from other machines.")
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True, help="Port.")
@click.option("--debug", is_flag=True, help="Debug mode: reload on code changes, show tracebacks (never in production).")
@click.option("--cert", type=click.Path(exists=True, dir_okay=False), default=None,
              help="TLS certificate (PEM): serve HTTPS. Phones need HTTPS for 'locate me' (browser geolocation).")
@click.option("--key", type=click.Path(exists=True, dir_okay=False), default=None, help="Private key (PEM) of --cert.")
@click.option("--prod", is_flag=True,
              help="Production: gunicorn with server_workers web processes plus job_processes job processes; "
                   "SIGTERM stops and SIGHUP restarts gracefully (docs/DEPLOY.md).")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="With --prod: web worker processes (default: the setting server_workers).")
@click.option("--log-format", type=click.Choice(["json", "text"]), default=None,
              help="Log lines (default: json with --prod, else the setting log_format).")
@with_appcontext
def serve(host: str, port: int, debug: bool, cert: str | None, key: str | None, prod: bool,
          workers: int | None, log_format: str | None) -> None:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    with db.session_scope() as session:
        stats = workspace_stats(session)
    if stats["empty"]:
        click.secho("工作区为空 / the workspace is empty: load data with `wangge import` or `wangge demo`",
                    fg="yellow")
    cert, key = _tls_files(app, cert, key)
    scheme = "https" if cert else "http"
    click.echo(f"Wangge 网格: {scheme}://{host}:{port}{app.config['WANGGE']['url_prefix']}/  "
               f"(database {app.config['DATABASE_URL']})")
    if prod:
        if debug:
            raise click.UsageError("--prod and --debug exclude each other: debug mode is never for production")
        from api.server.prod import serve_prod

        serve_prod(app, host=host, port=port, cert=cert, key=key, workers=workers, log_format=log_format or "json")
        return
    if workers is not None:
        raise click.UsageError("--workers needs --prod (the development server is one process)")
    _start_jobs(app, debug)
    # app.run() is a no-op under the Flask CLI (FLASK_RUN_FROM_CLI), so serve with werkzeug.
    try:
        run_simple(host, port, app, threaded=True, use_reloader=debug, use_debugger=debug,
                   ssl_context=(cert, key) if cert and key else None, request_handler=MaskedRequestHandler)
    finally:
        abandon_running(app)


def _tls_files(app: Flask, cert: str | None, key: str | None) -> tuple[str | None, str | None]:
    """--cert/--key, else the settings tls_cert_file/tls_key_file; both or neither, files that exist."""
    settings = app.config["WANGGE"]
    if cert is None and key is None:
        cert, key = str(settings["tls_cert_file"]) or None, str(settings["tls_key_file"]) or None
        where = "the settings tls_cert_file and tls_key_file"
    else:
        where = "--cert and --key"
    if (cert is None) != (key is None):
        raise click.UsageError(f"{where} go together: give both to serve HTTPS, or neither")
    for path in (cert, key):
        if path is not None and not os.path.isfile(path):
            raise click.UsageError(f"{where}: file {path!r} does not exist; give the PEM file's path")
    return cert, key


def _start_jobs(app: Flask, debug: bool) -> None:
    """Run background jobs in this process too, unless `wangge worker` does (jobs_in_process)."""
    # Under the debug reloader only the child that serves requests runs jobs.
    if not app.config["WANGGE"]["jobs_in_process"] or (debug and os.environ.get("WERKZEUG_RUN_MAIN") != "true"):
        return
    start_consumer(app)
    click.echo(f"后台任务 background jobs: {app.config['WANGGE']['job_workers']} at once in this process")


@click.group("db", help="Database schema (数据库): upgrade to the newest migration, show the revision.")
def db_group() -> None:
    pass


@db_group.command("upgrade", help="Upgrade the schema to REVISION (default: the newest). Startup does this too.")
@click.argument("revision", default="head")
@with_appcontext
def upgrade(revision: str) -> None:
    engine = db.get_db().engine
    reached = db.upgrade(engine, revision)
    click.echo(f"数据库版本 schema at revision {reached} (newest {db.head_revision()})")


@db_group.command("current", help="Show the schema revision of the database.")
@with_appcontext
def current() -> None:
    click.echo(f"{db.current_revision(db.get_db().engine)} (newest {db.head_revision()})")


@db_group.command("revision", help="Developers: write a new migration from model changes (autogenerate).")
@click.option("-m", "--message", required=True, help="What the migration changes.")
@with_appcontext
def revision(message: str) -> None:
    from alembic import command

    command.revision(db.alembic_config(db.get_db().engine), message=message, autogenerate=True)


COMMANDS = [serve, db_group]
