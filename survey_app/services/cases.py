"""Alerts and cases (DESIGN.md flow 5, "close the loop").

Three triggers open a case for a unit:

- a *dissatisfied* rating: overall answer 1..M766_DISSATISFIED_MAX (the one
  definition of "dissatisfied", METHODOLOGY §7);
- a comment whose citizen ticked "I would like a reply" (`reply_requested`;
  the form is anonymous and the comment is PII-masked before storage, so the
  unit answers through its own channels or at the counter and records here
  what it answered);
- a *window*: at least ALERT_WINDOW_MIN_RATINGS live ratings (QR, kiosk,
  online) of the unit in the ALERT_WINDOW_MINUTES up to a dissatisfied one,
  of which a share >= ALERT_WINDOW_SHARE dissatisfied.  One case per unit and
  window: no second threshold case while the last one is younger than the
  window (and a unique key per unit and window number against races).  The
  window is looked at when a dissatisfied rating arrives (the only rating that
  can raise the share); one still short of the minimum count then is looked
  at again a window length later by a job (satisfied ratings may complete it),
  so a satisfied rating's POST never pays for the check.

`after_response` is the hook of the one writer (services/responses.py): it
returns at once unless the rating is dissatisfied or a reply was asked for,
and then only queues one job (`OPEN_JOB`, one INSERT in the response's
transaction) that opens the case and looks at the window, so the citizen's
POST never pays for either and a failure there never costs the rating.

A case gets an owner (a leader of the unit, the nearest level of the tree that
has one), a deadline of CASE_DEADLINE_WORKING_DAYS working days
(services/workdays.py) and a history (`CaseEvent`), every change audited.
The alert is an e-mail to the unit's leaders and, where an API client listens,
a webhook: both through the job queue (services/jobs.py), so a slow or absent
mail server never slows the citizen's POST, and both carry only the link to
the case page, never the answers or the comment.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import smtplib
import ssl
from email.message import EmailMessage
from typing import Optional

import sqlalchemy as sa
from flask import current_app
from flask_babel import force_locale, pgettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from analysis.schema import OVERALL

from ..extensions import db
from ..models import CASE_STATUSES, Answer, Case, CaseEvent, Response, Unit, User, utcnow
from . import jobs, refusals
from .audit import record
from .periods import local_zone
from .units import scope_unit_ids
from .workdays import add_working_days, holidays, working_days_between

log = logging.getLogger(__name__)

#: Channels whose ratings count in the threshold window (typed entry arrives in batches, imports in bulk).
LIVE_CHANNELS = ("qr", "kiosk", "online")
OPEN_STATUSES = ("new", "in_progress")
SYSTEM = "system"
MAX_REPLY_CHARS = 4000
EMAIL_JOB = "cases.email"
WINDOW_JOB = "cases.window"
OPEN_JOB = "cases.open"

def _labels() -> dict[str, dict[str, str]]:
    """The words of the codes (status, kind, history action) in the page's language."""
    return {
        "status": {
            "new": pgettext("case status", "New"),
            "in_progress": pgettext("case status", "In progress"),
            "answered": pgettext("case status", "Answered"),
            "closed": pgettext("case status", "Closed"),
        },
        "kind": {
            "dissatisfied": pgettext("case kind", "Dissatisfied rating"),
            "reply_requested": pgettext("case kind", "Reply requested"),
            "threshold": pgettext("case kind", "Many dissatisfied ratings"),
        },
        "action": {
            "opened": pgettext("case event", "Opened"),
            "reply_requested": pgettext("case event", "Reply requested by the citizen"),
            "taken": pgettext("case event", "Taken"),
            "answered": pgettext("case event", "Reply recorded"),
            "closed": pgettext("case event", "Closed"),
        },
    }


Refused = refusals.Refused  # (status, translated message): one class for every service


# ------------------------------------------------------------------ the hook of the one writer


def after_response(row: dict, answers: dict, reply_requested: bool = False) -> None:
    """Queue the opening of the cases a stored response calls for: one job row
    in the response's transaction (the caller commits), nothing else on the
    citizen's POST; the job (`OPEN_JOB`) opens the case and looks at the window.
    `row` is the response row as written."""
    overall = answers.get(OVERALL)
    dissatisfied = overall is not None and 1 <= int(overall) <= int(current_app.config["M766_DISSATISFIED_MAX"])
    if not (dissatisfied or reply_requested) or not current_app.config["ALERTS_ENABLED"]:
        return
    jobs.enqueue(OPEN_JOB, {"response_id": str(row["id"]), "unit_id": row["unit_id"],
                            "kind": "dissatisfied" if dissatisfied else "reply_requested",
                            "reply": bool(reply_requested), "at": row["submitted_at"].isoformat(),
                            "window": bool(dissatisfied and row["channel"] in LIVE_CHANNELS)})


