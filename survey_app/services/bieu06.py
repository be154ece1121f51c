"""Biểu 06/VPCP/KSTT: the periodic table of dossiers received and processed
per field (lĩnh vực) and unit, in and out.

The table shape lives here once (`COLUMNS`: the Vietnamese headers as the form
has them, and the national portal's names that `POST /api/v1/volumes` takes):

* **in** (`import_table`): a Biểu 06-shaped CSV or XLSX becomes volume rows —
  N per unit × field × period is "Số hồ sơ đã giải quyết: Tổng số" (METHODOLOGY
  §7: dossiers whose result was returned in the period).  The rows go through
  `csv_import.import_volumes`, so scope, overlap refusal / `replace`, the
  closed-period guard, the import batch and the audit are the volume import's;
  its errors name the file's own rows and headers.
* **out** (`table`, `to_csv`, `to_xlsx`): the same shape for a reporting period
  with the survey's columns added per field and unit: index, its 95% interval,
  n, N and response rate (computed by `analysis` per field), and the dossier
  columns filled from dossier events where a unit sends them (blank otherwise).

Exporting and importing the export gives back the same volumes (test).
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
import unicodedata
from dataclasses import dataclass
from typing import IO, Iterable, Optional

import sqlalchemy as sa

from analysis.schema import ALL_STRATUM, ROOT_CODE, UNIT_LEVEL, VOLUME_COLUMNS

from ..extensions import db
from ..models import Dossier, Unit
from .csv_export import csv_safe

FORM = "Biểu 06/VPCP/KSTT"
TITLE = "Tình hình, kết quả giải quyết thủ tục hành chính và mức độ hài lòng của người dân"


@dataclass(frozen=True)
class Column:
    key: str                    # our name
    vi: str                     # the header as the form has it
    api: Optional[str] = None   # the national portal's name (POST /api/v1/volumes)
    volume: Optional[str] = None  # the volume CSV column it fills


#: The columns, in the form's order (identification, dossiers, survey).
ID_COLUMNS = (
    Column("unit_code", "Mã đơn vị", "MaDonVi", "unit_code"),
    Column("unit_name", "Tên đơn vị"),
    Column("period_start", "Từ ngày", "TuNgay", "period_start"),
    Column("period_end", "Đến ngày", "DenNgay", "period_end"),
    Column("stt", "STT"),
    Column("stratum", "Mã lĩnh vực", "MaLinhVuc", "stratum"),
    Column("field_name", "Lĩnh vực"),
)
DOSSIER_COLUMNS = (
    Column("received_total", "Số hồ sơ nhận giải quyết: Tổng số"),
    Column("carried_over", "Số kỳ trước chuyển qua"),
    Column("received_new", "Số mới tiếp nhận"),
    Column("processed_total", "Số hồ sơ đã giải quyết: Tổng số", "SoHoSo", "transactions"),
    Column("processed_early", "Trả trước hạn"),
    Column("processed_on_time", "Trả đúng hạn"),
    Column("processed_late", "Trả quá hạn"),
    Column("pending_total", "Số hồ sơ đang giải quyết: Tổng số"),
    Column("pending_in_time", "Trong hạn"),
    Column("pending_overdue", "Quá hạn"),
)
SURVEY_COLUMNS = (
    Column("index", "Chỉ số hài lòng (%)"),
    Column("index_ci_low", "Khoảng tin cậy 95%: cận dưới (%)"),
    Column("index_ci_high", "Khoảng tin cậy 95%: cận trên (%)"),
    Column("n", "Số phiếu khảo sát (n)"),
    Column("N", "Số hồ sơ, giao dịch (N)"),
    Column("response_rate", "Tỷ lệ phản hồi (%)"),
)
COLUMNS = ID_COLUMNS + DOSSIER_COLUMNS + SURVEY_COLUMNS
#: Survey columns shown as percentages (the analysis gives fractions).
PERCENT = {"index", "index_ci_low", "index_ci_high", "response_rate"}
#: What an imported table must have.
REQUIRED = ("unit_code", "period_start", "period_end", "processed_total")
#: Names a row of `POST /api/v1/volumes` may use for each volume field:
#: the portal's, the volume CSV's and the form's header.
API_NAMES = {c.volume: (c.api, c.volume, c.vi) for c in COLUMNS if c.volume}


def _norm(text) -> str:
    """A header compared loosely: NFC, case-folded, spaces collapsed, no trailing ':'."""
    s = unicodedata.normalize("NFC", str(text or "")).casefold().strip().rstrip(":").strip()
    return re.sub(r"\s+", " ", s)


_BY_HEADER = {_norm(c.vi): c for c in COLUMNS} | {_norm(c.api): c for c in COLUMNS if c.api} \
    | {_norm(c.volume): c for c in COLUMNS if c.volume}


# ---------------------------------------------------------------- the table out

def field_names() -> dict[str, str]:
    """Field (stratum) code -> Vietnamese name, from the questionnaires' field question."""
    from ..models import Instrument

    names: dict[str, str] = {}
    for inst in db.session.scalars(sa.select(Instrument).order_by(Instrument.key, Instrument.version.desc())):
        for item in inst.definition.get("items", []):
            if item.get("store") == "stratum" or item.get("key") == "stratum":
                for opt in item.get("options", []):
                    names.setdefault(str(opt.get("value")), opt.get("vi") or str(opt.get("value")))
    names.setdefault(ALL_STRATUM, "Chung (không phân lĩnh vực)")
    return names


