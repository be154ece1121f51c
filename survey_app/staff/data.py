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


# ---------------------------------------------------------------- large responses exports (background job)

def _export_rows(user):
    from ..models import utcnow
    from ..services import csv_export

    now = utcnow()
    words = {"pending": _("waiting"), "running": _("being prepared"), "dead": _("failed"), "done": _("ready")}
    out = []
    for job in csv_export.user_exports(user.id):
        p = job.payload or {}
        expires = csv_export.export_expires_at(job)
        refused = job.result == "refused"
        expired = expires is not None and now > expires
        status = _("not allowed any more") if refused else _("expired") if (job.status == "done" and expired) \
            else words.get(job.status, job.status)
        out.append(dict(unit_code=p.get("unit_code", ""), period=p.get("period", ""), created_at=job.created_at,
                        status_text=status, token=p.get("token"), expires_at=expires,
                        rows=int(job.result) if job.status == "done" and (job.result or "").isdigit() else None,
                        download=job.status == "done" and not refused and not expired))
    return out


def exports_page(queue=None):
    user = require("export")
    return render_template("staff/exports.html", exports=_export_rows(user), queue=queue)


@bp.get("/exports")
def exports():
    """The user's prepared exports (large responses CSVs written by a background job)."""
    return exports_page()


@bp.post("/units/<code>/responses-export")
def queue_responses_export(code):
    """Queue the unit's responses export of the period (`?period=`) as a background job (audited)."""
    from flask import redirect, url_for

    from ..services import csv_export
    from ..services.audit import record
    from .auth import unit_in_scope_or_404
    from .forms import ActionForm, chosen_period

    user = require("export")
    unit = unit_in_scope_or_404(user, code)
    if not ActionForm().validate_on_submit():
        flash(_("The form has expired. Please try again."), "error")
        return exports_page(), 400
    period = chosen_period()
    job = csv_export.queue_export(user, unit, period)
    db.session.flush()
    record(actor=user.username, user_id=user.id, action="export_responses_queued", target_type="unit",
           target_id=unit.code, details={"period": period.label, "job": job.id})
    db.session.commit()
    flash(_("The export is being prepared. It will appear here when it is ready."), "info")
    return redirect(url_for("staff.exports"), 303)


@bp.get("/exports/<token>")
def download_export(token):
    """The file of a finished export: only for the user who asked for it, the
    scope checked again, until it expires (audited)."""
    from flask import abort, send_file

    from ..services import csv_export
    from ..services.audit import record

    user = require("export")
    try:
        job, path = csv_export.export_for_download(token, user.id)
    except LookupError:
        abort(404)
    except TimeoutError:
        flash(_("This export has expired. Prepare it again from the unit page."), "error")
        return exports_page(), 410
    p = job.payload
    record(actor=user.username, user_id=user.id, action="download_export", target_type="unit",
           target_id=p["unit_code"], details={"period": p["period"], "job": job.id})
    db.session.commit()
    name = f"responses_{p['unit_code']}_{p['period'].replace(':', '-')}.csv"
    return send_file(path, mimetype="text/csv; charset=utf-8", as_attachment=True, download_name=name,
                     max_age=0)