@jobs.handler(OPEN_JOB, max_attempts=5, backoff=30.0)
def _open_job(payload: dict, job) -> Optional[str]:
    import uuid

    rid = uuid.UUID(payload["response_id"])
    if db.session.scalar(select(Case.id).where(Case.response_id == rid)) is not None:
        return "case exists"
    if db.session.scalar(select(Response.id).where(Response.id == rid)) is None:
        return "response gone"
    case = _open(int(payload["unit_id"]), payload["kind"], response_id=rid, reply_requested=payload["reply"])
    if payload["window"]:
        check_window(int(payload["unit_id"]), dt.datetime.fromisoformat(payload["at"]))
    return f"case {case.id}"


def reply_requested_for(response_id) -> None:
    """The citizen asked for a reply in the details step of a stored rating:
    mark its case, or open one (the caller commits)."""
    if not current_app.config["ALERTS_ENABLED"]:
        return
    try:
        with db.session.begin_nested():
            case = db.session.scalar(select(Case).where(Case.response_id == response_id))
            if case is None:
                unit_id = db.session.scalar(select(Response.unit_id).where(Response.id == response_id))
                _open(unit_id, "reply_requested", response_id=response_id, reply_requested=True)
            elif not case.reply_requested:
                case.reply_requested = True
                _event(case, None, "reply_requested", case.status, case.status)
    except Exception:  # noqa: BLE001
        log.exception("marking a reply request failed (the comment is kept)")


def window_counts(unit_id: int, end: dt.datetime, minutes: float) -> tuple[int, int]:
    """(ratings, dissatisfied) of the unit's live, not excluded ratings with an
    overall answer submitted in (end - minutes, end]."""
    dmax = int(current_app.config["M766_DISSATISFIED_MAX"])
    start = end - dt.timedelta(minutes=minutes)
    n, d = db.session.execute(
        select(func.count(), func.coalesce(func.sum(sa.case((Answer.value <= dmax, 1), else_=0)), 0))
        .select_from(Response)
        .join(Answer, sa.and_(Answer.response_id == Response.id, Answer.item_key == OVERALL))
        .where(Response.unit_id == unit_id, Response.submitted_at > start, Response.submitted_at <= end,
               Response.channel.in_(LIVE_CHANNELS), Response.excluded.is_(False), Answer.value >= 1)).one()
    return int(n), int(d or 0)


