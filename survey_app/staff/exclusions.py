"""The four-eyes approval page: exclusion requests waiting for a decision.

`GET /staff/exclusions` lists the pending requests of the analyst's scope
with the response's answers, counter, flags and the reason; each has an
approve / reject form (POST, CSRF, optional note).  A requester withdraws
their own pending request from the unit page.  Every rule (who may decide
what) is in `services.exclusions`; this module only shows and posts.
"""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _

from ..errors import error_page
from ..services import exclusions
from ..ui.labels import ELEMENT_LABELS
from . import bp
from .auth import db_user, require
from .forms import ActionForm, DecisionForm, first_errors


@bp.app_template_global()
def exclusions_to_decide() -> int:
    """Pending requests the signed-in user may decide (the menu's count); -1 when they decide none."""
    user = db_user()
    return exclusions.decidable_count(user) if exclusions.may_decide(user) else -1


def _decider():
    user = require("view")
    if not exclusions.may_decide(user):
        abort(403)
    return user


@bp.get("/exclusions")
def exclusion_requests():
    user = _decider()
    rows = []
    for req in exclusions.pending_for(user):
        resp = req.response
        answers = sorted((a.item_key, a.value) for a in resp.answers)
        rows.append({"req": req, "resp": resp, "why_not": exclusions.why_not_decide(user, req),
                     "answers": [(str(ELEMENT_LABELS.get(k, k)), v) for k, v in answers]})
    return render_template("staff/exclusions.html", rows=rows, form=DecisionForm())


@bp.post("/exclusions/<int:req_id>/decision")
def exclusion_decide(req_id):
    user = _decider()
    back = url_for("staff.exclusion_requests")
    form = DecisionForm()
    if not form.validate_on_submit():
        return error_page(400, message=" ".join(first_errors(form)), back_url=back)
    try:
        req = exclusions.decide(user, exclusions.get_request(req_id), form.decision.data == "approve",
                                form.note.data)
    except exclusions.Refused as refused:
        return error_page(refused.status, message=str(refused), back_url=back)
    flash(_("Approved: the figures now take it into account.") if req.status == "approved"
          else _("Rejected: nothing changes in the figures."), "info")
    return redirect(back)


@bp.post("/exclusions/<int:req_id>/withdrawal")
def exclusion_withdraw(req_id):
    user = require("exclude")
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        req = exclusions.get_request(req_id)
        if not exclusions.may_see(user, req):
            raise exclusions.Refused(404, _("There is no such request."))
        exclusions.withdraw(user, req)
    except exclusions.Refused as refused:
        return error_page(refused.status, message=str(refused))
    flash(_("The request was withdrawn."), "info")
    return redirect(url_for("staff.unit_page", code=req.response.unit.code) + "#flagged")
