"""``wangge worker``: run background jobs (partitions, later batches) in this process."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from api.jobs.queue import run_worker

__all__ = ["COMMANDS", "worker"]


@click.command("worker", help="Run background jobs (后台任务: partitions, batches) until Ctrl+C. "
                              "Needed when the setting jobs_in_process is false (e.g. several web "
                              "processes or machines sharing a Redis jobs_url).")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Jobs that run at once (default: the setting job_workers).")
@with_appcontext
def worker(workers: int | None) -> None:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    n = workers or app.config["WANGGE"]["job_workers"]
    click.echo(f"Wangge 后台任务 worker: {n} job(s) at once; Ctrl+C stops after running jobs end")
    run_worker(app, workers=workers)


COMMANDS = [worker]
