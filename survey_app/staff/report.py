"""The annual report: ranked units with rank intervals, roll-ups, print view,
XLSX and CSV downloads.  Ranking and comparison come from `analysis.ranking`."""
from __future__ import annotations

from flask import Response as FlaskResponse
from flask import abort, redirect, render_template, request, url_for
from flask_babel import gettext as _

from analysis.ranking import compare_to_parent, rank_units

from ..services.audit import record
from ..services.units import scope_unit_ids
from ..extensions import db
from ..services.periods import current_report_year, resolve_period
from ..services.reports import report_csv, report_xlsx
from .auth import require
from . import bp
from .common import KIND_LABELS, records, unit_codes
from .unitdata import safe_index, table_of


def _year_ok(year: int) -> bool:
    return 2000 <= year <= current_report_year() + 1


def report_tables(user, year: int):
    """(ranked unit rows, roll-up rows, meta) for the user's scope."""
    period = resolve_period(str(year))
    scope = scope_unit_ids(user)
    res = safe_index(period, scope)
    full = table_of(res)
    meta = dict(res.meta) if res is not None else {"period": {"label": period.label}}
    if full.empty:
        return full, full, meta, period
    # A parent is compared with its roll-up row: a district that also served
    # people has a `unit` row and a `district` row under the same code.
    parents = full[full["level"] != "unit"]
    full = compare_to_parent(full, parents)
    if scope is not None:
        codes = set(unit_codes(scope).values())
        full = full[full["unit_code"].isin(codes)]
    units = full[full["level"] == "unit"]
    if len(units):
        units = rank_units(units, group="kind")
        units = units.sort_values(["kind", "rank", "unit_code"], na_position="last", kind="mergesort")
    rollups = full[full["level"] != "unit"].copy()
    if scope is not None:  # the pooled root of a scoped user is their scope, already listed
        rollups = rollups[rollups["level"] != "root"]
    meta.setdefault("notes", []).append(
        "Rank intervals: analysis.ranking.rank_units (simulation, 95%), ranked within unit kind; "
        "comparison with parent: analysis.ranking.compare_to_parent (interval overlap).")
    return units.reset_index(drop=True), rollups.reset_index(drop=True), meta, period


@bp.get("/report")
def report():
    require("report")
    return redirect(url_for("staff.report_year", year=current_report_year()))


@bp.get("/report/<int:year>")
def report_year(year):
    user = require("report")
    if not _year_ok(year):
        abort(404)
    units, rollups, meta, period = report_tables(user, year)
    kind = request.args.get("kind", "")
    kinds = sorted(set(units["kind"])) if len(units) else []
    shown = units[units["kind"] == kind] if kind in kinds else units
    years = list(range(current_report_year(), current_report_year() - 4, -1))
    return render_template("staff/report.html", year=year, years=years, units=records(shown),
                           rollups=records(rollups), meta=meta, period=period, kinds=kinds, kind=kind,
                           method_version=meta.get("method_version"))


def _value_words():
    from .common import target_text  # noqa: F401

    return {
        "kind": {k: str(v) for k, v in KIND_LABELS.items()},
        "level": {k: str(v) for k, v in KIND_LABELS.items()} | {"unit": _("unit")},
        "adequacy": {"adequate": _("adequate"), "inadequate": _("too small"),
                     "no_population": _("no volume"), "not_eligible": _("too few transactions")},
        "target_status": {"met": _("met"), "not_met": _("not met"), "inconclusive": _("inconclusive")},
        "vs_parent": {"above": _("above parent"), "below": _("below parent"),
                      "not_different": _("not different"), "unknown": "", "no_parent": ""},
    }


@bp.get("/report/<int:year>.xlsx")
def report_xlsx_download(year):
    user = require("report")
    if not _year_ok(year):
        abort(404)
    units, rollups, meta, period = report_tables(user, year)
    data = report_xlsx(units, rollups, meta, title=_("Citizen satisfaction index, report year %(y)s", y=year),
                       translate=_, value_words=_value_words())
    record(actor=user.username, user_id=user.id, action="export_report", target_type="report",
           target_id=str(year), details={"format": "xlsx"})
    db.session.commit()
    return FlaskResponse(data, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                         headers={"Content-Disposition": f'attachment; filename="sipas_report_{year}.xlsx"'})


@bp.get("/report/<int:year>.csv")
def report_csv_download(year):
    user = require("report")
    if not _year_ok(year):
        abort(404)
    units, rollups, meta, period = report_tables(user, year)
    import pandas as pd

    both = pd.concat([units, rollups], ignore_index=True) if len(rollups) else units
    record(actor=user.username, user_id=user.id, action="export_report", target_type="report",
           target_id=str(year), details={"format": "csv"})
    db.session.commit()
    return FlaskResponse("\ufeff" + report_csv(both, meta), mimetype="text/csv; charset=utf-8",
                         headers={"Content-Disposition": f'attachment; filename="sipas_report_{year}.csv"'})
