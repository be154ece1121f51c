"""Background jobs (`services.jobs`): written with the change that needs them,
claimed once, retried with exponential back-off, dead after the handler's
attempt limit, re-queued by hand; and the `flask jobs` commands."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import select

from survey_app.extensions import db
from survey_app.models import Job
from survey_app.services import jobs

T0 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.timezone.utc)
CALLS: list[tuple[str, dict]] = []


@jobs.handler("test.ok")
def _ok(payload, job):
    CALLS.append(("ok", payload))
    return f"did {payload.get('n')}"


@jobs.handler("test.fail", max_attempts=3, backoff=10)
def _fail(payload, job):
    CALLS.append(("fail", payload))
    job.result = "half-written"  # rolled back with the failure
    raise RuntimeError("receiver down")


@pytest.fixture(autouse=True)
def _calls():
    CALLS.clear()
    yield
    CALLS.clear()


def test_a_job_commits_and_rolls_back_with_the_change(ctx, backend):
    jobs.enqueue("test.ok", {"n": 1}, now=T0)
    db.session.rollback()
    assert db.session.scalar(select(Job)) is None
    jobs.enqueue("test.ok", {"n": 2}, now=T0)
    db.session.commit()
    assert jobs.run_due(now=T0) == 1
    job = db.session.scalar(select(Job))
    assert (job.status, job.attempts, job.result) == ("done", 1, "did 2")
    assert CALLS == [("ok", {"n": 2})]
    assert jobs.run_due(now=T0 + dt.timedelta(hours=1)) == 0  # done jobs never run again


def test_not_due_yet_waits(ctx, backend):
    jobs.enqueue("test.ok", {"n": 1}, delay=60, now=T0)
    db.session.commit()
    assert jobs.run_due(now=T0 + dt.timedelta(seconds=59)) == 0
    assert jobs.run_due(now=T0 + dt.timedelta(seconds=60)) == 1


def test_same_key_is_one_pending_job(ctx, backend):
    a = jobs.enqueue("test.ok", {"n": 1}, key="unit:7", delay=30, now=T0)
    b = jobs.enqueue("test.ok", {"n": 2}, key="unit:7", now=T0)  # same session, before commit
    db.session.commit()
    c = jobs.enqueue("test.ok", {"n": 3}, key="unit:7", delay=99, now=T0)  # from the database
    other = jobs.enqueue("test.ok", {"n": 4}, key="unit:8", now=T0)
    db.session.commit()
    assert a.id == b.id == c.id != other.id
    assert a.run_after == T0  # the earliest wins
    jobs.run_due(now=T0)
    assert sorted(p["n"] for _, p in CALLS) == [3, 4]
    d = jobs.enqueue("test.ok", {"n": 5}, key="unit:7", now=T0)  # done: a new job
    db.session.commit()
    assert d.id != a.id


def test_failures_back_off_exponentially_then_die_and_can_be_retried(ctx, backend):
    jobs.enqueue("test.fail", {"n": 1}, now=T0)
    db.session.commit()
    job_id = db.session.scalar(select(Job.id))
    assert jobs.run_due(now=T0) == 1
    job = db.session.get(Job, job_id)
    assert (job.status, job.attempts) == ("pending", 1)
    assert job.run_after == T0 + dt.timedelta(seconds=10)
    assert job.result is None and "receiver down" in job.last_error
    assert jobs.run_due(now=T0 + dt.timedelta(seconds=9)) == 0
    t2 = T0 + dt.timedelta(seconds=10)
    jobs.run_due(now=t2)
    db.session.expire_all()
    job = db.session.get(Job, job_id)
    assert (job.status, job.attempts, job.run_after) == ("pending", 2, t2 + dt.timedelta(seconds=20))
    jobs.run_due(now=t2 + dt.timedelta(seconds=20))
    db.session.expire_all()
    job = db.session.get(Job, job_id)
    assert (job.status, job.attempts) == ("dead", 3)
    assert jobs.run_due(now=T0 + dt.timedelta(days=1)) == 0
    assert jobs.counts()["dead"] == 1
    jobs.retry(job_id, now=T0 + dt.timedelta(days=1))
    job = db.session.get(Job, job_id)
    assert (job.status, job.attempts) == ("pending", 0)
    with pytest.raises(ValueError):
        jobs.retry(job_id)
    with pytest.raises(LookupError):
        jobs.retry(987654)


def test_unknown_kind_is_dead_not_a_crash(ctx, backend):
    jobs.enqueue("test.nobody", {}, now=T0)
    db.session.commit()
    assert jobs.run_due(now=T0) == 1
    job = db.session.scalar(select(Job))
    assert job.status == "dead" and "no handler" in job.last_error


def test_a_job_is_claimed_once(ctx, backend):
    jobs.enqueue("test.ok", {"n": 1}, now=T0)
    db.session.commit()
    job_id = db.session.scalar(select(Job.id))
    assert jobs._claim(job_id, T0)
    assert not jobs._claim(job_id, T0)  # a second worker loses
    # ... until the lease of a worker that died has passed
    assert jobs._claim(job_id, T0 + dt.timedelta(seconds=ctx.config["JOBS_LEASE_SECONDS"] + 1))


def test_two_workers_run_each_job_once(make_loaded_app, backend):
    app = make_loaded_app()
    with app.app_context():
        for n in range(20):
            jobs.enqueue("test.ok", {"n": n})
        db.session.commit()
    barrier = threading.Barrier(2)

    def worker():
        barrier.wait()
        jobs.work(app, once=True)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(p["n"] for _, p in CALLS) == list(range(20))


def test_cli_list_and_retry(app, runner, backend):
    with app.app_context():
        jobs.enqueue("test.nobody", {})
        db.session.commit()
        job_id = db.session.scalar(select(Job.id))
    out = runner.invoke(args=["jobs", "work", "--once"])
    assert out.exit_code == 0, out.output
    out = runner.invoke(args=["jobs", "list", "--status", "dead"])
    assert out.exit_code == 0 and f"{job_id}\ttest.nobody\tdead" in out.output
    out = runner.invoke(args=["jobs", "retry", str(job_id)])
    assert out.exit_code == 0 and "Đã xếp lại" in out.output
    out = runner.invoke(args=["jobs", "retry", str(job_id)])
    assert out.exit_code == 1 and "đang chờ" in out.output
    out = runner.invoke(args=["jobs", "retry", "99999"])
    assert out.exit_code == 1


def test_no_worker_thread_under_testing(app):
    jobs.start_in_process(app)
    assert jobs._thread is None or not jobs._thread.is_alive()


def test_a_server_process_runs_jobs_in_its_own_thread(make_loaded_app, backend):
    """`make run` (not TESTING): the first request starts the worker thread, which
    runs a job enqueued afterwards without anybody calling run_due."""
    import time

    app = make_loaded_app(TESTING=False, JOBS_IN_PROCESS=True, JOBS_POLL_SECONDS=0.05)
    try:
        app.test_client().get("/healthz")
        assert jobs._thread is not None and jobs._thread.is_alive()
        with app.app_context():
            jobs.enqueue("test.ok", {"n": 42})
            db.session.commit()
        deadline = time.monotonic() + 30  # a bound on waiting, not a timing assertion
        while ("ok", {"n": 42}) not in CALLS and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ("ok", {"n": 42}) in CALLS
    finally:
        jobs.stop_in_process()
    assert jobs._thread is None
