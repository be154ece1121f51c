"""The annual report: ranked units with rank intervals, roll-ups, print view,
XLSX and CSV downloads.  Ranking and comparison come from `analysis.ranking`."""
from __future__ import annotations

from flask import Response as FlaskResponse
from flask import abort, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from analysis.schema import ROOT_LEVEL, UNIT_LEVEL

from ..extensions import db
from ..services.audit import record
from ..services.periods import current_report_year, resolve_period
from ..services.units import scope_unit_ids
from ..ui.labels import value_words
from . import bp
from .auth import require
from .figures import records, safe_index, table_of, unit_codes


def _year_ok(year: int) -> bool:
    return 2000 <= year <= current_report_year() + 1


def _lang() -> str:
    return "en" if str(get_locale() or "vi").startswith("en") else "vi"


def _rank_among() -> str:
    """`?rank_among=all` ranks every unit; the default (and any other value) only adequate samples."""
    from ..services.reports import rank_among_or_default

    return rank_among_or_default(request.args.get("rank_among"))


def report_tables(user, year: int, rank_among: str = "adequate"):
    """(unit rows in reading order: the ranked ones first, roll-up rows, meta,
    period) for the user's scope."""
    from analysis.ranking import compare_to_parent

    from ..services.reports import rank_report_units, ranking_meta, with_integrity
    from .figures import integrity_table  # stored (issue 14)

    period = resolve_period(str(year))
    scope = scope_unit_ids(user)
    res = safe_index(period, scope)
    full = table_of(res)
    if not full.empty:  # exclusions approved / pending and the typed share, per unit (never cached: live counts)
        full = with_integrity(full, integrity_table(scope, period.start, period.end))
    meta = dict(res.meta) if res is not None else {"period": {"label": period.label}}
    meta["ranking"] = ranking_meta(rank_among, "kind")
    if full.empty:
        return full, full, meta, period
    # A parent is compared with its roll-up row: a district that also served
    # people has a `unit` row and a `district` row under the same code.
    parents = full[full["level"] != UNIT_LEVEL]
    full = compare_to_parent(full, parents)
    if scope is not None:
        codes = set(unit_codes(scope).values())
        full = full[full["unit_code"].isin(codes)]
    units = full[full["level"] == UNIT_LEVEL]
    units = rank_report_units(units, rank_among=rank_among, group="kind")
    meta["ranking"] = ranking_meta(rank_among, "kind", units)
    rollups = full[full["level"] != UNIT_LEVEL].copy()
    if scope is not None:  # the pooled root of a scoped user is their scope, already listed
        rollups = rollups[rollups["level"] != ROOT_LEVEL]
    from ..services.publishing import version_note, version_tag

    closed = version_note(period.label)  # which frozen version this period has (issue 15)
    meta["version_note"], meta["closed_version"] = closed, version_tag(period.label)
    meta["notes"] = list(meta.get("notes") or []) + ([closed] if closed else []) + [  # a new list (cached meta)
        _("Rank intervals: simulation from each unit's estimate and standard error (95%), ranked within each kind "
          "of unit; comparison with the parent: the two intervals do not overlap.")]
    rollups = without_duplicate_root(rollups)
    return units.reset_index(drop=True), rollups.reset_index(drop=True), meta, period


def without_duplicate_root(rollups):
    """The roll-ups without the pooled "all units" row when it only repeats the
    single top unit's row (an admin of one province: "Tất cả đơn vị" and the
    province have the same responses and figures)."""
    import math

    if rollups.empty:
        return rollups
    root = rollups[rollups["level"] == ROOT_LEVEL]
    others = rollups[rollups["level"] != ROOT_LEVEL]
    parent = others["parent_code"] if "parent_code" in others else None
    tops = others[parent.isna() | (parent.astype(str) == "")] if parent is not None else others.iloc[0:0]
    if len(root) != 1 or len(tops) != 1:
        return rollups
    a, b = root.iloc[0], tops.iloc[0]
    same = all((math.isnan(float(a[c])) and math.isnan(float(b[c]))) or float(a[c]) == float(b[c])
               for c in ("n", "N", "index") if c in rollups)
    return others if same else rollups


#: The Biểu 06-style table per field (lĩnh vực) of the report: (key, header, kind) of `services.bieu06` rows.
FIELD_COLUMNS = (("unit_code", "Mã đơn vị", "text"), ("unit_name", "Tên đơn vị", "text"),
                 ("field_name", "Lĩnh vực", "text"), ("processed_total", "Số hồ sơ đã giải quyết: Tổng số", "int"),
                 ("processed_early", "Trả trước hạn", "int"), ("processed_on_time", "Trả đúng hạn", "int"),
                 ("processed_late", "Trả quá hạn", "int"), ("pending_total", "Số hồ sơ đang giải quyết", "int"),
                 ("index", "Chỉ số hài lòng", "pct"), ("index_ci_low", "Khoảng tin cậy 95%: cận dưới", "pct"),
                 ("index_ci_high", "Khoảng tin cậy 95%: cận trên", "pct"), ("n", "Số phiếu (n)", "int"),
                 ("N", "Số hồ sơ (N)", "int"), ("response_rate", "Tỷ lệ phản hồi", "pct"))


