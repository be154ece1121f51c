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