def _dossier_figures(period, unit_ids) -> dict[tuple[int, str], dict]:
    """(unit id, field) -> the form's dossier columns, from dossier events
    (only units that send them have any)."""
    start, end = period.start, period.end
    received_before = sa.and_(Dossier.received_at.is_not(None), Dossier.received_at < start)
    open_at_start = sa.or_(Dossier.returned_at.is_(None), Dossier.returned_at >= start)
    received_in = sa.and_(Dossier.received_at >= start, Dossier.received_at < end)
    returned_in = sa.and_(Dossier.returned_on >= period.first, Dossier.returned_on <= period.last)
    open_at_end = sa.and_(Dossier.received_at.is_not(None), Dossier.received_at < end,
                          sa.or_(Dossier.returned_at.is_(None), Dossier.returned_at >= end))
    # Early = returned more than a day before the due time; late = after it; on time = the rest.
    if db.session.get_bind().dialect.name == "sqlite":
        days_early = sa.func.julianday(Dossier.due_at) - sa.func.julianday(Dossier.returned_at)
    else:
        days_early = sa.extract("epoch", Dossier.due_at - Dossier.returned_at) / 86400.0
    has_due = Dossier.due_at.is_not(None)

    def n(*cond):
        return sa.func.sum(sa.case((sa.and_(*cond), 1), else_=0))

    q = (sa.select(Dossier.unit_id, Dossier.stratum,
                   n(received_before, open_at_start), n(received_in), n(returned_in),
                   n(returned_in, has_due, days_early > 1),
                   n(returned_in, has_due, Dossier.returned_at > Dossier.due_at),
                   n(open_at_end), n(open_at_end, has_due, Dossier.due_at < end))
         .group_by(Dossier.unit_id, Dossier.stratum))
    if unit_ids is not None:
        q = q.where(Dossier.unit_id.in_(sorted(set(unit_ids))))
    out = {}
    for uid, stratum, carried, new, done, early, late, pending, overdue in db.session.execute(q):
        carried, new, pending, overdue = int(carried or 0), int(new or 0), int(pending or 0), int(overdue or 0)
        done, early, late = int(done or 0), int(early or 0), int(late or 0)
        if not (carried or new or done or pending):
            continue
        out[(uid, stratum or ALL_STRATUM)] = dict(
            received_total=carried + new, carried_over=carried, received_new=new, processed_total=done,
            processed_early=early, processed_on_time=done - early - late, processed_late=late,
            pending_total=pending, pending_in_time=pending - overdue, pending_overdue=overdue)
    return out


