"""The cases page: alerts of dissatisfied citizens and what the unit did
about them (DESIGN.md flow 5; rules in `services.cases`).

`GET /staff/cases` lists the cases of the user's scope (filter by status,
overdue) with the open / overdue counts per unit; `GET /staff/cases/<id>` is
one case (the rating and masked comment behind it, its deadline, reply and
history) with the leader's forms: take it, record the reply, close it (POST,
CSRF).  A case outside the user's scope answers 404.  The unit page includes
the unit's open cases (`templates/staff/_cases_open.html`).
"""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import TextAreaField
from wtforms.validators import DataRequired, Length

from ..errors import error_page
from ..extensions import db
from ..models import CASE_STATUSES
from ..services import cases
from ..ui.labels import ELEMENT_LABELS
from . import bp
from .auth import db_user, require
from .forms import ActionForm, first_errors, int_arg

STATUS_FILTERS = ("open",) + CASE_STATUSES + ("all",)


class ReplyForm(FlaskForm):
    """The reply the unit gave (recorded on the case)."""

    reply = TextAreaField(_l("Reply given"), validators=[
        DataRequired(_l("Please write the reply that was given.")),
        Length(max=cases.MAX_REPLY_CHARS, message=_l("The reply is too long."))])


@bp.app_template_global()
def case_labels():
    """Labels of case codes for the templates (status, kind, history action)."""
    return {"status": cases.status_label, "kind": cases.kind_label, "action": cases.action_label}


@bp.app_template_global()
def open_cases_of(unit_id: int, limit: int = 10) -> dict:
    """The open cases of a unit's subtree for the unit page's block (within the user's scope)."""
    from ..services.units import subtree_ids

    user = db_user()
    if user is None or not staff_may_see_cases(user):
        return {"rows": [], "more": 0, "visible": False}
    q = cases.cases_query(user, status="open", unit_ids=subtree_ids(unit_id))
    rows = list(db.session.scalars(q.limit(limit + 1)))
    return {"rows": rows[:limit], "more": len(rows) > limit, "visible": True, "today": cases.today()}


def staff_may_see_cases(user) -> bool:
    return user.role in ("unit_leader", "analyst", "admin")


def _viewer():
    user = require("view")
    if not staff_may_see_cases(user):
        abort(403)
    return user


@bp.get("/cases")
def cases_page():
    user = _viewer()
    status = request.args.get("status", "open")
    if status not in STATUS_FILTERS:
        status = "open"
    overdue = request.args.get("overdue") == "1"
    unit_code = request.args.get("unit", "")[:40]
    unit_ids = None
    unit = None
    if unit_code:
        from ..services.units import subtree_ids
        from .auth import unit_in_scope_or_404

        unit = unit_in_scope_or_404(user, unit_code)
        unit_ids = subtree_ids(unit.id)
    size = 50
    page = int_arg("page", 1, 1, 10_000)
    q = cases.cases_query(user, status=None if status == "all" else status, overdue=overdue, unit_ids=unit_ids)
    rows = list(db.session.scalars(q.offset((page - 1) * size).limit(size + 1)))
    return render_template("staff/cases.html", rows=rows[:size], has_next=len(rows) > size, page=page,
                           status=status, overdue=overdue, unit=unit, statuses=STATUS_FILTERS,
                           per_unit=cases.overdue_by_unit(user), today=cases.today(),
                           may_act=cases.may_act(user))


def _case_or_404(user, case_id: int):
    try:
        return cases.get_case(user, case_id)
    except cases.Refused:
        abort(404)


@bp.get("/cases/<int:case_id>")
def case_page(case_id):
    user = _viewer()
    case = _case_or_404(user, case_id)
    return _render_case(user, case)


def _render_case(user, case, form=None, status=200):
    answers = []
    if case.response is not None:
        answers = [(str(ELEMENT_LABELS.get(a.item_key, a.item_key)), a.value)
                   for a in sorted(case.response.answers, key=lambda a: a.item_key)]
    return render_template("staff/case.html", case=case, answers=answers, form=form or ReplyForm(),
                           action_form=ActionForm(), may_act=cases.may_act(user, case),
                           overdue=cases.is_overdue(case), days_left=cases.days_left(case)), status


def _act(case_id, do):
    user = _viewer()
    case = _case_or_404(user, case_id)
    back = url_for("staff.case_page", case_id=case.id)
    try:
        do(user, case)
    except cases.Refused as refused:
        db.session.rollback()
        if refused.status == 400:
            flash(str(refused), "error")
            return _render_case(user, case, status=400)
        return error_page(refused.status, message=str(refused), back_url=back)
    return redirect(back, 303)


@bp.post("/cases/<int:case_id>/take")
def case_take(case_id):
    if not ActionForm().validate_on_submit():
        abort(400)

    def do(user, case):
        cases.take(user, case)
        flash(_("You now handle this case."), "info")
    return _act(case_id, do)


@bp.post("/cases/<int:case_id>/reply")
def case_reply(case_id):
    form = ReplyForm()
    if not form.validate_on_submit():
        user = _viewer()
        case = _case_or_404(user, case_id)
        for message in first_errors(form):
            flash(message, "error")
        return _render_case(user, case, form=form, status=400)

    def do(user, case):
        cases.answer(user, case, form.reply.data)
        flash(_("The reply is recorded."), "info")
    return _act(case_id, do)


@bp.post("/cases/<int:case_id>/close")
def case_close(case_id):
    if not ActionForm().validate_on_submit():
        abort(400)

    def do(user, case):
        cases.close(user, case)
        flash(_("The case is closed."), "info")
    return _act(case_id, do)


@bp.app_template_global()
def cases_to_handle() -> int:
    """Open cases of the signed-in user's scope (the menu's count); -1 when they see no cases."""
    user = db_user()
    if user is None or not staff_may_see_cases(user):
        return -1
    from sqlalchemy import func

    return int(db.session.scalar(select(func.count()).select_from(
        cases.cases_query(user, status="open").order_by(None).subquery())) or 0)

