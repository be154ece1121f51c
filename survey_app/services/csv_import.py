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
from typing import Iterable, Optional

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from analysis.schema import AGE_GROUPS, ALL_STRATUM, CHANNELS, GENDERS, MAX_COMMENT, RESPONSE_COLUMNS, RESPONSE_OPTIONAL

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

MAX_FILE_BYTES = 200 * 1024 * 1024


@dataclass
class RowError:
    line: int
    column: str
    message: str

    def __str__(self) -> str:
        col = f", cột {self.column}" if self.column else ""
        return f"dòng {self.line}{col}: {self.message}"


@dataclass
class ImportRejected(Exception):
    """The file was refused; nothing was written."""

    filename: str
    errors: list[RowError] = field(default_factory=list)
    summary: str = ""

    def __str__(self) -> str:
        head = self.summary or f"{self.filename}: {len(self.errors)} dòng lỗi, không có gì được ghi"
        return "\n".join([head] + [f"  {self.filename}: {e}" for e in self.errors])


@dataclass
class ImportResult:
    kind: str
    rows: int
    created: int = 0
    updated: int = 0
    batch_id: Optional[int] = None


# ---------------------------------------------------------------- helpers

def _read_csv(data: bytes, filename: str, required: list[str]) -> tuple[list[str], list[tuple[int, dict]]]:
    if len(data) > MAX_FILE_BYTES:
        raise ImportRejected(filename, summary=f"{filename}: tệp quá lớn (tối đa 200 MB)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportRejected(filename, summary=f"{filename}: tệp không phải UTF-8 ({exc.reason} tại byte {exc.start})")
    if "\x00" in text:
        raise ImportRejected(filename, summary=f"{filename}: tệp chứa ký tự NUL, không phải CSV văn bản")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportRejected(filename, summary=f"{filename}: tệp rỗng (không có dòng tiêu đề)")
    except csv.Error as exc:
        raise ImportRejected(filename, summary=f"{filename}: CSV không hợp lệ: {exc}")
    header = [h.strip() for h in header]
    missing = [c for c in required if c not in header]
    if missing:
        raise ImportRejected(filename, summary=f"{filename}: thiếu cột: {', '.join(missing)}")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise ImportRejected(filename, summary=f"{filename}: cột lặp lại: {', '.join(dupes)}")
    rows = []
    try:
        for values in reader:
            line = reader.line_num
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != len(header):
                rows.append((line, {"__bad__": f"có {len(values)} ô, tiêu đề có {len(header)} cột"}))
                continue
            rows.append((line, {h: v.strip() for h, v in zip(header, values)}))
    except csv.Error as exc:
        raise ImportRejected(filename, summary=f"{filename}: CSV không hợp lệ ở dòng {reader.line_num}: {exc}")
    if not rows:
        raise ImportRejected(filename, summary=f"{filename}: không có dòng dữ liệu")
    return header, rows


def _parse_date(value: str) -> dt.date:
    return dt.date.fromisoformat(value)


def parse_timestamp(value: str) -> dt.datetime:
    """ISO 8601 with an offset (Z, ±HH:MM, ±HHMM, ±HH), `T` or space; returned in UTC.
    A timestamp without an offset is refused (local time would be ambiguous)."""
    text = value.strip()
    if not text:
        raise ValueError("thiếu thời điểm")
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        ts = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"thời điểm không đúng định dạng ISO 8601: {value!r}")
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"thời điểm thiếu múi giờ (ví dụ +07:00): {value!r}")
    return ts.astimezone(dt.timezone.utc)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _record_batch(kind: str, data: bytes, filename: str, rows: int, actor: str) -> ImportBatch:
    digest = _sha256(data)
    if db.session.scalar(select(ImportBatch.id).where(ImportBatch.kind == kind, ImportBatch.sha256 == digest)):
        raise ImportRejected(filename, summary=f"{filename}: tệp này đã được nhập trước đó (trùng nội dung)")
    batch = ImportBatch(kind=kind, sha256=digest, filename=filename[:300], rows=rows, actor=actor)
    db.session.add(batch)
    try:
        db.session.flush()
    except IntegrityError:  # the same file won a concurrent import a moment ago
        db.session.rollback()
        raise ImportRejected(filename, summary=f"{filename}: tệp này vừa được nhập (đồng thời); "
                                               f"không có gì được ghi lần này")
    return batch


