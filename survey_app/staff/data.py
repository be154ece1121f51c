"""The data import page: transaction volumes, responses (e.g. paper
questionnaires) and, for administrators, units.  A file is imported whole or
not at all; every wrong row is listed with its line, column and reason."""
from __future__ import annotations

import csv
import io

from flask import flash, render_template
from flask_babel import gettext as _
from sqlalchemy import select

from ..extensions import db
from ..models import Counter, Unit
from ..services.csv_import import ImportRejected, RowError, import_responses, import_units, import_volumes
from ..services.units import scope_unit_ids
from . import bp
from .auth import require
from .forms import ImportForm, first_errors

MAX_UPLOAD = 50 * 1024 * 1024
IMPORTERS = {"volumes": import_volumes, "responses": import_responses, "units": import_units}


def _out_of_scope_rows(data: bytes, scope: set[int], column: str) -> list[RowError]:
    """Row errors for unit codes outside the user's scope (checked before the import)."""
    codes = {c: i for i, c in db.session.execute(select(Unit.id, Unit.code))}
    ctr_units = {c: u for c, u in db.session.execute(select(Counter.code, Counter.unit_id))}
    errors = []
    try:
        reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""))
        for row in reader:
            code = (row.get(column) or "").strip()
            uid = codes.get(code)
            if uid is None and row.get("counter_code"):
                uid = ctr_units.get(row["counter_code"].strip())
            if uid is not None and uid not in scope:
                errors.append(RowError(reader.line_num, column, _("unit %(c)s is outside your scope", c=code)))
    except (UnicodeDecodeError, csv.Error):
        return []  # the importer reports the file-level problem
    return errors


def _kinds(user) -> list[str]:
    return ["volumes", "responses"] + (["units"] if user.role == "admin" else [])


def _page(form, kinds, result=None, rejected=None, status=200):
    return render_template("staff/import.html", form=form, kinds=kinds, result=result, rejected=rejected), status


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
    data = f.read(MAX_UPLOAD + 1)
    name = (f.filename or "upload.csv")[-200:]
    try:
        if len(data) > MAX_UPLOAD:
            raise ImportRejected(name, summary=_("The file is too large (at most 50 MB)."))
        scope = scope_unit_ids(user)
        if scope is not None:
            errs = _out_of_scope_rows(data, scope, "unit_code")
            if errs:
                raise ImportRejected(name, errs)
        result = IMPORTERS[form.kind.data](data, name, actor=user.username)
    except ImportRejected as exc:
        db.session.rollback()
        return _page(form, kinds, rejected=exc, status=422)
    flash(_("Imported %(n)s rows (%(c)s new, %(u)s updated).", n=result.rows, c=result.created,
            u=result.updated), "info")
    return _page(ImportForm(kinds), kinds, result=result)
