"""CSV imports in the DESIGN.md formats.

Imports are all-or-nothing: the whole file is validated first; one bad row
rejects the file with every bad row listed (line number, column, reason; the
list stops at `MAX_ERRORS`) and nothing is written.  An accepted file is
recorded as an ImportBatch whose (kind, sha256) is unique, so the same data
cannot be imported twice — also when two imports of it race: the loser's
transaction fails on the unique constraint and is rolled back whole.  The
checksum is of the *content* (`analysis.io.CsvChunks.digest`: normalised header
and cells), so a re-saved copy (CRLF, a BOM, other quoting) is the same file.

Memory is bounded: a file is read as a stream, `CHUNK_ROWS` rows at a time, in
two passes over it — the first validates every row (nothing is written), the
second, only for a valid file, writes the rows in one transaction.  The caller
passes bytes or a seekable binary stream (an uploaded file, an open file).

Integrity (DESIGN.md "Integrity"): with a `scope` (the importer's unit ids)
every row's unit must be in it; a response's counter must belong to the unit
named on its row; a volume row must not overlap a stored one or another row of
the file for the same unit and stratum, unless the import says it replaces the
stored ones (`replace=True`: they are deleted and the replacement is audited).

Used by the CLI (`flask units import` ...) and by the staff pages.  Exports
are in `csv_export`.
"""
from __future__ import annotations

import array
import datetime as dt
import io
import tempfile
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Iterable, Iterator, Optional

from flask import current_app, has_request_context
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from analysis.errors import InputError
from analysis.schema import (
    AGE_GROUPS,
    ALL_STRATUM,
    CHANNELS,
    COUNTER_KIND,
    GENDERS,
    ITEM_KEYS,
    MAX_COMMENT,
    RESPONSE_COLUMNS,
    RESPONSE_OPTIONAL,
    UNIT_COLUMNS,
    VOLUME_COLUMNS,
)

from ..extensions import db
from ..models import (
    Counter,
    ImportBatch,
    Instrument,
    Response,
    Unit,
    Volume,
)
from .instruments import item_specs
from .periods import local_today
from .privacy import mask_pii
from .responses import insert_responses

if TYPE_CHECKING:
    import pandas as pd

    from analysis.io import CsvChunks
# pandas and analysis.io are imported by the importers themselves: importing this module (the staff
# pages do) stays light, so creating the app never loads the statistics stack.

#: Rows read, checked and written at a time (memory is bounded by one chunk).
CHUNK_ROWS = 10000
#: Row errors listed at most; reading stops once this many were found.
MAX_ERRORS = 1000

Source = bytes | bytearray | IO[bytes]


#: How an `analysis.io` problem (its stable code) is worded to a person;
#: `%(value)s`, `%(low)s`, ... are the problem's parameters.
PROBLEM_TEXT = {
    "missing_column": _l("required column is missing"),
    "empty_unit_code": _l("the unit code is empty"),
    "empty_code": _l("the code is empty"),
    "empty_kind": _l("the unit kind is empty"),
    "empty_timestamp": _l("the time of the response is empty"),
    "timestamp_format": _l("time %(value)r is not ISO 8601 with a time zone (for example +07:00)"),
    "timestamp_invalid": _l("time %(value)r does not exist"),
    "timestamp_no_offset": _l("times have no time zone (for example +07:00)"),
    "timestamp_range": _l("time %(value)r is not between the years %(low)s and %(high)s"),
    "empty_date": _l("the date is empty"),
    "date_format": _l("date %(value)r is not YYYY-MM-DD"),
    "date_invalid": _l("date %(value)r does not exist"),
    "end_before_start": _l("the end date is before the start date"),
    "value_range": _l("value %(value)r is outside %(low)s–%(high)s"),
    "excluded_value": _l("value %(value)r is not blank, 0 or 1"),
    "not_count": _l("%(value)r is not a whole number ≥ 0"),
    "not_positive": _l("%(value)r is not a positive number"),
    "unknown_unit": _l("unit %(value)r not found"),
    "own_parent": _l("a unit cannot refer to itself"),
    "versions_overlap": _l("versions of unit %(value)r overlap in time"),
    "csv_parse": _l("the file is not valid CSV"),
    "cells": _l("%(n)s cells, the header has %(m)s columns"),
    # checks that need the database (this module)
    "duplicate_code": _l("code %(value)s is repeated (first at line %(first)s): the database keeps one version "
                         "per code"),
    "too_long": _l("longer than %(max)s characters"),
    "kind_invalid": _l("unit kind %(value)r is not valid"),
    "name_missing": _l("the Vietnamese name is missing"),
    "counter_needs_unit": _l("a counter must belong to a unit"),
    "counter_under_counter": _l("a counter cannot belong to another counter"),
    "code_is_unit": _l("code %(value)s is already a unit, not a counter"),
    "code_is_counter": _l("code %(value)s is already a counter"),
    "not_uuid": _l("%(value)r is not a UUID"),
    "duplicate_id": _l("same response id as line %(first)s"),
    "id_stored": _l("response %(value)s is already in the database"),
    "unknown_counter": _l("counter %(value)r not found"),
    "counter_other_unit": _l("counter %(value)s does not belong to unit %(unit)s"),
    "out_of_scope": _l("unit %(value)s is outside your scope: you may import data only for your own units"),
    "volume_overlap_file": _l("unit %(unit)s, stratum %(stratum)s: the period %(period)s overlaps the period "
                              "%(other)s of line %(first)s"),
    "volume_overlap_stored": _l("unit %(unit)s, stratum %(stratum)s: the period %(period)s overlaps the stored "
                                "period %(other)s (%(n)s transactions); to replace stored figures, import with "
                                "“replace”"),
    "channel_invalid": _l("channel %(value)r is not one of %(allowed)s"),
    "unknown_instrument": _l("questionnaire %(value)r not found"),
    "age_invalid": _l("age group %(value)r is not one of %(allowed)s"),
    "gender_invalid": _l("gender %(value)r is not one of %(allowed)s"),
    "item_not_in_instrument": _l("question %(value)s is not in questionnaire %(instrument)s"),
}

