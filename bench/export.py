"""The province-year responses CSV export against a bare COPY of the same rows
(issue 14 goal: the export streams with flat memory at >= 50% of the rows/s of
`COPY (SELECT the same rows) TO STDOUT`, measured in the same run).

    .venv/bin/python bench/export.py [--db NAME] [--responses 200000] [--reuse] [--keep]
        [--server postgresql+psycopg://postgres@127.0.0.1:5432/postgres] [--rows-engine 50000]

Uses the database `--db` as it is when it already holds responses (e.g. the
`sipas_bench_staff` database of bench/dashboard.py with 1,000,000 responses),
else creates it and seeds the demo province with `--responses` (demo.seed,
bulk COPY) and ANALYZEs it.  Then, for the report year with the most responses and the
province (the unit without a parent holding most of them):

1. baseline: `COPY (SELECT r.* FROM responses r WHERE <the period and the
   province's units> ORDER BY submitted_at, id) TO STDOUT (FORMAT csv)` read
   through psycopg and thrown away (the same rows, no joins, no formatting);
2. the staff page `/staff/units/<province>/responses.csv?period=<year>`
   (alternating with 1., `--repeat` times, best of each) streamed through
   the Flask test client (the same code path as gunicorn minus the socket),
   signed in as the province analyst, with the process RSS
   sampled every 20,000 rows;
3. the same export written by the background job handler to a file;
4. optionally (`--rows-engine N`) the portable engine (Core rows + csv, the
   SQLite path) for its first N rows, for comparison.

Prints a Markdown table with the load average.  Nothing here is a test.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "bench-password-1"


from dashboard import admin_sql, rss_mb  # noqa: E402  (bench/ is the script's folder, on sys.path)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def db_exists(server: str, name: str) -> bool:
    import sqlalchemy as sa

    eng = sa.create_engine(server)
    with eng.connect() as conn:
        found = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
    eng.dispose()
    return found is not None


def make_app(url: str):
    from survey_app import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False,
                       "STAFF_LOGIN_RATE": "1000 per minute", "EXPORT_ASYNC_ROWS": 10 ** 12,
                       "JOBS_IN_PROCESS": False})


def seed(url: str, n: int) -> None:
    from survey_app.extensions import db
    from survey_app.services import demo

    app = make_app(url)
    with app.app_context():
        db.create_all()
        t0 = time.perf_counter()
        res = demo.seed(n, 2025, PASSWORD)
        print(f"seeded {res.responses:,} responses, {res.units} units in {time.perf_counter() - t0:.0f} s "
              f"(load {load()})", flush=True)
        db.engine.dispose()


def pick_scope(app):
    """(province unit, its subtree ids, the report period with most of its responses, rows)."""
    import sqlalchemy as sa

    from survey_app.extensions import db
    from survey_app.models import Response, Unit
    from survey_app.services import csv_export
    from survey_app.services.periods import current_report_year, resolve_period
    from survey_app.services.units import subtree_ids

    with app.app_context():
        roots = db.session.scalars(sa.select(Unit).where(Unit.parent_id.is_(None))).all()
        best = None
        for root in roots:
            ids = subtree_ids(root.id)
            last = db.session.scalar(sa.select(sa.func.max(Response.submitted_at))
                                     .where(Response.unit_id.in_(ids)))
            if last is None:
                continue
            period = resolve_period(str(current_report_year(last)))
            n = csv_export.count_rows(db.session, start=period.start, end=period.end, unit_ids=ids)
            if best is None or n > best[3]:
                best = (root.code, sorted(ids), period.label, n)
        return best


def bare_copy(app, ids, period_label) -> tuple[float, int, int]:
    from survey_app.extensions import db
    from survey_app.services import csv_export
    from survey_app.services.periods import resolve_period

    with app.app_context():
        p = resolve_period(period_label)
        stmt = csv_export.copy_statement(
            db.session, "SELECT r.* FROM responses r WHERE r.submitted_at >= %(start)s AND r.submitted_at < %(end)s"
                        " AND r.unit_id = ANY(%(units)s) ORDER BY r.submitted_at, r.id",
            {"start": p.start, "end": p.end, "units": ids})
        raw = db.session.connection().connection.driver_connection
        t0 = time.perf_counter()
        nbytes = rows = 0
        with raw.cursor() as cur, cur.copy(stmt) as copy:
            for data in copy:
                nbytes += len(data)
                rows += 1
        dt = time.perf_counter() - t0
        db.session.rollback()
    return dt, rows, nbytes


def page_export(app, code, period_label) -> tuple[float, int, int, list[float], float]:
    client = app.test_client()
    r = client.post("/staff/login", data={"username": "phantich", "password": PASSWORD})
    assert r.status_code == 302, r.data[:300]
    base = rss_mb()
    t0 = time.perf_counter()
    resp = client.get(f"/staff/units/{code}/responses.csv?period={period_label}", buffered=False)
    assert resp.status_code == 200 and resp.mimetype == "text/csv", (resp.status_code, resp.data[:300])
    lines, nbytes, samples = 0, 0, []
    for chunk in resp.response:
        if isinstance(chunk, str):
            chunk = chunk.encode()
        nbytes += len(chunk)
        c = chunk.count(b"\n")
        if not samples or (lines + c) // 20000 != lines // 20000:
            samples.append(rss_mb())
        lines += c
    resp.close()
    return time.perf_counter() - t0, lines - 1, nbytes, samples, base


def job_export(app, code, period_label) -> tuple[float, int, float]:
    import sqlalchemy as sa

    from survey_app.extensions import db
    from survey_app.models import Job, Unit, User
    from survey_app.services import csv_export, jobs

    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.username == "phantich"))
        unit = db.session.scalar(sa.select(Unit).where(Unit.code == code))
        from survey_app.services.periods import resolve_period

        job = csv_export.queue_export(user, unit, resolve_period(period_label))
        db.session.commit()
        jid = job.id
        t0 = time.perf_counter()
        jobs.run_job(jid)
        dt = time.perf_counter() - t0
        job = db.session.get(Job, jid)
        path = csv_export.export_path(job)
        size = path.stat().st_size if path.exists() else 0
        rows = int(job.result) if (job.result or "").isdigit() else -1
        path.unlink(missing_ok=True)
        db.session.delete(job)
        db.session.commit()
    return dt, rows, size / 1e6


def rows_engine(app, ids, period_label, limit) -> tuple[float, int]:
    from survey_app.extensions import db
    from survey_app.services import csv_export
    from survey_app.services.periods import resolve_period

    with app.app_context():
        p = resolve_period(period_label)
        t0 = time.perf_counter()
        lines = 0
        for chunk in csv_export.export_chunks(db.session, start=p.start, end=p.end, unit_ids=ids, engine="rows"):
            lines += chunk.count(b"\n")
            if lines >= limit:
                break
        dt = time.perf_counter() - t0
        db.session.rollback()
    return dt, lines - 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default=None, help="database name (default: sipas_bench_staff if it exists, "
                                               "else sipas_bench_export)")
    ap.add_argument("--responses", type=int, default=200_000, help="responses to seed when the database is new")
    ap.add_argument("--server", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--keep", action="store_true", help="keep a database this run created")
    ap.add_argument("--repeat", type=int, default=3, help="alternating runs of the bare COPY and the page")
    ap.add_argument("--rows-engine", type=int, default=50_000,
                    help="also time the portable engine over its first N rows (0: skip)")
    args = ap.parse_args()
    name = args.db or ("sipas_bench_staff" if db_exists(args.server, "sipas_bench_staff") else "sipas_bench_export")
    url = args.server.rsplit("/", 1)[0] + "/" + name
    created = False
    if not db_exists(args.server, name):
        admin_sql(args.server, f'CREATE DATABASE "{name}"')
        created = True
        seed(url, args.responses)
        admin_sql(url, "ANALYZE")  # as autovacuum would: the planner's row estimates for the fresh tables
    try:
        app = make_app(url)
        code, ids, label, n = pick_scope(app)
        print(f"\ndatabase {name}: export of province {code}, period {label}: {n:,} responses; load {load()}\n",
              flush=True)
        # warm the buffer cache once so that neither side pays the first read from disk; then the two
        # alternate `--repeat` times and the best of each counts (the machine is shared: noise is one-sided)
        bare_copy(app, ids, label)
        copies, pages = [], []
        for _ in range(args.repeat):
            copies.append(bare_copy(app, ids, label))
            pages.append(page_export(app, code, label))
        c_dt, c_rows, c_bytes = min(copies)
        p_dt, p_rows, p_bytes, samples, base = min(pages, key=lambda t: t[0])
        samples = [x for pg in pages for x in pg[3]]
        c2_dt = c_dt
        j_dt, j_rows, j_mb = job_export(app, code, label)
        copy_rate = c_rows / min(c_dt, c2_dt)
        page_rate = p_rows / p_dt
        ratio = page_rate / copy_rate
        print("| measurement | rows | MB | seconds | rows/s | vs bare COPY | memory (RSS) | load avg |")
        print("|---|---|---|---|---|---|---|---|")
        print(f"| bare `COPY (SELECT r.* ... same rows) TO STDOUT` (best of {args.repeat}) | {c_rows:,} | "
              f"{c_bytes / 1e6:.1f} | {min(c_dt, c2_dt):.2f} | {copy_rate:,.0f} | 100% | | {load()} |")
        print(f"| staff page `/staff/units/{code}/responses.csv?period={label}` (COPY engine, best of "
              f"{args.repeat}) | {p_rows:,} | {p_bytes / 1e6:.1f} | {p_dt:.2f} | {page_rate:,.0f} | {ratio:.0%} | "
              f"before {base:.0f} MB, during "
              f"{min(samples):.0f}–{max(samples):.0f} MB over {len(samples)} samples | {load()} |")
        print(f"| background job → instance/exports file | {j_rows:,} | {j_mb:.1f} | {j_dt:.2f} | "
              f"{j_rows / j_dt:,.0f} | {j_rows / j_dt / copy_rate:.0%} | | {load()} |")
        if args.rows_engine:
            r_dt, r_rows = rows_engine(app, ids, label, args.rows_engine)
            print(f"| portable engine (Core rows + csv; SQLite's path), first {r_rows:,} rows | {r_rows:,} | | "
                  f"{r_dt:.2f} | {r_rows / r_dt:,.0f} | {r_rows / r_dt / copy_rate:.0%} | | {load()} |")
        flat = max(samples) - min(samples) < 50
        print(f"\ngoal >= 50% of bare COPY rows/s: {'met' if ratio >= 0.5 else 'missed'} ({ratio:.0%}); "
              f"memory flat (spread < 50 MB): {'met' if flat else 'missed'} "
              f"({max(samples) - min(samples):.0f} MB); load {load()}")
    finally:
        if created and not args.keep:
            admin_sql(args.server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
