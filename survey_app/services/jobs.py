"""Background jobs: the one place where work is done after the request that
asked for it (figures to recompute, webhooks and e-mails to deliver, large
exports to write).

A job is a row of `jobs`, added to the caller's session by `enqueue`, so it
is committed (or rolled back) with the change that needs it.  A worker —
`flask jobs work`, or the thread that `start_in_process` starts in a server
process when JOBS_IN_PROCESS is on — calls `run_due`, which claims due jobs
one by one (an UPDATE guarded by the status, so two workers never run the
same job), runs the handler registered for the job's kind in a transaction of
its own and records the outcome.

A handler that raises is retried after `backoff * 2 ** (attempts - 1)`
seconds; after `max_attempts` runs the job is `dead` (the dead-letter list)
until `retry` queues it again.  A job whose worker died while running it is
claimed again once its lease (`JOBS_LEASE_SECONDS`) has passed.

Handlers live in the modules of `HANDLER_MODULES`, imported before the first
run so that their `@handler` decorators have registered.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import logging
import threading
import time
from typing import Callable, Optional

from sqlalchemy import or_, select, update

from ..extensions import db
from ..models import Job, utcnow

log = logging.getLogger(__name__)

#: Modules whose import registers job handlers (one line per module).
HANDLER_MODULES: tuple[str, ...] = (
    "survey_app.services.webhooks",
    "survey_app.staff.figures",  # figures.recompute: stale staff figures computed again (issue 14)
    "survey_app.services.cases",  # alert e-mails and the deferred window check (h-alerts)
    "survey_app.services.csv_export",  # large responses exports written to a file (h-export)
)

STATUSES = ("pending", "running", "done", "dead")


@dataclasses.dataclass(frozen=True)
class Handler:
    fn: Callable
    max_attempts: int
    backoff: float


_HANDLERS: dict[str, Handler] = {}
_loaded = False


def handler(kind: str, *, max_attempts: int = 5, backoff: float = 30.0):
    """Register `fn(payload: dict, job: Job) -> Optional[str]` for jobs of `kind`.
    Its return value is kept as the job's result; raising schedules a retry."""
    def register(fn):
        _HANDLERS[kind] = Handler(fn, max(1, int(max_attempts)), float(backoff))
        return fn
    return register


def load_handlers() -> None:
    global _loaded
    if _loaded:
        return
    for name in HANDLER_MODULES:
        importlib.import_module(name)
    _loaded = True


def enqueue(kind: str, payload: Optional[dict] = None, *, key: Optional[str] = None,
            delay: float = 0.0, now: Optional[dt.datetime] = None) -> Job:
    """Add a job to the current session (the caller commits).  A pending job of
    the same kind and key is reused: its payload is replaced and it runs no later
    than it would have."""
    now = now or utcnow()
    run_after = now + dt.timedelta(seconds=max(0.0, float(delay)))
    if key is not None:
        with db.session.no_autoflush:
            pending = [j for j in db.session.new
                       if isinstance(j, Job) and j.kind == kind and j.key == key and j.status == "pending"]
        existing = pending[0] if pending else db.session.scalar(
            select(Job).where(Job.kind == kind, Job.key == key, Job.status == "pending").limit(1))
        if existing is not None:
            existing.payload = payload or {}
            if existing.run_after is None or run_after < existing.run_after:
                existing.run_after = run_after
            return existing
    job = Job(kind=kind, key=key, payload=payload or {}, status="pending", attempts=0,
              run_after=run_after, created_at=now)
    db.session.add(job)
    return job


def _lease(app=None) -> dt.timedelta:
    from flask import current_app

    return dt.timedelta(seconds=float((app or current_app).config["JOBS_LEASE_SECONDS"]))


def _claim(job_id: int, now: dt.datetime) -> bool:
    """Mark one due job running; False when another worker was faster."""
    res = db.session.execute(
        update(Job)
        .where(Job.id == job_id,
               or_(Job.status == "pending", (Job.status == "running") & (Job.locked_until < now)))
        .values(status="running", attempts=Job.attempts + 1, locked_until=now + _lease())
        .execution_options(synchronize_session=False))
    db.session.commit()
    return res.rowcount == 1


def _due_ids(limit: int, now: dt.datetime, kinds=None) -> list[int]:
    q = (select(Job.id)
         .where(or_((Job.status == "pending") & (Job.run_after <= now),
                    (Job.status == "running") & (Job.locked_until < now)))
         .order_by(Job.run_after, Job.id).limit(limit))
    if kinds:
        q = q.where(Job.kind.in_(list(kinds)))
    ids = list(db.session.scalars(q))
    db.session.commit()  # end the read transaction before claiming
    return ids


