"""Responses: the one writer of `responses` and `answers`, owner of the packed
answer pattern (`Response.pattern`).

`create_response` writes one submitted response with its answers in one
transaction (citizen form, paper entry); `insert_responses` bulk-writes many
(imports, the demo seed) through `bulk_insert` (PostgreSQL COPY where
available, executemany elsewhere).
"""
from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import sqlalchemy as sa
from sqlalchemy import SmallInteger, String, func, insert, select, true
from sqlalchemy.exc import IntegrityError

from analysis.schema import ALL_STRATUM, TYPED_CHANNELS

from ..extensions import db
from ..models import Answer, Counter, Response, answer_pattern, utcnow
from . import cases
from .privacy import mask_pii
from .quality import Content, quality_flags, typed_flags
from .submissions import Clean
from .webhooks import rating_stored


def bulk_insert(table: sa.Table, rows: Sequence[dict], chunk: int = 20000) -> None:
    """Insert `rows` (dicts keyed by column name) into `table` in the current
    transaction.  On PostgreSQL this streams through COPY (several times faster
    than batched INSERTs); elsewhere it is a Core executemany.  Timestamps must
    be aware datetimes (as the models require)."""
    if not rows:
        return
    conn = db.session.connection()
    if conn.dialect.name == "postgresql":
        cols = list(rows[0].keys())
        raw = conn.connection.driver_connection  # psycopg 3 connection in this transaction
        names = ", ".join(f'"{c}"' for c in cols)
        with raw.cursor() as cur:
            with cur.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
                for r in rows:
                    copy.write_row([r[c] for c in cols])
        return
    for i in range(0, len(rows), chunk):
        conn.execute(table.insert(), rows[i:i + chunk])


def insert_responses(response_rows: list[dict], answer_rows: list[dict]) -> None:
    """Bulk-insert responses with their answers, filling each response's
    packed `pattern` from its answers (the ORM does this on its own through an
    event; bulk writers must come through here)."""
    by_response: dict = {}
    for a in answer_rows:
        by_response.setdefault(a["response_id"], {})[a["item_key"]] = a["value"]
    for r in response_rows:
        r["pattern"] = answer_pattern(by_response.get(r["id"], {}))
    bulk_insert(Response.__table__, response_rows)
    bulk_insert(Answer.__table__, answer_rows)


# ------------------------------------------------------------------ the insert


def in_period(unit_ids, period):
    """The SQL condition: a response of these units submitted in the period
    (`period.start` inclusive, `period.end` exclusive, both UTC)."""
    return sa.and_(Response.unit_id.in_(list(unit_ids)), Response.submitted_at >= period.start,
                   Response.submitted_at < period.end)

@dataclass
class Outcome:
    status: str                       # created | duplicate | dossier_used
    response_id: Optional[uuid.UUID] = None
    flags: str = ""


def create_response(*, unit_id: int, counter_id: Optional[int], instrument, clean: Clean,
                    channel: str, idempotency_key: Optional[str], dev_hash: Optional[str] = None,
                    dossier: Optional[str] = None, submitted_at: Optional[dt.datetime] = None,
                    check_flags: bool = True, typist=None, paper_batch: Optional[str] = None) -> Outcome:
    """Write one response with its answers in one transaction and commit.

    A second call with the same idempotency key returns `duplicate` (the first
    row's id) and writes nothing; a dossier already rated returns
    `dossier_used`.  Both are decided by unique constraints, so concurrent
    requests (several workers) cannot both win.

    A questionnaire typed by staff (channel paper / phone) names its `typist`
    (the signed-in `User`) and `paper_batch` (the batch label): both are
    stored on the row, it gets the typed quality flags
    (`quality.typed_flags`), and an audit entry `paper_entry` in the same
    transaction says who typed it into which batch and how many of that batch
    they have typed so far.
    """
    now = utcnow()
    submitted_at = submitted_at or now
    typed = channel in TYPED_CHANNELS
    if typed and (typist is None or not paper_batch):
        raise ValueError("a typed questionnaire needs its typist and paper batch")
    comment = mask_pii(clean.comment) if clean.comment else None
    stratum = clean.stratum or ALL_STRATUM
    if not check_flags:
        flags, reasons = [], []
    elif typed:
        flags, reasons = typed_flags(counter_id, clean.vector(), now) if counter_id else ([], [])
    else:
        flags, reasons = quality_flags(unit_id, counter_id, channel, dev_hash, clean.vector(), now,
                                       Content(stratum, clean.age_group, clean.gender, comment))
    rid = uuid.uuid4()
    row = dict(
        id=rid, unit_id=unit_id, counter_id=counter_id, instrument_id=instrument.id, channel=channel,
        submitted_at=submitted_at, received_at=now, stratum=stratum,
        dossier_hash=dossier, idempotency_key=idempotency_key, device_hash=dev_hash,
        age_group=clean.age_group, gender=clean.gender, respondent=clean.respondent or None,
        comment=comment,
        flags=";".join(flags), flag_reason="; ".join(reasons) or None, excluded=False,
        pattern=answer_pattern(clean.answers),  # what the ORM's before_insert event would set
    )
    if typed:
        row.update(entered_by_user_id=typist.id, paper_batch=paper_batch)
    try:
        _insert(row, clean.answers)
        rating_stored(unit_id, clean.answers)  # webhooks: rating.dissatisfied (issue 12.6)
        cases.after_response(row, clean.answers, clean.reply_requested)  # alerts (returns unless overall <= 2)
        if typed:
            _audit_typed(row, typist, flags)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        if idempotency_key:
            existing = db.session.scalar(select(Response.id).where(Response.idempotency_key == idempotency_key))
            if existing is not None:
                return Outcome("duplicate", existing)
        if dossier and db.session.scalar(select(Response.id).where(Response.dossier_hash == dossier)):
            return Outcome("dossier_used")
        raise
    return Outcome("created", rid, ";".join(flags))


