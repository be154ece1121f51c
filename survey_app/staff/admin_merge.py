"""Administration: a merge of units as ONE action (issue 14.4).

GET /staff/admin/merge shows the form; POST checks it and shows what would
happen (nothing written); POST with `confirm` makes the merge through
`services.units.merge_units`: one transaction, one audit entry."""
from __future__ import annotations

import re

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from ..models import UNIT_KINDS
from ..services.units import MergeRefused, merge_units
from . import bp
from .auth import require
from .forms import LocalDateField, first_errors

_SPLIT = re.compile(r"[\s,;]+")


def _strip(v):
    return v.strip() if isinstance(v, str) else v


class MergeForm(FlaskForm):
    units = StringField(_l("Units to merge (codes, separated by spaces or commas)"), filters=[_strip],
                        validators=[DataRequired(_l("Choose at least one unit to merge.")), Length(max=4000)])
    day = LocalDateField(_l("Date of the merge (first day the units no longer exist)"),
                         validators=[DataRequired(_l("Give the date of the merge (YYYY-MM-DD)."))])
    into = StringField(_l("Successor code (an existing unit, or a new one)"), filters=[_strip],
                       validators=[DataRequired(_l("Give the successor's code (at most 40 characters).")),
                                   Length(max=40, message=_l("Give the successor's code (at most 40 characters)."))])
    name_vi = StringField(_l("Successor's name (Vietnamese)"), filters=[_strip], validators=[Optional(),
                                                                                          Length(max=200)])
    name_en = StringField(_l("Successor's name (English)"), filters=[_strip], validators=[Optional(), Length(max=200)])
    kind = SelectField(_l("Kind of a new successor"), choices=[""] + list(UNIT_KINDS),
                       validate_choice=True, validators=[Optional()])
    parent_code = StringField(_l("Parent of a new successor (code)"), filters=[_strip],
                              validators=[Optional(), Length(max=40)])
    move_counters = BooleanField(_l("Move the merged units' counters to the successor"))
    confirm = HiddenField()

    def codes(self) -> list[str]:
        return [c for c in _SPLIT.split(self.units.data or "") if c]


def _page(form, status=200, errors=(), preview=None):
    return render_template("staff/admin_merge.html", form=form, kinds=UNIT_KINDS, errors=list(errors),
                           preview=preview), status


@bp.get("/admin/merge")
def admin_merge():
    require("admin")
    return _page(MergeForm(formdata=None))


@bp.post("/admin/merge")
def admin_merge_post():
    user = require("admin")
    form = MergeForm()
    if not form.validate_on_submit():
        return _page(form, 400, first_errors(form))
    confirmed = form.confirm.data == "yes"
    try:
        res = merge_units(form.codes(), into=form.into.data, day=form.day.data, name_vi=form.name_vi.data or "",
                          name_en=form.name_en.data or "", kind=form.kind.data or "",
                          parent_code=form.parent_code.data or "", move_counters=bool(form.move_counters.data),
                          actor=user, dry_run=not confirmed)
    except MergeRefused as refused:
        from ..extensions import db

        db.session.rollback()
        return _page(form, refused.status, [str(refused)])
    if not confirmed:
        return _page(form, 200, preview=res)
    flash(_("%(units)s merged into %(s)s from %(d)s; %(n)s counters moved.", units=", ".join(res.predecessors),
            s=res.successor.code, d=res.day.strftime("%d/%m/%Y"), n=len(res.counters_moved)), "info")
    return redirect(url_for("staff.admin_unit", code=res.successor.code))