#: Problems of the whole file (`analysis.io.CsvChunks` codes): the summary of the refusal.
FILE_PROBLEM_TEXT = {
    "file_empty": _l("the file is empty (no header line)"),
    "missing_columns": _l("missing columns: %(names)s"),
    "repeated_columns": _l("repeated columns: %(names)s"),
    "file_not_utf8": _l("the file is not UTF-8 (%(reason)s at line %(line)s)"),
    "file_nul": _l("the file contains NUL characters: it is not a CSV text file"),
    "csv_parse": _l("the file is not valid CSV at line %(line)s: %(reason)s"),
}


def _text(message, **params) -> str:
    """A message in the request's language (Vietnamese outside a request: the CLI)."""
    if has_request_context():
        return str(message) % params if params else str(message)
    with force_locale(current_app.config["BABEL_DEFAULT_LOCALE"]):
        return str(message) % params if params else str(message)


@dataclass
class RowError:
    """One bad cell or row: where (line, column) and why.  `code` and `params`
    name the problem (the `analysis.io` codes, and this module's own); the
    message is worded in the user's language when the error is made."""

    line: Optional[int]
    column: str
    message: str = ""
    code: str = ""
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        if not self.message and self.code:
            self.message = _text(PROBLEM_TEXT[self.code], **self.params)

    def __str__(self) -> str:
        where = _text(_l("line %(line)s", line=self.line)) if self.line is not None else ""
        if self.column:
            where += (", " if where else "") + _text(_l("column %(column)s", column=self.column))
        return f"{where}: {self.message}" if where else self.message


@dataclass
class ImportRejected(Exception):
    """The file was refused; nothing was written."""

    filename: str
    errors: list[RowError] = field(default_factory=list)
    summary: str = ""

    def __str__(self) -> str:
        head = self.summary or _text(_l("%(file)s: %(n)s rows with errors, nothing was written"),
                                     file=self.filename, n=len(self.errors))
        return "\n".join([head] + [f"  {self.filename}: {e}" for e in self.errors])


@dataclass
class ImportResult:
    kind: str
    rows: int
    created: int = 0
    updated: int = 0
    batch_id: Optional[int] = None


def _reject(filename: str, message, **params) -> ImportRejected:
    return ImportRejected(filename, summary=f"{filename}: " + _text(message, **params))


# ---------------------------------------------------------------- reading: structure in analysis.io, streamed

