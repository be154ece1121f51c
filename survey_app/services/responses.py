"""Bulk writes: PostgreSQL COPY where available, executemany elsewhere."""
from __future__ import annotations

from typing import Sequence

import sqlalchemy as sa

from .extensions import db


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
    from .models import Answer, Response, answer_pattern

    by_response: dict = {}
    for a in answer_rows:
        by_response.setdefault(a["response_id"], {})[a["item_key"]] = a["value"]
    for r in response_rows:
        r["pattern"] = answer_pattern(by_response.get(r["id"], {}))
    bulk_insert(Response.__table__, response_rows)
    bulk_insert(Answer.__table__, answer_rows)
