"""Demo seed time (issue: under a minute for 50,000 responses).

Seeds a fresh database (SQLite file, and PostgreSQL when reachable) with
`flask demo seed --responses N` in-process and prints the time, beside a
baseline measured in the same run: a bare DB-API executemany of the same
number of response + answer rows into a scratch table pair (the floor any
seed must pay), and the ratio seed / baseline.

    .venv/bin/python bench/seed.py [--responses 50000] [--postgres URL|none]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def seed_time(url: str, n: int) -> tuple[float, int]:
    from flask_migrate import upgrade

    from survey_app import create_app
    from survey_app.extensions import db
    from survey_app.services import demo

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench"})
    with app.app_context():
        upgrade()
        t0 = time.perf_counter()
        res = demo.seed(n, 2025, "bench-password-1")
        dt = time.perf_counter() - t0
        db.engine.dispose()
    return dt, res.responses


def baseline_time(url: str, n: int) -> float:
    """executemany of n response-like rows and 6n answer rows, one transaction."""
    import sqlalchemy as sa

    eng = sa.create_engine(url)
    meta = sa.MetaData()
    r = sa.Table("bench_r", meta, sa.Column("id", sa.String(36), primary_key=True), sa.Column("unit_id", sa.Integer),
                 sa.Column("submitted_at", sa.String(40)), sa.Column("channel", sa.String(10)))
    a = sa.Table("bench_a", meta, sa.Column("rid", sa.String(36)), sa.Column("k", sa.String(20)),
                 sa.Column("v", sa.SmallInteger))
    meta.drop_all(eng)
    meta.create_all(eng)
    rows = [{"id": str(uuid.uuid4()), "unit_id": i % 40, "submitted_at": "2025-01-01T00:00:00Z", "channel": "qr"}
            for i in range(n)]
    ans = [{"rid": x["id"], "k": k, "v": 4} for x in rows for k in ("overall", "access", "procedure", "staff",
                                                                     "result", "feedback")]
    t0 = time.perf_counter()
    with eng.begin() as conn:
        conn.execute(r.insert(), rows)
        conn.execute(a.insert(), ans)
    dt = time.perf_counter() - t0
    meta.drop_all(eng)
    eng.dispose()
    return dt


def pg_database(server: str):
    import sqlalchemy as sa

    name = f"sipas_bench_{uuid.uuid4().hex[:8]}"
    eng = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    eng.dispose()

    def drop():
        e = sa.create_engine(server, isolation_level="AUTOCOMMIT")
        with e.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        e.dispose()

    return server.rsplit("/", 1)[0] + "/" + name, drop


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--responses", type=int, default=50_000)
    ap.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                    help="maintenance URL of a PostgreSQL server, or 'none'")
    args = ap.parse_args()
    print(f"demo seed, {args.responses} responses (goal: under 60 s)")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/seed.sqlite3"
        t, n = seed_time(url, args.responses)
        base = baseline_time(f"sqlite:///{tmp}/base.sqlite3", n)
        print(f"  SQLite:     seed {t:6.1f} s ({n} responses)   baseline executemany {base:5.1f} s   "
              f"ratio {t / base:4.1f}x   goal {'met' if t < 60 else 'MISSED'}")
    if args.postgres != "none":
        url, drop = pg_database(args.postgres)
        try:
            t, n = seed_time(url, args.responses)
            base = baseline_time(url, n)
            print(f"  PostgreSQL: seed {t:6.1f} s ({n} responses)   baseline executemany {base:5.1f} s   "
                  f"ratio {t / base:4.1f}x   goal {'met' if t < 60 else 'MISSED'}")
        finally:
            drop()
    print(f"  machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