def _field_order(strata: Iterable[str], names: dict[str, str]) -> list[str]:
    known = [s for s in names if s in strata and s != ALL_STRATUM]
    rest = sorted(s for s in strata if s not in names and s != ALL_STRATUM)
    return known + rest + ([ALL_STRATUM] if ALL_STRATUM in strata else [])


def table(period, unit_ids: Optional[Iterable[int]] = None) -> list[dict]:
    """The Biểu 06 rows of a period (a `Period`) for the units in `unit_ids`
    (None = all): one row per unit and field that has dossiers, volumes or
    responses, keyed by `Column.key`.  The survey columns are each unit's own
    figures in that field (`analysis.compute_index` over the field's responses
    and volumes: the index, its interval, n, N and the response rate)."""
    from analysis import compute_index

    from . import stats

    ids = None if unit_ids is None else sorted(set(unit_ids))
    frame = stats.response_frame(period, ids)
    volumes = stats.volumes_frame(period, ids)
    units = stats.units_frame()
    opts = stats.build_options(level_filter=UNIT_LEVEL)
    names = field_names()
    dossiers = _dossier_figures(period, ids)
    unit_rows = db.session.execute(sa.select(Unit.id, Unit.code, Unit.name_vi)).all()
    code_of = {u.id: u.code for u in unit_rows}
    name_of = {u.code: u.name_vi for u in unit_rows}
    allowed = None if ids is None else {code_of[i] for i in ids if i in code_of}
    strata = set(frame["stratum"]) | set(volumes["stratum"]) | {s for _, s in dossiers}
    cells: dict[tuple[str, str], dict] = {}
    for stratum in _field_order(strata, names):
        f = frame[frame["stratum"] == stratum]
        v = volumes[volumes["stratum"] == stratum]
        if len(f) or len(v):
            res = compute_index(f.reset_index(drop=True), v.reset_index(drop=True), units, period=period,
                                options=opts)
            t = res.table
            t = t[(t["level"] == UNIT_LEVEL) & (t["unit_code"] != ROOT_CODE)]
            for rec in t.to_dict("records"):
                if allowed is not None and rec["unit_code"] not in allowed:
                    continue
                cell = cells.setdefault((rec["unit_code"], stratum), {})
                for c in SURVEY_COLUMNS:
                    cell[c.key] = _number(rec.get(c.key))
        for (uid, s), figures in dossiers.items():
            if s == stratum and code_of.get(uid) is not None:
                cells.setdefault((code_of[uid], stratum), {}).update(figures)
    order = {s: i for i, s in enumerate(_field_order(strata, names))}
    rows, stt = [], {}
    for (code, stratum), cell in sorted(cells.items(), key=lambda kv: (kv[0][0], order[kv[0][1]])):
        n_vol = cell.get("N")
        if not cell.get("n") and not n_vol and not cell.get("received_total") and not cell.get("processed_total"):
            continue
        stt[code] = stt.get(code, 0) + 1
        row = {c.key: None for c in COLUMNS}
        row.update(unit_code=code, unit_name=name_of.get(code, ""), period_start=period.first,
                   period_end=period.last, stt=stt[code], stratum=stratum,
                   field_name=names.get(stratum, stratum))
        row.update(cell)
        if row["processed_total"] is None and n_vol is not None:
            # Units that send counts, not events: the volume N is the dossiers processed.
            row["processed_total"] = int(n_vol)
        rows.append(row)
    return rows


def _number(v):
    import numpy as np  # (not at import: the citizen path imports this module through the API's volume names)
    import pandas as pd

    if v is None:
        return None
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        return None
    if isinstance(v, (np.integer, int)):
        return int(v)
    v = float(v)
    return int(v) if v.is_integer() and abs(v) > 1 else v


