"""CSV exports: responses in the DESIGN.md format (the input of
`python -m analysis`), streamed so memory stays flat, with cells a
spreadsheet would run as formulas escaped.

One export, two engines with the same columns and bytes:

* `iter_response_rows` (any database): a Core query over `responses`
  (keyset pages); the six shared items are decoded from the packed
  `Response.pattern` (`models.answer_pattern`), so the `answers` table is
  read only for instruments that have other items (yes/no criteria,
  multi-select options), and only for those items;
* on PostgreSQL, `export_chunks` runs the same SELECT as
  `COPY (SELECT ...) TO STDOUT (FORMAT csv)`: the database formats the rows
  and the web process only passes the bytes on (the speed of the database;
  `bench/export.py`).

`export_chunks` is what the staff page, the background export job and
`flask responses export` stream.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
from typing import IO, Iterable, Iterator, Optional

import sqlalchemy as sa
from sqlalchemy import select

from analysis.schema import ALL_STRATUM, RESPONSE_COLUMNS

from ..extensions import db
from ..models import PATTERN_ITEMS, Answer, Instrument, Response, Unit
from .instruments import item_specs
from .jobs import handler

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: The columns after the answer columns.
TAIL_COLUMNS = ("age_group", "gender", "comment", "counter_code")
#: Bytes per chunk handed to the WSGI server / file.
CHUNK_BYTES = 1 << 16


def csv_safe(value) -> str:
    """Escape a cell that a spreadsheet would run as a formula."""
    if value is None:
        return ""
    text = str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def response_columns(session, instrument_ids: Optional[Iterable[int]] = None) -> list[str]:
    """CSV columns: the fixed ones, then the answer columns of the instruments
    (counter-quick order first), then the optional ones."""
    q = select(Instrument).order_by(Instrument.key != "counter-quick", Instrument.key, Instrument.version)
    if instrument_ids is not None:
        q = q.where(Instrument.id.in_(list(instrument_ids)))
    items: list[str] = []
    for inst in session.scalars(q):
        for key in item_specs(inst):
            if key not in items:
                items.append(key)
    return list(RESPONSE_COLUMNS) + items + list(TAIL_COLUMNS)


def _conditions(start, end, unit_ids) -> list:
    cond = []
    if start is not None:
        cond.append(Response.submitted_at >= start)
    if end is not None:
        cond.append(Response.submitted_at < end)
    if unit_ids is not None:
        cond.append(Response.unit_id.in_(sorted(set(unit_ids))))
    return cond


def count_rows(session, *, start: Optional[dt.datetime] = None, end: Optional[dt.datetime] = None,
               unit_ids: Optional[Iterable[int]] = None) -> int:
    """How many responses the export would write (one COUNT on the index)."""
    return int(session.scalar(select(sa.func.count()).select_from(Response)
                              .where(*_conditions(start, end, unit_ids))) or 0)


class _Plan:
    """What an export reads: its columns, and the answer items outside the
    packed pattern per instrument."""

    def __init__(self, session, cond):
        counts = dict(session.execute(select(Response.instrument_id, sa.func.count()).where(*cond)
                                      .group_by(Response.instrument_id)).all())
        inst_ids = list(counts)
        #: how many responses the export writes
        self.rows = int(sum(counts.values()))
        self.columns = response_columns(session, inst_ids)
        self.item_cols = self.columns[len(RESPONSE_COLUMNS):-len(TAIL_COLUMNS)]
        self.extra_cols = [k for k in self.item_cols if k not in PATTERN_ITEMS]
        #: instrument id -> True when it has items outside the pattern.
        self.with_extras = {i.id for i in session.scalars(select(Instrument).where(Instrument.id.in_(inst_ids)))
                            if any(k not in PATTERN_ITEMS for k in item_specs(i))}
        #: column position (in item_cols) -> pattern digit index, or None for an extra item.
        self.digit = [PATTERN_ITEMS.index(k) if k in PATTERN_ITEMS else None for k in self.item_cols]


def iter_response_rows(session, *, start: Optional[dt.datetime] = None, end: Optional[dt.datetime] = None,
                       unit_ids: Optional[list[int]] = None, batch: int = 5000) -> Iterator[list[str]]:
    """Yield the export CSV rows (header first), `batch` responses at a time
    (keyset pagination on (submitted_at, id)), so memory stays flat."""
    from sqlalchemy import and_, or_

    from ..models import Counter as C

    cond = _conditions(start, end, unit_ids)
    plan = _Plan(session, cond)
    yield plan.columns
    units = dict(session.execute(select(Unit.id, Unit.code)).all())
    counters = dict(session.execute(select(C.id, C.code)).all())
    insts = {i.id: i.label for i in session.scalars(select(Instrument))}
    cols = (Response.id, Response.unit_id, Response.submitted_at, Response.channel, Response.instrument_id,
            Response.stratum, Response.excluded, Response.age_group, Response.gender, Response.comment,
            Response.counter_id, Response.pattern)
    digits = [(None if d is None else 6 ** d) for d in plan.digit]
    extra_keys = plan.extra_cols
    last = None
    while True:
        # Plain rows, not ORM objects: the export of a province-year stays fast and flat in memory.
        q = select(*cols).where(*cond).order_by(Response.submitted_at, Response.id).limit(batch)
        if last is not None:
            q = q.where(or_(Response.submitted_at > last[0],
                            and_(Response.submitted_at == last[0], Response.id > last[1])))
        page = session.execute(q).all()
        if not page:
            return
        answers: dict = {}
        need = [r.id for r in page if r.instrument_id in plan.with_extras]
        if need and extra_keys:
            # Only the items the packed pattern does not hold.
            for rid, key, value in session.execute(
                    select(Answer.response_id, Answer.item_key, Answer.value)
                    .where(Answer.response_id.in_(need), Answer.item_key.in_(extra_keys))):
                answers.setdefault(rid, {})[key] = value
        for r in page:
            a = answers.get(r.id)
            p = r.pattern or 0
            row = [str(r.id), units.get(r.unit_id, ""), r.submitted_at.isoformat().replace("+00:00", "Z"),
                   r.channel, insts.get(r.instrument_id, ""), r.stratum or ALL_STRATUM, "1" if r.excluded else "0"]
            row = [csv_safe(v) for v in row]
            for k, base in zip(plan.item_cols, digits):
                if base is not None:
                    v = (p // base) % 6
                    row.append(str(v) if v else "")
                else:
                    v = a.get(k) if a else None
                    row.append("" if v is None else str(v))
            row += [r.age_group or "", r.gender or "", csv_safe(r.comment), counters.get(r.counter_id, "")]
            yield row
        last = (page[-1].submitted_at, page[-1].id)


def write_csv(rows: Iterable[list[str]], fh: IO[str]) -> int:
    w = csv.writer(fh, lineterminator="\n")
    n = -1
    for row in rows:
        w.writerow(row)
        n += 1
    return max(n, 0)


# ---------------------------------------------------------------- the byte stream

def _header_bytes(columns: list[str]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(columns)
    return buf.getvalue().encode("utf-8")


def _rows_as_chunks(rows: Iterator[list[str]]) -> Iterator[bytes]:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for row in rows:
        w.writerow(row)
        if buf.tell() >= CHUNK_BYTES:
            yield buf.getvalue().encode("utf-8")
            buf.seek(0)
            buf.truncate()
    if buf.tell():
        yield buf.getvalue().encode("utf-8")


def _sql_safe(expr: str) -> str:
    """csv_safe() in SQL: a leading formula character gets a quote; '' -> NULL
    (COPY writes NULL as an empty cell and an empty string as "")."""
    return (f"CASE WHEN left({expr}, 1) IN ('=', '+', '-', '@', chr(9), chr(13)) THEN '''' || {expr} "
            f"ELSE NULLIF({expr}, '') END")


def export_select_sql(plan: _Plan) -> str:
    """The PostgreSQL SELECT whose CSV (COPY ... FORMAT csv) is byte for byte
    `iter_response_rows`'s rows; `%(start)s`, `%(end)s`, `%(all)s`, `%(units)s`
    and the lookup arrays of `lookups()` are bound by psycopg.  Item keys come
    from the instrument definitions (checked below), never from the request.
    Unit and counter codes and instrument labels are looked up in arrays
    indexed by id (already escaped), not joined: one table scanned, one sort."""
    ts = "r.submitted_at AT TIME ZONE 'UTC'"
    cols = [
        "r.id::text",
        "(%(units_by_id)s::text[])[r.unit_id]",
        # isoformat(): microseconds only when not zero (the date part has no '.')
        f"replace(to_char({ts}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), '.000000', '') || 'Z'",
        "r.channel",  # one of CHANNELS (a CHECK constraint): nothing to escape
        "(%(instruments_by_id)s::text[])[r.instrument_id]",
        _sql_safe(f"coalesce(NULLIF(r.stratum, ''), '{ALL_STRATUM}')"),
        "CASE WHEN r.excluded THEN '1' ELSE '0' END",
    ]
    lateral = ""
    for pos, key in enumerate(plan.item_cols):
        d = plan.digit[pos]
        if d is not None:
            cols.append(f"NULLIF(mod(r.pattern / {6 ** d}, 6), 0)")
        else:
            if not all(ch.isalnum() or ch in "_-" for ch in key):
                raise ValueError(f"unexpected item key {key!r}")
            cols.append(f'x."{key}"')
    if plan.extra_cols:
        aggs = ", ".join(f"max(a.value) FILTER (WHERE a.item_key = '{k}') AS \"{k}\"" for k in plan.extra_cols)
        keys = ", ".join(f"'{k}'" for k in plan.extra_cols)
        ids = ", ".join(str(int(i)) for i in sorted(plan.with_extras)) or "NULL"
        lateral = (f" LEFT JOIN LATERAL (SELECT {aggs} FROM answers a WHERE a.response_id = r.id "
                   f"AND a.item_key IN ({keys})) x ON r.instrument_id IN ({ids})")
    cols += ["NULLIF(r.age_group, '')", "NULLIF(r.gender, '')", _sql_safe("r.comment"),
             "(%(counters_by_id)s::text[])[r.counter_id]"]
    return ("SELECT " + ", ".join(cols) + " FROM responses r" + lateral +
            " WHERE (%(start)s::timestamptz IS NULL OR r.submitted_at >= %(start)s)"
            " AND (%(end)s::timestamptz IS NULL OR r.submitted_at < %(end)s)"
            " AND (%(all)s OR r.unit_id = ANY(%(units)s))"
            " ORDER BY r.submitted_at, r.id")


def lookups(session) -> dict[str, list]:
    """Arrays indexed by id (PostgreSQL arrays start at 1) of the escaped unit
    codes, instrument labels and counter codes, as the export writes them."""
    from ..models import Counter as C

    def by_id(pairs) -> list:
        pairs = list(pairs)
        out: list = [None] * max((i for i, _ in pairs), default=0)
        for i, v in pairs:
            out[i - 1] = v or None
        return out

    return {"units_by_id": by_id((i, csv_safe(c)) for i, c in session.execute(select(Unit.id, Unit.code))),
            "instruments_by_id": by_id((i.id, csv_safe(i.label)) for i in session.scalars(select(Instrument))),
            "counters_by_id": by_id(session.execute(select(C.id, C.code)))}


def copy_statement(session, sql: str, params: dict) -> str:
    """`COPY (sql) TO STDOUT (FORMAT csv)` with the parameters bound client-side
    (COPY takes no server-side parameters)."""
    import psycopg

    raw = session.connection().connection.driver_connection
    return psycopg.ClientCursor(raw).mogrify(f"COPY ({sql}) TO STDOUT (FORMAT csv)", params)


def copy_chunks(session, statement: str) -> Iterator[bytes]:
    """The bytes of a COPY ... TO STDOUT, gathered into CHUNK_BYTES chunks.
    Closed early (the client went away), the COPY is cancelled and its
    aborted transaction rolled back, so the session stays usable."""
    raw = session.connection().connection.driver_connection
    buf = bytearray()
    try:
        with raw.cursor() as cur, cur.copy(statement) as copy:
            for data in copy:
                buf += data
                if len(buf) >= CHUNK_BYTES:
                    yield bytes(buf)
                    buf.clear()
    except GeneratorExit:
        session.rollback()
        raise
    if buf:
        yield bytes(buf)


def export_plan(session, *, start: Optional[dt.datetime] = None, end: Optional[dt.datetime] = None,
                unit_ids: Optional[Iterable[int]] = None) -> _Plan:
    """What the export of these responses reads (its columns; `.rows`: how many), for `export_chunks(plan=)`."""
    return _Plan(session, _conditions(start, end, None if unit_ids is None else sorted(set(unit_ids))))


def export_chunks(session, *, start: Optional[dt.datetime] = None, end: Optional[dt.datetime] = None,
                  unit_ids: Optional[Iterable[int]] = None, engine: Optional[str] = None,
                  plan: Optional[_Plan] = None) -> Iterator[bytes]:
    """The export CSV (header first) as UTF-8 byte chunks, memory flat.
    `engine`: "copy" (PostgreSQL only), "rows", or None = the fastest available;
    `plan`: the `export_plan` of the same arguments when the caller has it."""
    ids = None if unit_ids is None else sorted(set(unit_ids))
    if engine is None:
        engine = "copy" if session.get_bind().dialect.name == "postgresql" else "rows"
    if engine == "rows":
        rows = iter_response_rows(session, start=start, end=end, unit_ids=ids)
        yield _header_bytes(next(rows))
        yield from _rows_as_chunks(rows)
        return
    plan = plan or _Plan(session, _conditions(start, end, ids))
    yield _header_bytes(plan.columns)
    stmt = copy_statement(session, export_select_sql(plan),
                          {"start": start, "end": end, "all": ids is None, "units": ids or [], **lookups(session)})
    yield from copy_chunks(session, stmt)


# ---------------------------------------------------------------- large exports: a background job

#: The job kind (`services.jobs`) that writes a responses export to a file.
EXPORT_JOB = "export_responses"


def exports_dir():
    """instance/exports: the files written by export jobs (named by an opaque token)."""
    from pathlib import Path

    from flask import current_app

    path = Path(current_app.instance_path) / "exports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def export_ttl() -> dt.timedelta:
    from flask import current_app

    return dt.timedelta(hours=float(current_app.config["EXPORT_TTL_HOURS"]))


def queue_export(user, unit, period):
    """Add an export job for `user` (unit subtree, period) to the session (the
    caller commits and audits).  The file will be named by a random token,
    never by anything in the data."""
    import secrets

    from . import jobs

    token = secrets.token_urlsafe(18)
    return jobs.enqueue(EXPORT_JOB, {"user_id": user.id, "unit_id": unit.id, "unit_code": unit.code,
                                     "period": period.label, "token": token}, key=token)


def export_path(job):
    return exports_dir() / f"{job.payload['token']}.csv"


def export_expires_at(job) -> Optional[dt.datetime]:
    return None if job.finished_at is None else job.finished_at + export_ttl()


def purge_expired(now: Optional[dt.datetime] = None) -> int:
    """Delete export files older than EXPORT_TTL_HOURS; returns how many."""
    import time

    limit = time.time() - export_ttl().total_seconds()
    n = 0
    for f in exports_dir().glob("*.csv*"):
        try:
            if f.stat().st_mtime < limit:
                f.unlink()
                n += 1
        except FileNotFoundError:
            pass
    return n


def _export_scope(payload) -> Optional[set[int]]:
    """The unit ids the requester may export now (None: not allowed any more)."""
    from ..models import User
    from .accounts import has_permission
    from .units import scope_unit_ids, subtree_ids

    user = db.session.get(User, payload["user_id"])
    if user is None or not user.active or not has_permission(user, "export"):
        return None
    scope = scope_unit_ids(user)
    if scope is not None and payload["unit_id"] not in scope:
        return None
    return subtree_ids(payload["unit_id"])


@handler(EXPORT_JOB, max_attempts=3, backoff=30.0)
def _run_export(payload: dict, job) -> str:
    """Write the export file (BOM + the CSV, via a .part file); the job's result is the row count."""
    from .periods import resolve_period

    ids = _export_scope(payload)
    if ids is None:
        return "refused"
    period = resolve_period(payload["period"])
    rows = count_rows(db.session, start=period.start, end=period.end, unit_ids=ids)
    path = export_path(job)
    tmp = path.with_suffix(".csv.part")
    with tmp.open("wb") as fh:
        fh.write("\ufeff".encode())
        for chunk in export_chunks(db.session, start=period.start, end=period.end, unit_ids=ids):
            fh.write(chunk)
    tmp.replace(path)
    purge_expired()
    return str(rows)


def user_exports(user_id: int, limit: int = 20) -> list:
    """The user's recent export jobs, newest first."""
    from ..models import Job

    q = select(Job).where(Job.kind == EXPORT_JOB).order_by(Job.id.desc()).limit(500)
    return [j for j in db.session.scalars(q) if (j.payload or {}).get("user_id") == user_id][:limit]


def export_for_download(token: str, user_id: int, now: Optional[dt.datetime] = None):
    """(job, path) of the requester's finished export, the scope checked again;
    raises LookupError (not theirs / unknown / refused), TimeoutError (expired)."""
    from ..models import Job, utcnow

    if not token or len(token) > 64:
        raise LookupError(token)
    job = db.session.scalar(select(Job).where(Job.kind == EXPORT_JOB, Job.key == token))
    if job is None or (job.payload or {}).get("user_id") != user_id or job.status != "done" \
            or job.result == "refused":
        raise LookupError(token)
    if _export_scope(job.payload) is None:
        raise LookupError(token)
    path = export_path(job)
    if (now or utcnow()) > export_expires_at(job) or not path.exists():
        raise TimeoutError(token)
    return job, path
