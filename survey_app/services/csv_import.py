"""CSV imports in the DESIGN.md formats.

Imports are all-or-nothing: the whole file is validated first; one bad row
rejects the file with every bad row listed (line number, column, reason) and
nothing is written.  An accepted file is recorded as an ImportBatch whose
(kind, sha256) is unique, so the same file cannot be imported twice — also
when two imports of it race: the loser's transaction fails on the unique
constraint and is rolled back whole.

Used by the CLI (`flask units import` ...) and by the staff pages.  Exports
are in `csv_export`.
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Optional

from flask import current_app, has_request_context
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
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
# pandas and analysis.io are imported by the importers themselves: importing this module (the staff
# pages do) stays light, so creating the app never loads the statistics stack.

MAX_FILE_BYTES = 200 * 1024 * 1024


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
    "duplicate_row": _l("same unit, period and field as line %(first)s"),
    "not_uuid": _l("%(value)r is not a UUID"),
    "duplicate_id": _l("same response id as line %(first)s"),
    "id_stored": _l("response %(value)s is already in the database"),
    "unknown_counter": _l("counter %(value)r not found"),
    "channel_invalid": _l("channel %(value)r is not one of %(allowed)s"),
    "unknown_instrument": _l("questionnaire %(value)r not found"),
    "age_invalid": _l("age group %(value)r is not one of %(allowed)s"),
    "gender_invalid": _l("gender %(value)r is not one of %(allowed)s"),
    "item_not_in_instrument": _l("question %(value)s is not in questionnaire %(instrument)s"),
    "cells": _l("%(n)s cells, the header has %(m)s columns"),
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


# ---------------------------------------------------------------- reading: structure here, rules in analysis.io

def _read_csv(data: bytes, filename: str, required) -> tuple[pd.DataFrame, list[int], list[RowError]]:
    """The file as a frame of trimmed strings (one row per record, blank records
    skipped) with each row's line number, and the rows whose cell count does not
    match the header.  The columns' rules are applied by `analysis.io`."""
    import pandas as pd

    if len(data) > MAX_FILE_BYTES:
        raise _reject(filename, _l("the file is too large (at most 200 MB)"))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _reject(filename, _l("the file is not UTF-8 (%(reason)s at byte %(at)s)"), reason=exc.reason,
                      at=exc.start) from None
    if "\x00" in text:
        raise _reject(filename, _l("the file contains NUL characters: it is not a CSV text file"))
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise _reject(filename, _l("the file is empty (no header line)")) from None
    except csv.Error as exc:
        raise _reject(filename, _l("the file is not valid CSV: %(reason)s"), reason=str(exc)) from None
    header = [h.strip() for h in header]
    missing = [c for c in required if c not in header]
    if missing:
        raise _reject(filename, _l("missing columns: %(names)s"), names=", ".join(missing))
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise _reject(filename, _l("repeated columns: %(names)s"), names=", ".join(dupes))
    rows, lines, bad = [], [], []
    try:
        for values in reader:
            line = reader.line_num
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != len(header):
                bad.append(RowError(line, "", code="cells", params={"n": len(values), "m": len(header)}))
                continue
            rows.append([v.strip() for v in values])
            lines.append(line)
    except csv.Error as exc:
        raise _reject(filename, _l("the file is not valid CSV at line %(line)s: %(reason)s"),
                      line=reader.line_num, reason=str(exc)) from None
    if not rows and not bad:
        raise _reject(filename, _l("the file has no data rows"))
    return pd.DataFrame(rows, columns=header, dtype=object), lines, bad


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


def _sorted(errors: list[RowError]) -> list[RowError]:
    return sorted(errors, key=lambda e: (e.line or 0, e.column))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _record_batch(kind: str, data: bytes, filename: str, rows: int, actor: str) -> ImportBatch:
    digest = _sha256(data)
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

