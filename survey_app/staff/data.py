"""The data import page: transaction volumes, responses (e.g. paper
questionnaires) and, for administrators, units.  A file is imported whole or
not at all; every wrong row is listed with its line, column and reason.

The checks (scope, counters of the row's unit, overlapping volume periods,
the same content imported before) are `services.csv_import`'s, shared with the
CLI.  The upload is read as a stream (never whole into memory); its size is
capped by `IMPORT_MAX_BYTES` here and, before the body is read, by
`security.cap_request_size`."""
from __future__ import annotations

import os

from flask import current_app, flash, render_template
from flask_babel import gettext as _

from ..extensions import db
from ..services import bieu06
from ..services.csv_import import ImportRejected, import_responses, import_units, import_volumes
from ..services.units import scope_unit_ids
from . import bp
from .auth import require
from .forms import ImportForm, first_errors


def _kinds(user) -> list[str]:
    return ["volumes", "bieu06", "responses"] + (["units"] if user.role == "admin" else [])


def _page(form, kinds, result=None, rejected=None, status=200):
    return render_template("staff/import.html", form=form, kinds=kinds, result=result, rejected=rejected), status


def _size(stream) -> int:
    stream.seek(0, os.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    return size


@bp.get("/data/import")
def data_import():
    user = require("import")
    kinds = _kinds(user)
    return _page(ImportForm(kinds), kinds)


@bp.post("/data/import")
def data_import_post():
    user = require("import")
    kinds = _kinds(user)
    form = ImportForm(kinds)
    if not form.validate_on_submit():
        for message in first_errors(form):
            flash(message, "error")
        return _page(form, kinds, status=400)
    f = form.file.data
    name = (f.filename or "upload.csv")[-200:]
    limit = int(current_app.config["IMPORT_MAX_BYTES"])
    kind = form.kind.data
    if _size(f.stream) > limit:
        return _page(form, kinds, status=413, rejected=ImportRejected(
            name, summary=_("The file is too large (at most %(mb)s MB).", mb=limit // (1024 * 1024))))
    try:
        scope = scope_unit_ids(user)
        if kind == "volumes":
            result = import_volumes(f.stream, name, actor=user.username, scope=scope, replace=form.replace.data)
        elif kind == "bieu06":  # a Biểu 06/VPCP/KSTT table (CSV or XLSX) as volumes
            result = bieu06.import_table(f.stream, name, actor=user.username, scope=scope,
                                         replace=form.replace.data)
        elif kind == "responses":
            result = import_responses(f.stream, name, actor=user.username, scope=scope)
        else:
            result = import_units(f.stream, name, actor=user.username)
    except ImportRejected as exc:
        db.session.rollback()
        return _page(form, kinds, rejected=exc, status=422)
    flash(_("Imported %(n)s rows (%(c)s new, %(u)s updated).", n=result.rows, c=result.created,
            u=result.updated), "info")
    return _page(ImportForm(kinds), kinds, result=result)


# ---------------------------------------------------------------- Biểu 06 out

@bp.get("/report/<int:year>/bieu06.<fmt>")
def bieu06_download(year, fmt):
    """The Biểu 06/VPCP/KSTT table of a reporting period (the year, or
    `?period=2025-Q1` etc. inside it) for the user's scope, with the survey's
    columns per field and unit; CSV or XLSX; audited."""
    from flask import Response as FlaskResponse
    from flask import abort, request

    from ..services.audit import record
    from ..services.periods import current_report_year, resolve_period

    user = require("report")
    if fmt not in ("csv", "xlsx") or not 2000 <= year <= current_report_year() + 1:
        abort(404)
    label = (request.args.get("period") or str(year)).strip()[:20]
    try:
        period = resolve_period(label)
    except ValueError:
        abort(404)
    if period.year and period.year != year:
        abort(404)
    rows = bieu06.table(period, scope_unit_ids(user))
    record(actor=user.username, user_id=user.id, action="export_bieu06", target_type="report",
           target_id=period.label, details={"format": fmt, "rows": len(rows)})
    db.session.commit()
    name = f"bieu06_{period.label.replace(':', '-')}.{fmt}"
    if fmt == "csv":
        return FlaskResponse("\ufeff" + bieu06.to_csv(rows), mimetype="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})
    data = bieu06.to_xlsx(rows, period_label=period.label)
    return FlaskResponse(data, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                         headers={"Content-Disposition": f'attachment; filename="{name}"'})