def _audit_typed(row: dict, typist, flags: list[str]) -> None:
    """The audit entry of one typed questionnaire (same transaction as the row)."""
    from .audit import record

    in_batch = db.session.scalar(
        select(func.count()).select_from(Response)
        .where(Response.paper_batch == row["paper_batch"], Response.entered_by_user_id == typist.id,
               Response.counter_id == row["counter_id"]))
    counter = db.session.get(Counter, row["counter_id"]) if row["counter_id"] else None
    record(actor=typist.username, user_id=typist.id, action="paper_entry", target_type="paper_batch",
           target_id=row["paper_batch"],
           details={"batch": row["paper_batch"], "counter": counter.code if counter else None,
                    "channel": row["channel"], "response": str(row["id"]), "in_batch": int(in_batch or 0),
                    "flags": ";".join(flags)})


_pg_insert_stmts: dict[tuple[str, ...], Any] = {}


def _pg_insert(columns: tuple[str, ...]):
    """WITH r AS (INSERT INTO responses ... RETURNING id) INSERT INTO answers
    SELECT r.id, k, v FROM r, unnest(:keys, :vals): one statement, built and
    compiled once per column set."""
    stmt = _pg_insert_stmts.get(columns)
    if stmt is None:
        from sqlalchemy import ARRAY, bindparam

        table = Response.__table__
        r = (insert(table).values({name: bindparam(name, type_=table.c[name].type) for name in columns})
             .returning(table.c.id).cte("r"))
        pairs = func.unnest(bindparam("answer_keys", type_=ARRAY(String)),
                            bindparam("answer_values", type_=ARRAY(SmallInteger))
                            ).table_valued("k", "v").render_derived(name="v")
        stmt = insert(Answer.__table__).from_select(
            ["response_id", "item_key", "value"],
            select(r.c.id, pairs.c.k, pairs.c.v).select_from(r).join(pairs, true()))
        _pg_insert_stmts[columns] = stmt
    return stmt


def _insert(row: dict, answers: dict[str, int]) -> None:
    """Response + answers: on PostgreSQL one statement, elsewhere two Core
    inserts; the caller commits both at once."""
    conn = db.session.connection()
    if conn.dialect.name == "postgresql":
        conn.execute(_pg_insert(tuple(row)),
                     dict(row, answer_keys=list(answers), answer_values=list(answers.values())))
        return
    conn.execute(insert(Response.__table__), row)
    if answers:
        conn.execute(insert(Answer.__table__), [{"response_id": row["id"], "item_key": k, "value": val}
                                                for k, val in answers.items()])


def dossier_used(dossier: str) -> bool:
    return db.session.scalar(select(Response.id).where(Response.dossier_hash == dossier)) is not None




# ------------------------------------------------------------------ the optional details after "Send"

def _details_open():
    """SQL: none of the details has been given yet (a stratum set by a dossier
    link before the details does not count)."""
    return sa.and_(Response.comment.is_(None), Response.age_group.is_(None), Response.gender.is_(None),
                   sa.or_(Response.stratum == ALL_STRATUM, Response.dossier_hash.is_not(None)))


def details_target(idempotency_key: str, dev_hash: Optional[str], window: dt.timedelta):
    """(status, row) for the details of the response sent with this key:
    `open` (row: id, stratum), `already` (details given), `expired` (sent longer
    than `window` ago), `missing` (no such response, or sent from another device:
    the two are not told apart)."""
    from .devices import UNKNOWN

    row = db.session.execute(
        select(Response.id, Response.stratum, Response.device_hash, Response.received_at,
               _details_open().label("open"))
        .where(Response.idempotency_key == idempotency_key)).first()
    if row is None or not dev_hash or dev_hash == UNKNOWN or row.device_hash != dev_hash:
        return "missing", None
    received = row.received_at if row.received_at.tzinfo else row.received_at.replace(tzinfo=dt.timezone.utc)
    if utcnow() - received > window:
        return "expired", row
    return ("open" if row.open else "already"), row


def attach_details(*, idempotency_key: str, dev_hash: Optional[str], clean: Clean, window: dt.timedelta) -> str:
    """Add the optional details (procedure field, comment, age group, gender) to
    the response sent with this key from this device within `window`, once.
    Returns `attached`, `already` (details given before: nothing changes),
    `expired`, `missing` (see `details_target`) or `empty` (nothing given).
    The comment is masked (services/privacy.py) as in `create_response`; the
    stratum is set only while it is still "all fields"."""
    status, row = details_target(idempotency_key, dev_hash, window)
    if status != "open":
        return status
    values = {}
    if clean.comment:
        values["comment"] = mask_pii(clean.comment)
    if clean.age_group:
        values["age_group"] = clean.age_group
    if clean.gender:
        values["gender"] = clean.gender
    if clean.stratum and clean.stratum != ALL_STRATUM and row.stratum == ALL_STRATUM:
        values["stratum"] = clean.stratum
    if not values:
        return "empty"
    done = db.session.execute(
        sa.update(Response).where(Response.id == row.id, _details_open()).values(**values)
        .execution_options(synchronize_session=False))
    if done.rowcount == 1 and clean.reply_requested:
        cases.reply_requested_for(row.id)  # alerts: the citizen asked for a reply
    db.session.commit()
    return "attached" if done.rowcount == 1 else "already"