def _cell(key: str, v):
    """A value as the CSV writes it: dates dd/mm/yyyy, percentages with one
    decimal (point), counts as integers, empty when unknown."""
    if v is None:
        return ""
    if isinstance(v, dt.date):
        return v.strftime("%d/%m/%Y")
    if key in PERCENT:
        return f"{100 * float(v):.1f}"
    if isinstance(v, float):
        return str(int(round(v))) if key in ("N", "n") else f"{v:.4g}"
    return csv_safe(v)


def to_csv(rows: list[dict]) -> str:
    """The table as CSV (UTF-8; the caller adds a BOM for spreadsheets)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([c.vi for c in COLUMNS])
    for r in rows:
        w.writerow([_cell(c.key, r.get(c.key)) for c in COLUMNS])
    return buf.getvalue()


def to_xlsx(rows: list[dict], *, period_label: str, issuer: str = "") -> bytes:
    """The table as XLSX: the form's name and title, the period, then the
    header row and one row per unit and field (dates as dates, numbers as
    numbers, percentages with one decimal)."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    wb = Workbook()
    ws = wb.active
    ws.title = "Biểu 06"
    ws.append([FORM])
    ws.append([TITLE])
    ws.append([f"Kỳ báo cáo: {period_label}" + (f" — {issuer}" if issuer else "")])
    ws["A1"].font = Font(bold=True)
    ws["A2"].font = Font(bold=True, size=13)
    ws.append([c.vi for c in COLUMNS])
    header_row = ws.max_row
    for cell in ws[header_row]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    for r in rows:
        values = []
        for c in COLUMNS:
            v = r.get(c.key)
            if v is not None and c.key in PERCENT:
                v = round(100 * float(v), 1)
            elif v is not None and c.key in ("N", "n"):
                v = int(round(float(v)))
            values.append(v)
        ws.append(values)
        for c, cell in zip(COLUMNS, ws[ws.max_row]):
            if c.key in ("period_start", "period_end"):
                cell.number_format = "DD/MM/YYYY"
            elif c.key in PERCENT:
                cell.number_format = "0.0"
    for i, c in enumerate(COLUMNS, start=1):
        ws.column_dimensions[ws.cell(row=header_row, column=i).column_letter].width = \
            max(10, min(28, len(c.vi) // 2 + 6))
    ws.freeze_panes = ws.cell(row=header_row + 1, column=3)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# ---------------------------------------------------------------- the table in

class TableError(ValueError):
    """The file is not a Biểu 06 table (no header row, a required column missing)."""


Source = bytes | IO[bytes]


def _raw_rows(data: Source, filename: str) -> list[list]:
    raw = data if isinstance(data, (bytes, bytearray)) else data.read()
    if raw[:4] == b"PK\x03\x04" or filename.lower().endswith(".xlsx"):
        from openpyxl import load_workbook

        try:
            wb = load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable workbook is the user's input
            raise TableError("xlsx") from exc
        ws = wb.worksheets[0]
        rows = [list(r) for r in ws.iter_rows(values_only=True)]
        wb.close()
        return rows
    try:
        text = bytes(raw).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TableError("encoding") from exc
    head = "\n".join(text.split("\n", 12)[:12])  # title rows first: look past them
    delimiter = ";" if head.count(";") > head.count(",") else ","
    return list(csv.reader(io.StringIO(text), delimiter=delimiter))


def _date_text(v) -> str:
    """A date cell as ISO text (dd/mm/yyyy and dates accepted); anything else as
    given (the volume import names the bad cell)."""
    if v is None:
        return ""
    if isinstance(v, dt.datetime):
        return v.date().isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    s = str(v).strip()
    m = re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})", s)
    if m:
        try:
            return dt.date(int(m[3]), int(m[2]), int(m[1])).isoformat()
        except ValueError:
            return s
    return s


