"""Closing periods and the approval chain, on the staff pages.

`/staff/periods`: the closed periods (versions) the user may see, and closing
one; `/staff/periods/<id>`: one version — its method record, the approval
status of each unit with the actions the user may take (submit with a
reflection, accept / request changes, publish), verify, reopen; the diff of
two versions as a page and a CSV; the QR poster pointing to the public page.
Every decision is taken by `services.publishing` (permissions included);
a refusal is shown on the page with its message and status."""
from __future__ import annotations

from flask import Response as FlaskResponse
from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import RadioField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from ..extensions import db
from ..models import PeriodSnapshot, Unit
from ..services import publishing
from ..services.periods import current_report_year
from ..services.units import scope_unit_ids
from . import bp
from .auth import require
from .forms import ActionForm, first_errors


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class CloseForm(FlaskForm):
    period = StringField(_l("Period"), filters=[_strip],
                         validators=[DataRequired(_l("Enter a period, e.g. 2025 or 2025-Q4.")), Length(max=40)])
    unit = StringField(_l("Unit code (the subtree to close)"), filters=[_strip],
                       validators=[Optional(), Length(max=40)])


class ReopenForm(FlaskForm):
    reason = TextAreaField(_l("Reason for reopening"), filters=[_strip], validators=[
        DataRequired(_l("Give the reason for reopening.")), Length(min=5, max=2000, message=_l(
            "The reason needs 5 to 2000 characters."))])


class ReflectionForm(FlaskForm):
    reflection = TextAreaField(_l("Reflection on the figures"), filters=[_strip], validators=[
        DataRequired(_l("Write a short reflection on the figures.")), Length(min=10, max=4000, message=_l(
            "The reflection needs 10 to 4000 characters."))])


class ReviewForm(FlaskForm):
    decision = RadioField(_l("Decision"), choices=["accept", "changes"], validate_choice=False,
                          validators=[DataRequired(_l("Choose accept or request changes."))])
    note = TextAreaField(_l("Note to the unit"), filters=[_strip], validators=[Optional(), Length(max=2000)])

    def validate_decision(self, field):
        if field.data not in ("accept", "changes"):
            raise ValidationError(_l("Choose accept or request changes."))


def _visible(user, snap: PeriodSnapshot) -> bool:
    """Admins see every version; others those of a subtree inside their scope or that holds their unit."""
    scope = scope_unit_ids(user)
    if scope is None:
        return True
    if snap.unit_id is not None and snap.unit_id in scope:
        return True
    return user.unit_id is not None and any(a.unit_id == user.unit_id for a in snap.approvals)


def _snapshot_or_404(user, sid: int) -> PeriodSnapshot:
    snap = db.session.get(PeriodSnapshot, sid)
    if snap is None or not _visible(user, snap):
        abort(404)
    return snap


@bp.get("/periods")
def periods_page(status=200, form=None):
    user = require("report")
    snaps = [s for s in publishing.all_snapshots() if _visible(user, s)]
    may_close = user.role in ("analyst", "admin")
    default_unit = user.unit.code if user.unit else ""
    form = form or CloseForm(formdata=None, period=str(current_report_year() - 1), unit=default_unit)
    return render_template("staff/periods.html", snaps=snaps, form=form, may_close=may_close,
                           word=publishing.status_word), status


@bp.post("/periods/close")
def periods_close():
    user = require("report")
    form = CloseForm()
    if not form.validate_on_submit():
        for message in first_errors(form):
            flash(message, "error")
        return periods_page(400, form)
    try:
        snap = publishing.close_period(form.period.data, form.unit.data or None, user=user)
    except publishing.PublishingError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return periods_page(exc.status, form)
    flash(_("Period %(p)s of %(s)s closed: version %(v)s.", p=snap.period, s=snap.scope, v=snap.version), "info")
    return redirect(url_for("staff.period_version", sid=snap.id), 303)


def _version_page(user, snap: PeriodSnapshot, status: int = 200):
    scope = scope_unit_ids(user)
    approvals = [a for a in publishing.approvals_of(snap) if scope is None or a.unit_id in scope]
    codes = {a.unit.code for a in approvals}
    rows = [r for r in (snap.table or []) if r.get("unit_code") in codes or scope is None]
    others = [v for v in publishing.versions(snap.period, snap.scope) if v.id != snap.id and v.state == "closed"]
    can = {a.id: {"submit": user.role == "unit_leader" and publishing.covers(user, a.unit_id)
                  and a.status in ("draft", "changes_requested"),
                  "review": user.role in ("analyst", "admin") and publishing.covers(user, a.unit_id, strictly=True)
                  and a.status in ("submitted", "accepted"),
                  "publish": user.role in ("analyst", "admin") and publishing.covers(user, a.unit_id, strictly=True)
                  and a.status == "accepted"} for a in approvals}
    year = snap.period if snap.period.isdigit() else None
    return render_template(
        "staff/period.html", snap=snap, approvals=approvals, rows=rows, others=others, can=can, year=year,
        may_close=publishing.may_close(user, snap.unit), word=publishing.status_word,
        levels=publishing.approval_levels(),
        reopen_form=ReopenForm(formdata=None), reflection_form=ReflectionForm(formdata=None),
        review_form=ReviewForm(formdata=None), action_form=ActionForm(),
        method_version=snap.method_version), status


@bp.get("/periods/<int:sid>")
def period_version(sid):
    user = require("report")
    return _version_page(user, _snapshot_or_404(user, sid))