def field_rows(user, period) -> list[dict]:
    """The rows of the Biểu 06/VPCP/KSTT table (`services.bieu06.table`: one
    per unit and field, dossiers and the survey's figures) that have dossier
    figures: the report's table per field.  Cached like the other figures."""
    from .figures import bieu06_table

    rows = bieu06_table(period, scope_unit_ids(user))
    return [r for r in rows if r.get("processed_total") is not None or r.get("received_total") is not None]


def report_heading(year: int) -> dict:
    """The official header of the report (page, print, XLSX): the issuing body
    and the body above it (config REPORT_ISSUER / REPORT_ISSUER_PARENT; the
    parent defaults to the province's People's Committee), the national motto,
    place and date, the title."""
    from flask import current_app
    from sqlalchemy import select

    from ..models import Unit
    from ..services.periods import local_today

    cfg = current_app.config
    tops = db.session.scalars(select(Unit).where(Unit.parent_id.is_(None), Unit.kind == "province")).all()
    province = tops[0].name_vi if len(tops) == 1 else ""
    parent = cfg.get("REPORT_ISSUER_PARENT")
    if parent is None:
        parent = f"ỦY BAN NHÂN DÂN {province.upper()}" if province else ""
    place = cfg.get("REPORT_PLACE")
    if place is None:
        place = province.split(" ", 1)[1] if province.startswith("Tỉnh ") else province
    today = local_today()
    date = _("day %(d)s month %(m)s year %(y)s", d=f"{today.day:02d}", m=f"{today.month:02d}", y=today.year)
    return {"issuer_parent": parent, "issuer": cfg.get("REPORT_ISSUER") or "",
            "motto": "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "motto_sub": "Độc lập - Tự do - Hạnh phúc",
            "place_date": f"{place}, {date}" if place else date, "root_name": _("All units"),
            "title": _("Citizen satisfaction with public administrative services, report year %(y)s", y=year)}


def _tables_or_404(year):
    user = require("report")
    if not _year_ok(year):
        abort(404)
    return (user,) + report_tables(user, year, _rank_among())


@bp.get("/report")
def report():
    require("report")
    return redirect(url_for("staff.report_year", year=current_report_year()))


@bp.get("/report/<int:year>")
def report_year(year):
    from ..services.reports import rank_words, ranking_rule

    user, units, rollups, meta, period = _tables_or_404(year)
    kind = request.args.get("kind", "")
    kinds = sorted(set(units["kind"])) if len(units) else []
    shown = units[units["kind"] == kind] if kind in kinds else units
    years = list(range(current_report_year(), current_report_year() - 4, -1))
    from ..services.publishing import status_word, statuses

    publication = statuses(str(year), scope_unit_ids(user))  # each unit's approval status (issue 15)
    return render_template("staff/report.html", year=year, years=years, units=records(shown),
                           publication=publication, publication_word=status_word,
                           rollups=records(rollups), meta=meta, period=period, kinds=kinds, kind=kind,
                           method_version=meta.get("method_version"), rank_among=meta["ranking"]["rank_among"],
                           heading=report_heading(year), fields=field_rows(user, period),
                           ranking_rule=ranking_rule(meta, _lang()), rank_words=rank_words(_lang()))


def _audit_download(user, year, fmt):
    record(actor=user.username, user_id=user.id, action="export_report", target_type="report",
           target_id=str(year), details={"format": fmt})
    db.session.commit()


@bp.get("/report/<int:year>.xlsx")
def report_xlsx_download(year):
    from ..services.reports import report_xlsx

    user, units, rollups, meta, period = _tables_or_404(year)
    from ..ui.format import local_datetime
    from ..ui.labels import ELEMENT_LABELS, flag_words

    heading = report_heading(year)
    words = dict(value_words(), flags=flag_words, element={k: str(v) for k, v in ELEMENT_LABELS.items()})
    data = report_xlsx(units, rollups, meta, title=heading["title"], translate=_, value_words=words, lang=_lang(),
                       heading=heading, local_time=local_datetime,
                       fields=(FIELD_COLUMNS, field_rows(user, period)))
    _audit_download(user, year, "xlsx")
    return FlaskResponse(data, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                         headers={"Content-Disposition": f'attachment; filename="sipas_report_{year}.xlsx"'})


@bp.get("/report/<int:year>.csv")
def report_csv_download(year):
    import pandas as pd

    from ..services.reports import report_csv

    user, units, rollups, meta, period = _tables_or_404(year)
    both = pd.concat([units, rollups], ignore_index=True) if len(rollups) else units
    _audit_download(user, year, "csv")
    return FlaskResponse("\ufeff" + report_csv(both, meta, lang=_lang()), mimetype="text/csv; charset=utf-8",
                         headers={"Content-Disposition": f'attachment; filename="sipas_report_{year}.csv"'})