def _count_text(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    s = str(v).strip()
    if re.fullmatch(r"\d{1,3}([.\s\u00a0]\d{3})+", s):  # 1.234 / 1 234: thousands separators
        return re.sub(r"[.\s\u00a0]", "", s)
    return s


def _header(raw: list[list]) -> tuple[int, dict[str, int]]:
    """(index of the header row, column key -> position)."""
    for h, row in enumerate(raw):
        found: dict[str, int] = {}
        for i, cell in enumerate(row):
            col = _BY_HEADER.get(_norm(cell))
            if col is not None and col.key not in found:
                found[col.key] = i
        if "unit_code" in found and "processed_total" in found:
            return h, found
    raise TableError("header")


def read_table(data: Source, filename: str) -> tuple[list[dict], list[int], dict[str, str]]:
    """(rows keyed by `Column.key`, the file's line/row number of each, header
    used per key).  The header row is the first with "Mã đơn vị" and "Số hồ sơ
    đã giải quyết: Tổng số" (portal or volume CSV names also do); rows above it
    (title, period) and empty rows are skipped, as are total rows (no unit
    code, "Tổng ..." in the field column)."""
    raw = _raw_rows(data, filename)
    h, found = _header(raw)
    missing = [k for k in REQUIRED if k not in found]
    if missing:
        vi = {c.key: c.vi for c in COLUMNS}
        raise TableError("missing:" + ", ".join(f"“{vi[k]}”" for k in missing))
    headers = {k: str(raw[h][i]).strip() for k, i in found.items()}
    rows, lines = [], []
    for j, row in enumerate(raw[h + 1:], start=h + 2):
        get = {k: (row[i] if i < len(row) else None) for k, i in found.items()}
        if all(v in (None, "") for v in get.values()):
            continue
        if get.get("unit_code") in (None, "") and str(get.get("field_name") or get.get("stratum") or "") \
                .strip().casefold().startswith("tổng"):
            continue
        rows.append(get)
        lines.append(j)
    return rows, lines, headers


def volume_csv(rows: list[dict]) -> bytes:
    """The rows in the volume CSV shape (DESIGN.md), for `csv_import.import_volumes`."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(VOLUME_COLUMNS)
    for r in rows:
        stratum = r.get("stratum")
        w.writerow([str(r.get("unit_code") or "").strip(), _date_text(r.get("period_start")),
                    _date_text(r.get("period_end")),
                    ALL_STRATUM if stratum in (None, "") else str(stratum).strip(),
                    _count_text(r.get("processed_total"))])
    return buf.getvalue().encode("utf-8")


def import_table(data: Source, filename: str, actor: str = "cli", *, scope: Optional[set[int]] = None,
                 replace: bool = False):
    """Import a Biểu 06 table (CSV or XLSX) as volumes through
    `csv_import.import_volumes` (all-or-nothing; its checks and audit).  Errors
    name the file's row numbers and headers.  Raises `csv_import.ImportRejected`."""
    from flask_babel import lazy_gettext as _l

    from .csv_import import ImportRejected, _reject, import_volumes

    try:
        rows, lines, headers = read_table(data, filename)
    except TableError as exc:
        reason = str(exc)
        if reason.startswith("missing:"):
            raise _reject(filename, _l("The Biểu 06 table has no column %(cols)s."),
                          cols=reason.split(":", 1)[1]) from None
        raise _reject(filename, _l("This is not a Biểu 06 table: no header row with the columns %(a)s and %(b)s "
                                   "(CSV in UTF-8, or XLSX)."), a="“Mã đơn vị”",
                          b="“Số hồ sơ đã giải quyết: Tổng số”") from None
    if not rows:
        raise _reject(filename, _l("The Biểu 06 table has no rows."))
    by_volume = {c.volume: headers.get(c.key, c.vi) for c in COLUMNS if c.volume}
    try:
        return import_volumes(volume_csv(rows), filename, actor=actor, scope=scope, replace=replace)
    except ImportRejected as exc:
        for e in exc.errors:  # line k of the volume CSV is data row k - 1 of the table
            if e.line is not None and 2 <= e.line <= len(lines) + 1:
                e.line = lines[e.line - 2]
            e.column = by_volume.get(e.column, e.column)
        if exc.summary:
            exc.summary = exc.summary.replace("stratum", by_volume["stratum"])
        raise
