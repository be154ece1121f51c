"""Sufficient statistics of the responses, kept by the database (issue 14).

`response_cells` counts the responses of each (unit, counter, procedure
field, excluded, under 18, answer pattern, local half-month) cell, and
`unit_marks` counts the writes per unit.  Both are maintained by triggers on
`responses` (PostgreSQL: statement-level with transition tables, so a COPY of
a million rows costs one grouped upsert; SQLite: row-level), inside the
transaction of the write itself.  So every writer (citizen form, paper entry,
CSV import, the demo COPY seed, exclusions, backup restore, a manual SQL
fix) keeps them exact without knowing about them.

The time bucket is a local half-month at the fixed offset `BUCKET_OFFSET`
(Viet Nam, +07:00, no daylight saving): days 1–14 and 15–end, written as the
yyyymmdd of its first day.  Report periods start on the cut-off day 15 (report
years, quarters, halves: 15/12..14/12) and calendar periods on the 1st, so a
period whose bounds are bucket starts is read from `response_cells`; any other
period (an explicit date range, a calendar with another cut-off day or zone) is
read from `responses` (see `aligned_buckets`).  The trigger text is here once: the migration and
`db.create_all()` (tests, the benchmarks) both install it from `install_sql`.
"""
from __future__ import annotations

import datetime as dt
from typing import Optional

import sqlalchemy as sa
from sqlalchemy import event

from analysis.schema import UNDER_18

from ..extensions import db
from ..models import Response, ResponseCell, UnitMark

BUCKET_OFFSET = dt.timedelta(hours=7)
SPLIT_DAY = 15  # the default report cut-off day (config REPORT_CUTOFF_DAY)
KEY = ("unit_id", "counter_id", "stratum", "excluded", "under18", "pattern", "bucket")
#: Columns of `responses` a cell depends on (an update of any other column changes no cell).
SOURCE_COLUMNS = ("unit_id", "counter_id", "stratum", "excluded", "age_group", "pattern", "submitted_at")


def bucket_of(ts: dt.datetime) -> int:
    """yyyymmdd of the first day of the local half-month (at BUCKET_OFFSET) of an aware timestamp."""
    local = ts.astimezone(dt.timezone.utc) + BUCKET_OFFSET
    return local.year * 10000 + local.month * 100 + (SPLIT_DAY if local.day >= SPLIT_DAY else 1)


def _bucket_start(ts: dt.datetime) -> bool:
    local = ts.astimezone(dt.timezone.utc) + BUCKET_OFFSET
    return local.day in (1, SPLIT_DAY) and (local.hour, local.minute, local.second, local.microsecond) == (0, 0, 0, 0)


def aligned_buckets(period) -> Optional[tuple[int, int]]:
    """(first bucket, bucket after the last) of a period made of whole
    buckets (None: all time), or None when it is not (then the period is read
    from `responses`)."""
    if period is None:
        return (0, 99999999)
    if not (_bucket_start(period.start) and _bucket_start(period.end)):
        return None
    return bucket_of(period.start), bucket_of(period.end)


# ------------------------------------------------------------------ trigger text

def _pg_keys(row: str) -> str:
    t = f"({row}.submitted_at AT TIME ZONE 'UTC' + INTERVAL '7 hours')"
    return (f"{row}.unit_id, COALESCE({row}.counter_id, 0), {row}.stratum, {row}.excluded, "
            f"COALESCE({row}.age_group = '{UNDER_18}', false), {row}.pattern, "
            f"(EXTRACT(YEAR FROM {t}) * 10000 + EXTRACT(MONTH FROM {t}) * 100"
            f" + CASE WHEN EXTRACT(DAY FROM {t}) >= {SPLIT_DAY} THEN {SPLIT_DAY} ELSE 1 END)::int")


def _pg_apply(delta: str) -> str:
    keys = ", ".join(KEY)
    return f"""
    WITH d AS (SELECT {keys}, SUM(k)::int AS n FROM ({delta}) x GROUP BY {keys} HAVING SUM(k) <> 0),
         cells AS (INSERT INTO response_cells AS c ({keys}, n) SELECT * FROM d ORDER BY {keys}
                   ON CONFLICT ({keys}) DO UPDATE SET n = c.n + EXCLUDED.n)
    INSERT INTO unit_marks AS m (unit_id, seq)
        SELECT unit_id, SUM(ABS(n))::int FROM d GROUP BY unit_id ORDER BY unit_id
    ON CONFLICT (unit_id) DO UPDATE SET seq = m.seq + EXCLUDED.seq;"""