def check_window(unit_id: int, end: dt.datetime, *, defer: bool = True) -> Optional[Case]:
    """Open the unit's threshold case for the window ending at `end` when it is
    over the threshold and no threshold case is younger than the window.  A
    window still short of the minimum count (`defer`) is looked at again one
    window length later by a job (`WINDOW_JOB`): satisfied ratings that arrive
    after the dissatisfied ones can complete it."""
    cfg = current_app.config
    minutes = float(cfg["ALERT_WINDOW_MINUTES"])
    n, d = window_counts(unit_id, end, minutes)
    if n < int(cfg["ALERT_WINDOW_MIN_RATINGS"]):
        if defer and d:
            jobs.enqueue(WINDOW_JOB, {"unit_id": unit_id}, key=str(unit_id), delay=minutes * 60)
        return None
    if d < float(cfg["ALERT_WINDOW_SHARE"]) * n:
        return None
    start = end - dt.timedelta(minutes=minutes)
    recent = db.session.scalar(select(Case.id).where(Case.unit_id == unit_id, Case.kind == "threshold",
                                                     Case.opened_at > start))
    if recent is not None:
        return None
    number = int(end.timestamp() // (minutes * 60))
    details = {"start": start.isoformat(), "end": end.isoformat(), "n": n, "dissatisfied": d,
               "minutes": minutes}
    return _open(unit_id, "threshold", window_key=f"w{minutes:g}:{number}", details=details)


@jobs.handler(WINDOW_JOB, max_attempts=3, backoff=60.0)
def _window_job(payload: dict, job) -> Optional[str]:
    """Look again at the windows ending at each live rating of the unit in the last
    two window lengths; while the newest dissatisfied one is younger than a window,
    come back when it is not."""
    if not current_app.config["ALERTS_ENABLED"]:
        return "alerts off"
    unit_id = int(payload["unit_id"])
    minutes = float(current_app.config["ALERT_WINDOW_MINUTES"])
    now = utcnow()
    dmax = int(current_app.config["M766_DISSATISFIED_MAX"])
    rows = db.session.execute(
        select(Response.submitted_at, Answer.value).select_from(Response)
        .join(Answer, sa.and_(Answer.response_id == Response.id, Answer.item_key == OVERALL))
        .where(Response.unit_id == unit_id, Response.channel.in_(LIVE_CHANNELS), Response.excluded.is_(False),
               Response.submitted_at > now - dt.timedelta(minutes=2 * minutes), Response.submitted_at <= now)
        .order_by(Response.submitted_at)).all()
    opened = None
    for end, _value in rows:
        try:
            with db.session.begin_nested():
                opened = check_window(unit_id, end, defer=False)
        except sa.exc.IntegrityError:  # that window's case exists already
            opened = None
        if opened is not None:
            break
    last_bad = max((at for at, v in rows if 1 <= v <= dmax), default=None)
    if opened is None and last_bad is not None and last_bad > now - dt.timedelta(minutes=minutes):
        jobs.enqueue(WINDOW_JOB, {"unit_id": unit_id}, key=str(unit_id),
                     delay=(last_bad + dt.timedelta(minutes=minutes) - now).total_seconds() + 1)
    return f"case {opened.id}" if opened is not None else "no window over the threshold"


# ------------------------------------------------------------------ opening a case and its alert


def unit_leaders(unit_id: int) -> list[User]:
    """The active leaders of the unit, else of its nearest ancestor that has any."""
    seen: set[int] = set()
    uid: Optional[int] = unit_id
    while uid is not None and uid not in seen:
        seen.add(uid)
        leaders = list(db.session.scalars(
            select(User).where(User.unit_id == uid, User.role == "unit_leader", User.active.is_(True))
            .order_by(User.id)))
        if leaders:
            return leaders
        uid = db.session.scalar(select(Unit.parent_id).where(Unit.id == uid))
    return []


def local_day(stamp: dt.datetime) -> dt.date:
    return stamp.astimezone(local_zone()).date()


def due_day(opened_at: dt.datetime) -> dt.date:
    return add_working_days(local_day(opened_at), int(current_app.config["CASE_DEADLINE_WORKING_DAYS"]))


def _open(unit_id: int, kind: str, *, response_id=None, window_key: Optional[str] = None,
          details: Optional[dict] = None, reply_requested: bool = False) -> Case:
    now = utcnow()
    leaders = unit_leaders(unit_id)
    case = Case(unit_id=unit_id, kind=kind, response_id=response_id, window_key=window_key,
                reply_requested=reply_requested, status="new", owner_id=leaders[0].id if leaders else None,
                opened_at=now, due_on=due_day(now), details=details)
    db.session.add(case)
    db.session.flush()
    _event(case, None, "opened", None, "new")
    unit_code = db.session.scalar(select(Unit.code).where(Unit.id == unit_id))
    record(actor=SYSTEM, action="case_opened", target_type="case", target_id=case.id,
           details={"unit": unit_code, "kind": kind, "due_on": case.due_on.isoformat(),
                    "owner": leaders[0].username if leaders else None, "reply_requested": reply_requested})
    _alert(case, leaders)
    return case


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def valid_email(address: str) -> bool:
    """A plausible single address (no spaces, one @, a dot in the domain, at most 254 characters)."""
    return len(address) <= 254 and _EMAIL.fullmatch(address) is not None


def case_url(case_id: int) -> str:
    return f"{current_app.config['PUBLIC_BASE_URL'].rstrip('/')}/staff/cases/{case_id}"


def _alert(case: Case, leaders: list[User]) -> None:
    """Queue the alert of a new case: one e-mail per leader with an address, and the webhook."""
    for leader in leaders:
        if leader.email:
            jobs.enqueue(EMAIL_JOB, {"case_id": case.id, "user_id": leader.id}, key=f"{case.id}:{leader.id}")
    if not leaders:
        log.warning("case %s of unit %s: the unit has no leader to alert", case.id, case.unit_id)
    webhook_alert(case)


def webhook_alert(case: Case) -> None:
    """The API webhook of a new case (services/webhooks.py, once it is on main):
    `alert.created` with the link to the case page and the kind, nothing else.
    A failing webhook never stops the case nor its e-mail (its own savepoint)."""
    try:
        from . import webhooks
    except ImportError:  # the integration is not there: nothing to tell
        return
    try:
        with db.session.begin_nested():
            webhooks.emit(case.unit_id, "alert.created", {"links": {"case": case_url(case.id)}, "kind": case.kind})
    except Exception:  # noqa: BLE001
        log.exception("the alert.created webhook of case %s failed", case.id)


# ------------------------------------------------------------------ the e-mail (a job)


def email_message(case: Case, to: str) -> EmailMessage:
    """The alert e-mail: the unit, the due date and the link, in Vietnamese then
    English; never the answers nor the comment."""
    cfg = current_app.config
    url = case_url(case.id)
    due = case.due_on.strftime("%d/%m/%Y")
    with force_locale("vi"):
        vi = (_("A citizen's feedback at %(unit)s needs handling (due %(due)s).", unit=case.unit.name("vi"),
                due=due),
              _("Open the case page to see it and answer: %(url)s", url=url))
        subject = _("SIPAS: new case to handle")
    with force_locale("en"):
        en = (_("A citizen's feedback at %(unit)s needs handling (due %(due)s).", unit=case.unit.name("en"),
                due=due),
              _("Open the case page to see it and answer: %(url)s", url=url))
        subject_en = _("SIPAS: new case to handle")
    msg = EmailMessage()
    msg["Subject"] = f"{subject} / {subject_en}"
    msg["From"] = cfg["MAIL_FROM"]
    msg["To"] = to
    msg.set_content("\n".join((*vi, "", "---", "", *en, "")))
    return msg


def send_email(msg: EmailMessage) -> None:
    """Hand `msg` to MAIL_SERVER (raises on any failure: the job is retried)."""
    cfg = current_app.config
    tls = str(cfg["MAIL_TLS"] or "none").lower()
    host, port, timeout = cfg["MAIL_SERVER"], int(cfg["MAIL_PORT"]), float(cfg["MAIL_TIMEOUT"])
    if tls == "ssl":
        smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=ssl.create_default_context())
    else:
        smtp = smtplib.SMTP(host, port, timeout=timeout)
    with smtp:
        if tls == "starttls":
            smtp.starttls(context=ssl.create_default_context())
        if cfg["MAIL_USER"]:
            smtp.login(cfg["MAIL_USER"], cfg["MAIL_PASSWORD"] or "")
        smtp.send_message(msg)