def import_units(data: bytes, filename: str, actor: str = "cli") -> ImportResult:
    """Create or update units (and counters: kind `counter`, parent = the unit
    the counter belongs to).  The rows are checked by `analysis.io.prepare_units`
    (references may also name units already stored); here only what needs the
    database or its columns: one row per code, lengths, counters."""
    import pandas as pd

    from analysis.io import prepare_units

    frame, lines, errors = _read_csv(data, filename, UNIT_COLUMNS)
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
    if errors:
        raise ImportRejected(filename, _sorted(errors))

    def day(v):
        return None if pd.isna(v) else pd.Timestamp(v).date()

    dates = [(day(a), day(b)) for a, b in zip(prepared["valid_from"], prepared["valid_to"])]
    batch = _record_batch("units", data, filename, len(parsed), actor)
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

def import_volumes(data: bytes, filename: str, actor: str = "cli") -> ImportResult:
    """Add transaction volumes; a row with the same (unit, period, stratum) as a
    stored one replaces its count.  Rows checked by `analysis.io.prepare_volumes`
    (units must exist in the database); here: stratum length, repeated rows."""
    import pandas as pd

    from analysis.io import prepare_volumes

    frame, lines, errors = _read_csv(data, filename, VOLUME_COLUMNS)
    units = {code: uid for uid, code in db.session.execute(select(Unit.id, Unit.code))}
    prepared, problems = _validate(prepare_volumes, frame, lines, filename, known_units=set(units))
    errors += problems
    parsed: dict[tuple, tuple[int, int]] = {}
    if prepared is not None:
        for line, code, start, end, stratum, n in zip(lines, prepared["unit_code"], prepared["period_start"],
                                                      prepared["period_end"], prepared["stratum"],
                                                      prepared["transactions"]):
            if len(stratum) > 60:
                errors.append(RowError(line, "stratum", code="too_long", params={"max": 60}))
            if n > 2_000_000_000:  # the column is an integer
                errors.append(RowError(line, "transactions", code="not_count", params={"value": str(int(n))}))
            key = (units[code], pd.Timestamp(start).date(), pd.Timestamp(end).date(), stratum)
            if key in parsed:
                errors.append(RowError(line, "", code="duplicate_row", params={"first": parsed[key][0]}))
            parsed[key] = (line, int(n))
    if errors:
        raise ImportRejected(filename, _sorted(errors))
    batch = _record_batch("volumes", data, filename, len(parsed), actor)
    stored = {(v.unit_id, v.period_start, v.period_end, v.stratum): v for v in db.session.scalars(select(Volume))}
    created = updated = 0
    for key, (_line, n) in parsed.items():
        v = stored.get(key)
        if v is None:
            db.session.add(Volume(unit_id=key[0], period_start=key[1], period_end=key[2], stratum=key[3],
                                  transactions=n, import_batch_id=batch.id))
            created += 1
        else:
            v.transactions = n
            v.import_batch_id = batch.id
            updated += 1
    _audit(actor, "import_volumes", {"file": filename, "rows": len(parsed), "created": created, "updated": updated})
    _commit_or_reject(filename)
    return ImportResult("volumes", len(parsed), created, updated, batch.id)


# ---------------------------------------------------------------- responses

def _instrument_index(session) -> dict[str, Instrument]:
    out: dict[str, Instrument] = {}
    for inst in session.scalars(select(Instrument).order_by(Instrument.key, Instrument.version)):
        out[f"{inst.key}@{inst.version}"] = inst
        out[inst.key] = inst  # latest version wins (ordered ascending)
    return out


