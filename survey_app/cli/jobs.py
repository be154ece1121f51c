"""`flask jobs work|list|retry`: the background jobs of `services.jobs`
(figures to recompute, webhooks and e-mails to deliver, large exports)."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select

from ..extensions import db
from ..models import Job
from .common import fail

jobs_cli = AppGroup("jobs", help="Background jobs: run them, list them, re-queue a dead one.")


@jobs_cli.command("work")
@click.option("--once", is_flag=True, help="Run the jobs due now, then exit.")
@click.option("--interval", type=float, default=None, help="Seconds between looks (default JOBS_POLL_SECONDS).")
def jobs_work(once, interval):
    """Run due jobs until stopped (Ctrl-C), or once."""
    from ..services import jobs

    app = current_app._get_current_object()
    interval = float(interval if interval is not None else app.config["JOBS_POLL_SECONDS"])
    try:
        ran = jobs.work(app, once=once, interval=interval)
    except KeyboardInterrupt:
        return
    click.echo(f"Đã chạy {ran} việc.")


@jobs_cli.command("list")
@click.option("--status", type=click.Choice(["pending", "running", "done", "dead"]), default=None)
@click.option("--limit", type=int, default=50, show_default=True)
@with_appcontext
def jobs_list(status, limit):
    """List jobs, newest first (tab-separated: id, kind, status, attempts, run after, last error)."""
    q = select(Job).order_by(Job.id.desc()).limit(limit)
    if status:
        q = q.where(Job.status == status)
    for job in db.session.scalars(q):
        click.echo("\t".join([str(job.id), job.kind, job.status, str(job.attempts),
                              job.run_after.isoformat(timespec="seconds"), (job.last_error or "-")[:120]]))


@jobs_cli.command("retry")
@click.argument("job_id", type=int)
@with_appcontext
def jobs_retry(job_id):
    """Queue a dead or finished job again, due now."""
    from ..services import jobs

    try:
        job = jobs.retry(job_id)
    except LookupError:
        fail(f"Không có việc số {job_id}.")
    except ValueError:
        fail(f"Việc số {job_id} đang chờ hoặc đang chạy: không cần chạy lại.")
    click.echo(f"Đã xếp lại việc số {job.id} ({job.kind}).")