@jobs.handler(EMAIL_JOB, max_attempts=6, backoff=60.0)
def _email_job(payload: dict, job) -> Optional[str]:
    case = db.session.get(Case, int(payload["case_id"]))
    user = db.session.get(User, int(payload["user_id"]))
    if case is None or user is None or not user.email:
        return "nothing to send (case or address gone)"
    msg = email_message(case, user.email)
    if not current_app.config["MAIL_SERVER"]:
        log.info("e-mail off (MAIL_SERVER not set): alert of case %s for user %s: %s",
                 case.id, user.id, case_url(case.id))
        return "logged (MAIL_SERVER not set)"
    send_email(msg)
    return "sent"


# ------------------------------------------------------------------ reading (scope)


def status_label(code: str) -> str:
    return _labels()["status"].get(code, code)


def kind_label(code: str) -> str:
    return _labels()["kind"].get(code, code)


def action_label(code: str) -> str:
    return _labels()["action"].get(code, code)


def today() -> dt.date:
    return local_day(utcnow())


def is_overdue(case: Case, on: Optional[dt.date] = None) -> bool:
    return case.status in OPEN_STATUSES and case.due_on < (on or today())


def days_left(case: Case, on: Optional[dt.date] = None) -> int:
    """Working days from today to the deadline (negative: overdue by that many)."""
    return working_days_between(on or today(), case.due_on, holidays())


def _in_scope(user: User):
    scope = scope_unit_ids(user)
    return sa.true() if scope is None else Case.unit_id.in_(scope or {-1})