def import_responses(data: bytes, filename: str, actor: str = "cli", default_channel: str = "import") -> ImportResult:
    """Add responses (all-or-nothing).  Rows checked by
    `analysis.io.prepare_responses` (units must exist); here what needs the
    database or its columns: ids (UUID, once in the file, not yet stored),
    counters, channel, questionnaire and its questions, respondent fields."""
    from analysis.io import criteria_columns, prepare_responses

    frame, lines, errors = _read_csv(data, filename, RESPONSE_COLUMNS)
    instruments = _instrument_index(db.session)
    if not instruments:
        raise _reject(filename, _l("no questionnaire is loaded in the database (run `flask instruments load`)"))
    all_item_cols = set()
    for inst in instruments.values():
        all_item_cols |= set(item_specs(inst))
    known = set(RESPONSE_COLUMNS) | set(RESPONSE_OPTIONAL) | all_item_cols
    unknown = [h for h in frame.columns if h not in known]
    if unknown:
        raise _reject(filename, _l("unknown columns: %(names)s"), names=", ".join(unknown))
    units = {code: uid for uid, code in db.session.execute(select(Unit.id, Unit.code))}
    counters = {code: cid for cid, code in db.session.execute(select(Counter.id, Counter.code))}
    prepared, problems = _validate(prepare_responses, frame, lines, filename, known_units=set(units),
                                   require_all=True)
    errors += problems
    checked = set(ITEM_KEYS) | {c for cols in criteria_columns(frame.columns).values() for c in cols}
    item_cols = [c for c in frame.columns if c in all_item_cols]
    seen_ids: dict[uuid.UUID, int] = {}
    parsed = []
    default_inst = instruments.get("counter-quick") or next(iter(instruments.values()))
    for pos, (line, r) in enumerate(zip(lines, frame.to_dict("records"))):
        rid_text = r["response_id"]
        try:
            rid = uuid.UUID(rid_text) if rid_text else uuid.uuid4()
        except ValueError:
            errors.append(RowError(line, "response_id", code="not_uuid", params={"value": rid_text}))
            rid = None
        if rid is not None:
            if rid in seen_ids:
                errors.append(RowError(line, "response_id", code="duplicate_id", params={"first": seen_ids[rid]}))
            seen_ids[rid] = line
        counter_id = None
        if r.get("counter_code"):
            counter_id = counters.get(r["counter_code"])
            if counter_id is None:
                errors.append(RowError(line, "counter_code", code="unknown_counter",
                                       params={"value": r["counter_code"]}))
        channel = r["channel"] or default_channel
        if channel not in CHANNELS:
            errors.append(RowError(line, "channel", code="channel_invalid",
                                   params={"value": channel, "allowed": ", ".join(CHANNELS)}))
        inst = instruments.get(r["instrument"] or default_inst.label)
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
        specs = item_specs(inst)
        answers = []
        for col in item_cols:
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
                if col not in checked:  # the six items and the criteria were checked by analysis.io
                    errors.append(RowError(line, col, code="value_range",
                                           params={"value": value, "low": allowed[0], "high": allowed[-1]}))
                continue
            answers.append((col, v))
        if prepared is None:
            continue
        ts = prepared["submitted_at"].iloc[pos]
        excluded = bool(prepared["excluded"].iloc[pos])
        parsed.append(dict(id=rid, unit_id=units.get(r["unit_code"]), counter_id=counter_id,
                           instrument_id=inst.id, channel=channel, submitted_at=ts.to_pydatetime(),
                           stratum=r["stratum"] or ALL_STRATUM, excluded=excluded,
                           excluded_reason="import" if excluded else None,
                           age_group=age or None, gender=gender or None,
                           comment=mask_pii(comment) or None, answers=answers))
    if seen_ids:
        stored = set()
        ids = list(seen_ids)
        for i in range(0, len(ids), 500):
            stored |= set(db.session.scalars(select(Response.id).where(Response.id.in_(ids[i:i + 500]))))
        for rid in sorted(stored, key=lambda x: seen_ids[x]):
            errors.append(RowError(seen_ids[rid], "response_id", code="id_stored", params={"value": rid}))
    if errors:
        raise ImportRejected(filename, _sorted(errors))
    batch = _record_batch("responses", data, filename, len(parsed), actor)
    now = dt.datetime.now(dt.timezone.utc)
    resp_rows, ans_rows = [], []
    for p in parsed:
        answers = p.pop("answers")
        resp_rows.append(dict(p, received_at=now, flags="", import_batch_id=batch.id))
        ans_rows.extend({"response_id": p["id"], "item_key": k, "value": v} for k, v in answers)
    insert_responses(resp_rows, ans_rows)
    _audit(actor, "import_responses", {"file": filename, "rows": len(parsed)})
    _commit_or_reject(filename)
    return ImportResult("responses", len(parsed), len(parsed), 0, batch.id)
