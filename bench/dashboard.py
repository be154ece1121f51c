"""Staff pages under a province-year of data (issue 5 goal: with 1,000,000
responses in PostgreSQL, the province overview and a unit page each p95 < 300 ms
over 20+ requests after warm-up; the province-year CSV export streams with flat
memory).

    .venv/bin/python bench/dashboard.py [--responses 1000000] [--db NAME] [--reuse] [--keep]
        [--requests 25] [--server postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Creates a throw-away PostgreSQL database (default `sipas_bench_staff`), seeds the
demo province with `demo.seed` (bulk COPY), then drives the pages in-process
through the Flask test client signed in as the province analyst:

* each page is timed cold (figures cache empty), then warmed up with 3 requests
  and timed over `--requests` requests (the Flask-Caching figures cache of `staff.figures`
  holds the analysis results for STAFF_CACHE_SECONDS, 300 s by default);
* the same pages are timed again with the cache off (STAFF_CACHE_SECONDS = 0),
  i.e. every request runs the SQL aggregation and `analysis` (`--uncached-requests`, default 5);
* the export streams the province-year responses CSV and samples the process
  RSS (/proc/self/status) every 20,000 rows.

Prints one Markdown table row per measurement, with the load average.
"""
from __future__ import annotations

import argparse
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


def make_app(url: str, cache: int):
    from survey_app import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "STAFF_CACHE_SECONDS": cache,
                       "WTF_CSRF_ENABLED": False, "STAFF_LOGIN_RATE": "1000 per minute",
                       "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "pool_size": 5}})


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


def timed(client, url: str, n: int, warm: int = 3) -> tuple[float, float, float, list[float]]:
    t0 = time.perf_counter()
    r = client.get(url)
    cold = time.perf_counter() - t0
    assert r.status_code == 200, (url, r.status_code, r.data[:300])
    for _ in range(warm):
        client.get(url)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.get(url)
        times.append(time.perf_counter() - t0)
        assert r.status_code == 200
    times.sort()
    p95 = times[max(0, int(round(0.95 * len(times))) - 1)]
    return cold, statistics.median(times), p95, times


def row(label, cache, cold, med, p95, n):
    goal = "met" if p95 < 0.300 else "missed"
    print(f"| {label} | {cache} | {n} | {cold * 1000:.0f} ms | {med * 1000:.0f} ms | {p95 * 1000:.0f} ms | {goal} | "
          f"{load()} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--responses", type=int, default=1_000_000)
    ap.add_argument("--db", default="sipas_bench_staff")
    ap.add_argument("--server", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--reuse", action="store_true", help="use the database as it is (already seeded)")
    ap.add_argument("--keep", action="store_true", help="do not drop the database at the end")
    ap.add_argument("--requests", type=int, default=25)
    ap.add_argument("--uncached-requests", type=int, default=5,
                    help="requests per page with the figures cache off (each runs the whole computation)")
    ap.add_argument("--skip-export", action="store_true")
    ap.add_argument("--seed-only", action="store_true", help="create and seed the database, measure nothing (implies --keep)")
    args = ap.parse_args()
    url = args.server.rsplit("/", 1)[0] + "/" + args.db
    if not args.reuse:
        admin_sql(args.server, f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
        admin_sql(args.server, f'CREATE DATABASE "{args.db}"')
        seed(url, args.responses)
    if args.seed_only:
        return
    try:
        from survey_app.extensions import db
        from survey_app.models import Response
        from survey_app.services.periods import current_report_year

        app = make_app(url, 300)
        with app.app_context():
            total = db.session.query(Response).count()
            year = current_report_year()
            from survey_app.services.periods import resolve_period

            p = resolve_period(str(year))
            in_year = db.session.query(Response).filter(Response.submitted_at >= p.start,
                                                         Response.submitted_at < p.end).count()
        print(f"\n{total:,} responses in the database, {in_year:,} in report year {year}; "
              f"{args.requests} timed requests after 3 warm-up requests\n")
        print("| page | figures cache | requests | first (cold) | median | p95 | goal p95 < 300 ms | load avg |")
        print("|---|---|---|---|---|---|---|---|")
        pages = [("overview, province analyst (`/staff/`)", "/staff/"),
                 ("unit page, commune (`/staff/units/AH-X01`)", "/staff/units/AH-X01"),
                 ("unit page, province (`/staff/units/AH`)", "/staff/units/AH")]
        for cache in (300, 0):
            app = make_app(url, cache)
            client = app.test_client()
            r = client.post("/staff/login", data={"username": "phantich", "password": PASSWORD})
            assert r.status_code == 302, r.data[:300]
            for label, path in pages:
                n = args.requests if cache else args.uncached_requests
                cold, med, p95, _ = timed(client, path, n, warm=3 if cache else 1)
                row(label, "on (300 s)" if cache else "off", cold, med, p95, n)
        if not args.skip_export:
            app = make_app(url, 300)
            client = app.test_client()
            client.post("/staff/login", data={"username": "phantich", "password": PASSWORD})
            base = rss_mb()
            t0 = time.perf_counter()
            resp = client.get(f"/staff/units/AH/responses.csv?period={year}", buffered=False)
            rows, nbytes, samples, pending = 0, 0, [], b""
            for chunk in resp.response:
                if isinstance(chunk, str):
                    chunk = chunk.encode()
                nbytes += len(chunk)
                c = chunk.count(b"\n")
                if not samples or (rows + c) // 20000 != rows // 20000:
                    samples.append(rss_mb())
                rows += c
            resp.close()
            dt = time.perf_counter() - t0
            print(f"\nexport: {rows - 1:,} rows, {nbytes / 1e6:.1f} MB in {dt:.1f} s "
                  f"({(rows - 1) / dt:,.0f} rows/s); RSS before {base:.0f} MB, "
                  f"during min {min(samples):.0f} / max {max(samples):.0f} MB over {len(samples)} samples "
                  f"(first {samples[0]:.0f}, last {samples[-1]:.0f}); load {load()}")
    finally:
        if not args.keep:
            from survey_app.extensions import db as _db  # noqa: F401

            admin_sql(args.server, f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')


if __name__ == "__main__":
    main()