def cases_query(user: User, *, status: Optional[str] = None, overdue: bool = False,
                unit_ids: Optional[set[int]] = None, on: Optional[dt.date] = None):
    """The cases the user may see, newest first; `status` a code or "open"."""
    q = select(Case).where(_in_scope(user)).order_by(Case.opened_at.desc(), Case.id.desc())
    if status == "open":
        q = q.where(Case.status.in_(OPEN_STATUSES))
    elif status in CASE_STATUSES:
        q = q.where(Case.status == status)
    if overdue:
        q = q.where(Case.status.in_(OPEN_STATUSES), Case.due_on < (on or today()))
    if unit_ids is not None:
        q = q.where(Case.unit_id.in_(unit_ids or {-1}))
    return q


def overdue_by_unit(user: User, on: Optional[dt.date] = None) -> list[tuple[Unit, int, int]]:
    """(unit, open cases, overdue cases) of each unit in the user's scope with open cases."""
    on = on or today()
    rows = db.session.execute(
        select(Case.unit_id, func.count(),
               func.coalesce(func.sum(sa.case((Case.due_on < on, 1), else_=0)), 0))
        .where(_in_scope(user), Case.status.in_(OPEN_STATUSES)).group_by(Case.unit_id)).all()
    units = {u.id: u for u in db.session.scalars(select(Unit).where(Unit.id.in_([r[0] for r in rows] or [-1])))}
    out = [(units[uid], int(n), int(late or 0)) for uid, n, late in rows if uid in units]
    return sorted(out, key=lambda t: (-t[2], -t[1], t[0].code))


def get_case(user: User, case_id: int) -> Case:
    """The case when the user may see it; Refused(404) otherwise (a case outside
    the scope is indistinguishable from one that does not exist)."""
    case = db.session.get(Case, case_id)
    if case is None:
        raise Refused(404, _l("There is no such case."))
    scope = scope_unit_ids(user)
    if scope is not None and case.unit_id not in scope:
        raise Refused(404, _l("There is no such case."))
    return case


def may_act(user: Optional[User], case: Optional[Case] = None) -> bool:
    """Leaders (and administrators) handle cases; analysts and counter staff only read them."""
    return user is not None and user.role in ("unit_leader", "admin")


# ------------------------------------------------------------------ handling a case


def _event(case: Case, user: Optional[User], action: str, before: Optional[str], after: Optional[str]) -> None:
    db.session.add(CaseEvent(case=case, actor=user.username if user else SYSTEM,
                             user_id=user.id if user else None, action=action,
                             from_status=before, to_status=after))


def _change(user: User, case: Case, action: str, status: str, **audit) -> Case:
    before = case.status
    case.status = status
    _event(case, user, action, before, status)
    record(actor=user.username, user_id=user.id, action=f"case_{action}", target_type="case",
           target_id=case.id, details={"unit": case.unit.code, "from": before, "to": status, **audit})
    db.session.commit()
    return case


def _check_actor(user: User, case: Case) -> None:
    if not may_act(user, case):
        raise Refused(403, _l("Only the unit's leaders handle cases."))


def take(user: User, case: Case) -> Case:
    """The user takes the case (becomes its owner): new / in progress -> in progress."""
    _check_actor(user, case)
    if case.status not in OPEN_STATUSES:
        raise Refused(409, _l("This case is already answered or closed."))
    previous = case.owner.username if case.owner else None
    case.owner_id = user.id
    return _change(user, case, "taken", "in_progress", previous_owner=previous)


def answer(user: User, case: Case, text: str) -> Case:
    """Record the unit's reply (what was answered, by whom, when): -> answered."""
    _check_actor(user, case)
    text = (text or "").strip()
    if not text:
        raise Refused(400, _l("Please write the reply that was given."))
    if len(text) > MAX_REPLY_CHARS:
        raise Refused(400, _l("The reply is too long (at most %(n)s characters).", n=MAX_REPLY_CHARS))
    if case.status == "closed":
        raise Refused(409, _l("This case is closed."))
    case.reply_text, case.replied_by_id, case.replied_at = text, user.id, utcnow()
    if case.owner_id is None:
        case.owner_id = user.id
    return _change(user, case, "answered", "answered", chars=len(text))


def close(user: User, case: Case) -> Case:
    """Close the case; one whose citizen asked for a reply needs the reply recorded first."""
    _check_actor(user, case)
    if case.status == "closed":
        raise Refused(409, _l("This case is closed."))
    if case.reply_requested and not case.reply_text:
        raise Refused(409, _l("The citizen asked for a reply: record the reply before closing the case."))
    case.closed_at = utcnow()
    return _change(user, case, "closed", "closed")