def _seekable(data: Source) -> IO[bytes]:
    """A seekable binary stream over `data` (bytes, or a stream; a stream that
    cannot seek is spooled to a temporary file first)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return io.BytesIO(data)
    if data.seekable():
        return data
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
    while chunk := data.read(1024 * 1024):
        spool.write(chunk)
    return spool


def _file_problem(filename: str, exc: InputError) -> ImportRejected:
    p = exc.problems[0]
    text = FILE_PROBLEM_TEXT.get(p.code)
    if text is None:
        return ImportRejected(filename, summary=f"{filename}: {p}")
    return _reject(filename, text, **p.params)


class _Pass:
    """One pass over the file: `analysis.io.CsvChunks` with its problems worded
    here, the errors found so far (at most MAX_ERRORS) and the byte stream left
    open for the next pass."""

    def __init__(self, stream: IO[bytes], filename: str, required: Iterable[str], chunk_rows=CHUNK_ROWS):
        from analysis.io import CsvChunks

        self.filename = filename
        stream.seek(0)
        try:
            self.reader: CsvChunks = CsvChunks(stream, source=filename, required=required, chunk_rows=chunk_rows)
        except InputError as exc:
            raise _file_problem(filename, exc) from None
        self.errors: list[RowError] = []
        self.truncated = False

    @property
    def header(self) -> list[str]:
        return self.reader.header

    def chunks(self) -> Iterator[tuple[pd.DataFrame, list[int]]]:
        """(frame, line numbers) per chunk; stops early once MAX_ERRORS errors were found."""
        try:
            for chunk in self.reader:
                yield chunk
                if len(self.errors) >= MAX_ERRORS:
                    self.truncated = True
                    return
        except InputError as exc:
            raise _file_problem(self.filename, exc) from None
        finally:
            self.reader.detach()

    def raise_if_errors(self, kind: Optional[str] = None) -> None:
        """Refuse the file: the same content imported before (as `kind`), rows with errors, no rows."""
        if kind and not self.truncated and db.session.scalar(select(ImportBatch.id).where(
                ImportBatch.kind == kind, ImportBatch.sha256 == self.reader.digest())):
            raise _reject(self.filename, _l("this file was imported before (same content)"))
        errors = self.errors + [RowError(p.line, "", code=p.code, params=dict(p.params))
                                for p in self.reader.problems]
        if errors:
            errors = _sorted(errors)[:MAX_ERRORS]
            summary = ""
            if self.truncated or len(errors) >= MAX_ERRORS:
                summary = self.filename + ": " + _text(
                    _l("at least %(n)s rows with errors (the first %(n)s are listed); nothing was written"),
                    n=len(errors))
            raise ImportRejected(self.filename, errors, summary)
        if not self.reader.rows:
            raise _reject(self.filename, _l("the file has no data rows"))


def _validate(prepare, frame: pd.DataFrame, lines: list[int], filename: str, **kw):
    """`analysis.io.prepare_*` on the frame: (prepared frame or None, row errors
    with the file's own line numbers)."""
    try:
        return prepare(frame, source=filename, **kw), []
    except InputError as exc:
        errors = []
        for p in exc.problems:
            line = p.line if p.line in (None, 1) else lines[p.line - 2]
            errors.append(RowError(line, p.column or "", code=p.code, params=dict(p.params))
                          if p.code in PROBLEM_TEXT else RowError(line, p.column or "", p.message))
        return None, errors


def _scope_errors(frame: pd.DataFrame, lines: list[int], units: dict[str, int],
                  scope: Optional[set[int]]) -> list[RowError]:
    """A row error for every row whose (known) unit is outside `scope` (None: no limit)."""
    if scope is None:
        return []
    out = []
    for line, code in zip(lines, frame["unit_code"]):
        uid = units.get(code)
        if uid is not None and uid not in scope:
            out.append(RowError(line, "unit_code", code="out_of_scope", params={"value": code}))
    return out


def _sorted(errors: list[RowError]) -> list[RowError]:
    return sorted(errors, key=lambda e: (e.line or 0, e.column))


def _sha256(content: CsvChunks) -> str:
    """The checksum an import batch is recorded under (of the file's content)."""
    return content.digest()


def _record_batch(kind: str, content: CsvChunks, filename: str, rows: int, actor: str) -> ImportBatch:
    digest = _sha256(content)
    if db.session.scalar(select(ImportBatch.id).where(ImportBatch.kind == kind, ImportBatch.sha256 == digest)):
        raise _reject(filename, _l("this file was imported before (same content)"))
    batch = ImportBatch(kind=kind, sha256=digest, filename=filename[:300], rows=rows, actor=actor)
    db.session.add(batch)
    try:
        db.session.flush()
    except IntegrityError:  # the same file won a concurrent import a moment ago
        db.session.rollback()
        raise _reject(filename, _l("this file was just imported (at the same time); nothing was written this "
                                   "time")) from None
    return batch


def _refuse_closed_periods(batch: ImportBatch, filename: str) -> None:
    """Roll back and reject the file when what it wrote would alter a closed
    (frozen) period: corrections to a closed period go through reopening it."""
    from .publishing import batch_refusal

    why = batch_refusal(batch.id)
    if why:
        db.session.rollback()
        raise ImportRejected(filename, summary=f"{filename}: {why}")


def _commit_or_reject(filename: str) -> None:
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise _reject(filename, _l("refused because of a data conflict (the file may be being imported at the "
                                   "same time, or a code already exists); nothing was written")) from exc


def _audit(actor: str, action: str, details: dict) -> None:
    from .audit import record

    record(actor=actor, action=action, target_type="import", details=details)


# ---------------------------------------------------------------- units

def import_units(data: Source, filename: str, actor: str = "cli") -> ImportResult:
    """Create or update units (and counters: kind `counter`, parent = the unit
    the counter belongs to).  The rows are checked by `analysis.io.prepare_units`
    (references may also name units already stored); here only what needs the
    database or its columns: one row per code, lengths, counters.  A unit file
    is small: it is read in one chunk (the tree is checked as a whole)."""
    import pandas as pd

    from analysis.io import prepare_units

    src = _seekable(data)
    reading = _Pass(src, filename, UNIT_COLUMNS, chunk_rows=None)
    frame, lines = (list(reading.chunks()) or [(pd.DataFrame(columns=reading.header), [])])[0]
    reading.raise_if_errors()
    errors = reading.errors
    existing = {u.code: u for u in db.session.scalars(select(Unit))}
    existing_counters = {c.code: c for c in db.session.scalars(select(Counter))}
    prepared, problems = _validate(prepare_units, frame, lines, filename,
                                   known_codes=set(existing) | set(existing_counters))
    errors += problems
    first_line: dict[str, int] = {}
    file_counters = {r["code"] for r in frame.to_dict("records") if r["kind"] == COUNTER_KIND}
    parsed = []
    for line, r in zip(lines, frame.to_dict("records")):
        code = r["code"]
        if len(code) > 40:
            errors.append(RowError(line, "code", code="too_long", params={"max": 40}))
        if code and code in first_line:
            errors.append(RowError(line, "code", code="duplicate_code", params={"value": code,
                                                                                "first": first_line[code]}))
        first_line.setdefault(code, line)
        if not r["name_vi"]:
            errors.append(RowError(line, "name_vi", code="name_missing"))
        kind = r["kind"]
        if kind and (len(kind) > 30 or not kind.replace("_", "").isalnum()):
            errors.append(RowError(line, "kind", code="kind_invalid", params={"value": kind}))
        for c in ("name_vi", "name_en"):
            if len(r[c]) > 200:
                errors.append(RowError(line, c, code="too_long", params={"max": 200}))
        if kind == COUNTER_KIND:
            if not r["parent_code"]:
                errors.append(RowError(line, "parent_code", code="counter_needs_unit"))
            elif r["parent_code"] in existing_counters or r["parent_code"] in file_counters:
                errors.append(RowError(line, "parent_code", code="counter_under_counter"))
            if code in existing:
                errors.append(RowError(line, "code", code="code_is_unit", params={"value": code}))
        elif code in existing_counters:
            errors.append(RowError(line, "code", code="code_is_counter", params={"value": code}))
        parsed.append(r)
    reading.raise_if_errors("units")

    def day(v):
        return None if pd.isna(v) else pd.Timestamp(v).date()

    dates = [(day(a), day(b)) for a, b in zip(prepared["valid_from"], prepared["valid_to"])]
    batch = _record_batch("units", reading.reader, filename, len(parsed), actor)
    created = updated = 0
    units = dict(existing)
    for r, (vf, vt) in zip(parsed, dates):
        if r["kind"] == COUNTER_KIND:
            continue
        u = units.get(r["code"])
        if u is None:
            u = Unit(code=r["code"])
            db.session.add(u)
            units[r["code"]] = u
            created += 1
        else:
            updated += 1
        u.name_vi, u.name_en, u.kind = r["name_vi"], r["name_en"], r["kind"]
        u.valid_from, u.valid_to = vf, vt
    db.session.flush()
    today = local_today()
    for r, (vf, vt) in zip(parsed, dates):
        if r["kind"] == COUNTER_KIND:
            c = existing_counters.get(r["code"])
            if c is None:
                c = Counter(code=r["code"], token_version=1, active=True)
                db.session.add(c)
                created += 1
            else:
                updated += 1
            c.name_vi, c.name_en = r["name_vi"], r["name_en"]
            c.unit_id = units[r["parent_code"]].id
            c.active = vt is None or vt > today
            continue
        u = units[r["code"]]
        u.parent_id = units[r["parent_code"]].id if r["parent_code"] else None
        u.successor_id = units[r["successor_code"]].id if r["successor_code"] else None
    db.session.flush()
    cycle = _find_parent_cycle(units.values())
    if cycle:
        db.session.rollback()
        raise _reject(filename, _l("the unit tree has a cycle: %(path)s"), path=" → ".join(cycle))
    _audit(actor, "import_units", {"file": filename, "rows": len(parsed), "created": created, "updated": updated})
    _commit_or_reject(filename)
    return ImportResult("units", len(parsed), created, updated, batch.id)


def _find_parent_cycle(units: Iterable[Unit]) -> list[str]:
    by_id = {u.id: u for u in units}
    for u in by_id.values():
        seen, node = [], u
        while node is not None and node.parent_id is not None:
            if node.code in seen:
                return seen[seen.index(node.code):] + [node.code]
            seen.append(node.code)
            node = by_id.get(node.parent_id)
    return []


# ---------------------------------------------------------------- volumes

def _period(start: int, end: int) -> str:
    a, b = dt.date.fromordinal(start), dt.date.fromordinal(end)
    return f"{a.isoformat()}–{b.isoformat()}"


def _volume_rows(prepared: pd.DataFrame, lines: list[int], units: dict[str, int]) -> Iterator[tuple]:
    """(line, unit id, stratum, first day ordinal, last day ordinal, transactions) per prepared row."""
    starts = prepared["period_start"].dt.date
    ends = prepared["period_end"].dt.date
    for line, code, stratum, a, b, n in zip(lines, prepared["unit_code"], prepared["stratum"], starts, ends,
                                            prepared["transactions"]):
        yield line, units[code], stratum, a.toordinal(), b.toordinal(), int(n)


def _volumes_stored_since(unit_ids: list[int], known: set[int]) -> dict[tuple, list[tuple]]:
    """Volume rows of `unit_ids` that are not among `known` (the rows the file
    was checked against): stored by a concurrent import since.  On PostgreSQL
    the units' rows are locked first (in id order), so two imports touching
    the same units run their final check one after the other; SQLite already
    serialises writers from the batch row on."""
    out: dict[tuple, list[tuple]] = defaultdict(list)
    postgres = db.session.connection().dialect.name == "postgresql"
    for i in range(0, len(unit_ids), 1000):
        part = unit_ids[i:i + 1000]
        if postgres:
            db.session.execute(select(Unit.id).where(Unit.id.in_(part)).order_by(Unit.id).with_for_update())
        for vid, uid, stratum, a, b, n in db.session.execute(
                select(Volume.id, Volume.unit_id, Volume.stratum, Volume.period_start, Volume.period_end,
                       Volume.transactions).where(Volume.unit_id.in_(part))):
            if vid not in known:
                out[(uid, stratum)].append((a.toordinal(), b.toordinal(), vid, n))
    return out


def import_volumes(data: Source, filename: str, actor: str = "cli", *, scope: Optional[set[int]] = None,
                   replace: bool = False) -> ImportResult:
    """Add transaction volumes (`analysis.io.prepare_volumes` checks the rows;
    units must exist in the database and, with a `scope`, be in it).  A row
    whose period overlaps another row of the file, or a stored row, for the same
    unit and stratum is an error — with `replace` the overlapped stored rows are
    deleted instead (audited with their old figures) and the file's rows added."""
    from analysis.io import prepare_volumes

    src = _seekable(data)
    units = {code: uid for uid, code in db.session.execute(select(Unit.id, Unit.code))}
    codes = {uid: code for code, uid in units.items()}
    stored: dict[tuple, list[tuple]] = defaultdict(list)
    for vid, uid, stratum, a, b, n in db.session.execute(select(Volume.id, Volume.unit_id, Volume.stratum,
                                                                Volume.period_start, Volume.period_end,
                                                                Volume.transactions)):
        stored[(uid, stratum)].append((a.toordinal(), b.toordinal(), vid, n))
    # the file's periods per (unit, stratum): flat (start, end, line) triples, compact for large files
    periods: dict[tuple, array.array] = defaultdict(lambda: array.array("q"))
    replaced: dict[int, tuple] = {}
    reading = _Pass(src, filename, VOLUME_COLUMNS)
    errors = reading.errors
    for frame, lines in reading.chunks():
        errors += _scope_errors(frame, lines, units, scope)
        prepared, problems = _validate(prepare_volumes, frame, lines, filename, known_units=set(units))
        errors += problems
        if prepared is None:
            continue
        for line, uid, stratum, a, b, n in _volume_rows(prepared, lines, units):
            if len(stratum) > 60:
                errors.append(RowError(line, "stratum", code="too_long", params={"max": 60}))
            if n > 2_000_000_000:  # the column is an integer
                errors.append(RowError(line, "transactions", code="not_count", params={"value": str(n)}))
            periods[(uid, stratum)].extend((a, b, line))
            for sa, sb, vid, sn in stored.get((uid, stratum), ()):
                if sa <= b and a <= sb:
                    if replace:
                        replaced[vid] = (codes[uid], stratum, _period(sa, sb), sn)
                    else:
                        errors.append(RowError(line, "period_start", code="volume_overlap_stored", params={
                            "unit": codes[uid], "stratum": stratum, "period": _period(a, b),
                            "other": _period(sa, sb), "n": sn}))
    for (uid, stratum), flat in periods.items():
        triples = sorted(zip(flat[0::3], flat[1::3], flat[2::3]))
        reach: Optional[tuple[int, int, int]] = None  # the row reaching furthest so far: (start, end, line)
        for a, b, line in triples:
            if reach is not None and a <= reach[1]:
                (la, lb, later), (ea, eb, earlier) = sorted([(a, b, line), reach], key=lambda t: -t[2])
                errors.append(RowError(later, "period_start", code="volume_overlap_file", params={
                    "unit": codes[uid], "stratum": stratum, "period": _period(la, lb),
                    "other": _period(ea, eb), "first": earlier}))
            if reach is None or b > reach[1]:
                reach = (a, b, line)
    file_units = sorted({uid for uid, _ in periods})
    del periods
    reading.raise_if_errors("volumes")
    rows = reading.reader.rows
    batch = _record_batch("volumes", reading.reader, filename, rows, actor)
    fresh = _volumes_stored_since(file_units, {v[2] for vs in stored.values() for v in vs})
    conflicts: list[RowError] = []
    # The replaced rows go before the new ones: a row may replace one of the very same period (unique key).
    deleted = set(replaced)
    if deleted:
        db.session.execute(delete(Volume).where(Volume.id.in_(list(deleted))))
    writing = _Pass(src, filename, VOLUME_COLUMNS)
    for frame, lines in writing.chunks():
        prepared, _problems = _validate(prepare_volumes, frame, lines, filename)
        batch_rows = []
        for line, uid, stratum, a, b, n in _volume_rows(prepared, lines, units):
            for sa, sb, vid, sn in fresh.get((uid, stratum), ()):
                if sa <= b and a <= sb:
                    replaced[vid] = (codes[uid], stratum, _period(sa, sb), sn)
                    conflicts.append(RowError(line, "period_start", code="volume_overlap_stored", params={
                        "unit": codes[uid], "stratum": stratum, "period": _period(a, b),
                        "other": _period(sa, sb), "n": sn}))
            batch_rows.append(dict(unit_id=uid, stratum=stratum, period_start=dt.date.fromordinal(a),
                                   period_end=dt.date.fromordinal(b), transactions=n, import_batch_id=batch.id))
        if replace and set(replaced) - deleted:
            db.session.execute(delete(Volume).where(Volume.id.in_(list(set(replaced) - deleted))))
            deleted |= set(replaced)
        db.session.execute(insert(Volume), batch_rows)
    if conflicts and not replace:  # another import stored an overlapping row meanwhile
        db.session.rollback()
        raise ImportRejected(filename, _sorted(conflicts)[:MAX_ERRORS])
    if replaced:
        _audit(actor, "replace_volumes", {
            "file": filename, "replaced": len(replaced),
            "rows": [dict(zip(("unit", "stratum", "period", "transactions"), v))
                     for _, v in sorted(replaced.items())[:200]]})
    _audit(actor, "import_volumes", {"file": filename, "rows": rows, "created": rows, "updated": len(replaced),
                                     "replace": bool(replace)})
    _refuse_closed_periods(batch, filename)
    _commit_or_reject(filename)
    return ImportResult("volumes", rows, rows, len(replaced), batch.id)


# ---------------------------------------------------------------- responses

def _instrument_index(session) -> dict[str, Instrument]:
    out: dict[str, Instrument] = {}
    for inst in session.scalars(select(Instrument).order_by(Instrument.key, Instrument.version)):
        out[f"{inst.key}@{inst.version}"] = inst
        out[inst.key] = inst  # latest version wins (ordered ascending)
    return out


@dataclass
class _ResponseContext:
    """What every chunk of a response file is checked against."""

    filename: str
    header: list[str]
    units: dict[str, int]
    counters: dict[str, tuple[int, int]]  # code -> (counter id, unit id)
    instruments: dict[str, Instrument]
    default_channel: str
    scope: Optional[set[int]]

    def __post_init__(self):
        from analysis.io import criteria_columns

        all_item_cols = set()
        for inst in self.instruments.values():
            all_item_cols |= set(item_specs(inst))
        self.all_item_cols = all_item_cols
        self.checked = set(ITEM_KEYS) | {c for cols in criteria_columns(self.header).values() for c in cols}
        self.item_cols = [c for c in self.header if c in all_item_cols]
        self.default_inst = self.instruments.get("counter-quick") or next(iter(self.instruments.values()))
        self.specs = {label: item_specs(inst) for label, inst in self.instruments.items()}


def _response_rows(frame: pd.DataFrame, lines: list[int], ctx: _ResponseContext,
                   errors: list[RowError]) -> list[tuple[int, Optional[uuid.UUID], dict]]:
    """Check one chunk (errors appended to `errors`); its rows as (line, id
    given in the file or None, row to insert with its `answers`)."""
    from analysis.io import prepare_responses

    errors += _scope_errors(frame, lines, ctx.units, ctx.scope)
    prepared, problems = _validate(prepare_responses, frame, lines, ctx.filename, known_units=set(ctx.units),
                                   require_all=True)
    errors += problems
    out = []
    for pos, (line, r) in enumerate(zip(lines, frame.to_dict("records"))):
        rid_text = r["response_id"]
        given = None
        try:
            given = uuid.UUID(rid_text) if rid_text else None
        except ValueError:
            errors.append(RowError(line, "response_id", code="not_uuid", params={"value": rid_text}))
        unit_id = ctx.units.get(r["unit_code"])
        counter_id = None
        if r.get("counter_code"):
            counter_id, counter_unit = ctx.counters.get(r["counter_code"], (None, None))
            if counter_id is None:
                errors.append(RowError(line, "counter_code", code="unknown_counter",
                                       params={"value": r["counter_code"]}))
            elif unit_id is not None and counter_unit != unit_id:
                errors.append(RowError(line, "counter_code", code="counter_other_unit",
                                       params={"value": r["counter_code"], "unit": r["unit_code"]}))
        channel = r["channel"] or ctx.default_channel
        if channel not in CHANNELS:
            errors.append(RowError(line, "channel", code="channel_invalid",
                                   params={"value": channel, "allowed": ", ".join(CHANNELS)}))
        label = r["instrument"] or ctx.default_inst.label
        inst = ctx.instruments.get(label)
        if inst is None:
            errors.append(RowError(line, "instrument", code="unknown_instrument",
                                   params={"value": r["instrument"]}))
            continue
        if len(r["stratum"]) > 60:
            errors.append(RowError(line, "stratum", code="too_long", params={"max": 60}))
        age, gender, comment = r.get("age_group", ""), r.get("gender", ""), r.get("comment", "")
        if age and age not in AGE_GROUPS:
            errors.append(RowError(line, "age_group", code="age_invalid",
                                   params={"value": age, "allowed": ", ".join(AGE_GROUPS)}))
        if gender and gender not in GENDERS:
            errors.append(RowError(line, "gender", code="gender_invalid",
                                   params={"value": gender, "allowed": ", ".join(GENDERS)}))
        if len(comment) > MAX_COMMENT:
            errors.append(RowError(line, "comment", code="too_long", params={"max": MAX_COMMENT}))
        specs = ctx.specs[label]
        answers = []
        for col in ctx.item_cols:
            value = r[col]
            if value == "":
                continue
            if col not in specs:
                errors.append(RowError(line, col, code="item_not_in_instrument",
                                       params={"value": col, "instrument": inst.label}))
                continue
            allowed = specs[col]["values"]
            try:
                v = int(value)
            except ValueError:
                v = None
            if v not in allowed:
                if col not in ctx.checked:  # the six items and the criteria were checked by analysis.io
                    errors.append(RowError(line, col, code="value_range",
                                           params={"value": value, "low": allowed[0], "high": allowed[-1]}))
                continue
            answers.append((col, v))
        if prepared is None:
            continue
        ts = prepared["submitted_at"].iloc[pos]
        excluded = bool(prepared["excluded"].iloc[pos])
        out.append((line, given, dict(unit_id=unit_id, counter_id=counter_id, instrument_id=inst.id,
                                      channel=channel, submitted_at=ts.to_pydatetime(),
                                      stratum=r["stratum"] or ALL_STRATUM, excluded=excluded,
                                      excluded_reason="import" if excluded else None,
                                      age_group=age or None, gender=gender or None,
                                      comment=mask_pii(comment) or None, answers=answers)))
    return out


def _repeated_ids(ids: bytearray, lines: array.array) -> list[RowError]:
    """`duplicate_id` for every row whose id (16 bytes each in `ids`) came earlier in the file."""
    import numpy as np

    if not lines:
        return []
    keys = np.frombuffer(bytes(ids), dtype=">u8").reshape(-1, 2)
    at = np.frombuffer(lines, dtype=np.int64)
    order = np.lexsort((at, keys[:, 1], keys[:, 0]))
    k = keys[order]
    same = np.r_[False, (k[1:] == k[:-1]).all(axis=1)]
    out = []
    first = None
    for i in np.flatnonzero(same | np.r_[same[1:], False]):
        if not same[i]:
            first = int(at[order[i]])
        else:
            out.append(RowError(int(at[order[i]]), "response_id", code="duplicate_id", params={"first": first}))
    return out


def import_responses(data: Source, filename: str, actor: str = "cli", default_channel: str = "import", *,
                     scope: Optional[set[int]] = None) -> ImportResult:
    """Add responses (all-or-nothing).  Rows checked by
    `analysis.io.prepare_responses` (units must exist and, with a `scope`, be in
    it); here what needs the database or its columns: ids (UUID, once in the
    file, not yet stored), counters (of the row's unit), channel, questionnaire
    and its questions, respondent fields."""
    src = _seekable(data)
    reading = _Pass(src, filename, RESPONSE_COLUMNS)
    instruments = _instrument_index(db.session)
    if not instruments:
        raise _reject(filename, _l("no questionnaire is loaded in the database (run `flask instruments load`)"))
    ctx = _ResponseContext(
        filename, reading.header,
        units={code: uid for uid, code in db.session.execute(select(Unit.id, Unit.code))},
        counters={code: (cid, uid) for cid, code, uid in db.session.execute(
            select(Counter.id, Counter.code, Counter.unit_id))},
        instruments=instruments, default_channel=default_channel, scope=scope)
    known = set(RESPONSE_COLUMNS) | set(RESPONSE_OPTIONAL) | ctx.all_item_cols
    unknown = [h for h in reading.header if h not in known]
    if unknown:
        raise _reject(filename, _l("unknown columns: %(names)s"), names=", ".join(unknown))
    ids, id_lines = bytearray(), array.array("q")
    errors = reading.errors
    for frame, lines in reading.chunks():
        rows = _response_rows(frame, lines, ctx, errors)
        given: dict[uuid.UUID, int] = {}
        for line, rid, _ in rows:
            if rid is not None:
                ids += rid.bytes
                id_lines.append(line)
                given.setdefault(rid, line)
        chunk_ids = list(given)
        for i in range(0, len(chunk_ids), 500):
            for rid in db.session.scalars(select(Response.id).where(Response.id.in_(chunk_ids[i:i + 500]))):
                errors.append(RowError(given[rid], "response_id", code="id_stored", params={"value": rid}))
    errors += _repeated_ids(ids, id_lines)
    del ids, id_lines
    reading.raise_if_errors("responses")
    total = reading.reader.rows
    batch = _record_batch("responses", reading.reader, filename, total, actor)
    now = dt.datetime.now(dt.timezone.utc)
    writing = _Pass(src, filename, RESPONSE_COLUMNS)
    for frame, lines in writing.chunks():
        resp_rows, ans_rows = [], []
        for _line, given, p in _response_rows(frame, lines, ctx, writing.errors):
            rid = given or uuid.uuid4()
            answers = p.pop("answers")
            resp_rows.append(dict(p, id=rid, received_at=now, flags="", import_batch_id=batch.id))
            ans_rows.extend({"response_id": rid, "item_key": k, "value": v} for k, v in answers)
        insert_responses(resp_rows, ans_rows)
    _audit(actor, "import_responses", {"file": filename, "rows": total})
    _refuse_closed_periods(batch, filename)
    _commit_or_reject(filename)
    return ImportResult("responses", total, total, 0, batch.id)

