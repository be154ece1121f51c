"""Fast keyboard entry of paper and phone questionnaires by staff.

`GET /staff/entry/` chooses the counter (inside the user's unit scope), the
questionnaire (`counter-quick` or `sipas-services`) and the channel
(`paper` / `phone`); `GET|POST /staff/entry/form` is the entry sheet: one
short input per item (type a digit, Tab to the next; blank = no answer).
Submissions go through `collect` like the citizens' own, with an
idempotency key per rendered sheet so a double Enter stores one row.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import abort, current_app, make_response, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_wtf.csrf import generate_csrf, validate_csrf
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from wtforms.validators import ValidationError

from ..errors import error_page
from ..extensions import csrf, db
from ..models import Counter, Unit
from ..services import instruments, responses, submissions
from ..services.units import scope_unit_ids
from . import bp

INSTRUMENTS = ("counter-quick", "sipas-services")
CHANNELS = ("paper", "phone")
SHEET_FIELDS = submissions.TRANSPORT_FIELDS + ("counter", "instrument", "channel", "date")
MAX_AGE_DAYS = 400


def _user():
    return current_user.user


def _counters():
    scope = scope_unit_ids(_user())
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
    scope = scope_unit_ids(_user())
    if scope is not None and counter.unit_id not in scope:
        abort(403)
    return counter


def _local_today() -> dt.date:
    tz = ZoneInfo(current_app.config.get("TIMEZONE", "Asia/Ho_Chi_Minh"))
    return dt.datetime.now(tz).date()


def _submitted_at(day: dt.date) -> dt.datetime:
    """Now for today's questionnaires; noon local time for an earlier day."""
    if day == _local_today():
        return dt.datetime.now(dt.timezone.utc)
    tz = ZoneInfo(current_app.config.get("TIMEZONE", "Asia/Ho_Chi_Minh"))
    return dt.datetime.combine(day, dt.time(12), tz).astimezone(dt.timezone.utc)


def _sheet_args():
    src = request.form if request.method == "POST" else request.args
    inst_key = src.get("instrument", "counter-quick")
    channel = src.get("channel", "paper")
    if inst_key not in INSTRUMENTS or channel not in CHANNELS:
        abort(400)
    return src.get("counter", ""), inst_key, channel, src.get("date", "")


@bp.get("/")
@login_required
def start():
    counters = _counters()
    return render_template("entry/start.html", counters=counters, instruments=INSTRUMENTS,
                           locale=str(get_locale() or "vi"), today=_local_today().isoformat())


def _render_sheet(counter, inst, channel, day, *, values=None, errors=None, key=None, alert=None, status=200):
    locale = str(get_locale() or "vi")
    title = inst.definition["title"]
    body = render_template(
        "entry/form.html", counter=counter, inst=inst, channel=channel, day=day,
        title=(title.get("en") or title["vi"]) if locale == "en" else title["vi"],
        questions=submissions.questions(inst.definition, locale), values=values or {}, errors=errors or {},
        key=key or submissions.new_key(), csrf_token=generate_csrf(), alert=alert, fields=submissions,
        saved=session.get("entry_saved", 0), today=_local_today().isoformat(), locale=locale,
        ok_flash=status == 200 and not errors,
    )
    resp = make_response(body, status)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("/form", methods=["GET", "POST"])
@login_required
def sheet():
    code, inst_key, channel, day_text = _sheet_args()
    counter = _counter_in_scope(code)
    inst = instruments.latest_instrument(inst_key)
    if inst is None:
        return error_page(503)
    today = _local_today()
    try:
        day = dt.date.fromisoformat(day_text) if day_text else today
    except ValueError:
        day = None
    if request.method != "POST":  # GET and HEAD: only POST stores a questionnaire
        return _render_sheet(counter, inst, channel, (day or today).isoformat(),
                             alert=_("Saved. Next questionnaire.") if request.args.get("saved") else None)

    form = request.form
    key = form.get(submissions.KEY_FIELD, "")
    values = submissions.posted_values(inst.definition, form)
    day_shown = day_text[:10]

    def again(*, errors=None, alert=None, status=400):
        return _render_sheet(counter, inst, channel, day_shown, values=values, errors=errors,
                             key=key if submissions.valid_key(key) else None, alert=alert, status=status)

    try:
        validate_csrf(form.get(submissions.CSRF_FIELD)) if current_app.config.get("WTF_CSRF_ENABLED", True) else None
    except ValidationError:
        return again(alert=_("This page was open for a long time, so for your security it has to be sent once "
                             "more. What you typed is kept: please check it and save again."))
    if not submissions.valid_key(key):
        return again(errors={"": _("The form was sent in an unexpected shape. Please send it again.")})
    result = submissions.validate(inst.definition, form, extra_fields=SHEET_FIELDS)
    errors = dict(result.errors)
    if day is None or day > today or (today - day).days > MAX_AGE_DAYS:
        errors["date"] = _("Enter the date written on the questionnaire (not in the future, at most "
                           "%(n)s days ago).", n=MAX_AGE_DAYS)
    if errors:
        return again(errors=errors)
    try:
        outcome = responses.create_response(
            unit_id=counter.unit_id, counter_id=counter.id, instrument=inst, clean=result.clean, channel=channel,
            idempotency_key=key, submitted_at=_submitted_at(day), check_flags=False)
    except OperationalError:
        db.session.rollback()
        return again(alert=_("The questionnaire could not be saved just now. What you typed is kept: "
                             "please save again in a moment."), status=503)
    if outcome.status == "created":
        session["entry_saved"] = int(session.get("entry_saved", 0)) + 1
    return redirect(url_for("entry.sheet", counter=counter.code, instrument=inst.key, channel=channel,
                            date=day.isoformat(), saved=1), 303)


csrf.exempt(sheet)
