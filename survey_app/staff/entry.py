"""Fast keyboard entry of paper and phone questionnaires by staff.

`GET /staff/entry/` chooses the counter (inside the user's unit scope), the
questionnaire (`counter-quick` or `sipas-services`) and the channel
(`paper` / `phone`); `GET|POST /staff/entry/form` is the entry sheet: one
short input per item (type a digit, Tab to the next; blank = no answer).
What the sheet is for is an `EntrySheetForm`; the answers are checked against
the questionnaire by `services.submissions.validate` and stored by
`services.responses.create_response`, like the citizens' own, with an
idempotency key per rendered sheet so a double Enter stores one row.  Each
row records the staff user who typed it and the paper batch label typed on
the sheet (required); it gets the typed quality flags and an audit entry
(`paper_entry`: who typed which batch, how many so far).
"""
from __future__ import annotations

import datetime as dt

from flask import abort, current_app, make_response, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from analysis.schema import TYPED_CHANNELS

from ..errors import error_page
from ..extensions import csrf, db
from ..models import Counter, Unit
from ..services import instruments, publishing, responses, submissions
from ..services.periods import local_today, local_zone
from ..services.units import scope_unit_ids
from . import bp
from .auth import db_user, require
from .forms import ENTRY_INSTRUMENTS, EntrySheetForm

#: Fields of the sheet that are not answers (the transport fields and `EntrySheetForm`'s).
SHEET_FIELDS = submissions.TRANSPORT_FIELDS + ("counter", "instrument", "channel", "date", "batch")
MAX_AGE_DAYS = 400


def _counters():
    scope = scope_unit_ids(db_user())
    q = (select(Counter, Unit).join(Unit, Counter.unit_id == Unit.id)
         .where(Counter.active.is_(True)).order_by(Unit.code, Counter.code))
    if scope is not None:
        if not scope:
            return []
        q = q.where(Counter.unit_id.in_(scope))
    return list(db.session.execute(q))


def _counter_in_scope(code: str):
    counter = db.session.scalar(select(Counter).where(Counter.code == code)) if code else None
    if counter is None:
        abort(404)
    scope = scope_unit_ids(db_user())
    if scope is not None and counter.unit_id not in scope:
        abort(403)
    return counter


def _submitted_at(day: dt.date) -> dt.datetime:
    """Now for today's questionnaires; noon local time for an earlier day."""
    if day == local_today():
        return dt.datetime.now(dt.timezone.utc)
    return dt.datetime.combine(day, dt.time(12), local_zone()).astimezone(dt.timezone.utc)


@bp.get("/entry/")
def entry_start():
    require("view")
    return render_template("entry/start.html", counters=_counters(), instruments=ENTRY_INSTRUMENTS,
                           chosen_unit=(request.args.get("unit") or "")[:40],
                           locale=str(get_locale() or "vi"), today=local_today().isoformat())


def _render_sheet(counter, inst, channel, day, batch, *, values=None, errors=None, key=None, alert=None,
                  status=200):
    locale = str(get_locale() or "vi")
    title = inst.definition["title"]
    body = render_template(
        "entry/form.html", counter=counter, inst=inst, channel=channel, day=day, batch=batch,
        title=(title.get("en") or title["vi"]) if locale == "en" else title["vi"],
        questions=submissions.questions(inst.definition, locale), values=values or {}, errors=errors or {},
        key=key or submissions.new_key(), alert=alert, fields=submissions,
        saved=session.get("entry_saved", 0), today=local_today().isoformat(), locale=locale,
        ok_flash=status == 200 and not errors,
    )
    resp = make_response(body, status)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _sheet_form() -> EntrySheetForm:
    """What the sheet is for; a questionnaire or channel that is not offered is a 400."""
    src = request.form if request.method == "POST" else request.args
    form = EntrySheetForm(src, meta={"csrf": request.method == "POST"
                                     and current_app.config["WTF_CSRF_ENABLED"]})
    if form.instrument.data not in ENTRY_INSTRUMENTS or form.channel.data not in TYPED_CHANNELS:
        abort(400)
    return form


def _sheet_context():
    """(form, counter, questionnaire) of the sheet asked for (403/404/400/503 otherwise)."""
    require("view")
    form = _sheet_form()
    counter = _counter_in_scope(form.counter.data)
    inst = instruments.latest_instrument(form.instrument.data)
    if inst is None:
        abort(error_page(503))
    form.validate()
    return form, counter, inst


@bp.get("/entry/form")
def entry_sheet():
    form, counter, inst = _sheet_context()
    day = form.date.data if not form.date.errors else None
    batch = form.batch.data if not form.batch.errors else ""
    return _render_sheet(counter, inst, form.channel.data, (day or local_today()).isoformat(), batch or "",
                         alert=_("Saved. Next questionnaire.") if request.args.get("saved") else None)


@bp.post("/entry/form")
def entry_save():
    form, counter, inst = _sheet_context()
    channel = form.channel.data
    posted = request.form
    key = posted.get(submissions.KEY_FIELD, "")
    values = submissions.posted_values(inst.definition, posted)
    day_shown = (posted.get("date") or "")[:10]

    batch_shown = (posted.get("batch") or "")[:80]

    def again(*, errors=None, alert=None, status=400):
        return _render_sheet(counter, inst, channel, day_shown, batch_shown, values=values, errors=errors,
                             key=key if submissions.valid_key(key) else None, alert=alert, status=status)

    if form.meta.csrf and form.csrf_token.errors:
        return again(alert=_("This page was open for a long time, so for your security it has to be sent once "
                             "more. What you typed is kept: please check it and save again."))
    if not submissions.valid_key(key):
        return again(errors={"": _("The form was sent in an unexpected shape. Please send it again.")})
    result = submissions.validate(inst.definition, posted, extra_fields=SHEET_FIELDS)
    errors = dict(result.errors)
    today = local_today()
    day = None if form.date.errors else (form.date.data or today)
    if day is None or day > today or (today - day).days > MAX_AGE_DAYS:
        errors["date"] = _("Enter the date written on the questionnaire (not in the future, at most "
                           "%(n)s days ago).", n=MAX_AGE_DAYS)
    if form.batch.errors:
        errors["batch"] = str(form.batch.errors[0])
    if not errors and (closed := publishing.refusal("entry", counter.unit_id, _submitted_at(day))):
        errors["date"] = closed  # a closed period (issue 15)
    if errors:
        return again(errors=errors)
    try:
        outcome = responses.create_response(
            unit_id=counter.unit_id, counter_id=counter.id, instrument=inst, clean=result.clean, channel=channel,
            idempotency_key=key, submitted_at=_submitted_at(day), typist=db_user(), paper_batch=form.batch.data)
    except OperationalError:
        db.session.rollback()
        return again(alert=_("The questionnaire could not be saved just now. What you typed is kept: "
                             "please save again in a moment."), status=503)
    if outcome.status == "created":
        session["entry_saved"] = int(session.get("entry_saved", 0)) + 1
    return redirect(url_for("staff.entry_sheet", counter=counter.code, instrument=inst.key, channel=channel,
                            date=day.isoformat(), batch=form.batch.data, saved=1), 303)


# The sheet checks its own CSRF token (above) so that a stale page keeps what was typed.
csrf.exempt(entry_save)
