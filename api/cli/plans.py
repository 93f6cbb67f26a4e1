"""``wangge plans``: grid plans of the workspace (partition into a draft version, list)."""

from __future__ import annotations

import time

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select
from tqdm import tqdm

from api import db
from api.errors import RequestError
from api.models import PlanVersion
from api.plans import jobs
from api.workspace import workspace_stats

__all__ = ["COMMANDS", "plans_group"]


@click.group("plans", help="Grid plans of the workspace (网格方案): partition into a draft, list versions.")
def plans_group() -> None:
    pass


@plans_group.command("partition", help="Partition the stored workspace (自动划分) into a new draft plan "
                     "version that planners can review and edit at /plans.")
@click.option("--name", default="自动划分方案", show_default=True, help="Name of the new plan version.")
@click.option("--min", "min_h", type=int, help="Fewest households per grid (setting grid_min_households).")
@click.option("--max", "max_h", type=int, help="Most households per grid (setting grid_max_households).")
@click.option("--target", type=int, help="Target households per grid (setting grid_target_households).")
@click.option("--micro", is_flag=True, help="Micro-grids (微网格) with the micro_grid_* bounds.")
@click.option("--seed", type=int, help="Random seed (setting partition_seed); same seed, same plan.")
@click.option("--register-households/--no-register-households", "register", default=None,
              help="Count households from the register where it has them (setting partition_register_households).")
@click.option("--if-none", is_flag=True, help="Do nothing when the workspace already has a plan (idempotent setup).")
@click.option("--user", default="cli", show_default=True, help="Author recorded on the plan and in the audit log.")
@with_appcontext
def partition(name: str, min_h: int | None, max_h: int | None, target: int | None, micro: bool,
              seed: int | None, register: bool | None, if_none: bool, user: str) -> None:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    with db.session_scope() as session:
        if workspace_stats(session)["empty"]:
            raise click.ClickException("工作区为空 / the workspace is empty: run `wangge import` or `wangge demo` first")
        existing = session.scalar(select(PlanVersion.id).limit(1))
    if if_none and existing is not None:
        click.echo("已有网格方案，跳过 / the workspace already has a plan, skipped (--if-none)")
        return
    body = {k: v for k, v in {"min_households": min_h, "max_households": max_h, "target_households": target,
                              "micro": micro, "seed": seed, "register_households": register}.items()
            if v is not None}
    try:
        job = jobs.submit_partition(app, user=user, params=jobs.partition_params(body, app.config["WANGGE"]),
                                    name=name)
    except RequestError as exc:
        raise click.ClickException(str(exc)) from None
    if not app.config["WANGGE"]["jobs_in_process"]:
        click.echo(f"任务 {job.job_id} 已排队，由 `wangge worker` 运行 / queued for `wangge worker` (jobs_in_process=false)")
    with tqdm(total=100, desc="网格划分", unit="%") as bar:
        while job.state in {"queued", "running"}:
            bar.set_postfix_str(job.message)
            bar.update(max(0, int(job.progress * 100) - bar.n))
            time.sleep(0.2)
            job = jobs.get_job(job.job_id)
        bar.update(100 - bar.n)
    if job.state != "done":
        raise click.ClickException(f"划分失败 / partition {job.state}: {job.message}")
    click.echo(f"{job.message}; 方案 plan {job.plan_id} (草稿 draft) -> /plans/{job.plan_id}")


@plans_group.command("list", help="List plan versions (方案版本) with status and author.")
@with_appcontext
def list_plans() -> None:
    with db.session_scope() as session:
        plans = session.scalars(select(PlanVersion).order_by(PlanVersion.id)).all()
        if not plans:
            click.echo("还没有网格方案 / no plans yet: run `wangge plans partition`")
        for p in plans:
            active = " 生效中 active" if p.is_active else ""
            click.echo(f"{p.id:>4}  {p.status:<9} {p.name}  ({p.author}, {p.created_at:%Y-%m-%d %H:%M}){active}")


COMMANDS = [plans_group]