def run_job(job_id: int, now: Optional[dt.datetime] = None) -> str:
    """Claim and run one job; returns its status afterwards ('' if not claimed)."""
    load_handlers()
    now = now or utcnow()
    if not _claim(job_id, now):
        return ""
    job = db.session.get(Job, job_id)
    h = _HANDLERS.get(job.kind)
    kind, payload, attempts = job.kind, dict(job.payload or {}), job.attempts
    if h is None:
        job.status, job.last_error, job.finished_at, job.locked_until = "dead", f"no handler for {kind!r}", now, None
        db.session.commit()
        log.error("job %s: no handler for %r", job_id, kind)
        return "dead"
    try:
        result = h.fn(payload, job)
        db.session.flush()
    except Exception as exc:  # noqa: BLE001 - any failure is recorded and retried
        db.session.rollback()
        job = db.session.get(Job, job_id)
        job.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        job.locked_until = None
        if attempts >= h.max_attempts:
            job.status, job.finished_at = "dead", now
            log.warning("job %s (%s) dead after %d attempts: %s", job_id, kind, attempts, job.last_error)
        else:
            job.status = "pending"
            job.run_after = now + dt.timedelta(seconds=h.backoff * 2 ** (attempts - 1))
            log.info("job %s (%s) failed (attempt %d), retry at %s", job_id, kind, attempts, job.run_after)
        db.session.commit()
        return job.status
    job = db.session.get(Job, job_id)
    job.status, job.finished_at, job.locked_until = "done", now, None
    job.result = None if result is None else str(result)[:2000]
    job.last_error = None
    db.session.commit()
    return "done"


def run_due(limit: int = 100, now: Optional[dt.datetime] = None, kinds=None) -> int:
    """Run up to `limit` due jobs (oldest first); returns how many ran."""
    load_handlers()
    now = now or utcnow()
    ran = 0
    for job_id in _due_ids(limit, now, kinds):
        if run_job(job_id, now):
            ran += 1
    return ran


def retry(job_id: int, now: Optional[dt.datetime] = None) -> Job:
    """Queue a dead (or done) job again, due now, with a fresh attempt count."""
    job = db.session.get(Job, job_id)
    if job is None:
        raise LookupError(job_id)
    if job.status in ("pending", "running"):
        raise ValueError(f"job {job_id} is {job.status}")
    job.status, job.attempts, job.run_after = "pending", 0, now or utcnow()
    job.finished_at = job.locked_until = None
    db.session.commit()
    return job


def counts() -> dict[str, int]:
    from sqlalchemy import func

    rows = db.session.execute(select(Job.status, func.count()).group_by(Job.status)).all()
    return {s: 0 for s in STATUSES} | {s: int(n) for s, n in rows}


# ------------------------------------------------------------ workers

_thread: Optional[threading.Thread] = None
_thread_lock = threading.Lock()
_stop = threading.Event()


def work(app, *, once: bool = False, interval: float = 1.0, stop: Optional[threading.Event] = None) -> int:
    """Run due jobs in `app` until stopped (or once); returns how many ran."""
    total = 0
    while True:
        with app.app_context():
            try:
                total += run_due()
            except Exception:  # noqa: BLE001 - a worker survives a database hiccup
                log.exception("job worker: run_due failed")
                db.session.rollback()
            finally:
                db.session.remove()
        if once or (stop is not None and stop.is_set()):
            return total
        if stop is not None:
            stop.wait(interval)
        else:
            time.sleep(interval)


def start_in_process(app) -> None:
    """Start one daemon worker thread in this process (server processes only,
    when JOBS_IN_PROCESS is on and not TESTING); later calls do nothing."""
    global _thread
    if not app.config.get("JOBS_IN_PROCESS") or app.config.get("TESTING"):
        return
    with _thread_lock:
        if _thread is not None and _thread.is_alive():
            return
        interval = float(app.config["JOBS_POLL_SECONDS"])
        _stop.clear()
        _thread = threading.Thread(target=work, args=(app,), kwargs={"interval": interval, "stop": _stop},
                                   name="sipas-jobs", daemon=True)
        _thread.start()
        log.info("job worker thread started (every %.1f s)", interval)


def stop_in_process(timeout: float = 10.0) -> None:
    """Stop the in-process worker thread (tests; a server simply exits)."""
    global _thread
    _stop.set()
    if _thread is not None:
        _thread.join(timeout)
    _thread = None


def init_app(app) -> None:
    """Start the in-process worker on the first request a server handles (never in
    CLI commands such as `flask db upgrade`, which make no requests)."""
    if not app.config.get("JOBS_IN_PROCESS") or app.config.get("TESTING"):
        return

    @app.before_request
    def _start_jobs_worker():
        if _thread is None or not _thread.is_alive():
            start_in_process(app)
