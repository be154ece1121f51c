"""CSV exports: responses in the DESIGN.md format (the input of
`python -m analysis`), streamed in pages so memory stays flat, with cells a
spreadsheet would run as formulas escaped.
"""
from __future__ import annotations

import csv
import datetime as dt
from typing import IO, Iterable, Iterator, Optional

from sqlalchemy import select

from analysis.schema import ALL_STRATUM, RESPONSE_COLUMNS

from ..models import Answer, Instrument, Response, Unit
from .instruments import item_specs

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


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
    return list(RESPONSE_COLUMNS) + items + ["age_group", "gender", "comment", "counter_code"]


def iter_response_rows(session, *, start: Optional[dt.datetime] = None, end: Optional[dt.datetime] = None,
                       unit_ids: Optional[list[int]] = None, batch: int = 5000) -> Iterator[list[str]]:
    """Yield the export CSV rows (header first), `batch` responses at a time
    (keyset pagination on (submitted_at, id)), so memory stays flat."""
    from sqlalchemy import and_, or_

    from ..models import Counter as C

    inst_q = select(Response.instrument_id).distinct()
    cond = []
    if start is not None:
        cond.append(Response.submitted_at >= start)
    if end is not None:
        cond.append(Response.submitted_at < end)
    if unit_ids is not None:
        cond.append(Response.unit_id.in_(unit_ids))
    inst_ids = list(session.scalars(inst_q.where(*cond)))
    columns = response_columns(session, inst_ids)
    yield columns
    item_cols = columns[len(RESPONSE_COLUMNS):-4]
    units = dict(session.execute(select(Unit.id, Unit.code)).all())
    counters = dict(session.execute(select(C.id, C.code)).all())
    insts = {i.id: i.label for i in session.scalars(select(Instrument))}
    cols = (Response.id, Response.unit_id, Response.submitted_at, Response.channel, Response.instrument_id,
            Response.stratum, Response.excluded, Response.age_group, Response.gender, Response.comment,
            Response.counter_id)
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
        for rid, key, value in session.execute(
                select(Answer.response_id, Answer.item_key, Answer.value)
                .where(Answer.response_id.in_([r.id for r in page]))):
            answers.setdefault(rid, {})[key] = value
        for r in page:
            a = answers.get(r.id, {})
            row = [str(r.id), units.get(r.unit_id, ""), r.submitted_at.isoformat().replace("+00:00", "Z"),
                   r.channel, insts.get(r.instrument_id, ""), r.stratum or ALL_STRATUM, "1" if r.excluded else "0"]
            row = [csv_safe(v) for v in row]
            row += ["" if a.get(k) is None else str(a[k]) for k in item_cols]
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