def _act(sid: int, form_cls, do, then: str = ""):
    """Validate `form_cls`, run `do(user, snap, form)` (its message is flashed), then go to the version's page
    (or the endpoint `then`); a refusal re-shows the version's page with its message and status."""
    user = require("report")
    snap = _snapshot_or_404(user, sid)
    form = form_cls()
    if not form.validate_on_submit():
        for message in first_errors(form):
            flash(message, "error")
        return _version_page(user, snap, 400)
    try:
        message = do(user, snap, form)
    except publishing.PublishingError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _version_page(user, snap, exc.status)
    flash(message, "info")
    return redirect(url_for(then) if then else url_for("staff.period_version", sid=snap.id), 303)


def _approval(snap, code):
    if not code or len(code) > 40:
        abort(404)
    try:
        return publishing.approval_for(snap, code)
    except publishing.PublishingError:
        abort(404)


@bp.post("/periods/<int:sid>/units/<code>/submit")
def period_submit(sid, code):
    def do(user, snap, form):
        publishing.submit(_approval(snap, code), user, form.reflection.data)
        return _("Figures of %(c)s submitted for review.", c=code)
    return _act(sid, ReflectionForm, do)


@bp.post("/periods/<int:sid>/units/<code>/review")
def period_review(sid, code):
    def do(user, snap, form):
        a = _approval(snap, code)
        if form.decision.data == "accept":
            publishing.accept(a, user, form.note.data or "")
            return _("Figures of %(c)s: %(s)s.", c=code, s=publishing.status_word(a.status))
        publishing.request_changes(a, user, form.note.data or "")
        return _("Figures of %(c)s sent back to the unit.", c=code)
    return _act(sid, ReviewForm, do)


@bp.post("/periods/<int:sid>/units/<code>/publish")
def period_publish(sid, code):
    def do(user, snap, form):
        publishing.publish(_approval(snap, code), user)
        return _("Figures of %(c)s published.", c=code)
    return _act(sid, ActionForm, do)


@bp.post("/periods/<int:sid>/reopen")
def period_reopen(sid):
    def do(user, snap, form):
        new = publishing.reopen_period(snap.period, None if snap.scope == publishing.WHOLE_TREE else snap.scope,
                                       reason=form.reason.data, user=user)
        return _("Period %(p)s reopened: version %(v)s is open; close it again when the corrections are made.",
                 p=new.period, v=new.version)
    return _act(sid, ReopenForm, do, then="staff.periods_page")


@bp.post("/periods/<int:sid>/verify")
def period_verify(sid):
    def do(user, snap, form):
        if user.role not in ("analyst", "admin"):
            raise publishing.PublishingError(_("Only analysts and administrators verify closed periods."), 403)
        v = publishing.verify(snap.period, None if snap.scope == publishing.WHOLE_TREE else snap.scope,
                              snap.version, user=user)
        if v.ok:
            return _("Version %(v)s reproduced exactly from the stored data.", v=snap.version)
        raise publishing.PublishingError(_("Version %(v)s is NOT reproduced by the stored data: %(n)s differences "
                                           "(inputs %(h)s).", v=snap.version, n=len(v.differences),
                                           h=_("unchanged") if v.hash_ok else _("changed")), 409)
    return _act(sid, ActionForm, do)


def _diff(user, sid, other):
    snap = _snapshot_or_404(user, sid)
    old = _snapshot_or_404(user, other)
    if old.period != snap.period or old.scope != snap.scope:
        abort(404)
    try:
        va, vb, rows = publishing.diff(snap.period, None if snap.scope == publishing.WHOLE_TREE else snap.scope,
                                       old.version, snap.version)
    except publishing.PublishingError:
        abort(404)
    scope = scope_unit_ids(user)
    if scope is not None:
        codes = {u.code for u in db.session.scalars(select(Unit).where(Unit.id.in_(scope)))}
        rows = [r for r in rows if r["unit_code"] in codes]
    return va, vb, rows


@bp.get("/periods/<int:sid>/diff/<int:other>")
def period_diff(sid, other):
    user = require("report")
    va, vb, rows = _diff(user, sid, other)
    only = request.args.get("all") != "1"
    shown = [r for r in rows if r["change"] != "same"] if only else rows
    return render_template("staff/period_diff.html", va=va, vb=vb, rows=shown, total=len(rows), only=only,
                           sid=sid, other=other)


@bp.get("/periods/<int:sid>/diff/<int:other>.csv")
def period_diff_csv(sid, other):
    user = require("report")
    va, vb, rows = _diff(user, sid, other)
    name = f"sipas_diff_{va.period}_{va.scope}_v{va.version}_v{vb.version}.csv".replace("*", "all")
    return FlaskResponse("\ufeff" + publishing.diff_csv(rows), mimetype="text/csv; charset=utf-8",
                         headers={"Content-Disposition": f'attachment; filename="{name}"'})


POSTER_TYPES = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf"}


@bp.get("/periods/poster/<code>/<int:year>.<fmt>")
def results_poster(code, year, fmt):
    """An A5 QR poster pointing to the public results page ("xem kết quả công khai")."""
    require("posters")
    if fmt not in POSTER_TYPES or not code or len(code) > 40:
        abort(404)
    unit = db.session.scalar(select(Unit).where(Unit.code == code))
    if unit is None:
        abort(404)
    from ..services import posters

    data = posters.render_results(unit, year, fmt)
    return FlaskResponse(data, mimetype=POSTER_TYPES[fmt],
                         headers={"Content-Disposition": f'attachment; filename="results_{code}_{year}.{fmt}"'})