def _pg_sql() -> list[str]:
    names = ", ".join(KEY) + ", k"

    def part(table, sign):
        return f"SELECT * FROM (SELECT {_pg_keys('r')}, {sign} AS k FROM {table} r) AS p({names})"

    ins, dele = part("new_rows", 1), part("old_rows", -1)
    fn = f"""
CREATE OR REPLACE FUNCTION sipas_response_cells() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF TG_OP = 'INSERT' THEN {_pg_apply(ins)}
  ELSIF TG_OP = 'DELETE' THEN {_pg_apply(dele)}
  ELSE {_pg_apply(ins + " UNION ALL " + dele)}
  END IF;
  RETURN NULL;
END $fn$"""
    out = [fn]
    for op, ref in (("INSERT", "NEW TABLE AS new_rows"), ("DELETE", "OLD TABLE AS old_rows"),
                    ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows")):
        out.append(f"CREATE TRIGGER response_cells_{op.lower()} AFTER {op} ON responses "
                   f"REFERENCING {ref} FOR EACH STATEMENT EXECUTE FUNCTION sipas_response_cells()")
    return out


def _sqlite_keys(row: str) -> list[str]:
    return [f"{row}.unit_id", f"COALESCE({row}.counter_id, 0)", f"{row}.stratum", f"{row}.excluded",
            f"COALESCE({row}.age_group = '{UNDER_18}', 0)", f"{row}.pattern",
            f"(CAST(strftime('%Y%m', {row}.submitted_at, '+7 hours') AS INTEGER) * 100 + CASE WHEN "
            f"CAST(strftime('%d', {row}.submitted_at, '+7 hours') AS INTEGER) >= {SPLIT_DAY} "
            f"THEN {SPLIT_DAY} ELSE 1 END)"]


def _sqlite_step(row: str, sign: str) -> str:
    vals = _sqlite_keys(row)
    where = " AND ".join(f"{k} = {v}" for k, v in zip(KEY, vals))
    return (f"INSERT OR IGNORE INTO response_cells ({', '.join(KEY)}, n) VALUES ({', '.join(vals)}, 0); "
            f"UPDATE response_cells SET n = n {sign} 1 WHERE {where}; "
            f"INSERT OR IGNORE INTO unit_marks (unit_id, seq) VALUES ({row}.unit_id, 0); "
            f"UPDATE unit_marks SET seq = seq + 1 WHERE unit_id = {row}.unit_id;")


def _sqlite_sql() -> list[str]:
    changed = " OR ".join(f"{o} IS NOT {n}" for o, n in zip(_sqlite_keys("OLD"), _sqlite_keys("NEW")))
    return [
        f"CREATE TRIGGER response_cells_insert AFTER INSERT ON responses BEGIN {_sqlite_step('NEW', '+')} END",
        f"CREATE TRIGGER response_cells_delete AFTER DELETE ON responses BEGIN {_sqlite_step('OLD', '-')} END",
        f"CREATE TRIGGER response_cells_update AFTER UPDATE OF {', '.join(SOURCE_COLUMNS)} ON responses "
        f"WHEN {changed} BEGIN {_sqlite_step('OLD', '-')} {_sqlite_step('NEW', '+')} END",
    ]


def install_sql(dialect: str) -> list[str]:
    """The statements creating the triggers on `responses` for a dialect."""
    if dialect == "postgresql":
        return _pg_sql()
    if dialect == "sqlite":
        return _sqlite_sql()
    raise NotImplementedError(f"response_cells triggers for {dialect}")


def drop_sql(dialect: str) -> list[str]:
    out = [f"DROP TRIGGER IF EXISTS response_cells_{op} " + ("ON responses" if dialect == "postgresql" else "")
           for op in ("insert", "delete", "update")]
    if dialect == "postgresql":
        out.append("DROP FUNCTION IF EXISTS sipas_response_cells()")
    return out


def _rebuild_sql(dialect: str) -> list[str]:
    keys = ", ".join(KEY)
    if dialect == "postgresql":
        sel = _pg_keys("r")
    else:
        sel = ", ".join(_sqlite_keys("r"))
    return ["DELETE FROM response_cells", "DELETE FROM unit_marks",
            f"INSERT INTO response_cells ({keys}, n) SELECT {sel}, COUNT(*) FROM responses r "
            f"GROUP BY 1, 2, 3, 4, 5, 6, 7",
            "INSERT INTO unit_marks (unit_id, seq) SELECT unit_id, COUNT(*) FROM responses GROUP BY unit_id"]


def rebuild(conn=None) -> int:
    """Recount `response_cells` and `unit_marks` from `responses` (a database
    created before the triggers, e.g. a benchmark's reused one). Returns the
    number of cells.  The caller commits when `conn` is the session's."""
    conn = conn or db.session.connection()
    for stmt in _rebuild_sql(conn.dialect.name):
        conn.exec_driver_sql(stmt)
    return int(conn.execute(sa.select(sa.func.count()).select_from(ResponseCell.__table__)).scalar_one())


def installed(conn) -> bool:
    """Whether the triggers exist in this database."""
    if conn.dialect.name == "postgresql":
        q = "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'response_cells_%'"
    else:
        q = "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'response_cells_%'"
    return int(conn.execute(sa.text(q)).scalar()) == 3


def install(conn) -> None:
    """Create the triggers (if missing) and recount the cells from `responses`."""
    if not installed(conn):
        for stmt in install_sql(conn.dialect.name):
            conn.exec_driver_sql(stmt)
    rebuild(conn)


@event.listens_for(db.metadata, "after_create")
def _after_create_all(target, connection, **kw) -> None:
    """`db.create_all()` (tests, benchmarks): the triggers come with the tables."""
    tables = {t.name for t in kw.get("tables") or target.sorted_tables}
    if {"responses", "response_cells", "unit_marks"} <= tables and not installed(connection):
        for stmt in install_sql(connection.dialect.name):
            connection.exec_driver_sql(stmt)


# ------------------------------------------------------------------ reading

def cells_table() -> sa.Table:
    return ResponseCell.__table__


def marks_of(unit_ids) -> int:
    """Σ seq of the units (all units when None): changes whenever a response of
    one of them is written, changed or deleted."""
    q = sa.select(sa.func.coalesce(sa.func.sum(UnitMark.seq), 0))
    if unit_ids is not None:
        q = q.where(UnitMark.unit_id.in_(sorted(set(unit_ids))))
    return int(db.session.scalar(q) or 0)


def unit_counts(unit_ids, start: dt.datetime, end: dt.datetime) -> Optional[dict[int, tuple[int, int]]]:
    """{unit id: (responses, excluded)} over [start, end) from the cells, or
    None when [start, end) is not whole buckets (then count `responses`)."""
    lo, hi = (aligned_buckets(_Span(start, end)) or (None, None))
    if lo is None:
        return None
    c = ResponseCell.__table__.c
    total = sa.func.sum(c.n)
    q = (sa.select(c.unit_id, total, sa.func.sum(sa.case((c.excluded.is_(True), c.n), else_=0)))
         .where(c.unit_id.in_(sorted(set(unit_ids))), c.bucket >= lo, c.bucket < hi)
         .group_by(c.unit_id).having(total > 0))
    return {uid: (int(n), int(x or 0)) for uid, n, x in db.session.execute(q)}


class _Span:
    def __init__(self, start, end):
        self.start, self.end = start, end


def compare_with_responses() -> tuple[dict, dict]:
    """(cells from the triggers, cells recounted from `responses`), zero cells
    left out: equal when the table is exact (tests)."""
    t = ResponseCell.__table__
    kept = {tuple(r[:-1]): int(r[-1]) for r in db.session.execute(
        sa.select(*[t.c[k] for k in KEY], t.c.n).where(t.c.n != 0))}
    dialect = db.session.connection().dialect.name
    sel = _pg_keys("r") if dialect == "postgresql" else ", ".join(_sqlite_keys("r"))
    fresh = {tuple(r[:-1]): int(r[-1]) for r in db.session.execute(sa.text(
        f"SELECT {sel}, COUNT(*) FROM responses r GROUP BY 1, 2, 3, 4, 5, 6, 7"))}
    norm = {}
    for d in (kept, fresh):
        norm[id(d)] = {(k[0], k[1], k[2], bool(k[3]), bool(k[4]), k[5], int(k[6])): v for k, v in d.items()}
    return norm[id(kept)], norm[id(fresh)]


__all__ = ["BUCKET_OFFSET", "KEY", "aligned_buckets", "bucket_of", "install_sql", "drop_sql", "rebuild", "install",
           "installed", "marks_of", "compare_with_responses", "Response"]
