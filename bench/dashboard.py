"""Staff pages under a province-year of data (issue 14 goal: with 1,000,000
responses in PostgreSQL, the overview, the province unit page, a commune unit
page and the annual report each p95 < 300 ms cold — first request after a
server restart, and first request after an exclusion elsewhere — and warm; a
new response visible on its unit page within 60 s).

    .venv/bin/python bench/dashboard.py [--responses 1000000] [--db NAME] [--reuse] [--keep]
        [--requests 25] [--server postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
        [--redis redis://127.0.0.1:6379/0]

Creates a throw-away PostgreSQL database (default `sipas_bench_staff`), seeds the
demo province with `demo.seed` (bulk COPY; the triggers fill `response_cells`),
then drives the pages in-process through the Flask test client signed in as the
province analyst, with the figures store in Redis (key prefix per database) and
its database copy (`figure_store`):

1. "first ever": the store empty (Redis flushed, `figure_store` emptied): every
   figure is computed in the request — the baseline, what every cold request
   cost before the store;
2. "cold after restart": a new app (a new process: nothing in memory), Redis and
   the database copy kept; then the same with Redis flushed too (database copy only);
3. "warm": `--requests` requests per page after 3 warm-up requests;
4. "cold after an exclusion elsewhere": a response of another commune
   (AH-X02) is excluded, then the first request per page (a stale figure is
   served while its job is queued); then the queued jobs are run and timed;
5. freshness: a response is written at AH-X01 while a job worker thread runs
   (`jobs.work`, as in a server), and the unit page is polled every second until its
   index changes: the delay is printed.

With `--export` the province-year CSV export is streamed and the process RSS sampled
(bench/export.py is the export benchmark).  Prints Markdown table rows with the load average.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "bench-password-1"


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def load() -> str:
    return "%.1f" % os.getloadavg()[0]


def admin_sql(server: str, sql: str) -> None:
    import sqlalchemy as sa

    eng = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.execute(sa.text(sql))
    eng.dispose()


def make_app(url: str, cache: int, redis: str = ""):
    from survey_app import create_app

    cfg = {"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "STAFF_CACHE_SECONDS": cache,
           "WTF_CSRF_ENABLED": False, "STAFF_LOGIN_RATE": "1000 per minute", "JOBS_IN_PROCESS": False,
           "FIGURES_BACKGROUND": True,
           "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "pool_size": 5}}
    if redis:
        cfg.update(CACHE_TYPE="RedisCache", CACHE_REDIS_URL=redis, CACHE_KEY_PREFIX=f"bench-{url.rsplit('/', 1)[1]}:")
    return create_app(cfg)


def ensure_schema(url: str) -> None:
    """A database seeded before the figures tables: create them, install the triggers, count the cells."""
    from survey_app.extensions import db
    from survey_app.services import aggregates

    app = make_app(url, 0)
    with app.app_context():
        db.create_all()
        with db.engine.begin() as conn:
            if not aggregates.installed(conn):
                t0 = time.perf_counter()
                aggregates.install(conn)
                print(f"installed the triggers and counted the cells in {time.perf_counter() - t0:.1f} s", flush=True)
        db.engine.dispose()


def seed(url: str, n: int) -> None:
    from survey_app.extensions import db
    from survey_app.services import demo

    app = make_app(url, 0)
    with app.app_context():
        db.create_all()
        t0 = time.perf_counter()
        res = demo.seed(n, 2025, PASSWORD)
        print(f"seeded {res.responses:,} responses, {res.units} units, {res.counters} counters "
              f"in {time.perf_counter() - t0:.0f} s (load {load()})", flush=True)
        db.engine.dispose()


def once(client, url: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    r = client.get(url)
    took = time.perf_counter() - t0
    assert r.status_code == 200, (url, r.status_code, r.data[:300])
    return took, r.get_data(as_text=True)


def timed(client, url: str, n: int, warm: int = 3) -> tuple[float, float, list[float]]:
    for _ in range(warm):
        once(client, url)
    times = sorted(once(client, url)[0] for _ in range(n))
    p95 = times[max(0, int(round(0.95 * len(times))) - 1)]
    return statistics.median(times), p95, times


def goal(t: float) -> str:
    return "met" if t < 0.300 else "missed"


def ms(t: float) -> str:
    return f"{t * 1000:,.0f} ms"


def signed_in(app):
    client = app.test_client()
    r = client.post("/staff/login", data={"username": "phantich", "password": PASSWORD})
    assert r.status_code == 302, r.data[:300]
    return client


def flush_store(app) -> None:
    from survey_app.extensions import cache, db
    from survey_app.models import FigureEntry, Job

    with app.app_context():
        cache.clear()
        db.session.query(FigureEntry).delete()
        db.session.query(Job).delete()
        db.session.commit()


def run_jobs(app) -> tuple[int, float]:
    from survey_app.services import jobs

    t0 = time.perf_counter()
    n = 0
    with app.app_context():
        while True:
            ran = jobs.run_due(now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=5))
            n += ran
            if not ran:
                break
    return n, time.perf_counter() - t0


def index_on(html: str) -> str:
    import re

    m = re.search(r'id="unit-index" data-index="([0-9.]*)"', html)
    return m.group(1) if m else ""


def exclude_one(app, code: str) -> None:
    """Approve the exclusion of one response of `code` (as services.exclusions does: an UPDATE of `excluded`)."""
    import sqlalchemy as sa

    from survey_app.extensions import db
    from survey_app.models import Response, Unit

    with app.app_context():
        uid = db.session.scalar(sa.select(Unit.id).where(Unit.code == code))
        rid = db.session.scalar(sa.select(Response.id).where(Response.unit_id == uid,
                                                             Response.excluded.is_(False)).limit(1))
        db.session.execute(sa.update(Response).where(Response.id == rid).values(excluded=True,
                                                                                excluded_reason="bench"))
        db.session.commit()


def new_response(app, code: str) -> dt.datetime:
    """One citizen response at `code` through services.responses (all answers 1: the index moves)."""
    import sqlalchemy as sa

    from survey_app.extensions import db
    from survey_app.models import Unit
    from survey_app.services.instruments import latest
    from survey_app.services.responses import create_response
    from survey_app.services.submissions import Clean

    with app.app_context():
        unit = db.session.scalar(sa.select(Unit).where(Unit.code == code))
        inst = latest(db.session, "counter-quick")
        clean = Clean(answers={k: 1 for k in ("overall", "access", "procedure", "staff", "result", "feedback")})
        at = dt.datetime.now(dt.timezone.utc)
        out = create_response(unit_id=unit.id, counter_id=None, instrument=inst, clean=clean, channel="qr",
                              idempotency_key=None, check_flags=False)
        assert out.status == "created", out
        return at


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--responses", type=int, default=1_000_000)
    ap.add_argument("--db", default="sipas_bench_staff")
    ap.add_argument("--server", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--reuse", action="store_true", help="use the database as it is (already seeded)")
    ap.add_argument("--keep", action="store_true", help="do not drop the database at the end")
    ap.add_argument("--requests", type=int, default=25)
    ap.add_argument("--export", action="store_true", help="also stream the province-year CSV export")
    ap.add_argument("--seed-only", action="store_true", help="create and seed the database, measure nothing (implies --keep)")
    ap.add_argument("--freshness-timeout", type=float, default=180.0)
    args = ap.parse_args()
    url = args.server.rsplit("/", 1)[0] + "/" + args.db
    if not args.reuse:
        admin_sql(args.server, f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
        admin_sql(args.server, f'CREATE DATABASE "{args.db}"')
        seed(url, args.responses)
    if args.seed_only:
        return
    ensure_schema(url)
    try:
        from survey_app.extensions import db
        from survey_app.models import Response, ResponseCell
        from survey_app.services.periods import current_report_year, resolve_period

        app = make_app(url, 300, args.redis)
        with app.app_context():
            total = db.session.query(Response).count()
            cells = db.session.query(ResponseCell).count()
            year = current_report_year()
            p = resolve_period(str(year))
            in_year = db.session.query(Response).filter(Response.submitted_at >= p.start,
                                                         Response.submitted_at < p.end).count()
        print(f"\n{total:,} responses in the database ({cells:,} cells in response_cells), {in_year:,} in "
              f"report year {year}; figures store in Redis ({args.redis}) + figure_store; load {load()}\n")
        pages = [("overview, province analyst (`/staff/`)", "/staff/"),
                 ("unit page, province (`/staff/units/AH`)", "/staff/units/AH"),
                 ("unit page, commune (`/staff/units/AH-X01`)", "/staff/units/AH-X01"),
                 (f"annual report (`/staff/report/{year}`)", f"/staff/report/{year}")]
        charts = ["/staff/units/AH-X01/charts/trend.svg", "/staff/units/AH-X01/charts/elements.svg"]
        first: dict = {}
        restart: dict = {}
        db_only: dict = {}
        excl: dict = {}
        warm: dict = {}

        # 1. first ever: nothing stored
        flush_store(app)
        client = signed_in(app)
        for label, path in pages:
            first[label] = once(client, path)[0]
        for path in charts:
            once(client, path)
        # 2. a restarted server: a new app, the store kept (Redis + database), then the database copy only
        app = make_app(url, 300, args.redis)
        client = signed_in(app)
        for label, path in pages:
            restart[label] = once(client, path)[0]
        with app.app_context():
            from survey_app.extensions import cache

            cache.clear()
        app = make_app(url, 300, args.redis)
        client = signed_in(app)
        for label, path in pages:
            db_only[label] = once(client, path)[0]
        # 3. warm
        for label, path in pages:
            warm[label] = timed(client, path, args.requests)
        # 4. an exclusion elsewhere (another commune of the province)
        exclude_one(app, "AH-X02")
        app = make_app(url, 300, args.redis)
        client = signed_in(app)
        for label, path in pages:
            excl[label] = once(client, path)[0]
        n_jobs, t_jobs = run_jobs(app)

        print("| page | first ever (store empty) | cold after restart | cold, Redis empty (database copy) "
              "| cold after an exclusion elsewhere | warm median | warm p95 | goal p95 < 300 ms (cold and warm) "
              "| load avg |")
        print("|---|---|---|---|---|---|---|---|---|")
        for label, _ in pages:
            med, p95, _t = warm[label]
            worst = max(restart[label], db_only[label], excl[label], p95)
            print(f"| {label} | {ms(first[label])} | {ms(restart[label])} | {ms(db_only[label])} | "
                  f"{ms(excl[label])} | {ms(med)} | {ms(p95)} | {goal(worst)} | {load()} |", flush=True)
        print(f"\nafter the exclusion: {n_jobs} figures recomputed by the queued jobs in {t_jobs:.1f} s "
              f"(load {load()})")

        # 5. freshness: a new response at AH-X01, a job worker thread as in a server
        import threading

        from survey_app.services import jobs

        stop = threading.Event()
        worker = threading.Thread(target=jobs.work, args=(app,), kwargs={"interval": 1.0, "stop": stop},
                                  daemon=True)
        worker.start()
        page = "/staff/units/AH-X01"
        before = index_on(once(client, page)[1])
        written = new_response(app, "AH-X01")
        delay = None
        while (dt.datetime.now(dt.timezone.utc) - written).total_seconds() < args.freshness_timeout:
            if index_on(once(client, page)[1]) != before:
                delay = (dt.datetime.now(dt.timezone.utc) - written).total_seconds()
                break
            time.sleep(1.0)
        stop.set()
        worker.join(30)
        print(f"\nfreshness: a new response at AH-X01 shown on its unit page after "
              f"{'%.1f s' % delay if delay is not None else 'more than %.0f s' % args.freshness_timeout} "
              f"(goal 60 s: {'met' if delay is not None and delay <= 60 else 'missed'}; load {load()})")

        if args.export:
            import export  # the export benchmark's app (streamed, never a background job) and measurement

            took, rows, nbytes, samples, base = export.page_export(export.make_app(url), "AH", year)
            print(f"\nexport: {rows:,} rows, {nbytes / 1e6:.1f} MB in {took:.1f} s "
                  f"({rows / took:,.0f} rows/s); RSS before {base:.0f} MB, "
                  f"during min {min(samples):.0f} / max {max(samples):.0f} MB over {len(samples)} samples; "
                  f"load {load()}")
    finally:
        if not args.keep:
            admin_sql(args.server, f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')


if __name__ == "__main__":
    main()