def _commit_or_reject(filename: str) -> None:
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise ImportRejected(
            filename,
            summary=f"{filename}: bị từ chối vì xung đột dữ liệu (có thể tệp đang được nhập đồng thời "
                    f"hoặc mã đã tồn tại); không có gì được ghi",
        ) from exc


def _audit(actor: str, action: str, details: dict) -> None:
    from .audit import record

    record(actor=actor, action=action, target_type="import", details=details)


# ---------------------------------------------------------------- units

def import_units(data: bytes, filename: str, actor: str = "cli") -> ImportResult:
    """Create or update units (and counters: kind `counter`, parent = the unit
    the counter belongs to)."""
    _, rows = _read_csv(data, filename, ["code", "name_vi", "kind"])
    errors: list[RowError] = []
    existing = {u.code: u for u in db.session.scalars(select(Unit))}
    existing_counters = {c.code: c for c in db.session.scalars(select(Counter))}
    in_file: dict[str, int] = {}
    parsed = []
    for line, r in rows:
        if "__bad__" in r:
            errors.append(RowError(line, "", r["__bad__"]))
            continue
        code = r.get("code", "")
        if not code:
            errors.append(RowError(line, "code", "thiếu mã đơn vị"))
            continue
        if len(code) > 40:
            errors.append(RowError(line, "code", "mã dài quá 40 ký tự"))
        if code in in_file:
            errors.append(RowError(line, "code", f"mã {code} lặp lại (đã có ở dòng {in_file[code]})"))
        in_file[code] = line
        if not r.get("name_vi"):
            errors.append(RowError(line, "name_vi", "thiếu tên tiếng Việt"))
        kind = r.get("kind", "")
        if not kind or len(kind) > 30 or not kind.replace("_", "").isalnum():
            errors.append(RowError(line, "kind", f"loại đơn vị không hợp lệ: {kind!r}"))
        vf = vt = None
        for col in ("valid_from", "valid_to"):
            if r.get(col):
                try:
                    d = _parse_date(r[col])
                    vf, vt = (d, vt) if col == "valid_from" else (vf, d)
                except ValueError:
                    errors.append(RowError(line, col, f"ngày không hợp lệ (YYYY-MM-DD): {r[col]!r}"))
        if vf and vt and vt <= vf:
            errors.append(RowError(line, "valid_to", "valid_to phải sau valid_from"))
        for col in ("name_vi", "name_en"):
            if len(r.get(col, "")) > 200:
                errors.append(RowError(line, col, "tên dài quá 200 ký tự"))
        parsed.append((line, r, vf, vt))
    known = set(existing) | set(in_file)
    for line, r, _, _ in parsed:
        for col in ("parent_code", "successor_code"):
            ref = r.get(col, "")
            if ref and ref not in known:
                errors.append(RowError(line, col, f"không tìm thấy đơn vị {ref}"))
            if ref and ref == r["code"]:
                errors.append(RowError(line, col, "đơn vị không thể tham chiếu chính nó"))
        if r.get("kind") == "counter":
            if not r.get("parent_code"):
                errors.append(RowError(line, "parent_code", "quầy phải thuộc một đơn vị"))
            elif r["parent_code"] in existing_counters or any(
                    p[1]["code"] == r["parent_code"] and p[1].get("kind") == "counter" for p in parsed):
                errors.append(RowError(line, "parent_code", "quầy không thể thuộc một quầy khác"))
            if r["code"] in existing:
                errors.append(RowError(line, "code", f"mã {r['code']} đã là một đơn vị, không phải quầy"))
        elif r.get("code") in existing_counters:
            errors.append(RowError(line, "code", f"mã {r['code']} đã là một quầy"))
    if errors:
        raise ImportRejected(filename, errors)

    batch = _record_batch("units", data, filename, len(parsed), actor)
    created = updated = 0
    units = dict(existing)
    for line, r, vf, vt in parsed:
        if r["kind"] == "counter":
            continue
        u = units.get(r["code"])
        if u is None:
            u = Unit(code=r["code"])
            db.session.add(u)
            units[r["code"]] = u
            created += 1
        else:
            updated += 1
        u.name_vi, u.name_en, u.kind = r["name_vi"], r.get("name_en", ""), r["kind"]
        u.valid_from, u.valid_to = vf, vt
    db.session.flush()
    for line, r, vf, vt in parsed:
        if r["kind"] == "counter":
            c = existing_counters.get(r["code"])
            if c is None:
                c = Counter(code=r["code"], token_version=1, active=True)
                db.session.add(c)
                created += 1
            else:
                updated += 1
            c.name_vi, c.name_en = r["name_vi"], r.get("name_en", "")
            c.unit_id = units[r["parent_code"]].id
            c.active = vt is None or vt > local_today()
            continue
        u = units[r["code"]]
        u.parent_id = units[r["parent_code"]].id if r.get("parent_code") else None
        u.successor_id = units[r["successor_code"]].id if r.get("successor_code") else None
    db.session.flush()
    cycle = _find_parent_cycle(units.values())
    if cycle:
        db.session.rollback()
        raise ImportRejected(filename, summary=f"{filename}: cây đơn vị có vòng lặp: {' → '.join(cycle)}")
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
    stored one replaces its count."""
    _, rows = _read_csv(data, filename, ["unit_code", "period_start", "period_end", "transactions"])
    units = {code: uid for uid, code in db.session.execute(select(Unit.id, Unit.code))}
    errors: list[RowError] = []
    parsed: dict[tuple, tuple[int, int]] = {}
    for line, r in rows:
        if "__bad__" in r:
            errors.append(RowError(line, "", r["__bad__"]))
            continue
        uid = units.get(r["unit_code"])
        if uid is None:
            errors.append(RowError(line, "unit_code", f"không tìm thấy đơn vị {r['unit_code']!r}"))
        try:
            start = _parse_date(r["period_start"])
        except ValueError:
            errors.append(RowError(line, "period_start", f"ngày không hợp lệ (YYYY-MM-DD): {r['period_start']!r}"))
            start = None
        try:
            end = _parse_date(r["period_end"])
        except ValueError:
            errors.append(RowError(line, "period_end", f"ngày không hợp lệ (YYYY-MM-DD): {r['period_end']!r}"))
            end = None
        if start and end and end < start:
            errors.append(RowError(line, "period_end", "period_end trước period_start"))
        try:
            n = int(r["transactions"])
            if n < 0 or n > 2_000_000_000:
                raise ValueError
        except ValueError:
            errors.append(RowError(line, "transactions", f"số giao dịch phải là số nguyên ≥ 0: {r['transactions']!r}"))
            n = None
        stratum = r.get("stratum", "") or ALL_STRATUM
        if len(stratum) > 60:
            errors.append(RowError(line, "stratum", "lĩnh vực dài quá 60 ký tự"))
        key = (uid, start, end, stratum)
        if uid and start and end and n is not None:
            if key in parsed:
                errors.append(RowError(line, "", f"trùng đơn vị/kỳ/lĩnh vực với dòng {parsed[key][0]}"))
            parsed[key] = (line, n)
    if errors:
        raise ImportRejected(filename, sorted(errors, key=lambda e: e.line))
    batch = _record_batch("volumes", data, filename, len(parsed), actor)
    stored = {(v.unit_id, v.period_start, v.period_end, v.stratum): v for v in db.session.scalars(select(Volume))}
    created = updated = 0
    for key, (line, n) in parsed.items():
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
    header, rows = _read_csv(data, filename, RESPONSE_COLUMNS[:3])
    instruments = _instrument_index(db.session)
    if not instruments:
        raise ImportRejected(filename, summary="chưa có bộ câu hỏi nào trong cơ sở dữ liệu (chạy `flask instruments load`)")
    all_item_cols = set()
    for inst in instruments.values():
        all_item_cols |= set(item_specs(inst))
    known = set(RESPONSE_COLUMNS) | set(RESPONSE_OPTIONAL) | all_item_cols
    unknown = [h for h in header if h not in known]
    if unknown:
        raise ImportRejected(filename, summary=f"{filename}: cột không xác định: {', '.join(unknown)}")
    units = {code: uid for uid, code in db.session.execute(select(Unit.id, Unit.code))}
    counters = {code: (cid, uid) for cid, code, uid in db.session.execute(select(Counter.id, Counter.code, Counter.unit_id))}
    errors: list[RowError] = []
    seen_ids: dict[uuid.UUID, int] = {}
    parsed = []
    default_inst = instruments.get("counter-quick") or next(iter(instruments.values()))
    for line, r in rows:
        if "__bad__" in r:
            errors.append(RowError(line, "", r["__bad__"]))
            continue
        rid_text = r.get("response_id", "")
        try:
            rid = uuid.UUID(rid_text) if rid_text else uuid.uuid4()
        except ValueError:
            errors.append(RowError(line, "response_id", f"không phải UUID: {rid_text!r}"))
            rid = None
        if rid is not None:
            if rid in seen_ids:
                errors.append(RowError(line, "response_id", f"trùng với dòng {seen_ids[rid]}"))
            seen_ids[rid] = line
        counter_id = None
        uid = units.get(r["unit_code"])
        if r.get("counter_code"):
            c = counters.get(r["counter_code"])
            if c is None:
                errors.append(RowError(line, "counter_code", f"không tìm thấy quầy {r['counter_code']!r}"))
            else:
                counter_id = c[0]
                if uid is None and not r["unit_code"]:
                    uid = c[1]
        if uid is None:
            errors.append(RowError(line, "unit_code", f"không tìm thấy đơn vị {r['unit_code']!r}"))
        try:
            ts = parse_timestamp(r["submitted_at"])
        except ValueError as exc:
            errors.append(RowError(line, "submitted_at", str(exc)))
            ts = None
        channel = r.get("channel", "") or default_channel
        if channel not in CHANNELS:
            errors.append(RowError(line, "channel", f"kênh không hợp lệ {channel!r} (cho phép: {', '.join(CHANNELS)})"))
        inst_name = r.get("instrument", "") or default_inst.label
        inst = instruments.get(inst_name)
        if inst is None:
            errors.append(RowError(line, "instrument", f"không có bộ câu hỏi {inst_name!r}"))
            continue
        excl = r.get("excluded", "")
        if excl not in ("", "0", "1"):
            errors.append(RowError(line, "excluded", f"chỉ nhận trống, 0 hoặc 1: {excl!r}"))
        stratum = r.get("stratum", "") or ALL_STRATUM
        if len(stratum) > 60:
            errors.append(RowError(line, "stratum", "lĩnh vực dài quá 60 ký tự"))
        age = r.get("age_group", "")
        if age and age not in AGE_GROUPS:
            errors.append(RowError(line, "age_group", f"nhóm tuổi không hợp lệ {age!r} (cho phép: {', '.join(AGE_GROUPS)})"))
        gender = r.get("gender", "")
        if gender and gender not in GENDERS:
            errors.append(RowError(line, "gender", f"giới tính không hợp lệ {gender!r}"))
        comment = r.get("comment", "")
        if len(comment) > MAX_COMMENT:
            errors.append(RowError(line, "comment", f"góp ý dài quá {MAX_COMMENT} ký tự"))
        specs = item_specs(inst)
        answers = []
        for col in all_item_cols & set(header):
            value = r.get(col, "")
            if value == "":
                continue
            if col not in specs:
                errors.append(RowError(line, col, f"câu hỏi {col} không thuộc bộ câu hỏi {inst.label}"))
                continue
            try:
                v = int(value)
                if v not in specs[col]["values"]:
                    raise ValueError
            except ValueError:
                allowed = "–".join(str(x) for x in (specs[col]["values"][0], specs[col]["values"][-1]))
                errors.append(RowError(line, col, f"giá trị {value!r} ngoài khoảng {allowed}"))
                continue
            answers.append((col, v))
        parsed.append(dict(id=rid, unit_id=uid, counter_id=counter_id, instrument_id=inst.id, channel=channel,
                           submitted_at=ts, stratum=stratum, excluded=excl == "1",
                           excluded_reason="import" if excl == "1" else None,
                           age_group=age or None, gender=gender or None,
                           comment=mask_pii(comment) or None, answers=answers))
    if seen_ids:
        stored = set()
        ids = list(seen_ids)
        for i in range(0, len(ids), 500):
            stored |= set(db.session.scalars(select(Response.id).where(Response.id.in_(ids[i:i + 500]))))
        for rid in sorted(stored, key=lambda x: seen_ids[x]):
            errors.append(RowError(seen_ids[rid], "response_id", f"phiếu {rid} đã có trong cơ sở dữ liệu"))
    if errors:
        raise ImportRejected(filename, sorted(errors, key=lambda e: e.line))
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
